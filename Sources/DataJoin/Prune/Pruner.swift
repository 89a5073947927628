import Foundation

public struct PruneReport: Sendable {
    public var outboxRows = 0
    public var inboxRows = 0
    public var tombstones = 0
    /// Changes stamped before this time are held from now on (docs/snapshot.md, "Pruning").
    public var cutoff = ""
    /// Peers whose missing receipts keep outbox rows: they have not confirmed this node's changes.
    public var waitingFor: [String] = []
    /// Applied inbox rows kept because this node has not relayed yet and a peer may lack them:
    /// a hub that pruned them before its first `export --relay` would never send them.
    public var keptForRelay = 0
}

/// `datajoin prune`: removes what no node can need any more, in one transaction
/// (docs/snapshot.md): outbox rows every peer has confirmed, applied inbox rows below the
/// origin's high-water mark (and, on a relaying hub, confirmed by every peer), and tombstones
/// older than the retention. Changes stamped before the retention are held from then on: they
/// come from a node that has been away too long, and could bring back a deleted row.
public enum Pruner {
    public static let defaultKeepSeconds: Int64 = 30 * 86_400
    static let cutoffSetting = "tombstones_pruned_before_ms"

    /// `noRelay`: this node never forwards changes (every node sends to every other), so its
    /// applied inbox rows go even with several peers and no `export --relay` yet.
    public static func run(_ db: Database, keepSeconds: Int64, noRelay: Bool = false) throws -> PruneReport {
        guard keepSeconds > 0 else { throw DataJoinError(.usage, "--keep must be longer than zero") }
        var report = PruneReport()
        try db.retryingWrite { _ in
            report = PruneReport()
            let me = try NodeIdentity.load(db)
            let peers = try Receipts.peers(db, me: me)

            // Outbox: what every peer has confirmed (no peer yet: nothing is confirmed).
            var confirmed = Int64.max
            let highest = try db.scalar("SELECT max(seq) FROM ds_change_outbox").asInt64 ?? 0
            for p in peers {
                let seq = try Receipts.confirmed(db, peer: p, origin: me.nodeId, epoch: me.epoch)
                if seq < highest { report.waitingFor.append(p) }
                confirmed = min(confirmed, seq)
            }
            if peers.isEmpty { confirmed = 0 }
            report.outboxRows = try db.execute(
                "DELETE FROM ds_change_outbox WHERE seq IS NOT NULL AND seq <= ?", [.integer(confirmed)])
            if report.outboxRows > 0 { try Receipts.notePruned(db, me: me, through: min(confirmed, highest)) }

            // Inbox: applied, below the origin's contiguous mark (so a copy arriving again is
            // recognised as held), and on a hub also relayed and confirmed by every peer.
            let imported = try ProgramPointer.get(db, Program.import)
            let relayed = try ProgramPointer.get(db, Program.relay)
            let relaying = try RelayStream.isRelaying(db)
            // No relay yet: this may be a hub before its first `export --relay`. An origin's
            // applied rows wait while a trusted peer may lack them: a peer that is neither their
            // origin nor one that sent them here (two laptops, or one left after a peer was
            // revoked after its last sync, whose changes went unrelayed, found from outside; a
            // laptop's rows relayed by its hub go). `--no-relay` says this node never forwards.
            // This node's own changes of an older epoch, sent back after a restore, are the
            // peers' already.
            func lacking(_ origin: String, _ epoch: String) throws -> [String] {
                guard !relaying && origin != me.nodeId else { return [] }
                let senders = Set(
                    try db.rows(
                        "SELECT DISTINCT origin FROM ds_bundle_seen WHERE id IN (SELECT bundle_id FROM ds_change_inbox WHERE origin = ? AND origin_epoch = ? AND id <= ?)",
                        [.text(origin), .text(epoch), .integer(imported)]
                    ).compactMap { $0.string(0) })
                return peers.filter { $0 != origin && !senders.contains($0) }
            }
            // Peers that lack rows `--no-relay` removes: should this node relay after all, they
            // are named as lacking them (RelayStream.noteUnrelayedPrune).
            var unrelayed = Set<String>()
            // A peer confirms an origin's changes by its receipt for the origin, or by the spans
            // of this node's relay stream it holds (docs/delivery.md).
            var coverage = RelayCoverage(db: db, me: me)
            // Each row by itself: a peer other than its origin holds it when it sent it here or
            // its receipts confirm it. By origin alone, one of a laptop's rows that its hub
            // relayed let go another that came straight from the origin on a stick, which the
            // hub lacked (found from outside: a restored origin then lost it for good).
            let relayers = Set(
                try db.rows("SELECT DISTINCT relayer FROM ds_relay_held").compactMap { $0.string(0) })
            func heldByEveryPeer(_ origin: String, _ epoch: String) throws -> (sql: SQL, params: [Value])? {
                guard !relaying && !noRelay && origin != me.nodeId else { return nil }
                let others = peers.filter { $0 != origin }
                guard !others.isEmpty else { return nil }
                var confirmed: [String: Int64] = [:]
                for p in others { confirmed[p] = try Receipts.confirmed(db, peer: p, origin: origin, epoch: epoch) }
                var parts: [SQL] = ["seq <= ?"]
                var params: [Value] = [.integer(confirmed.values.min() ?? 0)]
                // A relay's own changes too: it sends them to every peer.
                for q in others + (relayers.contains(origin) ? [origin] : []) {
                    parts.append(
                        "(seq <= ? AND EXISTS (SELECT 1 FROM ds_bundle_seen b WHERE b.id = ds_change_inbox.bundle_id AND b.origin = ?))"
                    )
                    // A relay (a hub) sends what it sent here to its other peers itself: a
                    // laptop that trusts another for sticks kept every row its hub relayed for
                    // good, as that laptop's receipts never reach it (found from outside).
                    let relays = relayers.contains(q)
                    params += [
                        .integer(
                            relays
                                ? Int64.max : others.filter { $0 != q }.compactMap { confirmed[$0] }.min() ?? Int64.max),
                        .text(q),
                    ]
                }
                return ("(" + parts.joined(separator: " OR ") + ")", params)
            }
            for s in try Holdings.all(db) {
                // Named as lacking what `--no-relay` removes; without it each row waits for them.
                let lackedBy = noRelay ? try lacking(s.origin, s.epoch) : []
                let held = try heldByEveryPeer(s.origin, s.epoch)
                if let held {
                    report.keptForRelay += Int(
                        try db.scalar(
                            "SELECT count(*) FROM ds_change_inbox WHERE origin = ? AND origin_epoch = ? AND id <= ? AND id NOT IN (SELECT id FROM ds_change_held) AND NOT \(held.sql)",
                            [.text(s.origin), .text(s.epoch), .integer(imported)] + held.params
                        ).asInt64 ?? 0)
                }
                var limit = s.contiguous
                if relaying {
                    // A peer restored from a backup needs its own lost changes of its old epoch
                    // back (an outside trial lost them when they were pruned here first).
                    for p in peers where try Receipts.needs(db, peer: p, origin: s.origin, epoch: s.epoch) {
                        limit = min(limit, try coverage.confirmed(p, origin: s.origin, epoch: s.epoch))
                    }
                }
                guard limit > 0 else { continue }
                try db.execute(
                    "UPDATE ds_origin_state SET inbox_floor = ? WHERE origin = ? AND origin_epoch = ? AND inbox_floor < ?",
                    [.integer(limit), .text(s.origin), .text(s.epoch), .integer(limit)])
                // While a fork of the origin's epoch waits, its rows from the fork's seq on stay:
                // the copy held of a reused seq sorts the fork out, and a peer that relayed the
                // other copy lacks it and the restored node's other lost changes after it
                // (Forks.warnings). Pruned, they were gone from the inbox, the cure sent nothing
                // of them, and the nodes stayed apart for good (found from outside).
                let pruned: SQL = """
                    origin = ? AND origin_epoch = ? AND seq <= ? AND id <= ? AND id <= ? AND id NOT IN (SELECT id FROM ds_change_held)
                    AND NOT EXISTS (SELECT 1 FROM ds_change_forked f WHERE f.origin = ds_change_inbox.origin AND f.origin_epoch = ds_change_inbox.origin_epoch AND f.seq <= ds_change_inbox.seq)
                    \(held.map { "AND " + $0.sql } ?? "")
                    """
                let params: [Value] =
                    [
                        .text(s.origin), .text(s.epoch), .integer(limit), .integer(imported),
                        .integer(relaying ? relayed : Int64.max),
                    ] + (held?.params ?? [])
                // Their stamps stay for the retention (Forks.heldCopies): a copy of a seq pruned
                // here is still compared when it comes again. Without them a hub that pruned a
                // restored node's reused seq skipped the original a laptop re-sent it, and the
                // original stayed on that laptop for good (found in review).
                try db.execute(
                    """
                    INSERT INTO ds_change_stamp (origin, origin_epoch, seq, hlc, inbox_id)
                    SELECT origin, origin_epoch, seq, hlc, id FROM ds_change_inbox WHERE \(pruned)
                    AND NOT EXISTS (SELECT 1 FROM ds_change_stamp s WHERE s.origin = ds_change_inbox.origin AND s.origin_epoch = ds_change_inbox.origin_epoch AND s.seq = ds_change_inbox.seq)
                    """, params)
                let removed = try db.execute("DELETE FROM ds_change_inbox WHERE \(pruned)", params)
                report.inboxRows += removed
                if removed > 0 { unrelayed.formUnion(lackedBy) }
            }
            if !unrelayed.isEmpty { try RelayStream.noteUnrelayedPrune(db, peers: unrelayed, through: imported) }
            // What was pruned of the relay stream lies at or below the relay pointer: a peer
            // first heard from after this prune never confirmed it (RelayStream.lagging).
            if relaying && report.inboxRows > 0 {
                try Settings.raise(db, RelayStream.prunedThroughSetting, to: relayed)
            }
            report.inboxRows += try db.execute(
                "DELETE FROM ds_change_inbox WHERE origin_epoch LIKE ? AND id <= ? AND id NOT IN (SELECT id FROM ds_change_held)",
                [.text(BundleFormat.snapshotEpochPrefix + "%"), .integer(imported)])
            // Ids are never issued again: `check` reads the pointers against this too, once the
            // inbox's last rows are gone.
            if report.inboxRows > 0 { try Settings.raise(db, inboxPrunedThroughSetting, to: imported) }

            // Tombstones older than the retention; from now on, changes older than it are held.
            let cutoffMs = HybridLogicalClock.shifted(
                HybridLogicalClock.nowMs(offsetMs: try HybridLogicalClock.testOffsetMs(db)), by: -keepSeconds * 1000)
            report.tombstones = try db.execute(
                "DELETE FROM ds_row_version WHERE cl % 2 = 0 AND hlc < ?",
                [.integer(HybridLogicalClock.stamp(ms: cutoffMs))])
            // A copy older than the retention is held, not applied, whichever it is; but a fork
            // that waits is sorted out by the stamps from its seq on, however long it waits.
            try db.execute(
                """
                DELETE FROM ds_change_stamp WHERE hlc < ?
                AND NOT EXISTS (SELECT 1 FROM ds_change_forked f WHERE f.origin = ds_change_stamp.origin AND f.origin_epoch = ds_change_stamp.origin_epoch AND f.seq <= ds_change_stamp.seq)
                """, [.integer(HybridLogicalClock.stamp(ms: cutoffMs))])
            let cutoff = max(try Settings.int(db, cutoffSetting) ?? 0, cutoffMs)
            try Settings.set(db, cutoffSetting, cutoff)
            report.cutoff = HybridLogicalClock.describe(HybridLogicalClock.stamp(ms: cutoff))
        }
        return report
    }

