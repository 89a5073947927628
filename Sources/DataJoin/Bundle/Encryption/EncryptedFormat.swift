import Crypto
import Foundation

/// Bundle format v2 (docs/bundle-format.md, "Version 2: encrypted"): a whole v1 bundle (its
/// gzip member, signed inside as always) encrypted to chosen recipients, then signed outside, so
/// a receiver proves the file before it decrypts a byte. Only swift-crypto's primitives: a
/// random file key wrapped once per recipient (ephemeral X25519, HKDF-SHA256, ChaChaPoly, as
/// age does), and the payload in 64 KiB chunks sealed with ChaChaPoly under a counter nonce with
/// a last-chunk flag (the STREAM construction age uses).
public enum EncryptedFormat {
    public static let major: UInt8 = 2
    public static let minor: UInt8 = 0
    /// Plaintext bytes per chunk; each sealed chunk is this plus a 16-byte tag.
    static let chunkSize = 64 * 1024
    static let tagBytes = 16
    static let maxRecipients = 10_000
    static let payloadInfo = Array("datajoin bundle v2 payload".utf8)
    static let wrapInfo = Array("datajoin bundle v2 file key".utf8)
    /// magic + major + minor.
    static let prefixBytes = BundleFormat.magic.count + 2

    enum Field: UInt64 {
        case sender = 1
        case senderEpoch = 2
        case createdAt = 3
        case publicKey = 8
        case recipients = 9
        case payloadNonce = 10
        case chunkSize = 11
    }

    /// True when the file starts as a v2 bundle does: the magic in the clear (v1 starts with
    /// gzip's bytes).
    public static func isEncrypted(path: String) -> Bool {
        // Never opened unless a regular file: opening a named pipe waits for a writer.
        guard BundleFiles.regularFileProblem(path) == nil, let f = FileHandle(forReadingAtPath: path) else {
            return false
        }
        defer { try? f.close() }
        let head = Array(f.readData(ofLength: prefixBytes))
        return head.count == prefixBytes && Array(head.prefix(BundleFormat.magic.count)) == BundleFormat.magic
            && head[BundleFormat.magic.count] == major
    }

    /// Refuses a file that starts with the magic in the clear but a major this datajoin does
    /// not read (version 1 starts with gzip's bytes, version 2 is read here).
    static func checkMajor(path: String) throws {
        guard BundleFiles.regularFileProblem(path) == nil, let f = FileHandle(forReadingAtPath: path) else { return }
        defer { try? f.close() }
        let head = Array(f.readData(ofLength: prefixBytes))
        // The start of an encrypted bundle, cut within its first bytes: a copy in progress waits
        // as a gzip file's does (found in review).
        if !head.isEmpty, head.count < prefixBytes, head.count <= BundleFormat.magic.count + 1,
            Array((BundleFormat.magic + [major]).prefix(head.count)) == head
        {
            throw DataJoinError(.truncated, "truncated: the file ends within its first \(prefixBytes) bytes")
        }
        guard head.count == prefixBytes, Array(head.prefix(BundleFormat.magic.count)) == BundleFormat.magic,
            head[BundleFormat.magic.count] != major
        else { return }
        let m = head[BundleFormat.magic.count]
        throw DataJoinError.bundle(
            m > major
                ? "says bundle format \(m), which this datajoin (formats 1 and 2) does not read: the file is damaged, or a newer datajoin wrote it (then upgrade)"
                : "unknown bundle format version \(m)")
    }

    /// The nonce of chunk `counter`: 11 bytes of big-endian counter, then 1 on the last chunk.
    static func nonce(_ counter: UInt64, last: Bool) throws -> ChaChaPoly.Nonce {
        var n = [UInt8](repeating: 0, count: 12)
        for i in 0..<8 { n[3 + i] = UInt8(truncatingIfNeeded: counter >> (8 * UInt64(7 - i))) }
        n[11] = last ? 1 : 0
        return try ChaChaPoly.Nonce(data: n)
    }

