import Foundation

/// Epochs: a node restored from an older backup would hand out sequence numbers its peers already
/// hold. When a peer's receipt shows it holds more of this node's current epoch than this node
/// has issued, the node moves to a new epoch and sends all its outbox again under it
/// (docs/delivery.md).
public enum Epochs {
    @discardableResult
    static func checkRestored(_ db: Database, receipts: [Receipt], from peer: String) throws -> String? {
        let me = try NodeIdentity.reload(db)
        guard let r = receipts.first(where: { $0.origin == me.nodeId && $0.epoch == me.epoch && $0.seq >= me.nextSeq })
        else { return nil }
        // Ids the lost changes may have taken are not handed out again (docs/keys.md).
        try KeyBlocks.skipLost(db, changes: r.seq - (me.nextSeq - 1))
        return try startNew(
            db,
            reason:
                "\(peer) confirms \(me.nodeId)#\(r.seq) of epoch \(me.epoch), but this node has issued only up to \(me.nextSeq - 1): restored from an older backup"
                + " (a peer that saw this node's numbering fork confirms one past what it holds)"
        )
    }

    /// Its own bundle files in the export folder that hold seqs of its current epoch beyond any
    /// it issued: restored from a backup, it would number new changes with those seqs, and its
    /// next bundle would take the name of one it wrote before and replace the only copy of a
    /// change no peer had read yet (found from outside: the change was lost for good, every
    /// command exited 0 and `check` said OK). It moves to a new epoch before it stamps.
    static func checkOwnFiles(_ db: Database, folder: String) throws -> String? {
        // The folder is listed outside the write transaction: a hub's may hold many files.
        let listed = try NodeIdentity.load(db)
        guard let found = ownFileTop(folder, listed), found.seq >= listed.nextSeq else { return nil }
        return try db.retryingWrite { _ -> String? in
            let me = try NodeIdentity.reload(db)
            guard me.epoch == listed.epoch, found.seq >= me.nextSeq else { return nil }
            try KeyBlocks.skipLost(db, changes: found.seq - (me.nextSeq - 1))
            return try startNew(
                db,
                reason:
                    "its own bundle \(found.file) in the export folder holds \(me.nodeId)#\(found.seq) of epoch \(me.epoch), but this node has issued only up to \(me.nextSeq - 1): restored from an older backup"
            )
        }
    }

