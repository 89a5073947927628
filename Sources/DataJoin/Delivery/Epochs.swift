import Foundation

/// Epochs: a node restored from an older backup would hand out sequence numbers its peers already
/// hold. When a peer's receipt shows it holds more of this node's current epoch than this node
/// has issued, the node moves to a new epoch and sends all its outbox again under it
/// (docs/delivery.md).
enum Epochs {
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
                "\(peer) holds \(me.nodeId)#\(r.seq) of epoch \(me.epoch), but this node has issued only up to \(me.nextSeq - 1): restored from an older backup"
        )
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
