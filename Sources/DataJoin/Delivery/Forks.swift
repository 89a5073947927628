import Foundation

/// A node restored from a backup that exports before it hears from a peer numbers its new
/// changes with the seqs of the ones it lost: a peer holds those seqs already and would skip the
/// new changes as duplicates, and nothing would tell the node (found from outside). The peer
/// sees it, though: a change of the sender's own epoch at a seq it holds, with another stamp.
/// It records the fork and from then on tells the node, in its receipts, that it holds more of
/// that epoch than the node issued: the node's next ingest moves it to a new epoch, and it sends
/// everything again under it (docs/delivery.md, epochs).
enum Forks {
    private static let prefix = "fork:"

    /// The inbox's copies (id, stamp) of an origin's changes at these seqs, where held.
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
        }
        return out
    }

    /// Removes the restored node's copies of reused seqs, whose originals take their place
    /// (`InboxLoad.reconcile`); the node sends its own again under its new epoch. A copy held
    /// back (ds_change_held) goes with its row.
    static func dropHeldCopies(_ db: Database, ids: [Int64]) throws {
        for part in stride(from: 0, to: ids.count, by: VersionStore.batch) {
            let some = ids[part..<min(part + VersionStore.batch, ids.count)].map { Value.integer($0) }
            try db.execute("DELETE FROM ds_change_held WHERE id IN (\(SQL.placeholders(some.count)))", some)
            try db.execute("DELETE FROM ds_change_inbox WHERE id IN (\(SQL.placeholders(some.count)))", some)
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