    /// The highest seq its own bundle files of its current epoch in `folder` name, and the file.
    private static func ownFileTop(_ folder: String, _ me: NodeIdentity) -> (seq: Int64, file: String)? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return nil }
        let prefix = me.nodeId + "_"
        let suffix = "_" + me.epoch.prefix(8) + "." + BundleFormat.fileExtension
        let digits = { (s: Substring) in
            s.count >= 12 && s.unicodeScalars.allSatisfy { $0.value >= 48 && $0.value <= 57 }
        }
        var top: (seq: Int64, file: String)?
        for n in names where n.hasPrefix(prefix) && n.hasSuffix(suffix) && n.count > prefix.count + suffix.count {
            let seqs = n.dropFirst(prefix.count).dropLast(suffix.count).split(separator: "-")
            guard seqs.count == 2, seqs.allSatisfy(digits), let last = Int64(seqs[1]) else { continue }
            if last > (top?.seq ?? 0) { top = (last, n) }
        }
        return top
    }

    /// The own changes a restore lost, "<first> <last> <peer that holds the most>", per epoch
    /// left. They come back only from a node that relays them to this one: a laptop's hub does,
    /// but nothing relays a restored hub's own changes back to it (found from outside: a hub's
    /// edit made after its backup was lost on it for good, and every command exited 0).
    static func lostSetting(_ epoch: String) -> String { "own_lost:" + epoch }

    /// The last seq this node had issued when it left an epoch (`startNew`): a peer that holds
    /// more of that epoch holds changes the restore lost here.
    static func issuedSetting(_ epoch: String) -> String { "own_issued:" + epoch }

    /// Every bundle's receipts, after the restore checks: a peer holding more of an epoch this
    /// node left than it had issued holds own changes lost here. Any peer may be the one that
    /// tells, and the range grows with the peer that holds the most (found from outside: the
    /// first laptop heard from held fewer, and a hub that learned of its restore from its relay
    /// stream was never told of its own edits at all). A notice when the range is new or grew.
    static func noteLostOwn(
        _ db: Database, me: NodeIdentity, receipts: [Receipt], from peer: String, newest: Bool
    ) throws -> String? {
        // A late bundle says nothing its sender's newer ones did not (receipts only go up),
        // but a fork's receipt that a newer bundle replaced.
        guard newest else { return nil }
        // The holder names this node's new epoch: it has heard of it, and what it confirms of
        // the old one is what it holds (not a holder restored since, which confirms less).
        let heardOfNewEpoch = receipts.contains { $0.origin == me.nodeId && $0.epoch == me.epoch && $0.seq > 0 }
        var notices: [String] = []
        for r in receipts where r.origin == me.nodeId && r.epoch != me.epoch {
            guard let issued = try Settings.int(db, issuedSetting(r.epoch)) else { continue }
            let known = try lost(db, epoch: r.epoch)
            // The holder now confirms less than the range: it had told a fork (one past what it
            // held, Holdings.receipts) and, having heard of this node's new epoch, says what it
            // holds. The range ends there, so the cure ends the warning.
            if let known, known.holder == peer, r.seq > 0, r.seq < known.through, heardOfNewEpoch {
                try Settings.set(db, lostSetting(r.epoch), text: "\(min(known.from, r.seq)) \(r.seq) \(peer)")
                continue
            }
            guard r.seq > issued else { continue }
            // Held again already (a snapshot raised the marks): nothing is lost.
            guard r.seq > (known?.through ?? 0),
                try Holdings.state(db, origin: me.nodeId, epoch: r.epoch).contiguous < r.seq
            else { continue }
            try Settings.set(db, lostSetting(r.epoch), text: "\(issued + 1) \(r.seq) \(peer)")
            notices.append(try lostAdvice(db, me: me, epoch: r.epoch, from: issued + 1, through: r.seq, holder: peer))
        }
        return notices.isEmpty ? nil : notices.joined(separator: "; ")
    }

    private static func lost(_ db: Database, epoch: String) throws -> (from: Int64, through: Int64, holder: String)? {
        let parts = try Settings.text(db, lostSetting(epoch))?.split(separator: " ").map(String.init) ?? []
        guard parts.count == 3, let from = Int64(parts[0]), let through = Int64(parts[1]), from <= through else {
            return nil
        }
        return (from, through, parts[2])
    }

    private static func lostAdvice(
        _ db: Database, me: NodeIdentity, epoch: String, from: Int64, through: Int64, holder: String
    ) throws -> String {
        let seqs = from == through ? "#\(from)" : "#\(from)-\(through)"
        // A hub does not relay what a snapshot brings it: its other peers lacked the snapshot
        // node's later changes for good (found from outside).
        let relays = try RelayStream.isRelaying(db)
        return
            "this node's own changes \(seqs) of its epoch \(epoch.prefix(8)) are lost here and \(holder) holds them; they come back only from a node that relays them: "
            + "on \(holder) run 'datajoin export --db URL --to FOLDER --relay --resend --peer \(me.nodeId)' and ingest what it writes here "
            + "(docs/delivery.md, 'Restored backups and epochs'; those that reached only another node, \(holder)'s ingest names with it); if \(holder) pruned them, re-join from a snapshot of a node that holds them (docs/snapshot.md)"
            + (relays
                ? ", then, since this node relays, re-join each of its other peers from a new snapshot of this node"
                : "")
    }

    /// Said on every `export` and `prune` until the lost changes are held again (returned by a
    /// relay, or raised by a snapshot's receipts).
    public static func lostOwnWarnings(_ db: Database) throws -> [String] {
        let me = try NodeIdentity.load(db)
        let prefix = lostSetting("")
        var out: [String] = []
        for name in try Settings.names(db, prefix: prefix) {
            let epoch = String(name.dropFirst(prefix.count))
            guard let (from, through, holder) = try lost(db, epoch: epoch) else { continue }
            let s = try Holdings.state(db, origin: me.nodeId, epoch: epoch)
            let heldAgain =
                try s.contiguous >= through
                || (s.maxSeq >= through && Holdings.gaps(db, s, limit: 1, within: from...through).total == 0)
            if heldAgain { continue }
            out.append(
                "restored from a backup: "
                    + (try lostAdvice(db, me: me, epoch: epoch, from: from, through: through, holder: holder)))
        }
        return out
    }

    /// A peer that holds ids of this node's relay stream (its current epoch) beyond any it ever
    /// issued: this node was restored from a backup. Else a relaying node that made no change of
    /// its own since the backup is never told, numbers its inbox ids again, and its next relay
    /// files, covered by the peers' old spans, are pruned unread (found from outside).
    static func checkRestoredRelay(_ db: Database, _ receipts: [RelayReceipt], from peer: String) throws -> String? {
        let me = try NodeIdentity.reload(db)
        guard
            let top = receipts.filter({ $0.relayer == me.nodeId && $0.epoch == me.epoch }).map(\.span.last).max()
        else { return nil }
        let issued =
            try [
                db.scalar("SELECT max(id) FROM ds_change_inbox").asInt64 ?? 0,
                Settings.int(db, Pruner.inboxPrunedThroughSetting) ?? 0,
                ProgramPointer.get(db, Program.relay), ProgramPointer.get(db, Program.import),
            ].max() ?? 0
        guard top > issued else { return nil }
        return try startNew(
            db,
            reason:
                "\(peer) holds inbox id \(top) of this node's relay stream of epoch \(me.epoch), but this node has issued only up to \(issued): restored from an older backup"
        )
    }

    /// Starts a new epoch, inside the caller's transaction; everything in the outbox is
    /// exported again under it, and nothing of relay streams counts as held.
    static func startNew(_ db: Database, reason: String) throws -> String {
        let me = try NodeIdentity.reload(db)
        try Settings.set(db, issuedSetting(me.epoch), me.nextSeq - 1)
        let epoch = NodeIdentity.newEpoch()
        try db.execute("UPDATE ds_node SET epoch = ?", [.text(epoch)])
        try ProgramPointer.set(db, Program.export, 0, status: "new epoch \(epoch)")
        // The spans of relay streams it holds counted its own changes as held, but a restored
        // node lost some of them (an outside trial's case: a re-send read before the restore
        // was known). It starts again from nothing; a relaying peer's `--resend` fills it.
        try db.execute("DELETE FROM ds_relay_held")
        return reason
    }
}

/// `datajoin verify FILE --db URL`: what a bundle would do to this node's holdings.
