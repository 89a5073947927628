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
        let revoked = try revokedNodes(db)
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

    /// Gaps of an origin's epoch before its latest (it was restored and moved on), which a
    /// re-send by the origin cannot close: a change that reached only a peer (a laptop that read
    /// the origin's bundle directly) comes back only from that peer, and nothing named it (found
    /// from outside: the rows stayed apart for good, every command exited 0 and `check` was OK).
    static func leftEpochGaps(_ db: Database, me: NodeIdentity, closable: [Holdings.State]) throws -> [Holdings.State] {
        let closableKeys = Set(closable.map { $0.origin + "\u{0}" + $0.epoch })
        let revoked = try revokedNodes(db)
        return try Holdings.all(db).filter { s in
            s.maxSeq > s.contiguous && s.origin != me.nodeId && !revoked.contains(s.origin)
                && !closableKeys.contains(s.origin + "\u{0}" + s.epoch)
        }
    }

    static func revokedNodes(_ db: Database) throws -> Set<String> {
        Set(try db.rows("SELECT node_id FROM ds_trusted_key WHERE revoked_at IS NOT NULL").compactMap { $0.string(0) })
    }

    /// Peers (not the origin, not revoked) whose receipts hold the origin's changes past the mark
    /// here. A receipt above the highest seq seen here counts: a holder may have more than came
    /// here. One a peer sent for a fork (one past what it held, Holdings) may name a peer that
    /// lacks them too; the warning's fallback (a new snapshot of it) covers that.
    private static func holders(_ db: Database, _ s: Holdings.State, me: NodeIdentity, revoked: Set<String>) throws
        -> [String]
    {
        try db.rows(
            "SELECT peer FROM ds_peer_receipt WHERE origin = ? AND origin_epoch = ? AND seq > ? AND peer <> ? AND peer <> ? ORDER BY seq DESC, peer",
            [.text(s.origin), .text(s.epoch), .integer(s.contiguous), .text(s.origin), .text(me.nodeId)]
        ).compactMap { $0.string(0) }.filter { !revoked.contains($0) }
    }

    /// One warning per origin whose first gap has lasted; an index lookup per origin with a gap.
    static func warnings(_ db: Database, me: NodeIdentity, graceSeconds: Double) throws -> [String] {
        let before = UTCText.iso8601(ms: Int64((Date().timeIntervalSince1970 - graceSeconds) * 1000))
        var out: [String] = []
        let closable = try closable(db, me: me)
        let left = try leftEpochGaps(db, me: me, closable: closable)
        let revoked = left.isEmpty ? [] : try revokedNodes(db)
        for s in left {
            guard let (range, received) = try lasting(db, s, before: before),
                let holder = try holders(db, s, me: me, revoked: revoked).first
            else { continue }
            out.append(
                "\(s.origin) (epoch \(s.epoch.prefix(8)), which it has left): \(range) still missing here, and later ones arrived at \(received); "
                    + "\(holder)'s receipts say it holds them, and only a node that holds them can give them back: on \(holder) run "
                    + "'datajoin export --db URL --to FOLDER --relay --resend --peer \(me.nodeId)' and ingest what it writes here; "
                    + "if that writes none of them (\(holder) pruned them, or holds them from a snapshot), re-join this node from a new snapshot of \(holder) (docs/delivery.md, 'Gaps')"
            )
        }
        for s in closable {
            guard let (range, received) = try lasting(db, s, before: before) else { continue }
            out.append(
                "\(s.origin) (epoch \(s.epoch.prefix(8))): \(range) still missing here, and later ones arrived at \(received) "
                    + "(a bundle lost, or written where this node does not read); on \(s.origin), or on a node that relays it, run "
                    + "'datajoin export --db URL --to FOLDER --resend --peer \(me.nodeId)' (with --relay on a relay) and ingest what it writes here; "
                    + "'datajoin status' lists every gap (docs/delivery.md, 'Gaps')"
            )
        }
        return out
    }

    /// The first gap of an origin's epoch, when the change past it arrived before `before`.
    private static func lasting(_ db: Database, _ s: Holdings.State, before: String) throws -> (String, String)? {
        // The first change past the mark: the gap runs up to it, and it came when it was received.
        guard
            let next = try db.firstRow(
                "SELECT seq, received_at FROM ds_change_inbox WHERE origin = ? AND origin_epoch = ? AND seq > ? ORDER BY seq LIMIT 1",
                [.text(s.origin), .text(s.epoch), .integer(s.contiguous)]),
            let seq = next.int(0), seq > s.contiguous + 1, let received = next.string(1), received <= before
        else { return nil }
        let range = seq - 1 == s.contiguous + 1 ? "change \(seq - 1) is" : "changes \(s.contiguous + 1)–\(seq - 1) are"
        return (range, received)
    }
}
