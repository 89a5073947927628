import Foundation

/// Receipts of a relay stream (docs/delivery.md, "Receipts of a relay stream"). A relaying node
/// (a hub) forwards its inbox in id order; each relay bundle says which ids it carries (a
/// `RelaySpan`), and a peer confirms the spans it holds instead of a mark for every origin. The
/// hub then keeps a few spans per peer, not one receipt per peer and origin (N² at N laptops),
/// and a laptop's bundle carries one receipt per relaying peer, not one per node of the fleet.
public enum RelayStream {
    /// Spans kept and sent per relayer: the lowest ones. Out-of-order delivery leaves a few
    /// apart until the missing bundle arrives; a dropped span only delays a confirmation.
    static let maxSpans = 64

    /// Sorted, with overlapping and adjacent spans joined.
    static func merged(_ spans: [RelaySpan]) -> [RelaySpan] {
        var out: [RelaySpan] = []
        for s in spans.sorted(by: { ($0.after, $0.last) < ($1.after, $1.last) }) {
            if let l = out.last, s.after <= l.last {
                out[out.count - 1].last = max(l.last, s.last)
            } else {
                out.append(s)
            }
        }
        return out
    }

    /// The parts of `0 < id <= top` that `spans` (merged) do not cover.
    static func gaps(_ spans: [RelaySpan], upTo top: Int64) -> [RelaySpan] {
        var out: [RelaySpan] = []
        var from: Int64 = 0
        for s in spans {
            if s.after >= top { break }
            if s.after > from { out.append(RelaySpan(after: from, last: s.after)) }
            from = max(from, s.last)
        }
        if from < top { out.append(RelaySpan(after: from, last: top)) }
        return out
    }

    private static func spans(_ db: Database, _ sql: SQL, _ params: [Value]) throws -> [RelaySpan] {
        try db.rows(sql, params).map { RelaySpan(after: $0.int(0) ?? 0, last: $0.int(1) ?? 0) }
    }

    // MARK: - Spans of relaying peers' streams that this node holds

    /// After a bundle carrying part of `relayer`'s stream loaded, in its transaction (only for a
    /// bundle of the relayer's current epoch: spans of another epoch number other rows).
    static func noteHeld(_ db: Database, relayer: String, epoch: String, _ span: RelaySpan) throws {
        try db.execute(
            "DELETE FROM ds_relay_held WHERE relayer = ? AND relayer_epoch <> ?", [.text(relayer), .text(epoch)])
        let key: [Value] = [.text(relayer), .text(epoch)]
        let known = try spans(
            db, "SELECT after_id, last_id FROM ds_relay_held WHERE relayer = ? AND relayer_epoch = ? ORDER BY after_id",
            key)
        let all = merged(known + [span])
        guard all != known else { return }
        try db.execute("DELETE FROM ds_relay_held WHERE relayer = ? AND relayer_epoch = ?", key)
        try db.insertMany(
            into: "ds_relay_held", columns: ["relayer", "relayer_epoch", "after_id", "last_id"],
            rows: all.map { key + [.integer($0.after), .integer($0.last)] }, onConflict: nil)
    }

    /// What this node's bundles confirm: per relayer, the lowest `maxSpans` spans it holds.
    static func heldReceipts(_ db: Database) throws -> [RelayReceipt] {
        var out: [RelayReceipt] = []
        var count: [String: Int] = [:]
        try db.query(
            "SELECT relayer, relayer_epoch, after_id, last_id FROM ds_relay_held ORDER BY relayer, relayer_epoch, after_id"
        ) { r in
            let relayer = r.string(0) ?? ""
            guard count[relayer, default: 0] < maxSpans else { return }
            count[relayer, default: 0] += 1
            out.append(
                RelayReceipt(
                    relayer: relayer, epoch: r.string(1) ?? "",
                    span: RelaySpan(after: r.int(2) ?? 0, last: r.int(3) ?? 0)))
        }
        return out
    }

    // MARK: - Peers' spans of this node's stream

    /// Adds what a peer's bundle confirms of this node's stream (its current epoch) to what the
    /// peer confirmed before: within the peer's epoch, receipts only go up.
    static func recordPeer(_ db: Database, peer: String, me: NodeIdentity, _ receipts: [RelayReceipt]) throws {
        let incoming = receipts.filter { $0.relayer == me.nodeId && $0.epoch == me.epoch }.map(\.span)
        guard !incoming.isEmpty else { return }
        let known = try peerSpans(db, peer: peer, epoch: me.epoch)
        let all = Array(merged(known + incoming).prefix(maxSpans))
        guard all != known else { return }
        let key: [Value] = [.text(peer), .text(me.epoch)]
        try db.execute("DELETE FROM ds_peer_relay_receipt WHERE peer = ? AND relayer_epoch = ?", key)
        let now = nowText()
        try db.insertMany(
            into: "ds_peer_relay_receipt", columns: ["peer", "relayer_epoch", "after_id", "last_id", "updated_at"],
            rows: all.map { key + [.integer($0.after), .integer($0.last), .text(now)] }, onConflict: nil)
    }

