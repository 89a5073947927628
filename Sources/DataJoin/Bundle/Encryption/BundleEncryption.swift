import Foundation

/// Whether and to whom a node's bundles are encrypted: `export --encrypt`, `--recipient`, or the
/// node's `encrypt` setting (`datajoin config --db URL encrypt always`; docs/encryption.md).
public enum BundleEncryption {
    static let setting = "encrypt"

    /// Whom to encrypt to; empty for a plain (v1) bundle.
    static func recipients(_ db: Database, encrypt: Bool, only: [String]) throws -> [Recipient] {
        guard try encrypt || !only.isEmpty || always(db) else { return [] }
        return try EncryptionKeys.recipients(db, only: only.isEmpty ? nil : only)
    }

    /// True when the node encrypts every bundle it writes.
    public static func always(_ db: Database) throws -> Bool {
        (try Settings.int(db, setting, range: 0...1) ?? 0) == 1
    }

    public static func setAlways(_ db: Database, _ on: Bool) throws {
        _ = try NodeIdentity.load(db)
        try db.retryingWrite { _ in try Settings.set(db, setting, on ? 1 : 0) }
    }
}
