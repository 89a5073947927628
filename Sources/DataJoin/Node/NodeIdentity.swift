import Crypto
import Foundation

/// This database's identity: node name, epoch (incarnation), signing key, clock state.
public struct NodeIdentity: Sendable {
    public var nodeId: String
    public var epoch: String
    public var publicKey: [UInt8]
    public var hlc: Int64
    public var nextSeq: Int64

    /// Says so when the database is not a node (yet), before a command reads any of its tables:
    /// the reads of `ingest`, `conflicts`, `snapshot`, `config`, `verify --db` and `inspect --db`
    /// failed on a missing table with the database's own message (found from outside). Reads only.
    public static func require(_ db: Database) throws {
        guard try SyncSchema.installed(db) else { throw notANode(db) }
        guard let r = try db.firstRow("SELECT node_id, schema_version FROM ds_node", []) else { throw noNodeRow(db) }
        try refuseNewer(db, version: r.int(1))
    }

    /// Whether the database holds a node's row, read so that another program's `ds_node`
    /// (without DataJoin's columns) answers no rather than fail: `init`'s question. Not
    /// `require`'s: its columns are looked up in the connection's current schema, and a node
    /// reached through a search path (PostgreSQL) has them in another.
    static func hasNodeRow(_ db: Database) throws -> Bool {
        guard try SyncSchema.installed(db) else { return false }
        // Columns not seen in the current schema (a search path) are not judged.
        let columns = Set(try db.dialect.columns(db, of: "ds_node").map(\.name))
        if !columns.isEmpty && !columns.isSuperset(of: ["node_id", "public_key"]) { return false }
        return try db.firstRow("SELECT node_id FROM ds_node", []) != nil
    }

    private static func notANode(_ db: Database) -> DataJoinError {
        DataJoinError(
            .notInitialized,
            "\(db.displayName) is not a DataJoin node yet: run 'datajoin init --db URL --node NAME' first")
    }

    private static func noNodeRow(_ db: Database) -> DataJoinError {
        DataJoinError(
            .notInitialized,
            "\(db.displayName) has DataJoin tables but no node id: run 'datajoin init --db URL --node NAME'")
    }

    static func load(_ db: Database) throws -> NodeIdentity {
        guard try SyncSchema.installed(db) else { throw notANode(db) }
        guard
            let r = try db.firstRow("SELECT node_id, epoch, public_key, hlc, next_seq, schema_version FROM ds_node", [])
        else { throw noNodeRow(db) }
        if let v = r.int(5), v < Int64(SyncSchema.version) { try SyncSchema.upgrade(db, from: v) }
        try refuseNewer(db, version: r.int(5))
        return NodeIdentity(
            nodeId: r.string(0) ?? "", epoch: r.string(1) ?? "", publicKey: Hex.decode(r.string(2) ?? "") ?? [],
            hlc: r.int(3) ?? 0, nextSeq: r.int(4) ?? 1)
    }

    /// A node whose tables a newer DataJoin laid out is never written by this one: its imports
    /// would not say which table they write, so their rows came back as this node's own newer
    /// changes and beat later edits everywhere (found from outside, with a binary of schema 12
    /// on a node of 22).
    static func refuseNewer(_ db: Database, version: Int64?) throws {
        guard let v = version, v > Int64(SyncSchema.version) else { return }
        throw DataJoinError(
            .newerNode,
            "\(db.displayName) was upgraded by a newer datajoin (node schema \(v), this datajoin knows \(SyncSchema.version)): run the newer datajoin here, and upgrade every binary that opens this node (cron jobs, watch)"
        )
    }

    /// The node as it is now, within a run that already loaded it (its schema is known to be
    /// there and upgraded): one statement, for steps that run once per bundle.
    static func reload(_ db: Database) throws -> NodeIdentity {
        guard
            let r = try db.firstRow("SELECT node_id, epoch, public_key, hlc, next_seq FROM ds_node", [])
        else {
            throw DataJoinError(.notInitialized, "\(db.displayName) lost its node row while it was in use")
        }
        return NodeIdentity(
            nodeId: r.string(0) ?? "", epoch: r.string(1) ?? "", publicKey: Hex.decode(r.string(2) ?? "") ?? [],
            hlc: r.int(3) ?? 0, nextSeq: r.int(4) ?? 1)
    }

