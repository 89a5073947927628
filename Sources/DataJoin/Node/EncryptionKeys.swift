import Crypto
import Foundation

/// This node's X25519 key pairs for encrypted bundles (docs/encryption.md), beside its Ed25519
/// signing key: the newest one is given to peers, the older ones are kept so that bundles
/// already encrypted to them still open. Peers' encryption keys are in ds_trusted_key.
public enum EncryptionKeys {
    /// The text `datajoin key` prints: one word that carries both public keys, versioned.
    static let tokenPrefix = "dj2-"

    /// Makes a key pair when the node has none (init, and the upgrade of older nodes).
    static func ensure(_ db: Database) throws {
        guard try current(db) == nil else { return }
        _ = try create(db)
    }

    private static func create(_ db: Database) throws -> [UInt8] {
        let key = Curve25519.KeyAgreement.PrivateKey()
        let pub = Array(key.publicKey.rawRepresentation)
        try db.execute(
            """
            INSERT INTO ds_encryption_key (public_key, private_key, created_at)
            VALUES (\(Value.text(Hex.encode(pub))), \(Value.text(Hex.encode(Array(key.rawRepresentation)))), \(Value.text(nowText())))
            """)
        return pub
    }

    /// The public key peers encrypt to, or nil on a node that has none yet.
    public static func current(_ db: Database) throws -> [UInt8]? {
        try db.scalar("SELECT public_key FROM ds_encryption_key WHERE retired_at IS NULL ORDER BY id DESC LIMIT 1")
            .asString.flatMap(Hex.decode)
    }

    /// Every private key this node holds, the current one first.
    static func privateKeys(_ db: Database) throws -> [Curve25519.KeyAgreement.PrivateKey] {
        try db.rows(
            "SELECT private_key FROM ds_encryption_key ORDER BY (CASE WHEN retired_at IS NULL THEN 0 ELSE 1 END), id DESC"
        )
        .compactMap { r in
            r.string(0).flatMap(Hex.decode).flatMap { try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: $0) }
        }
    }

    /// `datajoin key --rotate`: a new key pair; the old ones stay, to open what was encrypted to
    /// them. Returns the new public key.
    public static func rotate(_ db: Database) throws -> [UInt8] {
        _ = try NodeIdentity.load(db)
        return try db.retryingWrite { _ in
            try db.execute(
                "UPDATE ds_encryption_key SET retired_at = \(Value.text(nowText())) WHERE retired_at IS NULL")
            return try create(db)
        }
    }

    public static func token(signing: [UInt8], encryption: [UInt8]?) -> String {
        guard let encryption else { return Hex.encode(signing) }
        return tokenPrefix + Hex.encode(signing) + "-" + Hex.encode(encryption)
    }

    /// A token as `datajoin key` prints it: `dj2-<signing>-<encryption>`, or the older form, the
    /// signing key alone (64 hex digits). Nil when it is neither.
    static func parse(_ text: String) -> (signing: [UInt8], encryption: [UInt8]?)? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix(tokenPrefix) {
            let parts = t.dropFirst(tokenPrefix.count).split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, let s = Hex.decode(String(parts[0])), let e = Hex.decode(String(parts[1])),
                s.count == 32, e.count == 32, !EncryptedFormat.isWeak(e)
            else { return nil }
            return (s, e)
        }
        guard let s = Hex.decode(t), s.count == 32 else { return nil }
        return (s, nil)
    }

    /// A key word well formed but for its encryption part, a weak point.
    static func hasWeakEncryptionPart(_ text: String) -> Bool {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard t.hasPrefix(tokenPrefix) else { return false }
        let parts = t.dropFirst(tokenPrefix.count).split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let s = Hex.decode(String(parts[0])), let e = Hex.decode(String(parts[1])) else {
            return false
        }
        return s.count == 32 && e.count == 32 && EncryptedFormat.isWeak(e)
    }

    /// The trusted peers `--recipient` leaves out: they cannot read that file, and the changes
    /// in it are exported once (they reach those peers relayed, or by `export --resend --peer`).
    public static func leftOut(_ db: Database, recipients: [String]) throws -> [String] {
        guard !recipients.isEmpty else { return [] }
        let me = try NodeIdentity.load(db)
        return try Receipts.peers(db, me: me).filter { !recipients.contains($0) }
    }

    /// Whom an export encrypts to: every trusted peer (or those `only` names), each with its
    /// encryption key. A peer trusted with the older key form has none: refused with its name.
    public static func recipients(_ db: Database, only: [String]? = nil) throws -> [Recipient] {
        let me = try NodeIdentity.load(db)
        let rows = try db.rows(
            "SELECT node_id, encryption_key FROM ds_trusted_key WHERE revoked_at IS NULL AND node_id <> \(Value.text(me.nodeId)) ORDER BY node_id"
        ).map { ($0.string(0) ?? "", $0.string(1).flatMap(Hex.decode)) }
        var chosen = rows
        if let only {
            for name in only where !rows.contains(where: { $0.0 == name }) {
                if name == me.nodeId {
                    throw DataJoinError(
                        .usage, "\(name) is this node itself: name the peers that are to read the bundle")
                }
                throw DataJoinError(
                    .usage,
                    "\(name) is not a trusted peer of this node, so nothing can be encrypted to it ('datajoin trust')")
            }
            chosen = rows.filter { only.contains($0.0) }
        }
        guard !chosen.isEmpty else {
            throw DataJoinError(.needsSetup, "this node trusts no peer to encrypt to; 'datajoin trust' them first")
        }
        let without = chosen.filter { $0.1?.count != 32 }.map(\.0)
        guard without.isEmpty else {
            throw DataJoinError(
                .needsSetup,
                "cannot encrypt to \(without.joined(separator: ", ")): trusted with a key that has no encryption part "
                    + "(an older datajoin). Upgrade it, then trust it again with what its 'datajoin key' prints (--replace); nothing written"
            )
        }
        return chosen.map { Recipient(node: $0.0, key: $0.1!) }
    }
}
