import Foundation

/// Which changes of each origin this node holds: a contiguous high-water mark (every seq up to it
/// is here) and the highest seq seen, per (origin, epoch), in ds_origin_state. Bundles carry the
/// high-water marks as receipts, gaps are what lies between, and `verify --db` compares a
/// bundle's ranges with them.
enum Holdings {
    struct State: Sendable {
        var origin: String
        var epoch: String
        var contiguous: Int64
        var maxSeq: Int64
        var lastBundle: String?
        var lastSeenAt: String?
        /// Seqs up to it are not in the inbox: pruned, or held by a snapshot's marks.
        var inboxFloor: Int64 = 0
    }

    static func all(_ db: Database) throws -> [State] {
        try db.rows(
            "SELECT origin, origin_epoch, contiguous, max_seq, last_bundle, last_seen_at FROM ds_origin_state ORDER BY origin, origin_epoch"
        ).map {
            State(
                origin: $0.string(0) ?? "", epoch: $0.string(1) ?? "", contiguous: $0.int(2) ?? 0,
                maxSeq: $0.int(3) ?? 0, lastBundle: $0.string(4), lastSeenAt: $0.string(5))
        }
    }

    static func state(_ db: Database, origin: String, epoch: String) throws -> State {
        try db.firstRow(
            "SELECT contiguous, max_seq, last_bundle, last_seen_at, inbox_floor FROM ds_origin_state WHERE origin = ? AND origin_epoch = ?",
            [.text(origin), .text(epoch)]
        ).map {
            State(
                origin: origin, epoch: epoch, contiguous: $0.int(0) ?? 0, maxSeq: $0.int(1) ?? 0,
                lastBundle: $0.string(2), lastSeenAt: $0.string(3), inboxFloor: $0.int(4) ?? 0)
        } ?? State(origin: origin, epoch: epoch, contiguous: 0, maxSeq: 0)
    }

    /// The receipts this node sends: its own high-water mark, and those of the origins a peer
    /// reads them for: itself (a peer that was restored learns it from them, and a peer's own
    /// lost changes come back by them) and a forked origin. Other origins' changes come through a
    /// relaying peer, and the spans of its stream confirm them (`RelayStream`): a laptop's bundle
    /// then names its hub, not every node of the fleet. `all`: every origin (a snapshot, whose
    /// receipts are the joiner's starting marks).
    static func receipts(_ db: Database, me: NodeIdentity, all everyOrigin: Bool = false) throws -> [Receipt] {
        var out = [Receipt(origin: me.nodeId, epoch: me.epoch, seq: me.nextSeq - 1)]
        // A forked origin is told it was restored: this node holds more than it issued (Forks).
        let forks = try Forks.all(db)
        let readers = everyOrigin ? [] : Set(try Receipts.peers(db, me: me) + [me.nodeId])
        let states = try all(db)
        for s in states where !(s.origin == me.nodeId && s.epoch == me.epoch) {
            // Told until it is heard from at another epoch whose changes are held here too; then
            // what this node holds, so that its warning of the own changes it lost ends once it
            // holds them again (the receipt one past them named one seq too many, and the
            // warning stayed after the cure). The other epoch's receipt goes with it: a reader
            // takes the fall for no restore of this node (`PeerRestore.movedOn`).
            var fork = forks[s.origin + ":" + s.epoch]
            if fork != nil,
                states.contains(where: { $0.origin == s.origin && $0.epoch != s.epoch && $0.contiguous > 0 }),
                try Receipts.currentEpoch(db, peer: s.origin).map({ $0 != s.epoch }) ?? false
            {
                fork = nil
            }
            // A fork is told even when none of the origin's changes from seq 1 on is held here:
            // a restored node whose peer held only its later changes was never told (found
            // from outside).
            guard s.contiguous > 0 || fork != nil else { continue }
            guard everyOrigin || readers.contains(s.origin) || fork != nil else { continue }
            out.append(
                Receipt(origin: s.origin, epoch: s.epoch, seq: fork.map { max($0, s.contiguous) + 1 } ?? s.contiguous))
        }
        return out
    }

    /// Moves an origin's marks forward after new changes were loaded.
    static func advance(_ db: Database, origin: String, epoch: String, bundle: String) throws {
        var s = try state(db, origin: origin, epoch: epoch)
        let key: [Value] = [.text(origin), .text(epoch)]
        s.maxSeq = max(
            s.maxSeq,
            try db.scalar("SELECT max(seq) FROM ds_change_inbox WHERE origin = ? AND origin_epoch = ?", key).asInt64
                ?? 0)
        // Walks the run that starts right after the mark, in index order, a page at a time: linear
        // in the new rows whatever the planner's statistics say (a self-join here once went
        // quadratic on a table that had just grown by 100,000 rows).
        let page = Tuning.current.holdingsPage
        walk: while true {
            var expected = s.contiguous + 1
            var n = 0
            try db.query(
                "SELECT seq FROM ds_change_inbox WHERE origin = ? AND origin_epoch = ? AND seq > ? ORDER BY seq LIMIT \(literal: page)",
                key + [.integer(s.contiguous)]
            ) { r in
                n += 1
                if r.int(0) == expected { expected += 1 }
            }
            let advanced = expected - 1 - s.contiguous
            s.contiguous = expected - 1
            if n < page || advanced < n { break walk }
        }
        try db.execute(
            "INSERT INTO ds_origin_state (origin, origin_epoch, contiguous, max_seq, last_bundle, last_seen_at) VALUES (?, ?, ?, ?, ?, ?) "
                + db.dialect.upsert(
                    key: ["origin", "origin_epoch"],
                    overwrite: ["contiguous", "max_seq", "last_bundle", "last_seen_at"]),
            key + [.integer(s.contiguous), .integer(s.maxSeq), .text(bundle), .text(nowText())])
    }