    static func peerSpans(_ db: Database, peer: String, epoch: String) throws -> [RelaySpan] {
        try spans(
            db,
            "SELECT after_id, last_id FROM ds_peer_relay_receipt WHERE peer = ? AND relayer_epoch = ? ORDER BY after_id",
            [.text(peer), .text(epoch)])
    }

    /// A peer restored from a backup holds less than it confirmed: its spans go with its receipts.
    static func forgetPeer(_ db: Database, peer: String) throws {
        try db.execute("DELETE FROM ds_peer_relay_receipt WHERE peer = ?", [.text(peer)])
    }

    // MARK: - Peers that came after a prune

    /// Set by the first `export --relay`: from then on this node relays its inbox.
    static let startedSetting = "relay_started"

    /// This node relays: it ran `export --relay` (a relay that found nothing counts).
    static func isRelaying(_ db: Database) throws -> Bool {
        try Settings.int(db, startedSetting) != nil || ProgramPointer.get(db, Program.relay) > 0
    }

    /// Every inbox id this node ever pruned is at or below it (set by `prune` on a relaying node).
    static let prunedThroughSetting = "relay_pruned_through"
    static func floorSetting(_ peer: String) -> String { "relay_floor:" + peer }

    /// A peer first heard from in an epoch (it is new, or was restored from a backup) confirmed
    /// nothing this node pruned before: it holds those changes only if it joined from a snapshot
    /// taken after that prune, whose span then reaches the floor (found from outside: a laptop
    /// that joined from an older snapshot lacked pruned changes and nothing said so).
    static func notePeerStart(_ db: Database, peer: String) throws {
        try Settings.set(db, floorSetting(peer), try Settings.int(db, prunedThroughSetting) ?? 0)
    }

    /// `prune --no-relay` removed applied rows these peers never got from their origin: this
    /// node said it never forwards. Kept apart until it relays after all (`startRelaying`).
    static func unrelayedSetting(_ peer: String) -> String { "no_relay_pruned:" + peer }

    static func noteUnrelayedPrune(_ db: Database, peers: Set<String>, through: Int64) throws {
        for p in peers { try Settings.raise(db, unrelayedSetting(p), to: through) }
    }

    /// The first `export --relay`. After a `prune --no-relay` the relay stream starts without
    /// rows that some peers never got: those peers are named as lacking them until they re-join
    /// from a snapshot, as a peer that came after a prune is (a hub that pruned with --no-relay
    /// and then relayed said nothing, and its laptops lacked those changes for good).
    static func startRelaying(_ db: Database) throws {
        guard try Settings.int(db, startedSetting) == nil else { return }
        try db.retryingWrite { _ in
            try Settings.set(db, startedSetting, 1)
            let prefix = unrelayedSetting("")
            for name in try Settings.names(db, prefix: prefix) {
                let through = try Settings.int(db, name) ?? 0
                try Settings.raise(db, floorSetting(String(name.dropFirst(prefix.count))), to: through)
                try Settings.raise(db, prunedThroughSetting, to: through)
                try db.execute("DELETE FROM ds_setting WHERE name = ?", [.text(name)])
            }
        }
    }

    /// The highest floor among lagging peers: relay bundles say they carry only ids above it, so
    /// that no lagging peer is told it holds what was pruned below.
    static func claimFloor(_ db: Database, me: NodeIdentity, peers: [String]? = nil) throws -> Int64 {
        try lagging(db, me: me).filter { peers?.contains($0.peer) ?? true }.map(\.floor).max() ?? 0
    }

    /// Peers that may lack changes this node pruned before it heard from them: their spans do
    /// not hold every id up to their floor. Each with its floor.
    static func lagging(_ db: Database, me: NodeIdentity) throws -> [(peer: String, floor: Int64)] {
        var out: [(String, Int64)] = []
        for p in try Receipts.peers(db, me: me) {
            let floor = try Settings.int(db, floorSetting(p)) ?? 0
            guard floor > 0 else { continue }
            if try !peerSpans(db, peer: p, epoch: me.epoch).contains(where: { $0.after == 0 && $0.last >= floor }) {
                out.append((p, floor))
            }
        }
        return out
    }