    static func signingKey(_ db: Database, node: String) throws -> Curve25519.Signing.PrivateKey {
        guard
            let hex = try db.firstRow("SELECT private_key FROM ds_node_key WHERE node_id = ?", [.text(node)])?.string(
                0),
            let raw = Hex.decode(hex), let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw)
        else {
            throw DataJoinError(
                .notInitialized, "the signing key of node \(node) is missing from ds_node_key; it cannot sign bundles")
        }
        return key
    }

    static func newEpoch() -> String {
        (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }
}

/// `datajoin init`: installs the tables, records the node id and creates its key pair.
public enum NodeSetup {
    public struct Result: Sendable {
        public var nodeId: String
        public var created: Bool
        public var publicKey: String
    }

    public static func initialize(_ db: Database, node: String) throws -> Result {
        guard NodeName.isValid(node) else {
            throw DataJoinError(
                .usage,
                "invalid node name '\(node)': use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        }
        return try db.retryingWrite { _ in
            // A node already (any schema version): its tables are DataJoin's. Otherwise every
            // table of DataJoin's name is looked at before the DDL, which would keep it (and fail
            // on one whose index names a column it lacks; on MariaDB, with the others left made).
            if try !NodeIdentity.hasNodeRow(db), let foreign = try SyncSchema.foreignObject(db) {
                throw DataJoinError(
                    .alreadyInitialized,
                    "cannot make \(db.displayName) a DataJoin node: \(foreign); rename or drop it, then run 'datajoin init' again"
                )
            }
            if try NodeIdentity.hasNodeRow(db) { try NodeIdentity.require(db) }
            try db.executeScript(SyncSchema.ddl(db.dialect))
            if let existing = try db.firstRow("SELECT node_id, public_key FROM ds_node", []) {
                let id = existing.string(0) ?? ""
                guard id == node else {
                    throw DataJoinError(
                        .alreadyInitialized,
                        "\(db.displayName) is already DataJoin node '\(id)'; a node id never changes (refusing '\(node)')"
                    )
                }
                return Result(nodeId: id, created: false, publicKey: existing.string(1) ?? "")
            }
            let key = Curve25519.Signing.PrivateKey()
            let pub = Hex.encode(Array(key.publicKey.rawRepresentation))
            try db.execute(
                "INSERT INTO ds_node (node_id, epoch, schema_version, public_key, hlc, next_seq, created_at) VALUES (?, ?, ?, ?, 0, 1, ?)",
                [
                    .text(node), .text(NodeIdentity.newEpoch()), .integer(Int64(SyncSchema.version)), .text(pub),
                    .text(nowText()),
                ])
            try db.execute(
                "INSERT INTO ds_node_key (node_id, private_key) VALUES (?, ?)",
                [.text(node), .text(Hex.encode(Array(key.rawRepresentation)))])
            try EncryptionKeys.ensure(db)
            try db.dialect.protectPrivateKey(db)
            try db.execute("INSERT INTO ds_apply_state (id, applying) VALUES (1, 0)")
            for (id, type, desc) in [
                (Program.export, "export", "outbox to change bundles"),
                (Program.import, "import", "inbox to application tables"),
                (Program.relay, "relay", "inbox to relayed bundles"),
            ] {
                try db.execute(
                    """
                    INSERT INTO ds_program_parameter (id, programtype, description, active_flag, status, fromserver, fromtable, fromoutboxpointer, update_datetime, updated_by_server)
                    VALUES (?, ?, ?, 'Y', 'idle', ?, ?, 0, ?, ?)
                    """,
                    [
                        .integer(id), .text(type), .text(desc), .text(node),
                        .text(id == Program.export ? "ds_change_outbox" : "ds_change_inbox"), .text(nowText()),
                        .text(node),
                    ])
            }
            // A node trusts its own key: bundles it wrote itself verify on re-ingest.
            try db.execute(
                "INSERT INTO ds_trusted_key (node_id, public_key, trusted_at) VALUES (?, ?, ?)",
                [.text(node), .text(pub), .text(nowText())])
            return Result(nodeId: node, created: true, publicKey: pub)
        }
    }
}

/// `datajoin key` and `datajoin trust`.
public enum Trust {
    /// This node's name and its public-key token (signing and encryption keys in one word).
    public static func publicKey(_ db: Database) throws -> (node: String, key: String) {
        let me = try NodeIdentity.load(db)
        return (me.nodeId, EncryptionKeys.token(signing: me.publicKey, encryption: try EncryptionKeys.current(db)))
    }

    /// Trusts `publicKey` for `node`. A node already trusted with another key keeps it unless
    /// `replace` is given (as ssh refuses a changed host key): a swapped key would quarantine
    /// every genuine bundle of that node, or let an impostor in. A node never trusts its own
    /// name or its own key for another name.
    /// Returns warnings: a node trusted again after a revoke lacks what was written meanwhile.
    @discardableResult
    public static func trust(_ db: Database, node: String, publicKey: String, replace: Bool = false) throws
        -> [String]
    {
        let me = try NodeIdentity.load(db)
        guard NodeName.isValid(node) else { throw DataJoinError(.usage, "invalid node name '\(node.prefix(80))'") }
        guard let parsed = EncryptionKeys.parse(publicKey),
            (try? Curve25519.Signing.PublicKey(rawRepresentation: parsed.signing)) != nil
        else {
            // Said why (found from outside: "not a DataJoin public key" for a well-formed word).
            if EncryptionKeys.hasWeakEncryptionPart(publicKey) {
                throw DataJoinError(
                    .usage,
                    "the encryption part of that key is a weak (small-order) point: anyone could read what is encrypted to it; "
                        + "run 'datajoin key --rotate' on \(node) and trust the word it prints (docs/encryption.md); nothing changed"
                )
            }
            throw DataJoinError(
                .usage,
                "'\(publicKey.prefix(80))' is not a DataJoin public key: expected the one word 'datajoin key' prints (dj2-…, or 64 hex digits from an older datajoin)"
            )
        }
        let raw = parsed.signing
        if node == me.nodeId {
            throw DataJoinError(.usage, "\(node) is this node's own name; a node trusts its own key already")
        }
        if raw == me.publicKey {
            throw DataJoinError(
                .usage,
                "that is this node's own public key (\(fingerprint(raw))); trust \(node) with the key 'datajoin key' prints on \(node)"
            )
        }
        // One key signs as one node: a key trusted for another name would let that node's
        // bundles pass as this one's.
        if let other = try db.firstRow(
            "SELECT node_id FROM ds_trusted_key WHERE public_key = ? AND node_id <> ? AND revoked_at IS NULL",
            [.text(Hex.encode(raw)), .text(node)])?.string(0)
        {
            throw DataJoinError(
                .usage,
                "that key (\(fingerprint(raw))) is already trusted for \(other); one key signs for one node. "
                    + "Revoke \(other) first ('datajoin trust --revoke \(other)') if the key moved to \(node); nothing changed"
            )
        }
        let current = try db.firstRow(
            "SELECT public_key, revoked_at, encryption_key FROM ds_trusted_key WHERE node_id = ?", [.text(node)])
        // The older form of the same signing key keeps the encryption key known already.
        var encryption = parsed.encryption
        if let current, current.values[1].isNull, let old = Hex.decode(current.string(0) ?? ""), !replace {
            let oldEncryption = current.string(2).flatMap(Hex.decode)
            if encryption == nil, old == raw { encryption = oldEncryption }
            if old != raw || (oldEncryption != nil && encryption != oldEncryption) {
                let (was, now) =
                    old != raw
                    ? (fingerprint(old), fingerprint(raw))
                    : (fingerprint(oldEncryption ?? []), fingerprint(encryption ?? []))
                throw DataJoinError(
                    .usage,
                    "\(node) is trusted with another \(old != raw ? "" : "encryption ")key (\(was)); the new one is \(now). "
                        + "If \(node) really has a new key (it was set up again, or rotated), run the same command with --replace; nothing changed"
                )
            }
        }
        try db.retryingWrite { _ in
            try db.execute("DELETE FROM ds_trusted_key WHERE node_id = ?", [.text(node)])
            try db.execute(
                "INSERT INTO ds_trusted_key (node_id, public_key, trusted_at, encryption_key) VALUES (?, ?, ?, ?)",
                [
                    .text(node), .text(Hex.encode(raw)), .text(nowText()),
                    encryption.map { .text(Hex.encode($0)) } ?? .null,
                ])
            // A peer trusted again after a revoke starts anew, as one first heard from now: while
            // it was revoked this node pruned what it relayed without waiting for it, and
            // `prune` and `export --relay --resend` name it until it re-joins (it lacked those
            // changes for good and nothing said so; found from outside).
            if let current, !current.values[1].isNull { try RelayStream.notePeerStart(db, peer: node) }
        }
        guard let current, !current.values[1].isNull else { return [] }
        // Bundles written meanwhile were encrypted to the others only, or pruned without
        // waiting for it: it lacks them, and nothing else would say so (found from outside: a
        // peer trusted again skipped them on every ingest, exit 0, `check` OK).
        return [
            "\(node) was revoked here (\(current.string(1) ?? "")): what this node sent meanwhile did not reach it "
                + "(bundles encrypted to the others only, relayed changes pruned without waiting for it); "
                + "send it again with 'datajoin export --resend --peer \(node) --to FOLDER', "
                + "adding --relay on a node that relays others' changes"
        ]
    }

    /// Why ingest would refuse a bundle of this header on this node for trust, or nil: what
    /// `verify --db` says besides the file's own integrity.
    /// Why ingest here would refuse a file of this header, in its class: not trusted (77), or
    /// signed by another key than the sender's trusted one (65, as ingest says it; found from
    /// outside: `verify --db` exited 77 where ingest exited 65).
    public static func refusal(_ db: Database, header: BundleHeader) throws -> DataJoinError? {
        switch try key(db, node: header.sender) {
        case .failure(let e): return e
        case .success(let k):
            if Array(k.rawRepresentation) != header.publicKey { return differentKey(header.sender) }
            return nil
        }
    }

    /// The refusal of a file whose sender is trusted with another key.
    static func differentKey(_ sender: String) -> DataJoinError {
        // The cure named: a late file of a node set up again under its name holds changes that
        // may exist nowhere else, and the refusal said nothing of them (found from outside).
        DataJoinError.bundle(
            "claims to come from \(sender) but carries a different key than the one trusted for \(sender): forged, or written before \(sender) was set up again with a new key (its changes may exist nowhere else: docs/delivery.md, 'A late bundle of a node set up again')"
        )
    }

    /// A short fingerprint of a public key, as ssh shows one: SHA256 in base64, 16 characters.
    public static func fingerprint(_ raw: [UInt8]) -> String {
        "SHA256:" + Data(SHA256.hash(data: raw)).base64EncodedString().prefix(16)
    }

    public static func revoke(_ db: Database, node: String) throws -> Bool {
        let me = try NodeIdentity.load(db)
        // Its own key revoked, a node refused its own files in every shared folder, and `trust`
        // could not undo it (found from outside).
        if node == me.nodeId {
            throw DataJoinError(
                .usage,
                "\(node) is this node's own name; a node cannot revoke its own key (if it leaked, 'datajoin key --rotate' makes a new one); nothing changed"
            )
        }
        return try db.retryingWrite { _ in
            try db.execute(
                "UPDATE ds_trusted_key SET revoked_at = ? WHERE node_id = ? AND revoked_at IS NULL",
                [.text(nowText()), .text(node)]) > 0
        }
    }

    /// The trusted key of a node, or a reason why there is none.
    static func key(_ db: Database, node: String) throws -> Result<Curve25519.Signing.PublicKey, DataJoinError> {
        guard
            let r = try db.firstRow(
                "SELECT public_key, revoked_at FROM ds_trusted_key WHERE node_id = ?", [.text(node)])
        else {
            return .failure(
                DataJoinError(
                    .untrusted,
                    "sender \(node) is not trusted here: run 'datajoin trust --db URL \(node) PUBKEY' with the key 'datajoin key' prints on \(node)"
                ))
        }
        if !r.values[1].isNull { return .failure(DataJoinError(.untrusted, "sender \(node)'s key was revoked")) }
        guard let raw = Hex.decode(r.string(0) ?? ""), let k = try? Curve25519.Signing.PublicKey(rawRepresentation: raw)
        else {
            return .failure(DataJoinError(.untrusted, "the stored key of \(node) is damaged; trust it again"))
        }
        return .success(k)
    }
}
