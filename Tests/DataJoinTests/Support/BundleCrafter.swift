import Crypto
import Foundation

@testable import DataJoin

/// Takes a valid bundle apart and puts it back together, altered and re-signed with any key:
/// the raw material of the hostile-input tests.
struct BundleCrafter {
    var major: UInt8
    var minor: UInt8
    var header: BundleHeader
    /// Records after the header, up to and including the trailer's change count.
    var body: [UInt8]
    var signature: [UInt8]

    init(file: String) throws {
        let gz = try GzipReader(path: file, maxOutput: 1 << 30)
        var all: [UInt8] = []
        while true {
            let chunk = try gz.next(max: 65536)
            if chunk.isEmpty { break }
            all += chunk
        }
        var r = ByteReader(ArraySource(all))
        _ = try r.bytes(8)
        major = try r.byte()
        minor = try r.byte()
        header = try BundleHeader.decode(try r.data())
        let headerEnd = r.consumed
        body = Array(all[headerEnd..<(all.count - 96)])
        signature = Array(all[(all.count - 64)...])
    }

    /// The uncompressed bytes before the digest.
    func content(headerBytes: [UInt8]? = nil) -> [UInt8] {
        var w = ByteWriter()
        w.bytes += BundleFormat.magic
        w.byte(major)
        w.byte(minor)
        w.data(headerBytes ?? header.encode())
        return w.bytes + body
    }

    /// Compressed file bytes. `signWith` re-signs; otherwise the original signature is kept.
    func bytes(signWith key: Curve25519.Signing.PrivateKey? = nil, headerBytes: [UInt8]? = nil, digest: [UInt8]? = nil)
        throws -> [UInt8]
    {
        let c = content(headerBytes: headerBytes)
        let d = digest ?? Array(SHA256.hash(data: c))
        let sig = try key.map { try Array($0.signature(for: d)) } ?? signature
        return try Self.gzip(c + d + sig)
    }

    static func gzip(_ bytes: [UInt8]) throws -> [UInt8] {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("craft-\(UUID().uuidString)").path
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        defer { unlink(path) }
        do {
            let w = try GzipWriter(fd: fd) { .io("cannot write \(path)") }
            try w.write(bytes)
            try w.finish()
        }
        close(fd)
        return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }
}
