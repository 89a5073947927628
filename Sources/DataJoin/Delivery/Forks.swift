import Foundation

/// A node restored from a backup that exports before it hears from a peer numbers its new
/// changes with the seqs of the ones it lost: a peer holds those seqs already and would skip the
/// new changes as duplicates, and nothing would tell the node (found from outside). The peer
/// sees it, though: a change of the sender's own epoch at a seq it holds, with another stamp.
/// It records the fork and from then on tells the node, in its receipts, that it holds more of
/// that epoch than the node issued: the node's next ingest moves it to a new epoch, and it sends
/// everything again under it (docs/delivery.md, epochs).
enum Forks {
    private static let prefix = "fork:"

    /// Compares the sender's own changes with the inbox's rows at their seqs (rows not loaded
    /// yet, or skipped as held): one held with another stamp is a fork of `origin`'s numbering,
    /// recorded with the highest seq the sender's bundle names. True when one was.
    @discardableResult
    static func check(
        _ db: Database, origin: String, epoch: String, _ changes: [(seq: Int64, hlc: Int64)], bundleLast: Int64
    ) throws -> Bool {
        let stamps = Dictionary(changes.map { ($0.seq, $0.hlc) }, uniquingKeysWith: { a, _ in a })
        for part in stride(from: 0, to: changes.count, by: VersionStore.batch) {
            let seqs = changes[part..<min(part + VersionStore.batch, changes.count)].map { Value.integer($0.seq) }
            var forked = false
            try db.query(
                "SELECT seq, hlc FROM ds_change_inbox WHERE origin = ? AND origin_epoch = ? AND seq IN (\(SQL.placeholders(seqs.count)))",
                [.text(origin), .text(epoch)] + seqs
            ) { r in
                if let seq = r.int(0), let hlc = r.int(1), stamps[seq] != hlc { forked = true }
            }
            if forked {
                try record(db, origin: origin, epoch: epoch, last: bundleLast)
                return true
            }
        }
        return false
    }

    /// Keeps the highest seq a forked origin has named, so the receipt stays above it.
    static func record(_ db: Database, origin: String, epoch: String, last: Int64) throws {
        let name = prefix + origin + ":" + epoch
        let known = try Settings.int(db, name, range: 0...Int64(BundleFormat.maxSeq)) ?? 0
        if last > known { try Settings.set(db, name, last) }
    }

    /// (origin, epoch) → the highest seq named, for every fork seen.
    static func all(_ db: Database) throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for r in try db.rows("SELECT name, value FROM ds_setting WHERE name LIKE 'fork:%'") {
            guard let name = r.string(0), let v = r.string(1).flatMap({ Int64($0) }) else { continue }
            out[String(name.dropFirst(prefix.count))] = v
        }
        return out
    }
}
