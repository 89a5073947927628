import Foundation

/// A peer whose newer bundle confirms less than its earlier ones did, in the same epoch, lost
/// what it had taken in: its database was restored from a backup. Its epoch changes only when it
/// learns that peers hold more of its own changes than it issued, so a peer that made no change
/// since the backup went unnoticed, and what it had confirmed was pruned for it (found from
/// outside once receipts-only bundles let hubs prune for laptops that never edit). Its receipts
/// are replaced by the new ones, it counts as first heard from now (so `prune` and
/// `export --relay --resend` name it while it lacks what was pruned), and this node's next export
/// tells it what this node holds (a restored peer with changes of its own learns of its restore
/// from that).
public enum PeerRestore {
    /// The newest bundle time seen from a peer: an older bundle arriving late confirms less for
    /// that reason alone.
    static func newestSetting(_ peer: String) -> String { "peer_newest_bundle:" + peer }

    /// The highest seq of its own (epoch) a peer has sent here in its own bundles. Its own
    /// changes that reached this node through a relay or a snapshot may be newer than a bundle
    /// of its that arrives after them, so only what it sent here itself says what it had issued
    /// (found from outside: such a bundle took the peer for restored and moved it to a new epoch).
    static func sentOwnSetting(_ peer: String, epoch: String) -> String { "peer_sent_own:" + peer + ":" + epoch }

    /// Written after every bundle seen from its sender (or the first): its receipts are the
    /// sender's latest word.
    static func isNewest(_ db: Database, _ h: BundleHeader) throws -> Bool {
        let latest = try BundleTime.latestCredible(db)
        guard h.createdAt <= latest else { return false }
        guard let newest = try newest(db, h.sender, latest: latest) else { return true }
        return h.createdAt > newest
    }

    /// The newest time seen from the peer, unless it is past what is credible now (a clock far
    /// ahead once, or recorded by an older version): then none, and the next bundle sets it.
    private static func newest(_ db: Database, _ peer: String, latest: String) throws -> String? {
        guard let newest = try Settings.text(db, newestSetting(peer)), newest <= latest else { return nil }
        return newest
    }

