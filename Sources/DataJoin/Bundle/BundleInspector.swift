import Crypto
import Foundation

/// `datajoin inspect` and `datajoin verify`: read bundles without a database.
public enum BundleInspector {
    public struct Summary: Sendable {
        public var path: String
        public var header: BundleHeader
        public var changes: [Change]
        public var verified: Bool
        public var problem: String?
        /// An encrypted (v2) file: its recipients, and whether this node could open it.
        public var encryptedTo: [String]? = nil
        public var decrypted = false
    }

    /// A v2 file: its outer seal and signature (the header's own key) checked, and the source
    /// of its inner bundle when one of `keys` opens it. The header stands in for the inner one
    /// when it does not (sender, epoch and key only).
    static func open(_ path: String, keys: [Curve25519.KeyAgreement.PrivateKey]) throws -> (
        source: BundleSource?, header: BundleHeader, recipients: [String]
    ) {
        let outer = try EncryptedBundleFile(path: path)
        try outer.checkSeal()
        try outer.verifyIntegrity()
        let h = outer.header
        let header = BundleHeader(
            sender: h.sender, senderEpoch: h.senderEpoch, createdAt: h.createdAt, origins: [], changeCount: 0,
            publicKey: h.publicKey)
        let key = try? outer.fileKey(with: keys, node: "")
        return (key.map { .encrypted(outer, $0) }, header, h.recipients.map(\.node))
    }

    /// An encrypted file holds a bundle of its own sender only, as ingest requires.
    static func checkSameSender(_ source: BundleSource, _ seal: BundleSeal) throws {
        if case .encrypted(let outer, _) = source, seal.sender != outer.header.sender {
            throw DataJoinError.bundle(
                "encrypted by \(outer.header.sender) but holds a bundle of \(seal.sender): a bundle is never re-wrapped"
            )
        }
    }

    /// Reads a whole bundle; `keepChanges` bounds how many changes are kept for display. An
    /// encrypted one is opened with `keys` (a recipient node's), or shown by its outer header.
    public static func read(_ path: String, keepChanges: Int = Int.max, db: Database? = nil) throws -> Summary {
        var source = BundleSource.plain(path)
        var encryptedTo: [String]?
        try EncryptedFormat.checkMajor(path: path)
        if EncryptedFormat.isEncrypted(path: path) {
            let opened = try open(path, keys: try db.map(EncryptionKeys.privateKeys) ?? [])
            encryptedTo = opened.recipients
            guard let inner = opened.source else {
                return Summary(
                    path: path, header: opened.header, changes: [], verified: true, problem: nil,
                    encryptedTo: opened.recipients)
            }
            source = inner
        }
        // Integrity first (digest and the header's own key), records only after it.
        let seal = try BundleSeal(gzip: try source.gzip(maxOutput: BundleFormat.maxExpandedBytes))
        try seal.verifyIntegrity()
        try checkSameSender(source, seal)
        let reader = try BundleReader(gzip: try source.gzip(maxOutput: BundleFormat.maxExpandedBytes), path: path)
        var changes: [Change] = []
        while var c = try reader.next() {
            guard changes.count < keepChanges else { continue }
            // Kept for display only: long values by their start and length, so memory stays
            // at one change however many large ones the bundle holds.
            c.columns = c.columns.map { .init(name: $0.name, value: shown($0.value)) }
            c.oldValue = c.oldValue.map(shown)
            changes.append(c)
        }
        try reader.finish()
        return Summary(
            path: path, header: reader.header, changes: changes, verified: true, problem: nil, encryptedTo: encryptedTo,
            decrypted: encryptedTo != nil)
    }

    /// Values up to this many bytes are shown whole by `inspect`.
    public static let shownBytes = 4096

    /// A value as `inspect` shows it: a longer text or blob becomes a text of its start and
    /// its length.
    static func shown(_ v: Value) -> Value {
        switch v {
        case .text(let s) where s.utf8.count > shownBytes:
            return .text(String(s.prefix(1000)) + "… (\(s.utf8.count) bytes in all)")
        case .blob(let b) where b.count > shownBytes:
            return .text("x'" + Hex.encode(Array(b.prefix(500))) + "'… (\(b.count) bytes in all)")
        default:
            return v
        }
    }