    /// What `prune` and `export --relay --resend` say about them.
    public static func laggingWarnings(_ db: Database) throws -> [String] {
        let me = try NodeIdentity.load(db)
        return try lagging(db, me: me).map {
            "\($0.peer) may lack changes this node pruned up to inbox id \($0.floor) (it was first heard from, or restored, "
                + "after that prune, or 'prune --no-relay' removed them before this node relayed), and no snapshot it joined "
                + "from holds them: re-join it from a new snapshot of this node (docs/snapshot.md)"
        }
    }

    /// The span a snapshot of this node carries: every inbox id up to the first row its
    /// per-origin marks (the snapshot's receipts) do not cover. A node that joins from it holds
    /// the stream up to there; nil when this node holds nothing relayed.
    static func snapshotSpan(_ db: Database) throws -> RelaySpan? {
        let notSnapshot: SQL = "i.origin_epoch NOT LIKE \(literal: BundleFormat.snapshotEpochPrefix + "%")"
        let beyond = try db.scalar(
            """
            SELECT min(i.id) FROM ds_change_inbox AS i LEFT JOIN ds_origin_state AS s
              ON s.origin = i.origin AND s.origin_epoch = i.origin_epoch
            WHERE \(notSnapshot) AND (s.contiguous IS NULL OR i.seq > s.contiguous)
            """
        ).asInt64
        // Past the last row: also the ids a prune removed (a snapshot of a pruned inbox held no
        // span, and a node re-joined from it stayed named as lacking them; found from outside).
        let top =
            try beyond.map { $0 - 1 }
            ?? max(
                db.scalar("SELECT max(i.id) FROM ds_change_inbox AS i WHERE \(notSnapshot)").asInt64 ?? 0,
                Settings.int(db, Pruner.inboxPrunedThroughSetting) ?? 0)
        return top > 0 ? RelaySpan(after: 0, last: top) : nil
    }
}

/// What peers hold of this node's relay stream and its origins' changes, for prune and resend: a
/// peer holds an origin's changes up to its receipt for that origin, or, when it confirms spans
/// of the stream, up to the first of the origin's inbox rows its spans leave out.
struct RelayCoverage {
    let db: Database
    let me: NodeIdentity
    private var spans: [String: [RelaySpan]] = [:]
    /// Per distinct set of spans: the lowest seq of each origin's rows they leave out.
    private var firstLeftOut: [[RelaySpan]: [String: Int64]] = [:]
    private var contiguous: [String: Int64] = [:]

    init(db: Database, me: NodeIdentity) {
        self.db = db
        self.me = me
    }

    mutating func peerSpans(_ peer: String) throws -> [RelaySpan] {
        if let s = spans[peer] { return s }
        let s = try RelayStream.peerSpans(db, peer: peer, epoch: me.epoch)
        spans[peer] = s
        return s
    }

    /// Every inbox id `first...last` is in one of the peer's spans.
    mutating func covers(_ peer: String, first: Int64, last: Int64) throws -> Bool {
        try peerSpans(peer).contains { $0.after < first && last <= $0.last }
    }

    /// The highest seq of origin/epoch the peer holds, as far as this node can tell.
    mutating func confirmed(_ peer: String, origin: String, epoch: String) throws -> Int64 {
        let receipt = try Receipts.confirmed(db, peer: peer, origin: origin, epoch: epoch)
        let s = try peerSpans(peer)
        guard !s.isEmpty else { return receipt }
        let k = origin + "\u{0}" + epoch
        if contiguous[k] == nil { contiguous[k] = try Holdings.state(db, origin: origin, epoch: epoch).contiguous }
        let held = contiguous[k] ?? 0
        let derived = try leftOut(s)[k].map { min($0 - 1, held) } ?? held
        return max(receipt, derived)
    }

    /// One pass over the inbox per distinct set of spans (peers in step share one).
    private mutating func leftOut(_ s: [RelaySpan]) throws -> [String: Int64] {
        if let m = firstLeftOut[s] { return m }
        var covered: [SQL] = []
        var params: [Value] = []
        for span in s {
            covered.append("(id > ? AND id <= ?)")
            params += [.integer(span.after), .integer(span.last)]
        }
        var m: [String: Int64] = [:]
        try db.query(
            """
            SELECT origin, origin_epoch, min(seq) FROM ds_change_inbox
            WHERE \(Exporter.notSnapshot)
              AND NOT (\(covered.joined(separator: " OR "))) GROUP BY origin, origin_epoch
            """, params
        ) { r in
            m[(r.string(0) ?? "") + "\u{0}" + (r.string(1) ?? "")] = r.int(2) ?? 0
        }
        firstLeftOut[s] = m
        return m
    }
}
