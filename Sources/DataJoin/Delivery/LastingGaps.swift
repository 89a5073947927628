import Foundation

/// Gaps of an origin's changes that outlast a run: seqs missing here below one that had already
/// arrived before the run began. A gap that a bundle in flight closes a run later says nothing;
/// one that stays is a lost or misdirected bundle, whose changes this node lacks until someone
/// re-sends them. `status` listed it, and every `ingest` and `watch` exited 0 without a word
/// (found from outside: a node exported into a folder one peer never read).
struct LastingGaps {
    /// Per origin and epoch, the highest seq seen when the run began, where a gap was open.
    private let seenBefore: [String: Int64]

    init(_ db: Database) throws {
        var seen: [String: Int64] = [:]
        for s in try Holdings.all(db) where s.maxSeq > s.contiguous { seen[s.origin + "\u{0}" + s.epoch] = s.maxSeq }
        seenBefore = seen
    }

    /// One warning per origin whose gap below what it had seen before the run is still open.
    func stillMissing(_ db: Database, me: NodeIdentity) throws -> [String] {
        guard !seenBefore.isEmpty else { return [] }
        var out: [String] = []
        for s in try Holdings.all(db) where s.maxSeq > s.contiguous {
            guard !(s.origin == me.nodeId && s.epoch == me.epoch),
                let before = seenBefore[s.origin + "\u{0}" + s.epoch], before > s.contiguous + 1
            else { continue }
            let gaps = try Holdings.gaps(db, s, limit: 3, within: (s.contiguous + 1)...(before - 1))
            guard !gaps.ranges.isEmpty else { continue }
            let ranges =
                gaps.ranges.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)–\($0.upperBound)" }
                .joined(separator: ", ")
                + (gaps.total > gaps.ranges.count ? " and \(gaps.total - gaps.ranges.count) more" : "")
            out.append(
                "\(s.origin) (epoch \(s.epoch.prefix(8))): changes \(ranges) are still missing here while later ones arrived "
                    + "(a bundle lost, or written where this node does not read); on \(s.origin), or on a node that relays it, run "
                    + "'datajoin export --resend --peer \(me.nodeId)' ('export --relay --resend --peer \(me.nodeId)' on a relay) and ingest what it writes here"
            )
        }
        return out
    }
}
