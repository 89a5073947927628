import Crypto
import Foundation

/// What `prune --bundles FOLDER` did in one folder.
public struct FolderPruneReport: Sendable {
    public var folder: String
    public var removed = 0
    public var removedBytes: Int64 = 0
    /// This node's files that some peer has not confirmed yet.
    public var kept = 0
    /// Files named as this node's that it did not sign, or that do not hold what their name
    /// says: left alone.
    public var notOurs = 0
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
        case own(epoch8: String, first: Int64, last: Int64)
        /// Relayed: inbox rows `first...last` of this node, in its epoch starting `epoch8`.
        case relay(first: Int64, last: Int64, epoch8: String)
        /// Re-sent changes of another origin.
        case resent(origin: String, epoch8: String, first: Int64, last: Int64)
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
        if what == me { return .own(epoch8: epoch8, first: first, last: last) }
        guard what.hasPrefix(me + "~") else { return nil }
        let origin = String(what.dropFirst(me.count + 1))
        switch origin {
        case "relay": return .relay(first: first, last: last, epoch8: epoch8)
        // A receipts-only bundle is replaced by the next one (ReceiptsOnly), never pruned.
        case "snapshot", "", "~receipts": return nil
        default: return .resent(origin: origin, epoch8: epoch8, first: first, last: last)
        }
    }

    /// Checked for every folder before anything is pruned.
    public static func checkFolder(_ folder: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir) else {
            throw DataJoinError(.noInput, "\(folder): no such folder (--bundles takes a folder this node exports into)")
        }
        guard isDir.boolValue else {
            throw DataJoinError(.noInput, "\(folder): not a folder (--bundles takes a folder this node exports into)")
        }
        guard access(folder, W_OK | X_OK) == 0 else {
            throw DataJoinError(
                .permission, "\(folder): files cannot be removed from it (\(String(cString: strerror(errno))))")
        }
    }

    public static func run(_ db: Database, folder: String) throws -> FolderPruneReport {
        try checkFolder(folder)
        let me = try NodeIdentity.load(db)
        var check = Confirmation(db: db, peers: try Receipts.peers(db, me: me), me: me)
        let key = try Curve25519.Signing.PublicKey(rawRepresentation: me.publicKey)
        var report = FolderPruneReport(folder: folder)
        var waiting = Set<String>()
        for name in try FileManager.default.contentsOfDirectory(atPath: folder).sorted() {
            let path = (folder as NSString).appendingPathComponent(name)
            switch staleReceipts(name, path: path, key: key, me: me) {
            case true?:
                try remove(path, &report)
                continue
            case false?:
                // Named as this node's, not proven so: counted, never removed (found from outside).
                report.notOurs += 1
                continue
            case nil: break
            }
            guard let content = content(ofFileNamed: name, me: me.nodeId) else { continue }
            guard let a = try? FileManager.default.attributesOfItem(atPath: path),
                a[.type] as? FileAttributeType == .typeRegular
            else { continue }
            // By its name first (no read of the file), then by what it holds.
            var missing = try check.unconfirmed(content)
            if missing.isEmpty {
                switch own(path, key: key, me: me, named: content) {
                case nil:
                    // Not this node's, or not what its name says: not ours to remove.
                    report.notOurs += 1
                    continue
                case .sealed?:
                    // Encrypted to its recipients: what it holds is not readable here, its name
                    // (checked against this node's signature) is what there is.
                    break
                case .holds(let ranges, let span)?:
                    let spanned = try check.spanned(content, span: span)
                    missing =
                        ranges.isEmpty
                        ? try check.awaitingSpan(spanned) : try check.unconfirmed(ranges, except: spanned)
                }
            }
            guard missing.isEmpty else {
                report.kept += 1
                waiting.formUnion(missing)
                continue
            }
            try remove(path, &report)
        }
        report.waitingFor = waiting.sorted()
        return report
    }

    private static func remove(_ path: String, _ report: inout FolderPruneReport) throws {
        let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
        guard unlink(path) == 0 else {
            let reason = String(cString: strerror(errno))
            throw DataJoinError(
                errno == EACCES || errno == EPERM ? .permission : .io,
                "cannot remove \(path): \(reason) (\(report.removed) file(s) removed before it)")
        }
        report.removed += 1
        report.removedBytes += size
    }

    /// This node's receipts-only file of an epoch it has left (it was restored from a backup):
    /// the current epoch's file replaces itself, but one of an old epoch stayed for good (found
    /// from outside). What it said is below what the node says now; signed by this node, and
    /// holding no change, it goes (true). False: named so, not proven this node's. Nil: another
    /// name, the current epoch's, or not a file.
    static func staleReceipts(_ name: String, path: String, key: Curve25519.Signing.PublicKey, me: NodeIdentity)
        -> Bool?
    {
        let prefix = me.nodeId + "~~receipts_000000000001-000000000001_", ext = "." + BundleFormat.fileExtension
        guard name.hasPrefix(prefix), name.hasSuffix(ext) else { return nil }
        let epoch8 = String(name.dropFirst(prefix.count).dropLast(ext.count))
        guard !epoch8.isEmpty, !me.epoch.hasPrefix(epoch8),
            (try? FileManager.default.attributesOfItem(atPath: path))?[.type] as? FileAttributeType == .typeRegular
        else { return nil }
        switch try? signedHere(path, key: key, me: me) {
        // Unreadable, forged, or another node's: named so, not proven this node's.
        case .sealed(let senderEpoch)?: return senderEpoch.hasPrefix(epoch8)
        case .plain(let header)?:
            return header.kind == "changes" && header.origins.isEmpty && header.senderEpoch.hasPrefix(epoch8)
        case nil: return false
        }
    }

    /// A file this node signed, as far as can be read here: its sender's epoch when it is
    /// encrypted, its header when plain. Nil when another node sent it; throws when it is not
    /// a bundle or its signature fails.
    enum SignedFile {
        case sealed(senderEpoch: String)
        case plain(BundleHeader)
    }

    static func signedHere(_ path: String, key: Curve25519.Signing.PublicKey, me: NodeIdentity) throws -> SignedFile? {
        if EncryptedFormat.isEncrypted(path: path) {
            let f = try EncryptedBundleFile(path: path)
            try f.checkSeal()
            guard f.header.sender == me.nodeId else { return nil }
            try f.verify(with: key)
            return .sealed(senderEpoch: f.header.senderEpoch)
        }
        let seal = try BundleSeal(path: path)
        guard seal.sender == me.nodeId else { return nil }
        try seal.verify(with: key)
        return .plain(
            try BundleReader(gzip: try GzipReader(path: path, maxOutput: BundleFormat.maxExpandedBytes), path: path)
                .header)
    }

    enum OwnFile: Equatable {
        /// A plain bundle: the origin ranges its signed header names, and the span of this
        /// node's relay stream it carries (relay files of versions with spans).
        case holds([OriginRange], RelaySpan?)
        /// Encrypted: signed by this node, content not readable here.
        case sealed
    }

    /// The file, if this node signed it and (when plain) it holds what its name says; nil
    /// otherwise.
    static func own(_ path: String, key: Curve25519.Signing.PublicKey, me: NodeIdentity, named: Content) -> OwnFile? {
        do {
            let header: BundleHeader
            switch try signedHere(path, key: key, me: me) {
            case nil: return nil
            case .sealed?: return .sealed
            case .plain(let h)?: header = h
            }
            guard header.kind != "snapshot" else { return nil }
            let ranges = header.origins
            switch named {
            case .own(let epoch8, let first, let last):
                guard ranges.count == 1, let r = ranges.first, r.origin == me.nodeId, r.epoch.hasPrefix(epoch8),
                    r.first == first, r.last == last
                else { return nil }
            case .resent(let origin, let epoch8, let first, let last):
                guard ranges.count == 1, let r = ranges.first, r.origin == origin, r.epoch.hasPrefix(epoch8),
                    r.first == first, r.last == last
                else { return nil }
            case .relay(let first, let last, _):
                // A relay file of this version says which ids it carries: the name's.
                if let span = header.relaySpan, !(span.after < first && span.last >= last) { return nil }
            }
            return .holds(ranges, header.relaySpan)
        } catch {
            return nil
        }
    }

    /// Which peers have not confirmed changes. A peer needs every change but its own of its
    /// current epoch: changes of an earlier epoch of its own are what it lost when it was
    /// restored from a backup, and a re-sent file of them is exactly what it needs (found from
    /// outside: the re-send for a restored laptop was removed before it read it).
    struct Confirmation {
        let db: Database
        let peers: [String]
        let me: NodeIdentity
        private var epochs: [String: String?] = [:]
        /// Receipts per origin, or spans of this node's relay stream.
        private var coverage: RelayCoverage
        private var held: [Holdings.State]?

        init(db: Database, peers: [String], me: NodeIdentity) {
            self.db = db
            self.peers = peers
            self.me = me
            coverage = RelayCoverage(db: db, me: me)
        }

        /// The peer made these changes in the epoch it is in now.
        mutating func isOwn(_ peer: String, origin: String, epochPrefix: String) throws -> Bool {
            guard peer == origin else { return false }
            if epochs[peer] == nil { epochs[peer] = try Receipts.currentEpoch(db, peer: peer) }
            guard let current = epochs[peer]!, !epochPrefix.isEmpty else { return false }
            return current.hasPrefix(epochPrefix)
        }

        /// By the file's name; all peers when this node has none (nobody confirmed anything).
        mutating func unconfirmed(_ content: Content) throws -> [String] {
            if peers.isEmpty { return ["(no trusted peer yet)"] }
            switch content {
            case .own(let epoch8, _, let last):
                return try peers.filter {
                    try !BundleFolderPruner.confirmed(db, peer: $0, origin: me.nodeId, epoch8: epoch8, upTo: last)
                }
            case .resent(let origin, let epoch8, _, let last):
                // Written by versions before relay spans: one origin's changes by seq.
                if held == nil { held = try Holdings.all(db) }
                let epochs = held!.filter { $0.origin == origin && $0.epoch.hasPrefix(epoch8) }.map(\.epoch)
                var out: [String] = []
                for p in peers where try !isOwn(p, origin: origin, epochPrefix: epoch8) {
                    var confirmed = !epochs.isEmpty
                    for e in epochs where confirmed {
                        confirmed = try coverage.confirmed(p, origin: origin, epoch: e) >= last
                    }
                    if !confirmed { out.append(p) }
                }
                return out
            case .relay(let first, let last, let epoch8):
                // Inbox ids of another epoch of this node (a restored backup numbers them again),
                // or a re-sent file of a node named "relay": not known here, kept.
                guard me.epoch.hasPrefix(epoch8) else { return peers }
                // Peers whose spans hold every id of the file; the others by what it holds, as
                // the inbox still knows it (rows pruned from a relaying node's inbox were
                // confirmed by every peer that needs them already, Pruner).
                let spanned = try spanned(content)
                if spanned.count == peers.count { return [] }
                let held = try db.rows(
                    """
                    SELECT origin, origin_epoch, max(seq) FROM ds_change_inbox WHERE id >= ? AND id <= ?
                    AND \(Exporter.notSnapshot) GROUP BY origin, origin_epoch
                    """, [.integer(first), .integer(last)])
                if held.isEmpty { return try awaitingSpan(spanned) }
                return try unconfirmed(
                    held.map {
                        OriginRange(
                            origin: $0.string(0) ?? "", epoch: $0.string(1) ?? "", first: 1,
                            last: $0.int(2) ?? Int64.max,
                            count: 1)
                    }, except: spanned)
            }
        }

        /// The peers whose spans of this node's relay stream hold every id a relay file may
        /// carry: the span its signed header names, else the ids of its name.
        mutating func spanned(_ content: Content, span: RelaySpan? = nil) throws -> Set<String> {
            guard case .relay(let first, let last, let epoch8) = content, me.epoch.hasPrefix(epoch8) else { return [] }
            let ids = span.map { ($0.after + 1, $0.last) } ?? (first, last)
            var out = Set<String>()
            for p in peers where try coverage.covers(p, first: ids.0, last: ids.1) { out.insert(p) }
            return out
        }

        /// A relay file none of whose rows the inbox holds (a re-send of a span whose rows were
        /// pruned, or a relay whose rows every peer confirmed): it is kept for the peers that
        /// confirm spans and do not hold it yet, so their spans join over it. Peers that confirm
        /// no span (an older version) have no use for it.
        mutating func awaitingSpan(_ spanned: Set<String>) throws -> [String] {
            if peers.isEmpty { return ["(no trusted peer yet)"] }
            var out: [String] = []
            for p in peers where !spanned.contains(p) {
                if try !coverage.peerSpans(p).isEmpty { out.append(p) }
            }
            return out
        }

        /// By what a file holds: every origin's last change confirmed by every peer that needs it
        /// (`except`: peers that hold the whole file by their spans).
        mutating func unconfirmed(_ ranges: [OriginRange], except: Set<String> = []) throws -> [String] {
            if peers.isEmpty { return ["(no trusted peer yet)"] }
            var out = Set<String>()
            for r in ranges {
                for p in peers where !out.contains(p) && !except.contains(p) {
                    if try isOwn(p, origin: r.origin, epochPrefix: r.epoch) { continue }
                    if try coverage.confirmed(p, origin: r.origin, epoch: r.epoch) < r.last { out.insert(p) }
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
}
