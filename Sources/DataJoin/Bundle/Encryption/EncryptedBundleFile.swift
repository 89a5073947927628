import Crypto
import Foundation

/// A v2 (encrypted) bundle on disk. Opening it reads only the outer header; `checkSeal` hashes
/// every byte before the trailer and compares the digest, and `verify` checks the sender's
/// signature, before anything is decrypted. `decryptor` then yields the inner v1 bundle's bytes
/// chunk by chunk, in flat memory, for the usual two passes (`BundleSeal`, `BundleReader`).
final class EncryptedBundleFile {
    let path: String
    let header: EncryptedHeader
    private let headerDigest: [UInt8]
    /// Where the first sealed chunk starts, and where the trailer starts.
    private let payloadStart: UInt64
    private let payloadEnd: UInt64
    private(set) var digest: [UInt8] = []
    private(set) var signature: [UInt8] = []

    init(path: String) throws {
        self.path = path
        guard let f = FileHandle(forReadingAtPath: path) else { throw DataJoinError.io("cannot open \(path)") }
        defer { try? f.close() }
        let size = try f.seekToEnd()
        try f.seek(toOffset: 0)
        let limit = EncryptedFormat.prefixBytes + 10 + BundleFormat.maxHeaderBytes
        let head = Array(f.readData(ofLength: limit))
        guard head.count >= EncryptedFormat.prefixBytes,
            Array(head.prefix(BundleFormat.magic.count)) == BundleFormat.magic,
            head[BundleFormat.magic.count] == EncryptedFormat.major
        else { throw DataJoinError.bundle("not an encrypted DataJoin bundle") }
        var r = ByteReader(ArraySource(Array(head.dropFirst(EncryptedFormat.prefixBytes))))
        let length: Int
        let encoded: [UInt8]
        do {
            length = try r.int(BundleFormat.maxHeaderBytes, what: "the header's length")
            encoded = try r.bytes(length)
        } catch {
            throw DataJoinError(.truncated, "truncated: the file ends inside its header")
        }
        header = try EncryptedHeader.decode(encoded)
        headerDigest = Array(SHA256.hash(data: encoded))
        payloadStart = UInt64(EncryptedFormat.prefixBytes + ByteWriter.varintSize(UInt64(length)) + length)
        // At least one sealed chunk (one byte and its tag), then the 96-byte trailer.
        guard size >= payloadStart + UInt64(EncryptedFormat.tagBytes + 1 + BundleSeal.trailerBytes) else {
            throw DataJoinError(.truncated, "truncated: the data ends before its trailer")
        }
        payloadEnd = size - UInt64(BundleSeal.trailerBytes)
    }

    /// Pass 0: every byte up to the trailer against the trailer's digest, in 1 MiB steps.
    func checkSeal() throws {
        guard let f = FileHandle(forReadingAtPath: path) else { throw DataJoinError.io("cannot open \(path)") }
        defer { try? f.close() }
        var h = SHA256()
        var left = payloadEnd
        while left > 0 {
            let chunk = f.readData(ofLength: Int(min(left, 1 << 20)))
            guard !chunk.isEmpty else { throw DataJoinError(.truncated, "truncated: the file changed while read") }
            h.update(data: chunk)
            left -= UInt64(chunk.count)
        }
        let trailer = Array(f.readData(ofLength: BundleSeal.trailerBytes))
        guard trailer.count == BundleSeal.trailerBytes else {
            throw DataJoinError(.truncated, "truncated: the data ends before its trailer")
        }
        digest = Array(trailer.prefix(32))
        signature = Array(trailer.suffix(64))
        guard Array(h.finalize()) == digest else {
            // Where the trailer is depends on the file's length: a file still being copied looks
            // like this too, so it gets the grace a cut-short file gets (then quarantine).
            throw DataJoinError(
                .truncated,
                "checksum mismatch: the file is still being copied, was cut short, or was altered or added to")
        }
    }

