import Crypto
import Foundation

/// The first of two passes over a bundle: every expanded byte is hashed and compared with the
/// stored digest, and only the sender's name and public key are taken from the header, before
/// any record is interpreted. A crafted or damaged file is refused here, in flat memory, without
/// a single value of it decoded, converted or sent to a database (docs/bundle-format.md,
/// "What a reader checks"). The second pass (`BundleReader`) decodes a file whose signature has
/// verified, and checks the digest again, so a file changed between the passes is refused too.
struct BundleSeal {
    let sender: String
    let headerKey: [UInt8]
    let digest: [UInt8]
    let signature: [UInt8]
    let expandedBytes: Int

    /// The trailer's digest and signature: the last 96 expanded bytes.
    static let trailerBytes = 32 + 64

    init(path: String, maxExpandedBytes: Int = BundleFormat.maxExpandedBytes) throws {
        try self.init(gzip: try GzipReader(path: path, maxOutput: maxExpandedBytes))
    }

    init(bytes: [UInt8], maxExpandedBytes: Int = BundleFormat.maxExpandedBytes) throws {
        try self.init(gzip: try GzipReader(source: .memory(bytes), maxOutput: maxExpandedBytes))
    }

    init(gzip: GzipReader) throws {
        var hasher = SHA256()
        // The first bytes, up to the end of the header, kept for the header's two fields.
        let prefixLimit = BundleFormat.magic.count + 2 + 10 + BundleFormat.maxHeaderBytes
        var prefix: [UInt8] = []
        var tail: [UInt8] = []
        var total = 0
        var versionChecked = false
        while true {
            let chunk = try gzip.next(max: 64 * 1024)
            if chunk.isEmpty { break }
            total += chunk.count
            if prefix.count < prefixLimit { prefix += chunk.prefix(prefixLimit - prefix.count) }
            // The version byte only once it cannot be part of the trailer's 96 bytes.
            if !versionChecked && total > BundleFormat.magic.count + 1 + Self.trailerBytes {
                try Self.checkMagic(prefix)
                versionChecked = true
            }
            // Hash all but the last 96 bytes seen so far; keep those as the tail.
            tail += chunk
            if tail.count > Self.trailerBytes {
                let cut = tail.count - Self.trailerBytes
                hasher.update(data: tail[0..<cut])
                tail.removeFirst(cut)
            }
        }
        guard gzip.finished else { throw DataJoinError(.truncated, "truncated or damaged: the gzip stream ends early") }
        if !versionChecked {
            // Too short to hold a version, a header and a trailer: the magic says which kind.
            try Self.checkMagic(Array(prefix.prefix(min(prefix.count, BundleFormat.magic.count))))
        }
        guard tail.count == Self.trailerBytes, total > Self.trailerBytes + BundleFormat.magic.count + 2 else {
            throw DataJoinError.bundle("damaged: the data ends before its trailer")
        }
        let computed = Array(hasher.finalize())
        digest = Array(tail[0..<32])
        signature = Array(tail[32..<96])
        expandedBytes = total
        guard computed == digest else {
            throw DataJoinError.bundle("checksum mismatch: the content was altered or damaged")
        }
        (sender, headerKey) = try Self.senderAndKey(prefix)
    }

    private static func checkMagic(_ prefix: [UInt8]) throws {
        guard prefix.count >= BundleFormat.magic.count,
            Array(prefix[0..<BundleFormat.magic.count]) == BundleFormat.magic
        else {
            throw DataJoinError.bundle(
                prefix.count < BundleFormat.magic.count
                    ? "too short to be a DataJoin bundle" : "not a DataJoin bundle (wrong magic bytes)")
        }
        guard prefix.count > BundleFormat.magic.count else { return }
        let major = prefix[BundleFormat.magic.count]
        guard major == BundleFormat.major else {
            if major > BundleFormat.major {
                throw DataJoinError.bundle(
                    "says bundle format \(major), which this datajoin (format \(BundleFormat.major)) does not read: the file is damaged, or a newer datajoin wrote it (then upgrade)"
                )
            }
            throw DataJoinError.bundle("unknown bundle format version \(major)")
        }
    }

    /// Only the header fields the signature check needs: the sender's name (validated, as it is
    /// looked up in the trust list) and the public key. Nothing else is interpreted.
    private static func senderAndKey(_ prefix: [UInt8]) throws -> (String, [UInt8]) {
        var r = ByteReader(ArraySource(Array(prefix.dropFirst(BundleFormat.magic.count + 2))))
        var header = ByteReader(
            ArraySource(try r.bytes(try r.int(BundleFormat.maxHeaderBytes, what: "the header's length"))))
        var sender: String?
        var key: [UInt8]?
        while try !header.atEnd() {
            let id = try header.varint()
            let body = try header.data()
            switch BundleFormat.HeaderField(rawValue: id) {
            case .sender:
                guard sender == nil else { throw DataJoinError.bundle("header field \(id) appears twice") }
                var f = ByteReader(ArraySource(body))
                sender = try f.string()
            case .publicKey:
                guard key == nil else { throw DataJoinError.bundle("header field \(id) appears twice") }
                var f = ByteReader(ArraySource(body))
                key = try f.data()
            default: continue
            }
        }
        guard let sender, NodeName.isValid(sender) else {
            throw DataJoinError.bundle("header has no valid sender node name")
        }
        guard let key, key.count == 32 else {
            throw DataJoinError.bundle("bundle is unsigned (no sender public key in the header)")
        }
        return (sender, key)
    }

    /// Checks the signature with `key` (the key trusted for the sender, or the header's own key
    /// where integrity is all that can be proved).
    func verify(with key: Curve25519.Signing.PublicKey) throws {
        guard key.isValidSignature(signature, for: digest) else {
            throw DataJoinError.bundle("signature does not verify for sender \(sender) (forged or altered)")
        }
    }

    /// The header's own key: proves the file is intact, not that its sender is trusted.
    func verifyIntegrity() throws {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: headerKey) else {
            throw DataJoinError.bundle("the header's public key is not a valid Ed25519 key")
        }
        try verify(with: key)
    }
}