    /// Checks a file whole; an encrypted one whole when `db` is one of its recipients, by its
    /// outer seal and signature otherwise (`encryptedTo` says to whom, `decrypted` false).
    public static func verify(_ path: String, db: Database? = nil) -> Result<Summary, DataJoinError> {
        do {
            // Every change is read and checked; none is kept.
            return .success(try read(path, keepChanges: 0, db: db))
        } catch let e as DataJoinError {
            return .failure(e)
        } catch {
            return .failure(DataJoinError.bundle("\(error)"))
        }
    }

    /// Reads and checks a bundle held in memory; the fuzz target calls this.
    public static func check(bytes: [UInt8], maxExpandedBytes: Int = 64 << 20) -> Bool {
        do {
            try BundleSeal(bytes: bytes, maxExpandedBytes: maxExpandedBytes).verifyIntegrity()
            let reader = try BundleReader(bytes: bytes, maxExpandedBytes: maxExpandedBytes)
            while try reader.next() != nil {}
            try reader.finish()
            return true
        } catch {
            return false
        }
    }

    /// Decodes every record without the digest and signature checks, so a fuzzer reaches the
    /// decoder behind them (ingest never does this: it verifies first).
    public static func decodeUnverified(bytes: [UInt8], maxExpandedBytes: Int = 64 << 20) -> Bool {
        do {
            let reader = try BundleReader(bytes: bytes, maxExpandedBytes: maxExpandedBytes)
            while try reader.next() != nil {}
            return true
        } catch {
            return false
        }
    }

    /// The same for uncompressed content: gzips it first (the fuzz target's second layer).
    public static func checkUncompressed(_ content: [UInt8], maxExpandedBytes: Int = 64 << 20) -> Bool {
        guard let compressed = try? Gzip.compress(content) else { return false }
        return check(bytes: compressed, maxExpandedBytes: maxExpandedBytes)
    }

    public static func json(_ s: Summary) -> String {
        let h = s.header
        // An encrypted file not opened here: what it holds is not known.
        let sealed = s.encryptedTo != nil && !s.decrypted
        let origins = h.origins.map {
            "{\"origin\":\(JSON.quote($0.origin)),\"epoch\":\(JSON.quote($0.epoch)),\"first\":\($0.first),\"last\":\($0.last),\"count\":\($0.count)}"
        }
        let receipts = h.receipts.map {
            "{\"origin\":\(JSON.quote($0.origin)),\"epoch\":\(JSON.quote($0.epoch)),\"seq\":\($0.seq)}"
        }
        let span = h.relaySpan.map { "{\"after\":\($0.after),\"last\":\($0.last)}" } ?? "null"
        let relayReceipts = h.relayReceipts.map {
            "{\"relayer\":\(JSON.quote($0.relayer)),\"epoch\":\(JSON.quote($0.epoch)),\"after\":\($0.span.after),\"last\":\($0.span.last)}"
        }
        let changes = s.changes.map { c -> String in
            let cols = c.columns.map { "\(JSON.quote($0.name)):\($0.value.json)" }.joined(separator: ",")
            return
                "{\"origin\":\(JSON.quote(c.origin)),\"seq\":\(c.seq),\"hlc\":\(c.hlc),\"stamp\":\(JSON.quote(HybridLogicalClock.describe(c.hlc))),\"op\":\"\(c.op.rawValue)\",\"table\":\(JSON.quote(c.table)),\"cl\":\(c.cl),\"key\":[\(c.key.map(\.json).joined(separator: ","))],\"values\":{\(cols)}"
                + (c.oldValue.map { ",\"old\":\($0.json)" } ?? "") + "}"
        }
        return """
            {"path":\(JSON.quote(s.path)),"format":\(s.encryptedTo == nil ? BundleFormat.major : EncryptedFormat.major),"sender":\(JSON.quote(h.sender)),"sender_epoch":\(JSON.quote(h.senderEpoch)),\
            "created_at":\(JSON.quote(h.createdAt)),"kind":\(sealed ? "null" : JSON.quote(h.kind)),"change_count":\(sealed ? "null" : String(h.changeCount)),"origins":[\(origins.joined(separator: ","))],\
            "receipts":[\(receipts.joined(separator: ","))],"relay_span":\(span),"relay_receipts":[\(relayReceipts.joined(separator: ","))],"public_key":\(JSON.quote(Hex.encode(h.publicKey))),"verified":\(s.verified),\
            "encrypted_to":\(s.encryptedTo.map { "[" + $0.map(JSON.quote).joined(separator: ",") + "]" } ?? "null"),"decrypted":\(s.decrypted),\
            "changes":[\(changes.joined(separator: ","))]}
            """
    }