    /// Before a bundle's receipts are recorded; a notice when its sender was restored.
    static func check(_ db: Database, _ h: BundleHeader, me: NodeIdentity) throws -> String? {
        guard h.sender != me.nodeId else { return nil }
        // Sent before this bundle: every bundle counted was written before it (below).
        let sentOwn = try noteSentOwn(db, h)
        let setting = newestSetting(h.sender)
        // A bundle stamped further ahead than the clock window says nothing of order: it is
        // not the newest, and its receipts count for no restore (found from outside).
        let latest = try BundleTime.latestCredible(db)
        if h.createdAt > latest { return nil }
        let newest = try newest(db, h.sender, latest: latest)
        if let newest, h.createdAt <= newest { return nil }
        try Settings.set(db, setting, text: h.createdAt)
        // A snapshot's receipts are recorded too: the sender's bundles written before it confirm
        // less for that reason alone (found from outside: a node that joined from a hub's
        // snapshot, then read the older relay files still in the folder, took the hub for
        // restored and moved it to a new epoch).
        guard h.kind == "changes" else { return nil }
        guard newest != nil, let current = try Receipts.currentEpoch(db, peer: h.sender) else { return nil }
        var lost: [String] = []
        var had: [String: Int64] = [:]
        try db.query("SELECT origin, origin_epoch, seq FROM ds_peer_receipt WHERE peer = ?", [.text(h.sender)]) { r in
            had[(r.string(0) ?? "") + "\u{0}" + (r.string(1) ?? "")] = r.int(2) ?? 0
        }
        if current != h.senderEpoch {
            // A new epoch replaces its receipts (Receipts.record) and names it where it lacks
            // what was pruned; said here when it confirms less of other origins than before
            // (in a full mesh nothing else told the others; found from outside).
            for r in h.receipts where r.origin != h.sender && !movedOn(r, h) {
                if let before = had[r.origin + "\u{0}" + r.epoch], r.seq < before {
                    lost.append("\(r.origin) up to \(r.seq), not \(before)")
                }
            }
            // A new epoch means it was restored: its own changes of the last one that it has not
            // taken back come back only from a node that holds them. A relay sends those it has
            // not relayed yet, a re-send the rest; nothing said so, and a hub kept them, and its
            // relay files, for good (found from outside).
            let heldOld = try Holdings.state(db, origin: h.sender, epoch: current).maxSeq
            let itHolds = h.receipts.first { $0.origin == h.sender && $0.epoch == current }?.seq ?? 0
            if heldOld > itHolds {
                lost.append("its own changes of its last epoch up to \(heldOld), which this node holds")
            }
            guard !lost.isEmpty else { return nil }
            try db.execute("DELETE FROM ds_setting WHERE name = ?", [.text(ReceiptsOnly.sentSetting)])
            return notice(h.sender, lost, relay: heldOld > itHolds)
        }
        for r in h.receipts {
            if r.origin == h.sender && r.epoch == h.senderEpoch {
                // Its own changes: it issued fewer than it sent here in bundles written before
                // this one. (Its own mark may fall by seqs it never sent: the cure for a held
                // change deletes them.)
                if r.seq < sentOwn { lost.append("its own changes up to \(r.seq), it sent \(sentOwn) here before") }
            } else if !movedOn(r, h), let before = had[r.origin + "\u{0}" + r.epoch], r.seq < before {
                lost.append("\(r.origin) up to \(r.seq), not \(before)")
            }
        }
        let mine = h.relayReceipts.filter { $0.relayer == me.nodeId && $0.epoch == me.epoch }.map(\.span)
        let known = try RelayStream.peerSpans(db, peer: h.sender, epoch: me.epoch)
        if let hole = lostSpan(known: known, incoming: mine, capped: mine.count >= RelayStream.maxSpans) {
            lost.append("this node's relay stream \(hole.after + 1)-\(hole.last)")
        }
        guard !lost.isEmpty else { return nil }
        try db.execute("DELETE FROM ds_peer_receipt WHERE peer = ?", [.text(h.sender)])
        try RelayStream.forgetPeer(db, peer: h.sender)
        try RelayStream.notePeerStart(db, peer: h.sender)
        // Its own new changes may take the seqs of those it lost, which this node holds and would
        // skip: told, as for a fork, that this node holds more than it issued, it moves to a new
        // epoch (a restored laptop's new edit was skipped for good; found from outside).
        let held = try Holdings.state(db, origin: h.sender, epoch: h.senderEpoch).maxSeq
        if held > 0 {
            let issued = h.receipts.first { $0.origin == h.sender && $0.epoch == h.senderEpoch }?.seq ?? 0
            try Forks.record(db, origin: h.sender, epoch: h.senderEpoch, last: max(held, issued))
        }
        // This node's next export tells it, even with nothing new.
        try db.execute("DELETE FROM ds_setting WHERE name = ?", [.text(ReceiptsOnly.sentSetting)])
        return notice(h.sender, lost)
    }

    /// Raises the highest own seq the sender has sent here with this bundle's; the value before.
    private static func noteSentOwn(_ db: Database, _ h: BundleHeader) throws -> Int64 {
        let name = sentOwnSetting(h.sender, epoch: h.senderEpoch)
        let had: Int64
        if let kept = try Settings.int(db, name, range: 0...Int64(BundleFormat.maxSeq)) {
            had = kept
        } else {
            // A peer heard from before this was kept: what its own bundles brought, once.
            had =
                try db.scalar(
                    """
                    SELECT max(i.seq) FROM ds_change_inbox i JOIN ds_bundle_seen b ON b.id = i.bundle_id
                    WHERE i.origin = ? AND i.origin_epoch = ? AND b.origin = ?
                    """, [.text(h.sender), .text(h.senderEpoch), .text(h.sender)]
                ).asInt64 ?? 0
            try Settings.set(db, name, had)
        }
        guard h.kind == "changes" else { return had }
        let sent = h.origins.filter { $0.origin == h.sender && $0.epoch == h.senderEpoch }.map(\.last).max() ?? 0
        if sent > had { try Settings.set(db, name, sent) }
        return had
    }

