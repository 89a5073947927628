import Crypto
import Foundation

/// Where a bundle's v1 bytes come from: the file itself, or an encrypted (v2) file decrypted as
/// it is read, after its outer signature was checked. Each pass opens its own stream.
enum BundleSource {
    case plain(String)
    case encrypted(EncryptedBundleFile, SymmetricKey)

    func gzip(maxOutput: Int) throws -> GzipReader {
        switch self {
        case .plain(let path): return try GzipReader(path: path, maxOutput: maxOutput)
        case .encrypted(let file, let key):
            return try GzipReader(source: .stream(try file.decryptor(key)), maxOutput: maxOutput)
        }
    }

    var path: String {
        switch self {
        case .plain(let path): return path
        case .encrypted(let file, _): return file.path
        }
    }
}