    func verify(with key: Curve25519.Signing.PublicKey) throws {
        guard !digest.isEmpty, key.isValidSignature(signature, for: digest) else {
            throw DataJoinError.bundle("signature does not verify for sender \(header.sender) (forged or altered)")
        }
    }

    /// The header's own key: proves the file is intact, not that its sender is trusted.
    func verifyIntegrity() throws {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: header.publicKey) else {
            throw DataJoinError.bundle("the header's public key is not a valid Ed25519 key")
        }
        try verify(with: key)
    }

    /// The file key, with the first of `keys` this file was encrypted to; refused, with who it
    /// is for, when none.
    func fileKey(with keys: [Curve25519.KeyAgreement.PrivateKey], node: String) throws -> SymmetricKey {
        for stanza in header.recipients {
            for k in keys { if let fileKey = stanza.unwrap(with: k) { return fileKey } }
        }
        let mine = Set(keys.map { Array($0.publicKey.rawRepresentation) })
        if header.recipients.contains(where: { mine.contains($0.recipientKey) }) {
            throw DataJoinError.bundle("the recipient block for this node's key does not open: altered or forged")
        }
        if let named = header.recipients.first(where: { $0.node == node }) {
            // The name is this node's, the key is not one it holds: a key it no longer has, or
            // another node set up with this name.
            throw DataJoinError(
                .notForThisNode,
                "encrypted to \(node)'s key \(Trust.fingerprint(named.recipientKey)), which this node does not hold "
                    + "(its keys: 'datajoin key'); left in place. If this node was restored from a backup older than a "
                    + "'key --rotate', trust its key again on \(header.sender) ('trust --replace \(node)'), run "
                    + "'datajoin export --resend --peer \(node)' there, and remove this file here once that has arrived"
            )
        }
        throw DataJoinError(
            .forOtherNodes, "encrypted to \(header.recipientNames), not to this node (\(node)); left in place")
    }

    /// The inner bundle's bytes, one chunk per call, each proved by its tag before it is
    /// returned; [] after the last. A chunk out of place, repeated, missing or cut short fails
    /// its tag (the counter and the last flag are in its nonce).
    func decryptor(_ fileKey: SymmetricKey) throws -> () throws -> [UInt8] {
        guard let f = FileHandle(forReadingAtPath: path) else { throw DataJoinError.io("cannot open \(path)") }
        try f.seek(toOffset: payloadStart)
        let key = EncryptedFormat.payloadKey(fileKey: fileKey, nonce: header.payloadNonce)
        let sealed = EncryptedFormat.chunkSize + EncryptedFormat.tagBytes
        let ad = headerDigest
        var position = payloadStart
        var counter: UInt64 = 0
        let end = payloadEnd
        return {
            guard position < end else {
                try? f.close()
                return []
            }
            let want = Int(min(UInt64(sealed), end - position))
            let bytes = Array(f.readData(ofLength: want))
            guard bytes.count == want else { throw DataJoinError(.truncated, "truncated: the file changed while read") }
            // The signature held: a chunk without room for its tag was written so.
            guard want > EncryptedFormat.tagBytes else {
                throw DataJoinError.bundle("encrypted chunk \(counter) is shorter than its tag")
            }
            position += UInt64(want)
            let last = position == end
            guard
                let box = try? ChaChaPoly.SealedBox(
                    nonce: try EncryptedFormat.nonce(counter, last: last),
                    ciphertext: bytes.dropLast(EncryptedFormat.tagBytes),
                    tag: bytes.suffix(EncryptedFormat.tagBytes)),
                let plain = try? ChaChaPoly.open(box, using: key, authenticating: ad)
            else {
                throw DataJoinError.bundle(
                    "encrypted chunk \(counter) does not open: altered, reordered, repeated or cut (or not for this key)"
                )
            }
            counter += 1
            return Array(plain)
        }
    }
}
