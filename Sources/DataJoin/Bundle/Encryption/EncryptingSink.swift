import Crypto
import Foundation

/// Where a v2 bundle's bytes go: the compressed v1 bundle comes in, sealed chunks go out to the
/// file, and everything written is hashed for the outer signature. A chunk is sealed only once
/// the next byte is known to exist, so the last one is always the one flagged last.
final class EncryptingSink {
    private let fd: Int32
    private let failure: () -> DataJoinError
    private let payloadKey: SymmetricKey
    private let signingKey: Curve25519.Signing.PrivateKey
    private var hasher = SHA256()
    private var buffer: [UInt8] = []
    private var counter: UInt64 = 0
    private(set) var writtenBytes = 0
    private let headerDigest: [UInt8]

    /// Writes the outer header at once: `recipients` each get the new file key. `failure` names
    /// what could not be written (errno set).
    init(
        fd: Int32, sender: String, senderEpoch: String, createdAt: String,
        signingKey: Curve25519.Signing.PrivateKey, recipients: [Recipient], failure: @escaping () -> DataJoinError
    ) throws {
        guard !recipients.isEmpty else { throw DataJoinError(.internalError, "an encrypted bundle needs a recipient") }
        self.fd = fd
        self.failure = failure
        self.signingKey = signingKey
        let fileKey = SymmetricKey(size: .bits256)
        var nonce = [UInt8](repeating: 0, count: 16)
        for i in nonce.indices { nonce[i] = UInt8.random(in: 0...255) }
        payloadKey = EncryptedFormat.payloadKey(fileKey: fileKey, nonce: nonce)
        let header = EncryptedHeader(
            sender: sender, senderEpoch: senderEpoch, createdAt: createdAt,
            publicKey: Array(signingKey.publicKey.rawRepresentation),
            recipients: try recipients.map { try RecipientStanza.wrap(fileKey, for: $0) }, payloadNonce: nonce)
        let encoded = header.encode()
        headerDigest = Array(SHA256.hash(data: encoded))
        var w = ByteWriter()
        w.bytes += BundleFormat.magic
        w.byte(EncryptedFormat.major)
        w.byte(EncryptedFormat.minor)
        w.data(encoded)
        try emit(w.bytes)
    }

    func write(_ bytes: ArraySlice<UInt8>) throws {
        buffer += bytes
        // Seal full chunks while more bytes follow them.
        while buffer.count > EncryptedFormat.chunkSize {
            try seal(Array(buffer.prefix(EncryptedFormat.chunkSize)), last: false)
            buffer.removeFirst(EncryptedFormat.chunkSize)
        }
    }

    /// Seals the last chunk and writes the digest and signature of every byte before them.
    func finish() throws {
        guard !buffer.isEmpty else { throw DataJoinError(.internalError, "an encrypted bundle with no content") }
        try seal(buffer, last: true)
        buffer = []
        let digest = Array(hasher.finalize())
        let signature = try Array(signingKey.signature(for: digest))
        try GzipWriter.writeAll(fd: fd, digest + signature, count: 96, failure: failure)
        writtenBytes += 96
    }

    private func seal(_ plain: [UInt8], last: Bool) throws {
        // The header's digest is authenticated with every chunk: a recipient block swapped in
        // from another file fails here too, not only at the signature.
        let box = try ChaChaPoly.seal(
            plain, using: payloadKey, nonce: try EncryptedFormat.nonce(counter, last: last),
            authenticating: headerDigest)
        counter += 1
        try emit(Array(box.ciphertext) + Array(box.tag))
    }

    private func emit(_ bytes: [UInt8]) throws {
        hasher.update(data: bytes)
        try GzipWriter.writeAll(fd: fd, bytes, count: bytes.count, failure: failure)
        writtenBytes += bytes.count
    }
}
