import Crypto
import Foundation

/// What `prune --bundles FOLDER` did in one folder.
public struct FolderPruneReport: Sendable {
    public var folder: String
    public var removed = 0
    public var removedBytes: Int64 = 0
    /// This node's files that some peer has not confirmed yet.
    public var kept = 0
    /// Peers whose receipts keep files.
    public var waitingFor: [String] = []
}

/// Removes from a drop folder the bundle files this node wrote once every trusted peer has
/// confirmed, by its receipts, holding every change in them (docs/delivery.md, "Drop folders").
/// A folder then holds only what some peer may still need, so a rescan costs the files that
/// are new, not every file ever written. Other nodes' files, snapshots and anything that does
/// not prove itself this node's (by its name and its signature) are left alone.
public enum BundleFolderPruner {
    /// The changes one file holds, by what its name says; checked against its signature.
    enum Content: Equatable {
        /// This node's own changes of one of its epochs (epoch's first 8 characters).
        case own(epoch8: String, last: Int64)
        /// Relayed: inbox rows `first...last` of this node, in its epoch starting `epoch8`.
        case relay(first: Int64, last: Int64, epoch8: String)
        /// Re-sent changes of another origin.
        case resent(origin: String, epoch8: String, last: Int64)
    }

    /// `<me>_<first>-<last>_<epoch8>.djb`, `<me>~relay_<first>-<last>_<epoch8>.djb`,
    /// `<me>~<origin>_<first>-<last>_<epoch8>.djb`; nil for anything else (a snapshot, another
    /// node's file, a name this node never writes).
    static func content(ofFileNamed name: String, me: String) -> Content? {
        let ext = "." + BundleFormat.fileExtension
        guard name.hasSuffix(ext), !name.hasPrefix(".") else { return nil }
        let stem = name.dropLast(ext.count)
        let parts = stem.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count >= 3 else { return nil }
        let epoch8 = String(parts[parts.count - 1])
        let range = parts[parts.count - 2].split(separator: "-")
        guard range.count == 2, let first = Int64(range[0]), let last = Int64(range[1]), first >= 1, first <= last,
            !epoch8.isEmpty
        else { return nil }
        let what = parts[0..<(parts.count - 2)].joined(separator: "_")
        if what == me { return .own(epoch8: epoch8, last: last) }
        guard what.hasPrefix(me + "~") else { return nil }
        let origin = String(what.dropFirst(me.count + 1))
        switch origin {
        case "relay": return .relay(first: first, last: last, epoch8: epoch8)
        case "snapshot", "": return nil
        default: return .resent(origin: origin, epoch8: epoch8, last: last)
        }
    }

    /// Checked for every folder before anything is pruned.
    public static func checkFolder(_ folder: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else {
            throw DataJoinError(.noInput, "\(folder): no such folder (--bundles takes a folder this node exports into)")
        }
    }

    public static func run(_ db: Database, folder: String) throws -> FolderPruneReport {
        try checkFolder(folder)
        let me = try NodeIdentity.load(db)
        let peers = try Receipts.peers(db, me: me)
        let key = try Curve25519.Signing.PublicKey(rawRepresentation: me.publicKey)
        var report = FolderPruneReport(folder: folder)
        var waiting = Set<String>()
        for name in try FileManager.default.contentsOfDirectory(atPath: folder).sorted() {
            guard let content = content(ofFileNamed: name, me: me.nodeId) else { continue }
            let path = (folder as NSString).appendingPathComponent(name)
            guard let a = try? FileManager.default.attributesOfItem(atPath: path),
                a[.type] as? FileAttributeType == .typeRegular
            else { continue }
            let missing = try unconfirmed(db, content, peers: peers, me: me)
            guard missing.isEmpty else {
                report.kept += 1
                waiting.formUnion(missing)
                continue
            }
            // Only a file this node signed: a file of the same name from anywhere else is not ours
            // to remove.
            guard signedBy(key, node: me.nodeId, path: path) else { continue }
            let size = (a[.size] as? NSNumber)?.int64Value ?? 0
            guard unlink(path) == 0 else {
                throw DataJoinError.io("cannot remove \(path): \(String(cString: strerror(errno)))")
            }
            report.removed += 1
            report.removedBytes += size
        }
        report.waitingFor = waiting.sorted()
        return report
    }

    /// The peers that have not confirmed every change of the file (all of them when this node
    /// has no peer: nobody has confirmed anything).
    static func unconfirmed(_ db: Database, _ content: Content, peers: [String], me: NodeIdentity) throws -> [String] {
        if peers.isEmpty { return ["(no trusted peer yet)"] }
        switch content {
        case .own(let epoch8, let last):
            return try peers.filter { try !confirmed(db, peer: $0, origin: me.nodeId, epoch8: epoch8, upTo: last) }
        case .resent(let origin, let epoch8, let last):
            return try peers.filter {
                try $0 != origin && !confirmed(db, peer: $0, origin: origin, epoch8: epoch8, upTo: last)
            }
        case .relay(let first, let last, let epoch8):
            // Inbox ids of another epoch of this node (a restored backup numbers them again), or
            // a re-sent file of a node named "relay": not known here, kept.
            guard me.epoch.hasPrefix(epoch8) else { return peers }
            // What the file holds, as the inbox still knows it; rows pruned from a relaying
            // node's inbox were confirmed by every peer already (Pruner).
            let held = try db.rows(
                """
                SELECT origin, origin_epoch, max(seq) FROM ds_change_inbox WHERE id >= ? AND id <= ?
                AND origin_epoch NOT LIKE \(literal: BundleFormat.snapshotEpochPrefix + "%") GROUP BY origin, origin_epoch
                """, [.integer(first), .integer(last)])
            var out = Set<String>()
            for r in held {
                let origin = r.string(0) ?? "", epoch = r.string(1) ?? "", seq = r.int(2) ?? Int64.max
                for p in peers where p != origin && !out.contains(p) {
                    if try Receipts.confirmed(db, peer: p, origin: origin, epoch: epoch) < seq { out.insert(p) }
                }
            }
            return out.sorted()
        }
    }

    /// Every receipt the peer holds for an epoch of `origin` starting with `epoch8` reaches `seq`
    /// (none: not confirmed).
    static func confirmed(_ db: Database, peer: String, origin: String, epoch8: String, upTo seq: Int64) throws -> Bool
    {
        let seqs = try db.rows(
            "SELECT origin_epoch, seq FROM ds_peer_receipt WHERE peer = ? AND origin = ?", [.text(peer), .text(origin)]
        ).filter { ($0.string(0) ?? "").hasPrefix(epoch8) }.map { $0.int(1) ?? 0 }
        return !seqs.isEmpty && seqs.allSatisfy { $0 >= seq }
    }

    /// The file's signature (its sender's, over every byte) is this node's.
    static func signedBy(_ key: Curve25519.Signing.PublicKey, node: String, path: String) -> Bool {
        do {
            if EncryptedFormat.isEncrypted(path: path) {
                let f = try EncryptedBundleFile(path: path)
                try f.checkSeal()
                guard f.header.sender == node else { return false }
                try f.verify(with: key)
            } else {
                let seal = try BundleSeal(path: path)
                guard seal.sender == node else { return false }
                try seal.verify(with: key)
            }
            return true
        } catch {
            return false
        }
    }
}