    /// Receipts listed by `inspect`.
    static let receiptLines = 20

    public static func text(_ s: Summary) -> String {
        let h = s.header
        if let to = s.encryptedTo, !s.decrypted {
            return [
                "bundle:    \(TerminalText.safe(s.path))",
                "format:    v\(EncryptedFormat.major) (encrypted)",
                "sender:    \(h.sender) (epoch \(h.senderEpoch)), created \(h.createdAt)",
                "signed by: \(Hex.encode(h.publicKey))",
                "encrypted: to \(to.joined(separator: ", ")); the content needs a recipient's key (--db on one of them)",
                "verified:  checksum and signature OK",
            ].map { TerminalText.safe($0) }.joined(separator: "\n")
        }
        var lines = [
            "bundle:    \(TerminalText.safe(s.path))",
            s.encryptedTo.map {
                "format:    v\(EncryptedFormat.major) (encrypted to \($0.joined(separator: ", ")), holding v\(BundleFormat.major) \(h.kind))"
            }
                ?? "format:    v\(BundleFormat.major) (\(h.kind))",
            "sender:    \(h.sender) (epoch \(h.senderEpoch)), created \(h.createdAt)",
            "signed by: \(Hex.encode(h.publicKey))",
            h.origins.isEmpty && h.relaySpan == nil && h.kind == "changes"
                ? "changes:   0 (receipts only: what \(h.sender) holds, so its peers can prune)"
                : "changes:   \(h.changeCount)",
        ]
        for o in h.origins { lines.append("  origin \(o.origin): seq \(o.first)-\(o.last) (\(o.count))") }
        if let r = h.relaySpan { lines.append("  relay stream of \(h.sender): ids \(r.after + 1)-\(r.last)") }
        // What the sender confirms holding; a hub's list names every origin, so it is cut short.
        let held =
            h.receipts.map { "  holds \($0.origin) (epoch \($0.epoch.prefix(8))) up to seq \($0.seq)" }
            + h.relayReceipts.map {
                "  holds \($0.relayer)'s relay stream (epoch \($0.epoch.prefix(8))) ids \($0.span.after + 1)-\($0.span.last)"
            }
        if !held.isEmpty { lines.append("receipts:  \(held.count)") }
        lines += held.prefix(Self.receiptLines).map { TerminalText.safe($0) }
        if held.count > Self.receiptLines { lines.append("  … \(held.count - Self.receiptLines) more") }
        for c in s.changes {
            var line =
                "  \(c.origin)#\(c.seq) \(HybridLogicalClock.describe(c.hlc)) \(c.op.rawValue) \(c.table) \(KeyCodec.display(c.key)) gen \(c.cl)"
            switch c.op {
            case .insert:
                line += " {" + c.columns.map { "\($0.name)=\($0.value.description)" }.joined(separator: ", ") + "}"
            case .update:
                line +=
                    " \(c.columns.first?.name ?? "")=\(c.columns.first?.value.description ?? "") (was \(c.oldValue?.description ?? "NULL"))"
            case .delete: break
            }
            lines.append(TerminalText.safe(line))
        }
        if s.changes.count < h.changeCount { lines.append("  … \(h.changeCount - Int64(s.changes.count)) more") }
        lines.append("verified:  checksum and signature OK")
        return lines.joined(separator: "\n")
    }
}
