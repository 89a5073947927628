import Foundation

/// Gaps of an origin's changes that have lasted: seqs missing here below one that arrived at
/// least the grace period ago (`partial_grace_seconds`, the time a copy in progress is given).
/// A gap that a bundle still on its way closes says nothing; one that stays is a lost or
/// misdirected bundle, whose changes this node lacks until someone re-sends them. `status`
/// listed it, and every `ingest` and `watch` exited 0 without a word (found from outside: a
/// node exported into a folder one peer never read).
enum LastingGaps {
    /// The origins whose holdings here have a gap that a bundle can still close: not this
    /// node's own, not a revoked node's (it sends nothing more that this node would take: found
    /// from outside, the warning came every run, its cure refused), and of each origin only its
    /// latest epoch here (an earlier one moved on, restored from a backup: what is missing of it
    /// was lost with its disk or comes back by its peers' relays; found from outside). This
    /// node's own old epochs' losses are told with the peer that holds them (`PeerRestore`).
    static func closable(_ db: Database, me: NodeIdentity) throws -> [Holdings.State] {
        let revoked = Set(
            try db.rows("SELECT node_id FROM ds_trusted_key WHERE revoked_at IS NOT NULL").compactMap { $0.string(0) })
        let states = try Holdings.all(db)
        // The epoch the origin itself last said it is in, where it sends here; else the one
        // heard from last (a relay of an old epoch's tail can come after the new one's changes).
        var latest: [String: String] = [:]
        for s in states { latest[s.origin] = max(latest[s.origin] ?? "", s.lastSeenAt ?? "") }
        var current: [String: String?] = [:]
        return try states.filter { s in
            guard s.maxSeq > s.contiguous, s.origin != me.nodeId, !revoked.contains(s.origin) else { return false }
            if current[s.origin] == nil { current[s.origin] = .some(try Receipts.currentEpoch(db, peer: s.origin)) }
            if let epoch = current[s.origin] ?? nil { return s.epoch == epoch }
            return (s.lastSeenAt ?? "") == latest[s.origin]
        }
    }

    /// One warning per origin whose first gap has lasted; an index lookup per origin with a gap.
    static func warnings(_ db: Database, me: NodeIdentity, graceSeconds: Double) throws -> [String] {
        let before = UTCText.iso8601(ms: Int64((Date().timeIntervalSince1970 - graceSeconds) * 1000))
        var out: [String] = []
        for s in try closable(db, me: me) {
            // The first change past the mark: the gap runs up to it, and it came when it was received.
            guard
                let next = try db.firstRow(
                    "SELECT seq, received_at FROM ds_change_inbox WHERE origin = ? AND origin_epoch = ? AND seq > ? ORDER BY seq LIMIT 1",
                    [.text(s.origin), .text(s.epoch), .integer(s.contiguous)]),
                let seq = next.int(0), seq > s.contiguous + 1, let received = next.string(1), received <= before
            else { continue }
            let range =
                seq - 1 == s.contiguous + 1 ? "change \(seq - 1) is" : "changes \(s.contiguous + 1)–\(seq - 1) are"
            out.append(
                "\(s.origin) (epoch \(s.epoch.prefix(8))): \(range) still missing here, and later ones arrived at \(received) "
                    + "(a bundle lost, or written where this node does not read); on \(s.origin), or on a node that relays it, run "
                    + "'datajoin export --db URL --to FOLDER --resend --peer \(me.nodeId)' (with --relay on a relay) and ingest what it writes here; "
                    + "'datajoin status' lists every gap (docs/delivery.md, 'Gaps')"
            )
        }
        return out
    }
}
