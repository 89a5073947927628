import Crypto
import Foundation

/// A bundle file that passed its seal check (pass 1), with what ds_bundle_seen records of it.
struct IncomingFile {
    let path: String
    let stamp: Ingester.FileStamp?
    let digest: String
    /// The sender's trusted key: the file's signature is checked again at the end of pass 2.
    let key: Curve25519.Signing.PublicKey
    let header: BundleHeader
    /// How to read it again (a retried load re-opens it).
    var source: BundleSource = .plain("")

    var name: String { (path as NSString).lastPathComponent }
}
