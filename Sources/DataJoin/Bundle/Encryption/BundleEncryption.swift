import Foundation

/// Whether and to whom a node's bundles are encrypted: `export --encrypt`, `--recipient`, or the
/// node's `encrypt` setting (`datajoin config --db URL encrypt always`; docs/encryption.md).
public enum BundleEncryption {
    static let setting = "encrypt"

    static let receivedSetting = "encrypted_received"

    /// Whom to encrypt to; empty for a plain (v1) bundle. A node that has received encrypted
    /// bundles encrypts everything it writes, to every trusted peer: a hub never passes on in
    /// the clear what reached it encrypted, in a relay, a snapshot, or a backfill of its rows
    /// as its own changes (all found from outside).
    static func recipients(_ db: Database, encrypt: Bool, only: [String]) throws -> [Recipient] {
        let asked = try encrypt || !only.isEmpty || always(db)
        guard try asked || receivedEncrypted(db) else { return [] }
        do {
            return try EncryptionKeys.recipients(db, only: only.isEmpty ? nil : only)
        } catch var e as DataJoinError where !asked {
            // Not asked for here: why it is encrypted at all (found in review).
            e.message =
                "this node has received encrypted bundles, so everything it writes is encrypted to its trusted peers "
                + "(docs/encryption.md), and " + e.message
            throw e
        }
    }

    static func noteEncryptedReceived(_ db: Database) throws {
        if try !receivedEncrypted(db) { try Settings.set(db, receivedSetting, 1) }
    }

    /// True when the node has received encrypted bundles, so encrypts everything it writes.
    public static func receivedEncrypted(_ db: Database) throws -> Bool {
        (try Settings.int(db, receivedSetting, range: 0...1) ?? 0) == 1
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
