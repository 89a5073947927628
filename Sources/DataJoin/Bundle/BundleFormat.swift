import Foundation

/// Constants and the header of change-bundle format v1 (docs/bundle-format.md).
public enum BundleFormat {
    public static let magic: [UInt8] = Array("DJBUNDLE".utf8)
    public static let major: UInt8 = 1
    public static let minor: UInt8 = 1
    public static let fileExtension = "djb"
    /// The most a bundle may expand to when decompressed, and the most one header may hold.
    public static let maxExpandedBytes = 4 << 30
    public static let maxHeaderBytes = 1 << 20
    /// The most one change record may hold (its key and values together), so that reading one
    /// change never takes more memory than the largest single value (issue 10).
    public static let maxChangeBytes = 64 << 20
    /// Table definitions of one bundle: at most this many columns in all, and this many bytes
    /// of names, so a file of 40,000 tables cannot take gigabytes.
    public static let maxDefinedColumns = 200_000
    /// The highest table index a bundle may define.
    public static let maxTableIndex = 100_000
    /// Sequence numbers, generations and receipts: at most 2^62, so no sum or `+ 1` on them
    /// can overflow (a node issuing a million changes a second needs 146,000 years to get there).
    public static let maxSeq = 1 << 62
    public static let maxDefinitionBytes = 8 << 20

    enum Record: UInt8 {
        case table = 0x54  // T
        case change = 0x43  // C
        case trailer = 0x5A  // Z
    }

    enum HeaderField: UInt64 {
        case sender = 1
        case senderEpoch = 2
        case createdAt = 3
        case kind = 4
        case origins = 5
        case changeCount = 6
        case receipts = 7
        case publicKey = 8
        /// Minor 1: optional, skipped by readers that do not know them.
        case relaySpan = 9
        case relayReceipts = 10
        /// A snapshot's sender's tombstone cut-off (ms): its rows lack the tombstones before it.
        case tombstonesPrunedBefore = 11
    }

    /// The epoch of a snapshot's records: their origin is the node of each row's version, and
    /// their seq only numbers them inside the snapshot (docs/snapshot.md).
    public static let snapshotEpochPrefix = "snap-"
    public static let kinds: Set<String> = ["changes", "snapshot"]

    /// `origin_first-last_epoch.djb`: origin and range visible, sorting in sequence order.
    public static func fileName(origin: String, epoch: String, first: Int64, last: Int64) -> String {
        let pad = { (n: Int64) in String(repeating: "0", count: max(0, 12 - String(n).count)) + String(n) }
        return "\(origin)_\(pad(first))-\(pad(last))_\(epoch.prefix(8)).\(fileExtension)"
    }
}

/// The range of one origin's changes inside a bundle.
public struct OriginRange: Equatable, Sendable {
    public var origin: String
    public var epoch: String
    public var first: Int64
    public var last: Int64
    public var count: Int64
}

/// A per-origin high-water mark: "I hold every change of origin/epoch up to seq".
public struct Receipt: Equatable, Sendable {
    public var origin: String
    public var epoch: String
    public var seq: Int64
}

/// A stretch of a relaying node's relay stream: its inbox ids `after < id <= last`, in one of
/// its epochs (docs/delivery.md, "Receipts of a relay stream").
public struct RelaySpan: Hashable, Sendable {
    public var after: Int64
    public var last: Int64

    public init(after: Int64, last: Int64) {
        self.after = after
        self.last = last
    }
}

/// "I hold every row of `relayer`'s relay stream (of its epoch `epoch`) in these spans."
public struct RelayReceipt: Equatable, Sendable {
    public var relayer: String
    public var epoch: String
    public var span: RelaySpan
}

public struct BundleHeader: Equatable, Sendable {
    public var sender: String
    public var senderEpoch: String
    public var createdAt: String
    public var kind: String = "changes"
    public var origins: [OriginRange]
    public var changeCount: Int64
    public var receipts: [Receipt] = []
    public var publicKey: [UInt8]
    /// The part of the sender's relay stream this bundle carries (a relay, a re-send of it, or a
    /// snapshot of a relaying node); nil for a node's own changes.
    public var relaySpan: RelaySpan? = nil
    /// The spans of relaying peers' streams the sender holds.
    public var relayReceipts: [RelayReceipt] = []
    /// A snapshot's: the sender pruned tombstones stamped before this (Unix ms), so its rows
    /// lack them and its joiner holds older changes as the sender does (docs/snapshot.md).
    public var tombstonesPrunedBeforeMs: Int64? = nil