    /// True for an X25519 public key that is a point of small order (all zero, and the others):
    /// every shared secret with it is zero, so anyone could unwrap what is encrypted to it.
    /// Clamped private keys are multiples of 8, so a fresh one shows it.
    static func isWeak(_ key: [UInt8]) -> Bool {
        guard let pub = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: key),
            let shared = try? Curve25519.KeyAgreement.PrivateKey().sharedSecretFromKeyAgreement(with: pub)
        else { return true }
        return shared.withUnsafeBytes { $0.allSatisfy { $0 == 0 } }
    }

    /// The key the chunks are sealed with: the file key stretched with this file's random nonce.
    static func payloadKey(fileKey: SymmetricKey, nonce: [UInt8]) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: fileKey, salt: nonce, info: payloadInfo, outputByteCount: 32)
    }
}

/// Someone a bundle is encrypted to: a node and its X25519 public key.
public struct Recipient: Sendable, Equatable {
    public var node: String
    public var key: [UInt8]
    public init(node: String, key: [UInt8]) {
        self.node = node
        self.key = key
    }
}

/// One recipient's copy of the file key: sealed with a key only that recipient can derive.
struct RecipientStanza: Equatable {
    var node: String
    var recipientKey: [UInt8]
    var ephemeralKey: [UInt8]
    /// The file key sealed with ChaChaPoly (zero nonce: each wrapping key is used once), then
    /// its tag: 48 bytes.
    var wrapped: [UInt8]

    static func wrap(_ fileKey: SymmetricKey, for r: Recipient) throws -> RecipientStanza {
        guard !EncryptedFormat.isWeak(r.key) else {
            throw DataJoinError(
                .usage,
                "\(r.node)'s encryption key is a weak (small-order) point: anyone could read what is encrypted to it; "
                    + "trust \(r.node) again with the word its 'datajoin key' prints (--replace); nothing written")
        }
        let recipient = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: r.key)
        let ephemeral = Curve25519.KeyAgreement.PrivateKey()
        let ephemeralKey = Array(ephemeral.publicKey.rawRepresentation)
        let key = try wrappingKey(ephemeral.sharedSecretFromKeyAgreement(with: recipient), ephemeralKey, r.key)
        let box = try ChaChaPoly.seal(
            fileKey.withUnsafeBytes { Array($0) }, using: key,
            nonce: try ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12)))
        return RecipientStanza(
            node: r.node, recipientKey: r.key, ephemeralKey: ephemeralKey,
            wrapped: Array(box.ciphertext) + Array(box.tag))
    }

    /// The file key, when `privateKey` is this stanza's recipient's; nil otherwise.
    func unwrap(with privateKey: Curve25519.KeyAgreement.PrivateKey) -> SymmetricKey? {
        guard Array(privateKey.publicKey.rawRepresentation) == recipientKey, wrapped.count == 48,
            let ephemeral = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: ephemeralKey),
            let shared = try? privateKey.sharedSecretFromKeyAgreement(with: ephemeral),
            !shared.withUnsafeBytes({ $0.allSatisfy { $0 == 0 } }),
            let key = try? Self.wrappingKey(shared, ephemeralKey, recipientKey),
            let nonce = try? ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12)),
            let box = try? ChaChaPoly.SealedBox(nonce: nonce, ciphertext: wrapped.prefix(32), tag: wrapped.suffix(16)),
            let opened = try? ChaChaPoly.open(box, using: key), opened.count == 32
        else { return nil }
        return SymmetricKey(data: opened)
    }

    private static func wrappingKey(_ shared: SharedSecret, _ ephemeral: [UInt8], _ recipient: [UInt8]) throws
        -> SymmetricKey
    {
        shared.hkdfDerivedSymmetricKey(
            using: SHA256.self, salt: ephemeral + recipient, sharedInfo: EncryptedFormat.wrapInfo, outputByteCount: 32)
    }
}

