import Foundation

/// A node restored from a backup that exports before it hears from a peer numbers its new
/// changes with the seqs of the ones it lost: a peer holds those seqs already and would skip the
/// new changes as duplicates, and nothing would tell the node (found from outside). The peer
/// sees it, though: a change of the sender's own epoch at a seq it holds, with another stamp.
/// It records the fork and from then on tells the node, in its receipts, that it holds more of
/// that epoch than the node issued: the node's next ingest moves it to a new epoch, and it sends
/// everything again under it (docs/delivery.md, epochs).
public enum Forks {
    private static let prefix = "fork:"

    /// A copy known here only by its stamp (pruned: `ds_change_stamp`) has for its id minus
    /// the inbox id it had.
    static func isPruned(_ id: Int64) -> Bool { id <= 0 }

    /// The copies (inbox id, stamp) of an origin's changes at these seqs held here: in the inbox,
    /// or pruned from it within the retention (by their stamps, `isPruned`). A hub prunes what
    /// it relayed the same night; comparing only the inbox's copies, it skipped the original of
    /// a seq a restored laptop reused when another laptop re-sent it, and the original stayed on
    /// that laptop for good (found in review).
    static func heldCopies(_ db: Database, origin: String, epoch: String, seqs: [Int64]) throws -> [Int64: (
        id: Int64, hlc: Int64
    )] {
        var out: [Int64: (id: Int64, hlc: Int64)] = [:]
        for part in stride(from: 0, to: seqs.count, by: VersionStore.batch) {
            let some = seqs[part..<min(part + VersionStore.batch, seqs.count)].map { Value.integer($0) }
            try db.query(
                "SELECT seq, id, hlc FROM ds_change_inbox WHERE origin = ? AND origin_epoch = ? AND seq IN (\(SQL.placeholders(some.count)))",
                [.text(origin), .text(epoch)] + some
            ) { r in
                if let seq = r.int(0), let id = r.int(1), let hlc = r.int(2) { out[seq] = (id, hlc) }
            }
            let pruned = some.filter { if case .integer(let s) = $0 { return out[s] == nil } else { return false } }
            guard !pruned.isEmpty else { continue }
            try db.query(
                "SELECT seq, hlc, inbox_id FROM ds_change_stamp WHERE origin = ? AND origin_epoch = ? AND seq IN (\(SQL.placeholders(pruned.count)))",
                [.text(origin), .text(epoch)] + pruned
            ) { r in
                if let seq = r.int(0), let hlc = r.int(1), let id = r.int(2) { out[seq] = (-id, hlc) }
            }
        }
        return out
    }

    /// The copy of a reused seq that differs from the one held, until `resolve` can tell which
    /// of the two is the original. A large value goes by the brand's own path.
    static func keepAside(_ db: Database, _ row: [Value], columns: SQL) throws {
        try insertCopy(db, into: "ds_change_forked", row, columns: columns)
    }

    /// One copy into the inbox or aside, a duplicate skipped.
    static func insertCopy(_ db: Database, into table: SQL, _ row: [Value], columns: SQL) throws {
        if case .blob(let payload) = row[10], payload.count >= Ingester.largeValueBytes,
            try db.insertWithLargeValue(into: table, columns: columns, row, valueIndex: 10) != nil
        {
            return
        }
        let sql = db.dialect.insertSkippingDuplicates(
            into: table, columns: columns, rows: SQL.placeholderRows(1, width: row.count))
        try db.execute(sql, row)
    }

    /// A restored node that moves to a new epoch sends its outbox again under it, at the same
    /// seqs with the same stamps: of two copies of a reused seq, the one that comes again under
    /// another epoch of its origin is the restored node's, and the other is the original, which
    /// exists nowhere else. An original kept aside takes the place of the held copy (its held row
    /// goes with it) and is applied; a restored node's copy kept aside is dropped; until then
    /// both wait. In the load's transaction, after its rows: what it writes is that bundle's.
    static func resolve(_ db: Database, me: NodeIdentity, bundleId: Int64) throws {
        // Every copy that waits, a page at a time: with only the first page, copies that never
        // resolve kept the later ones from ever being looked at (found in the last read).
        var after: Int64 = 0
        while true {
            let waiting = try db.rows(
                "SELECT id, origin, origin_epoch, seq, hlc FROM ds_change_forked WHERE id > ? ORDER BY id LIMIT 1000",
                [.integer(after)])
            guard let last = waiting.last?.int(0) else { return }
            after = last
            try resolve(db, me: me, bundleId: bundleId, waiting)
        }
    }