    /// The bundle also confirms another epoch of the receipt's origin: that origin moved on (it
    /// was restored), and a mark of its old epoch may fall for that reason alone. A peer that
    /// had told it of a fork confirms one seq past what it holds until then, and what it holds
    /// after (Holdings.receipts): every reader took that peer for restored (found from outside).
    static func movedOn(_ r: Receipt, _ h: BundleHeader) -> Bool {
        h.receipts.contains { $0.origin == r.origin && $0.epoch != r.epoch && $0.seq > 0 }
    }

    /// `relay`: it lost changes of its own, which only a relay of this node's inbox sends back
    /// (a laptop told to re-send to its restored hub sent its own changes only; found from
    /// outside).
    static func notice(_ peer: String, _ lost: [String], relay: Bool = false) -> String {
        "\(peer) confirms less than it did (\(lost.prefix(3).joined(separator: "; "))): its database was restored from a backup. "
            + (relay
                ? "Send it again what it lost with 'datajoin export --db URL --to FOLDER --relay --resend --peer \(peer)'"
                : "Send it again what it lost with 'datajoin export --db URL --to FOLDER --resend --peer \(peer)' (with --relay on a hub)")
            + "; if 'prune' names it, re-join it from a snapshot"
    }

    /// Part of what the peer held before (`known`) that its spans now leave out; above the
    /// highest span it sent, only when it sent all it holds (not the lowest `maxSpans`).
    static func lostSpan(known: [RelaySpan], incoming: [RelaySpan], capped: Bool) -> RelaySpan? {
        let now = RelayStream.merged(incoming)
        guard let top = known.map(\.last).max() else { return nil }
        let limit = capped ? min(top, now.last?.last ?? 0) : top
        for gap in RelayStream.gaps(now, upTo: limit) {
            for k in known {
                let after = max(gap.after, k.after), last = min(gap.last, k.last)
                if after < last { return RelaySpan(after: after, last: last) }
            }
        }
        return nil
    }

    /// Peers that confirm less of this node's changes than it pruned (every peer had confirmed
    /// them): restored from a backup since. A re-send cannot give them back; a snapshot can
    /// (found from outside: in a full mesh the advised `--resend` wrote nothing, and said nothing).
    public static func lackingPrunedWarnings(_ db: Database) throws -> [String] {
        let me = try NodeIdentity.load(db)
        let (epoch, through) = try Receipts.pruned(db)
        guard epoch == me.epoch, through > 0 else { return [] }
        var out: [String] = []
        for p in try Receipts.peers(db, me: me) where try Receipts.currentEpoch(db, peer: p) != nil {
            let c = try Receipts.confirmed(db, peer: p, origin: me.nodeId, epoch: me.epoch)
            guard c < through else { continue }
            // A hub does not relay what a snapshot brings it: its other peers lacked the
            // snapshot node's later changes for good (found from outside).
            let relays =
                try db.scalar("SELECT count(*) FROM ds_relay_held WHERE relayer = ?", [.text(p)]).asInt64 ?? 0 > 0
            out.append(
                "\(p) lacks this node's changes \(c + 1)-\(through), pruned here once every peer had confirmed them "
                    + "(it was restored from a backup since): a re-send cannot give them back; "
                    + "re-join it from a snapshot of a node that holds them (docs/snapshot.md)"
                    + (relays
                        ? "; \(p) relays: once it has ingested that snapshot, re-join each of its other peers from a new snapshot of \(p)"
                        : ""))
        }
        return out
    }

}