/// The outer header of a v2 bundle: what anyone holding the file can read. It names the sender
/// and the recipients and nothing of the content (docs/bundle-format.md says why).
struct EncryptedHeader: Equatable {
    var sender: String
    var senderEpoch: String
    var createdAt: String
    var publicKey: [UInt8]
    var recipients: [RecipientStanza]
    var payloadNonce: [UInt8]
    var chunkSize: Int = EncryptedFormat.chunkSize

    func encode() -> [UInt8] {
        var w = ByteWriter()
        func field(_ f: EncryptedFormat.Field, _ body: (inout ByteWriter) -> Void) {
            var inner = ByteWriter()
            body(&inner)
            w.varint(f.rawValue)
            w.data(inner.bytes)
        }
        field(.sender) { $0.string(sender) }
        field(.senderEpoch) { $0.string(senderEpoch) }
        field(.createdAt) { $0.string(createdAt) }
        field(.publicKey) { $0.data(publicKey) }
        field(.recipients) { w in
            w.varint(UInt64(recipients.count))
            for r in recipients {
                w.string(r.node)
                w.data(r.recipientKey)
                w.data(r.ephemeralKey)
                w.data(r.wrapped)
            }
        }
        field(.payloadNonce) { $0.data(payloadNonce) }
        field(.chunkSize) { $0.varint(UInt64(chunkSize)) }
        return w.bytes
    }

    static func decode(_ bytes: [UInt8]) throws -> EncryptedHeader {
        var r = ByteReader(ArraySource(bytes))
        var h = EncryptedHeader(
            sender: "", senderEpoch: "", createdAt: "", publicKey: [], recipients: [], payloadNonce: [])
        var seen = Set<UInt64>()
        while try !r.atEnd() {
            let id = try r.varint()
            let body = try r.data()
            guard seen.insert(id).inserted else { throw DataJoinError.bundle("header field \(id) appears twice") }
            var f = ByteReader(ArraySource(body))
            switch EncryptedFormat.Field(rawValue: id) {
            case .sender: h.sender = try f.string()
            case .senderEpoch: h.senderEpoch = try f.string()
            case .createdAt: h.createdAt = try f.string()
            case .publicKey: h.publicKey = try f.data()
            case .recipients:
                let n = try f.int(EncryptedFormat.maxRecipients)
                for _ in 0..<n {
                    let s = RecipientStanza(
                        node: try f.string(), recipientKey: try f.data(), ephemeralKey: try f.data(),
                        wrapped: try f.data())
                    guard NodeName.isValid(s.node), s.recipientKey.count == 32, s.ephemeralKey.count == 32,
                        s.wrapped.count == 48
                    else { throw DataJoinError.bundle("header has a malformed recipient") }
                    h.recipients.append(s)
                }
            case .payloadNonce: h.payloadNonce = try f.data()
            case .chunkSize: h.chunkSize = try f.int(1 << 24)
            case nil: continue
            }
        }
        guard NodeName.isValid(h.sender) else { throw DataJoinError.bundle("header has no valid sender node name") }
        _ = try BundleHeader.epoch(h.senderEpoch)
        guard h.publicKey.count == 32 else {
            throw DataJoinError.bundle("bundle is unsigned (no sender public key in the header)")
        }
        guard !h.recipients.isEmpty else { throw DataJoinError.bundle("encrypted to nobody (no recipient)") }
        guard h.payloadNonce.count == 16 else { throw DataJoinError.bundle("header has no 16-byte payload nonce") }
        guard h.chunkSize == EncryptedFormat.chunkSize else {
            throw DataJoinError.bundle("unsupported chunk size \(h.chunkSize)")
        }
        return h
    }

    /// What the recipients are called, for messages.
    var recipientNames: String {
        let names = recipients.map(\.node)
        return names.count <= 5
            ? names.joined(separator: ", ") : names.prefix(5).joined(separator: ", ") + " and \(names.count - 5) more"
    }
}