    func encode() -> [UInt8] {
        var w = ByteWriter()
        func field(_ f: BundleFormat.HeaderField, _ body: (inout ByteWriter) -> Void) {
            var inner = ByteWriter()
            body(&inner)
            w.varint(f.rawValue)
            w.data(inner.bytes)
        }
        field(.sender) { $0.string(sender) }
        field(.senderEpoch) { $0.string(senderEpoch) }
        field(.createdAt) { $0.string(createdAt) }
        field(.kind) { $0.string(kind) }
        field(.origins) { w in
            w.varint(UInt64(origins.count))
            for o in origins {
                w.string(o.origin)
                w.string(o.epoch)
                w.varint(UInt64(o.first))
                w.varint(UInt64(o.last))
                w.varint(UInt64(o.count))
            }
        }
        field(.changeCount) { $0.varint(UInt64(changeCount)) }
        field(.receipts) { w in
            w.varint(UInt64(receipts.count))
            for r in receipts {
                w.string(r.origin)
                w.string(r.epoch)
                w.varint(UInt64(r.seq))
            }
        }
        field(.publicKey) { $0.data(publicKey) }
        if let s = relaySpan {
            field(.relaySpan) { w in
                w.varint(UInt64(s.after))
                w.varint(UInt64(s.last))
            }
        }
        if !relayReceipts.isEmpty {
            field(.relayReceipts) { w in
                w.varint(UInt64(relayReceipts.count))
                for r in relayReceipts {
                    w.string(r.relayer)
                    w.string(r.epoch)
                    w.varint(UInt64(r.span.after))
                    w.varint(UInt64(r.span.last))
                }
            }
        }
        if let ms = tombstonesPrunedBeforeMs, ms > 0 { field(.tombstonesPrunedBefore) { $0.varint(UInt64(ms)) } }
        return w.bytes
    }