    /// At or above every inbox id a prune removed.
    static let inboxPrunedThroughSetting = "inbox_pruned_through_id"

    /// A snapshot's sender pruned its tombstones up to `ms`, so the rows it brings lack them:
    /// from now on a node joining by it holds the changes stamped before it, as the sender does
    /// (a joiner applied a peer's change the sender held for its age; found from outside). Only
    /// a node that has applied nothing yet (no row version): one with a history of its own keeps
    /// its own retention (found in review: a hub would hold every change older than a laptop's
    /// shorter `--keep`). Taken as it is, only forward: it is a stamp the changes' stamps are
    /// compared with, not a time of this node's clock (capped at a clock 15 minutes behind, the
    /// joiner applied what the sender held; found from outside); but never further ahead of this
    /// clock than a stamp may be (`max_clock_ahead_ms`, a day): a sender's clock far ahead makes
    /// the joiner hold up to a day of changes, as the sender holds them.
    static func inheritCutoff(_ db: Database, ms: Int64) throws {
        guard try db.firstRow("SELECT 1 FROM ds_row_version LIMIT 1", []) == nil else { return }
        let credible = HybridLogicalClock.shifted(
            HybridLogicalClock.nowMs(offsetMs: try HybridLogicalClock.testOffsetMs(db)),
            by: try BundleTime.maxAheadMs(db))
        let cutoff = min(ms, credible)
        if cutoff > (try Settings.int(db, cutoffSetting) ?? 0) { try Settings.set(db, cutoffSetting, cutoff) }
    }

    /// The hold cut-off as an HLC stamp (0 when this node never pruned).
    static func cutoffStamp(_ db: Database) throws -> Int64 {
        HybridLogicalClock.stamp(ms: try Settings.int(db, cutoffSetting) ?? 0)
    }

    /// "30d", "12h", "90m", "45s", "2w", "1y" (365 days; a bare number is days).
    public static func parseDuration(_ text: String) throws -> Int64 {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800, "y": 31_536_000]
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        var digits = t
        var unit: Int64 = 86_400
        if let last = t.last, let u = units[last] {
            unit = u
            digits = String(t.dropLast())
        }
        guard let n = Int64(digits) else {
            throw DataJoinError(.usage, "'\(text)' is not a duration; write it like 30d, 12h, 90m, 45s, 2w or 1y")
        }
        guard n > 0, n < Int64.max / unit / 1000 else {
            throw DataJoinError(.usage, "--keep takes a duration above 0 and below 290 million years, not '\(text)'")
        }
        return n * unit
    }
}