    private static func resolve(_ db: Database, me: NodeIdentity, bundleId: Int64, _ waiting: [Row]) throws {
        for w in waiting {
            guard let id = w.int(0), let origin = w.string(1), let epoch = w.string(2), let seq = w.int(3),
                let hlc = w.int(4)
            else { continue }
            // Its other epochs' copies at this seq: one index lookup each.
            var again = Set<Int64>()
            for other in try db.rows(
                "SELECT origin_epoch FROM ds_origin_state WHERE origin = ? AND origin_epoch <> ?",
                [.text(origin), .text(epoch)])
            {
                guard let e = other.string(0) else { continue }
                if let h = try heldCopies(db, origin: origin, epoch: e, seqs: [seq])[seq] { again.insert(h.hlc) }
            }
            // This node's own old epoch (it was the one restored): its outbox holds what it sends
            // again.
            if origin == me.nodeId,
                let h = try db.scalar("SELECT hlc FROM ds_change_outbox WHERE seq = ?", [.integer(seq)]).asInt64
            {
                again.insert(h)
            }
            guard !again.isEmpty else { continue }
            if !again.contains(hlc) {
                // The held copy comes again: this one is the original, in its place.
                guard let held = try heldCopies(db, origin: origin, epoch: epoch, seqs: [seq])[seq],
                    again.contains(held.hlc)
                else { continue }
                if isPruned(held.id) {
                    // Pruned (and applied): the original's row below is what is held now, and is
                    // stamped afresh when it is pruned.
                    try db.execute(
                        "DELETE FROM ds_change_stamp WHERE origin = ? AND origin_epoch = ? AND seq = ?",
                        [.text(origin), .text(epoch), .integer(seq)])
                }
                try db.execute("DELETE FROM ds_change_held WHERE id = ?", [.integer(held.id)])
                try db.execute("DELETE FROM ds_change_inbox WHERE id = ?", [.integer(held.id)])
                try db.execute(
                    """
                    INSERT INTO ds_change_inbox (origin, origin_epoch, seq, hlc, source_id, object_table, object_id, object_pk_attribute, object_operation, cl, object_value, bundle_id, received_at)
                    SELECT origin, origin_epoch, seq, hlc, source_id, object_table, object_id, object_pk_attribute, object_operation, cl, object_value, ?, received_at
                    FROM ds_change_forked WHERE id = ?
                    """, [.integer(bundleId), .integer(id)])
            }
            try db.execute("DELETE FROM ds_change_forked WHERE id = ?", [.integer(id)])
        }
    }

    /// Copies kept aside that a peer relayed (not their origin): that peer holds the other copy
    /// of the seq and lacks the one held here. When a laptop restored from a backup reused the
    /// seq of a change that reached only this node (a stick; the hub's copy was lost with the
    /// disk), the hub took the new change for the one it never had, with no gap and no fork to
    /// see, and the original stayed here for good (found from outside: every command exited 0,
    /// `check` OK). Shown the copy held here, the peer sees the fork and tells the origin, whose
    /// new epoch sorts both copies out (`resolve`). Not said once the peer confirms the copy held
    /// here in this node's relay stream: it has seen both (the cure done, or the peer was shown
    /// it before it sent the other; found from outside, a hub that ingested the cure was told to
    /// send it back). Said on every ingest, export and prune until then; prune keeps the origin's
    /// rows from the fork on meanwhile.
    public static func warnings(_ db: Database) throws -> [String] { try warnings(db, me: NodeIdentity.load(db)) }

    static func warnings(_ db: Database, me: NodeIdentity) throws -> [String] {
        let revoked = try LastingGaps.revokedNodes(db)
        var coverage = RelayCoverage(db: db, me: me)
        var lacking: [String: (origin: String, epoch: String, sender: String, seqs: [Int64])] = [:]
        for r in try db.rows(
            """
            SELECT f.origin, f.origin_epoch, b.origin, f.seq, i.id
            FROM ds_change_forked f JOIN ds_bundle_seen b ON b.id = f.bundle_id
            LEFT JOIN ds_change_inbox i ON i.origin = f.origin AND i.origin_epoch = f.origin_epoch AND i.seq = f.seq
            WHERE b.origin <> f.origin AND b.origin <> ?
            ORDER BY f.origin, f.origin_epoch, b.origin, f.seq
            """, [.text(me.nodeId)])
        {
            guard let origin = r.string(0), let epoch = r.string(1), let sender = r.string(2), let seq = r.int(3),
                !revoked.contains(sender)
            else { continue }
            if let held = r.int(4), try coverage.covers(sender, first: held, last: held) { continue }
            let k = [origin, epoch, sender].joined(separator: "\u{0}")
            lacking[k, default: (origin, epoch, sender, [])].seqs.append(seq)
        }
        return lacking.sorted { $0.key < $1.key }.map { _, l in
            let seqs = Set(l.seqs).sorted()
            let which =
                seqs.count == 1
                ? "change \(seqs[0])" : "\(seqs.count) changes between \(seqs[0]) and \(seqs[seqs.count - 1])"
            return
                "\(l.origin)'s \(which) (epoch \(l.epoch.prefix(8))) came from \(l.sender) with another stamp than the copy held here: "
                + "\(l.origin) was restored from a backup and gave new changes the seqs of ones it lost, and \(l.sender) lacks the copy held here, "
                + "which may be the only one left; on this node run 'datajoin export --db URL --to FOLDER --relay --resend --peer \(l.sender)' "
                + "and ingest what it writes on \(l.sender): \(l.origin)'s new epoch then brings each copy where it belongs (docs/delivery.md, 'Restored backups and epochs')"
        }
    }

    /// Keeps the highest seq a forked origin has named, so the receipt stays above it.
    static func record(_ db: Database, origin: String, epoch: String, last: Int64) throws {
        let name = prefix + origin + ":" + epoch
        let known = try Settings.int(db, name, range: 0...Int64(BundleFormat.maxSeq)) ?? 0
        if last > known { try Settings.set(db, name, last) }
    }

    /// (origin, epoch) → the highest seq named, for every fork seen.
    static func all(_ db: Database) throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for r in try db.rows("SELECT name, value FROM ds_setting WHERE name LIKE 'fork:%'") {
            guard let name = r.string(0), let v = r.string(1).flatMap({ Int64($0) }) else { continue }
            out[String(name.dropFirst(prefix.count))] = v
        }
        return out
    }
}