    /// Raises an origin's marks to `seq` (a snapshot holds everything up to it), then extends the
    /// contiguous mark over whatever already follows in the inbox.
    static func raiseMark(_ db: Database, origin: String, epoch: String, to seq: Int64, bundle: String) throws {
        let s = try state(db, origin: origin, epoch: epoch)
        guard seq > s.contiguous else { return }
        try db.execute(
            "INSERT INTO ds_origin_state (origin, origin_epoch, contiguous, max_seq, inbox_floor, last_bundle, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                + db.dialect.upsert(
                    key: ["origin", "origin_epoch"],
                    overwrite: ["contiguous", "max_seq", "inbox_floor", "last_bundle", "last_seen_at"]),
            [
                .text(origin), .text(epoch), .integer(seq), .integer(max(seq, s.maxSeq)), .integer(seq), .text(bundle),
                .text(nowText()),
            ])
        try advance(db, origin: origin, epoch: epoch, bundle: bundle)
    }

    /// The seq ranges of an origin missing between its high-water mark and the highest seq seen
    /// (those overlapping `within`, when given): the first `limit`, and how many there are in all.
    static func gaps(_ db: Database, _ s: State, limit: Int = 50, within: ClosedRange<Int64>? = nil) throws -> (
        ranges: [ClosedRange<Int64>], total: Int
    ) {
        guard s.maxSeq > s.contiguous else { return ([], 0) }
        var out: [ClosedRange<Int64>] = []
        var total = 0
        var expected = s.contiguous + 1
        try db.query(
            "SELECT seq FROM ds_change_inbox WHERE origin = ? AND origin_epoch = ? AND seq > ? ORDER BY seq",
            [.text(s.origin), .text(s.epoch), .integer(s.contiguous)]
        ) { r in
            let seq = r.int(0) ?? 0
            if seq > expected {
                let gap = expected...(seq - 1)
                if within.map(gap.overlaps) ?? true {
                    total += 1
                    if out.count < limit { out.append(gap) }
                }
            }
            expected = max(expected, seq + 1)
        }
        return (out, total)
    }

    /// What a bundle would do to this node's holdings (`datajoin verify FILE --db URL`).
    static func describe(_ db: Database, header: BundleHeader, me: NodeIdentity) throws -> [String] {
        // As `ingest` says it: a snapshot of this node's own was told "extends" (found from outside).
        if header.sender == me.nodeId { return [GapReport.writtenHereLine] }
        return try header.origins.map { o in
            if o.origin == me.nodeId && o.epoch == me.epoch {
                return "\(o.origin) \(o.first)-\(o.last): this node's own changes (skipped)"
            }
            let s = try state(db, origin: o.origin, epoch: o.epoch)
            if o.last <= s.contiguous {
                return
                    "\(o.origin) \(o.first)-\(o.last): already held (this node holds \(o.origin) up to \(s.contiguous))"
            }
            var notes: [String] = []
            let filled = try gaps(db, s, limit: 20, within: o.first...o.last)
            if filled.total > 0 {
                notes.append(
                    "fills the gap " + filled.ranges.map { "\($0.lowerBound)–\($0.upperBound)" }.joined(separator: ", ")
                        + (filled.total > filled.ranges.count ? " and \(filled.total - filled.ranges.count) more" : ""))
            }
            let knownEnd = max(s.contiguous, s.maxSeq)
            if o.first > s.contiguous + 1 && o.first > knownEnd + 1 {
                notes.append("leaves a gap: \(o.origin) \(knownEnd + 1)–\(o.first - 1) is missing before it")
            } else if o.last > knownEnd {
                notes.append("extends \(o.origin) to \(o.last)")
            }
            return "\(o.origin) \(o.first)-\(o.last): "
                + (notes.isEmpty ? "new changes" : notes.joined(separator: "; "))
        }
    }
}

public enum GapReport {
    public static func describe(_ db: Database, header: BundleHeader) throws -> [String] {
        try Holdings.describe(db, header: header, me: try NodeIdentity.load(db))
    }

    /// What `verify --db` says of a bundle this node wrote, sealed or not: `ingest` skips it.
    public static let writtenHereLine = "written by this node: ingest here skips it"

    /// This node's name, for `verify --db` to tell its own sealed bundles.
    public static func nodeName(_ db: Database) throws -> String { try NodeIdentity.load(db).nodeId }
}