    static func decode(_ bytes: [UInt8]) throws -> BundleHeader {
        var r = ByteReader(ArraySource(bytes))
        var h = BundleHeader(sender: "", senderEpoch: "", createdAt: "", origins: [], changeCount: -1, publicKey: [])
        var seen = Set<UInt64>()
        while try !r.atEnd() {
            let id = try r.varint()
            let body = try r.data()
            guard seen.insert(id).inserted else { throw DataJoinError.bundle("header field \(id) appears twice") }
            var f = ByteReader(ArraySource(body))
            switch BundleFormat.HeaderField(rawValue: id) {
            case .sender: h.sender = try f.string()
            case .senderEpoch: h.senderEpoch = try f.string()
            case .createdAt: h.createdAt = try f.string()
            case .kind: h.kind = try f.string()
            case .origins:
                let n = try f.int(100_000)
                for _ in 0..<n {
                    let o = OriginRange(
                        origin: try f.string(), epoch: try Self.epoch(try f.string()),
                        first: Int64(try f.int(BundleFormat.maxSeq, what: "an origin's first seq")),
                        last: Int64(try f.int(BundleFormat.maxSeq, what: "an origin's last seq")),
                        count: Int64(try f.int(BundleFormat.maxSeq, what: "an origin's change count")))
                    guard o.first >= 1, o.last >= o.first, o.count >= 1, o.count <= o.last - o.first + 1 else {
                        throw DataJoinError.bundle(
                            "header gives an impossible range \(o.first)-\(o.last) (\(o.count) changes) for \(o.origin)"
                        )
                    }
                    h.origins.append(o)
                }
            case .changeCount: h.changeCount = Int64(try f.int(Int.max))
            case .receipts:
                let n = try f.int(100_000)
                for _ in 0..<n {
                    let origin = try f.string()
                    guard NodeName.isValid(origin) else {
                        throw DataJoinError.bundle("header has a receipt for an invalid node name")
                    }
                    h.receipts.append(
                        Receipt(
                            origin: origin, epoch: try Self.epoch(try f.string()),
                            seq: Int64(try f.int(BundleFormat.maxSeq, what: "a receipt's seq"))))
                }
            case .publicKey: h.publicKey = try f.data()
            case .relaySpan: h.relaySpan = try Self.span(&f)
            case .relayReceipts:
                let n = try f.int(100_000)
                for _ in 0..<n {
                    let relayer = try f.string()
                    guard NodeName.isValid(relayer) else {
                        throw DataJoinError.bundle("header has a relay receipt for an invalid node name")
                    }
                    h.relayReceipts.append(
                        RelayReceipt(relayer: relayer, epoch: try Self.epoch(try f.string()), span: try Self.span(&f)))
                }
            case .tombstonesPrunedBefore:
                h.tombstonesPrunedBeforeMs = Int64(try f.int(Int(Int64.max), what: "a tombstone cut-off"))
            case nil: continue  // an optional field from a newer minor version: ignored
            }
        }
        guard !h.sender.isEmpty, NodeName.isValid(h.sender) else {
            throw DataJoinError.bundle("header has no valid sender node name")
        }
        guard !h.senderEpoch.isEmpty else { throw DataJoinError.bundle("header has no sender epoch") }
        h.senderEpoch = try epoch(h.senderEpoch)
        h.createdAt = String(h.createdAt.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }.prefix(64))
        guard h.changeCount >= 0 else { throw DataJoinError.bundle("header has no change count") }
        guard h.publicKey.count == 32 else {
            throw DataJoinError.bundle("bundle is unsigned (no sender public key in the header)")
        }
        // Checked sums: counts near 2^62 must not overflow (issue 10).
        var sum: Int64 = 0
        for o in h.origins {
            let (s, overflow) = sum.addingReportingOverflow(o.count)
            guard !overflow else { throw DataJoinError.bundle("header counts add up past any possible number") }
            sum = s
        }
        guard sum == h.changeCount else {
            throw DataJoinError.bundle("header counts disagree: origins add up to \(sum), total says \(h.changeCount)")
        }
        for o in h.origins where !NodeName.isValid(o.origin) {
            throw DataJoinError.bundle("header names an invalid origin node '\(o.origin.prefix(40))'")
        }
        guard BundleFormat.kinds.contains(h.kind) else {
            throw DataJoinError.bundle(
                "bundle kind '\(h.kind.prefix(40))' is unknown to this datajoin; upgrade datajoin")
        }
        if h.kind == "changes", let o = h.origins.first(where: { $0.epoch.hasPrefix(BundleFormat.snapshotEpochPrefix) })
        {
            throw DataJoinError.bundle("a changes bundle names the snapshot epoch \(o.epoch.prefix(40))")
        }
        return h
    }
}

extension BundleHeader {
    /// `after < last`, both within the sequence bound.
    static func span(_ f: inout ByteReader<ArraySource>) throws -> RelaySpan {
        let s = RelaySpan(
            after: Int64(try f.int(BundleFormat.maxSeq, what: "a relay span's start")),
            last: Int64(try f.int(BundleFormat.maxSeq, what: "a relay span's end")))
        guard s.after < s.last else {
            throw DataJoinError.bundle("header gives an impossible relay span \(s.after)-\(s.last)")
        }
        return s
    }

    /// Epochs are ids DataJoin makes (hex, `snap-` + hex): 1–80 letters, digits, '.', '_' or
    /// '-'. Anything else (a NUL byte, a newline) is a crafted file and never reaches SQL.
    static func epoch(_ s: String) throws -> String {
        guard let first = s.unicodeScalars.first, s.unicodeScalars.count <= 80, NodeName.isLetterOrDigit(first),
            s.unicodeScalars.allSatisfy({ NodeName.isLetterOrDigit($0) || $0 == "." || $0 == "_" || $0 == "-" })
        else {
            throw DataJoinError.bundle("header has an invalid epoch id")
        }
        return s
    }
}

/// Node names: 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit.
public enum NodeName {
    public static func isValid(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, s.unicodeScalars.count <= 64 else { return false }
        return isLetterOrDigit(first)
            && s.unicodeScalars.allSatisfy { isLetterOrDigit($0) || $0 == "." || $0 == "_" || $0 == "-" }
    }

    static func isLetterOrDigit(_ c: Unicode.Scalar) -> Bool {
        (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9")
    }
}
