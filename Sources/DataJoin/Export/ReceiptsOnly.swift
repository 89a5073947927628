import Crypto
import Foundation

/// A bundle of no changes that carries only what this node holds. Without it a node that never
/// edits never confirms anything (its receipts travel only inside bundles of changes), and its
/// peers keep every file and outbox row for it (docs/delivery.md, "Receipts-only bundles").
enum ReceiptsOnly {
    /// `<me>~~receipts_000000000001-000000000001_<epoch8>.djb`: `~` is in no node's name, so
    /// this is never the name of another kind of file. One name per epoch: a new one replaces
    /// the last (its receipts are at least as high), so a folder holds one per node.
    static func fileName(_ ctx: Exporter.Context) -> String {
        Exporter.relayName(ctx, "~receipts", first: 1, last: 1, epoch: ctx.me.epoch)
    }

    /// After an export for every trusted peer: when it wrote no bundle, and what this node holds
    /// changed since the last bundle it wrote, one receipts-only bundle.
    static func afterExport(_ ctx: Exporter.Context, _ options: ExportOptions, written: [ExportedBundle]) throws
        -> ExportedBundle?
    {
        // A bundle for some peers only does not tell the others.
        guard options.peer == nil, options.recipients.isEmpty else { return nil }
        let db = ctx.db
        let digest = digest(ctx)
        let now = Int64(Date().timeIntervalSince1970)
        let record = { try db.retryingWrite { _ in try Settings.set(db, sentSetting, text: "\(digest) \(now)") } }
        if !written.isEmpty {
            try record()
            return nil
        }
        let sent = try Settings.text(db, sentSetting)?.split(separator: " ").map(String.init) ?? []
        let sentAt = sent.count > 1 ? Int64(sent[1]) ?? 0 : 0
        // Unchanged, it is written again by a re-send (the last one may be lost) and once a day:
        // a node restored from a backup holds the record of a bundle it may never have written,
        // and a peer learns of the restore only from its receipts (PeerRestore).
        guard options.resend || sent.first != digest || now - sentAt >= refreshSeconds || now < sentAt,
            ctx.receipts.contains(where: { $0.seq > 0 && !isOwn($0, ctx) }) || !ctx.relayReceipts.isEmpty,
            try !Receipts.peers(db, me: ctx.me).isEmpty
        else { return nil }
        var bundle = try Exporter.write(ctx, name: fileName(ctx), origins: [], first: 0, last: 0) { _ in }
        bundle.receiptsOnly = true
        try db.retryingWrite { _ in
            try Settings.set(db, sentSetting, text: "\(digest) \(now)")
            try Settings.set(db, writtenSetting, now)
        }
        return bundle
    }

    /// When the last receipts-only bundle was written (Unix seconds), for `status`: a node that
    /// never edits has no other export to show.
    static let writtenSetting = "receipts_only_written_at"

    static func lastWritten(_ db: Database) throws -> Int64? { try Settings.int(db, writtenSetting) }

    /// What the last bundle told its readers (`digest`) and when (Unix seconds). One for the node, not per
    /// folder: like its changes, a node's receipts go out once, to whoever reads its bundles.
    static let sentSetting = "receipts_sent"
    static let refreshSeconds: Int64 = 86_400

    /// Its own mark moves with changes it stamped; those travel in bundles of their own (one
    /// held at export moved it, and wrote receipts that said nothing new).
    static func isOwn(_ r: Receipt, _ ctx: Exporter.Context) -> Bool {
        r.origin == ctx.me.nodeId && r.epoch == ctx.me.epoch
    }

    /// What a reader learns from this node's receipts of what it took in, and who reads them.
    static func digest(_ ctx: Exporter.Context) -> String {
        var lines = [ctx.me.epoch, ctx.recipients.map(\.node).sorted().joined(separator: ",")]
        lines += ctx.receipts.filter { !isOwn($0, ctx) }.map { "r \($0.origin) \($0.epoch) \($0.seq)" }.sorted()
        lines += ctx.relayReceipts.map { "s \($0.relayer) \($0.epoch) \($0.span.after) \($0.span.last)" }.sorted()
        return SHA256.hash(data: Data(lines.joined(separator: "\n").utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
