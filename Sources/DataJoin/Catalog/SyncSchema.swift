import Foundation

/// DataJoin's own tables, installed by `datajoin init`. Names keep the seed's vocabulary
/// (docs/tables.md describes every column).
enum SyncSchema {
    /// Bumped when the tables change; stored in ds_node.schema_version.
    static let version = 25

    static func ddl(_ dialect: Dialect) -> SQL {
        let id = dialect.autoIdColumn
        let blob = dialect.bytesType
        let any = dialect.capturedValueType
        let text = dialect.textType
        let options = dialect.tableOptions
        return """
            CREATE TABLE IF NOT EXISTS ds_node (
                node_id \(dialect.keyTextType(255)) PRIMARY KEY,
                epoch \(text) NOT NULL,
                schema_version BIGINT NOT NULL,
                public_key \(text) NOT NULL,
                hlc BIGINT NOT NULL DEFAULT 0,
                next_seq BIGINT NOT NULL DEFAULT 1,
                created_at \(text) NOT NULL
            )\(options);
            CREATE TABLE IF NOT EXISTS ds_node_key (
                node_id \(dialect.keyTextType(255)) PRIMARY KEY,
                private_key \(text) NOT NULL
            )\(options);
            CREATE TABLE IF NOT EXISTS ds_setting (
                name \(dialect.keyTextType(255)) PRIMARY KEY,
                value \(text) NOT NULL
            )\(options);
            CREATE TABLE IF NOT EXISTS ds_program_parameter (
                id BIGINT PRIMARY KEY,
                programtype \(text) NOT NULL,
                description \(text),
                active_flag \(text) NOT NULL DEFAULT 'Y',
                status \(text),
                fromserver \(text),
                fromdb \(text),
                fromtable \(text),
                fromconnectionstring \(text),
                fromoutboxpointer BIGINT NOT NULL DEFAULT 0,
                toserver \(text),
                todb \(text),
                totable \(text),
                toconnectionstring \(text),
                sort_ty \(text),
                sort_seq BIGINT,
                org_id \(text),
                update_datetime \(text),
                updated_by_user \(text),
                updated_by_server \(text)
            )\(options);
            CREATE TABLE IF NOT EXISTS ds_key_block (
                block BIGINT PRIMARY KEY,
                added_at \(dialect.keyTextType(64)) NOT NULL
            )\(options);
            CREATE TABLE IF NOT EXISTS ds_key_grant (
                block BIGINT PRIMARY KEY,
                node_id \(dialect.keyTextType(255)) NOT NULL,
                granted_at \(text) NOT NULL
            )\(options);
            CREATE TABLE IF NOT EXISTS ds_tracked_table (
                table_name \(dialect.keyTextType(255)) PRIMARY KEY,
                pk_columns \(text) NOT NULL,
                tracked_at \(text) NOT NULL
            )\(options);
            CREATE TABLE IF NOT EXISTS ds_tracked_column (
                table_name \(dialect.keyTextType(255)) NOT NULL,
                position BIGINT NOT NULL,
                column_name \(dialect.keyTextType(255)) NOT NULL,
                data_type \(text) NOT NULL,
                pk_position BIGINT NOT NULL,
                PRIMARY KEY (table_name, column_name)
            )\(options);
            CREATE TABLE IF NOT EXISTS ds_change_outbox (
                id \(id),
                object_database \(text),
                object_table \(text) NOT NULL,
                object_pk_attribute \(text),
                object_attribute \(text),
                object_id \(text) NOT NULL,
                object_value \(any),
                object_operation \(text) NOT NULL CHECK (\(operationCheck)),
                updated_by_server_id \(text),
                captured_ms BIGINT,
                updated_by_user_id \(text),
                object_value_old \(any),
                note1 \(text),
                source_id BIGINT,
                seq BIGINT,
                hlc BIGINT,
                cl BIGINT
            )\(options);
            \(dialect.extraSchema)
            CREATE UNIQUE INDEX IF NOT EXISTS ds_change_outbox_seq ON ds_change_outbox (seq)\(dialect.partialIndex("seq IS NOT NULL"));
            \(inboxTable(dialect, name: "ds_change_inbox"))
            CREATE UNIQUE INDEX IF NOT EXISTS ds_change_inbox_origin_seq ON ds_change_inbox (origin, origin_epoch, seq);
            \(forkedTable(dialect))
            \(dialect.dropIndex("ds_change_inbox_held", on: "ds_change_inbox"));
            \(dialect.dropIndex("ds_change_inbox_held_row", on: "ds_change_inbox"));
            CREATE TABLE IF NOT EXISTS ds_change_held (
                id BIGINT PRIMARY KEY,
                object_table \(dialect.keyTextType(255)) NOT NULL,
                object_id \(blob) NOT NULL,
                reason \(text) NOT NULL
            )\(options);
            CREATE INDEX IF NOT EXISTS ds_change_held_row ON ds_change_held (object_table, \(dialect.indexed("object_id")));
            CREATE TABLE IF NOT EXISTS ds_change_stamp (
                origin \(dialect.keyTextType(255)) NOT NULL,
                origin_epoch \(dialect.keyTextType(255)) NOT NULL,
                seq BIGINT NOT NULL,
                hlc BIGINT NOT NULL,
                inbox_id BIGINT NOT NULL,
                PRIMARY KEY (origin, origin_epoch, seq)
            )\(options);
            CREATE INDEX IF NOT EXISTS ds_change_stamp_hlc ON ds_change_stamp (hlc);
            CREATE TABLE IF NOT EXISTS ds_bundle_seen (
                id \(id),
                sha256 \(dialect.keyTextType(255)) NOT NULL UNIQUE,
                file_name \(dialect.keyTextType(255)) NOT NULL,
                origin \(text) NOT NULL,
                origin_epoch \(text) NOT NULL,
                first_seq BIGINT NOT NULL,
                last_seq BIGINT NOT NULL,
                change_count BIGINT NOT NULL,
                loaded_count BIGINT NOT NULL,
                ingested_at \(text) NOT NULL,
                file_size BIGINT,
                file_mtime \(dialect.keyTextType(255))
            )\(options);
            CREATE INDEX IF NOT EXISTS ds_bundle_seen_file ON ds_bundle_seen (file_name, file_size, file_mtime);
            CREATE TABLE IF NOT EXISTS ds_row_version (
                object_table \(dialect.keyTextType(255)) NOT NULL,
                object_id \(dialect.keyBytesType) NOT NULL,
                cl BIGINT NOT NULL,
                hlc BIGINT NOT NULL,
                node \(text) NOT NULL,
                PRIMARY KEY (object_table, object_id)
            )\(options);
            CREATE TABLE IF NOT EXISTS ds_column_version (
                object_table \(dialect.keyTextType(255)) NOT NULL,
                object_id \(dialect.keyBytesType) NOT NULL,
                object_attribute \(dialect.keyTextType(255)) NOT NULL,
                hlc BIGINT NOT NULL,
                node \(text) NOT NULL,
                PRIMARY KEY (object_table, object_id, object_attribute)
            )\(options);
            CREATE TABLE IF NOT EXISTS ds_conflict (
                id \(id),
                object_table \(text) NOT NULL,
                object_id \(text) NOT NULL,
                object_attribute \(text),
                winner_value \(text),
                winner_hlc BIGINT NOT NULL,
                winner_node \(text) NOT NULL,
                loser_value \(text),
                loser_hlc BIGINT NOT NULL,
                loser_node \(text) NOT NULL,
                reason \(text) NOT NULL,
                recorded_at \(text) NOT NULL
            )\(options);
            CREATE TABLE IF NOT EXISTS ds_key_collision (
                id \(id),
                object_table \(text) NOT NULL,
                object_id \(text) NOT NULL,
                row_node \(text) NOT NULL,
                row_hlc BIGINT NOT NULL,
                insert_node \(text) NOT NULL,
                insert_hlc BIGINT NOT NULL,
                recorded_at \(text) NOT NULL
            )\(options);
            CREATE TABLE IF NOT EXISTS ds_trusted_key (
                node_id \(dialect.keyTextType(255)) PRIMARY KEY,
                public_key \(text) NOT NULL,
                trusted_at \(text) NOT NULL,
                revoked_at \(text),
                encryption_key \(text)
            )\(options);
            CREATE TABLE IF NOT EXISTS ds_encryption_key (
                id \(id),
                public_key \(text) NOT NULL,
                private_key \(text) NOT NULL,
                created_at \(text) NOT NULL,
                retired_at \(text)
            )\(options);
            CREATE TABLE IF NOT EXISTS ds_origin_state (
                origin \(dialect.keyTextType(255)) NOT NULL,
                origin_epoch \(dialect.keyTextType(255)) NOT NULL,
                contiguous BIGINT NOT NULL DEFAULT 0,
                max_seq BIGINT NOT NULL DEFAULT 0,
                inbox_floor BIGINT NOT NULL DEFAULT 0,
                last_bundle \(text),
                last_seen_at \(text),
                PRIMARY KEY (origin, origin_epoch)
            )\(options);
            CREATE TABLE IF NOT EXISTS ds_peer_receipt (
                peer \(dialect.keyTextType(255)) NOT NULL,
                origin \(dialect.keyTextType(255)) NOT NULL,
                origin_epoch \(dialect.keyTextType(255)) NOT NULL,
                seq BIGINT NOT NULL,
                updated_at \(text) NOT NULL,
                PRIMARY KEY (peer, origin, origin_epoch)
            )\(options);
            CREATE TABLE IF NOT EXISTS ds_peer_epoch (
                peer \(dialect.keyTextType(255)) NOT NULL,
                epoch \(dialect.keyTextType(255)) NOT NULL,
                is_current BIGINT NOT NULL,
                seen_at \(text) NOT NULL,
                PRIMARY KEY (peer, epoch)
            )\(options);
            CREATE TABLE IF NOT EXISTS ds_relay_held (
                relayer \(dialect.keyTextType(255)) NOT NULL,
                relayer_epoch \(dialect.keyTextType(255)) NOT NULL,
                after_id BIGINT NOT NULL,
                last_id BIGINT NOT NULL,
                PRIMARY KEY (relayer, relayer_epoch, after_id)
            )\(options);
            CREATE TABLE IF NOT EXISTS ds_peer_relay_receipt (
                peer \(dialect.keyTextType(255)) NOT NULL,
                relayer_epoch \(dialect.keyTextType(255)) NOT NULL,
                after_id BIGINT NOT NULL,
                last_id BIGINT NOT NULL,
                updated_at \(text) NOT NULL,
                PRIMARY KEY (peer, relayer_epoch, after_id)
            )\(options);
            CREATE TABLE IF NOT EXISTS ds_quarantine (
                path \(dialect.keyTextType(768)) PRIMARY KEY,
                reason \(text) NOT NULL,
                quarantined_at \(text) NOT NULL
            )\(options);
            CREATE TABLE IF NOT EXISTS ds_apply_state (
                id BIGINT PRIMARY KEY,
                applying BIGINT NOT NULL DEFAULT 0,
                writing \(dialect.keyTextType(255)) NOT NULL DEFAULT ''
            )\(options);
            """
    }

    /// The payload is the last column: SQLite then writes a large one straight into the row's
    /// pages (a zeroblob, then incremental blob I/O) without building a record that holds it.
    static func inboxTable(_ dialect: Dialect, name: SQL) -> SQL {
        let id = dialect.autoIdColumn
        let blob = dialect.bytesType
        let text = dialect.textType
        let options = dialect.tableOptions
        return """
            CREATE TABLE IF NOT EXISTS \(name) (
                id \(id),
                origin \(dialect.keyTextType(255)) NOT NULL,
                origin_epoch \(dialect.keyTextType(255)) NOT NULL,
                seq BIGINT NOT NULL,
                hlc BIGINT NOT NULL,
                source_id BIGINT NOT NULL DEFAULT 0,
                object_table \(text) NOT NULL,
                object_id \(blob) NOT NULL,
                object_pk_attribute \(text),
                object_operation \(text) NOT NULL,
                cl BIGINT NOT NULL,
                bundle_id BIGINT NOT NULL,
                -- Unused since schema 8 (always 'new' and NULL): a held change is a row of
                -- ds_change_held, so that holding it never rewrites this row and its payload.
                status \(text) NOT NULL DEFAULT 'new',
                reason \(text),
                received_at \(text) NOT NULL,
                object_value \(blob)
            )\(options);
            """
    }

    /// Not `IN ('I','U','D')`: SQLite builds an IN list's lookup table once per statement run,
    /// and a capture trigger is one run per row: a quarter of a tracked insert went into it.
    static let operationCheck: SQL = "object_operation = 'I' OR object_operation = 'U' OR object_operation = 'D'"

    static let inboxColumnList: SQL =
        "id, origin, origin_epoch, seq, hlc, source_id, object_table, object_id, object_pk_attribute, object_operation, cl, bundle_id, status, reason, received_at, object_value"

    /// The other copy of a seq a restored node reused, whichever it is, until the origin's new
    /// epoch tells which one it sent again (`Forks.resolve`).
    static func forkedTable(_ dialect: Dialect) -> SQL {
        """
        \(inboxTable(dialect, name: "ds_change_forked"))
        CREATE UNIQUE INDEX IF NOT EXISTS ds_change_forked_copy ON ds_change_forked (origin, origin_epoch, seq, hlc);
        """
    }

    /// Brings the tables of a node initialized by an older DataJoin up to this version.
    static func upgrade(_ db: Database, from version: Int64) throws {
        guard version < Int64(Self.version) else { return }
        try db.retryingWrite { _ in
            // Read again under the writer lock: two commands started at once on an old node
            // both read its old version, and the second ran every step again on the tables the
            // first had just upgraded.
            let version = try db.scalar("SELECT schema_version FROM ds_node").asInt64 ?? version
            guard version < Int64(Self.version) else { return }
            try db.dialect.lockForUpgrade(db)
            if version < 2 {
                try db.executeScript("ALTER TABLE ds_change_inbox ADD COLUMN object_pk_attribute TEXT")
                try db.executeScript("ALTER TABLE ds_bundle_seen ADD COLUMN file_size BIGINT")
                try db.executeScript("ALTER TABLE ds_bundle_seen ADD COLUMN file_mtime TEXT")
            }
            if version < 4 {
                // Stamping reads unstamped rows in (source transaction, id) order: this index
                // gives that order without sorting every unstamped row for every chunk.
                try db.executeScript(db.dialect.dropIndex("ds_change_outbox_unstamped", on: "ds_change_outbox"))
                // Partial now: as a full index it served `seq IS NULL` too, and both planners
                // chose it for the backlog and then sorted the whole backlog for every chunk.
                try db.executeScript(db.dialect.dropIndex("ds_change_outbox_seq", on: "ds_change_outbox"))
            }
            // Steps of this brand alone (SQLite: the stamping cursor, the payload last in the
            // inbox's row).
            try db.dialect.upgradeSteps(db, from: version)
            if version < 6 {
                // Every seq of an origin above it and up to its mark is in the inbox (`check`).
                // Unknown for what an older version pruned: the mark itself.
                // Versions before 6 wrote a column version without the implicit row version of a
                // row present before tracking (generation 1, the zero version); the importer then
                // took the row for unversioned and ignored its column versions.
                try db.executeScript(
                    """
                    INSERT INTO ds_row_version (object_table, object_id, cl, hlc, node)
                    SELECT DISTINCT c.object_table, c.object_id, 1, 0, '' FROM ds_column_version AS c WHERE NOT EXISTS
                      (SELECT 1 FROM ds_row_version AS r WHERE r.object_table = c.object_table AND r.object_id = c.object_id)
                    """)
                if try !hasColumn(db, table: "ds_origin_state", column: "inbox_floor") {
                    try db.executeScript("ALTER TABLE ds_origin_state ADD COLUMN inbox_floor BIGINT NOT NULL DEFAULT 0")
                    try db.executeScript("UPDATE ds_origin_state SET inbox_floor = contiguous")
                }
            }
            try db.executeScript(ddl(db.dialect))
            if version < 8 {
                // Held changes move to their own table: marking one held rewrote its inbox row,
                // payload and all (SQLite held a 64 MiB value twice more for it).
                try db.executeScript(
                    """
                    INSERT INTO ds_change_held (id, object_table, object_id, reason)
                    SELECT id, object_table, object_id, coalesce(reason, 'held') FROM ds_change_inbox WHERE status = 'held';
                    UPDATE ds_change_inbox SET status = 'new', reason = NULL WHERE status <> 'new' OR reason IS NOT NULL;
                    """)
            }
            if version < 10 {
                // Encrypted bundles (format v2): peers' encryption keys, and this node's own pair.
                if try !hasColumn(db, table: "ds_trusted_key", column: "encryption_key") {
                    try db.executeScript("ALTER TABLE ds_trusted_key ADD COLUMN encryption_key TEXT")
                }
                try EncryptionKeys.ensure(db)
                try db.dialect.protectPrivateKey(db)
            }
            if version < 12 {
                // MariaDB: tracked parents capture their cascades (docs/capture.md); a node that
                // tracked them before has no such triggers, and its key changes lost children.
                _ = try db.dialect.refreshCascadeCapture(db)
            }
            if version < 17, try !hasColumn(db, table: "ds_apply_state", column: "writing") {
                // Which table the importer writes: capture skips only that (docs/capture.md).
                try db.executeScript(
                    "ALTER TABLE ds_apply_state ADD COLUMN writing \(db.dialect.keyTextType(255)) NOT NULL DEFAULT ''")
            }
            // SQLite's triggers wrote some reals a unit in the last place off (before 13); before
            // 17 every brand's capture skipped all of an import's writes, cascades too.
            try db.dialect.upgradeCapture(db, from: Int(version))
            if version < 20 { try db.executeScript(forkedTable(db.dialect)) }
            if version < 16 {
                // Which tables have capture DataJoin installed, so that losing it is drift (a
                // table rebuilt or replaced kept no triggers, and nothing said so; found from
                // outside). A table tracked with --no-triggers has none, and none is expected.
                for t in try CaptureTriggers.trackedAndPresent(db)
                where try db.dialect.captureInstalled(db, table: t.name) {
                    try Settings.set(db, CaptureTriggers.installedPrefix + t.name, 1)
                }
            }
            try db.execute(
                "INSERT INTO ds_program_parameter (id, programtype, description, active_flag, status, fromtable, fromoutboxpointer) SELECT ?, 'relay', 'inbox to relayed bundles', 'Y', 'idle', 'ds_change_inbox', 0 WHERE NOT EXISTS (SELECT 1 FROM ds_program_parameter WHERE id = ?)",
                [.integer(Program.relay), .integer(Program.relay)])
            try db.execute("UPDATE ds_node SET schema_version = ?", [.integer(Int64(Self.version))])
        }
    }

    static func hasColumn(_ db: Database, table: String, column: String) throws -> Bool {
        try db.dialect.hasColumn(db, table: table, column: column)
    }

    static func installed(_ db: Database) throws -> Bool { try db.dialect.isInstalled(db) }

    /// The columns of each of DataJoin's tables and the table of each of its indexes, as this
    /// version creates them: its DDL run in a database in memory (a DDL it cannot run fails
    /// `init`, never switches the check off).
    static func created() throws -> (columns: [String: [String]], indexes: [String: String]) {
        try createdOnce.get()
    }
    private static let createdOnce = Result { try DatabaseOpener.schemaCreated(by: ddl) }

    /// What of DataJoin's names another program holds, said as "its …": a table that lacks
    /// columns this version creates (another program's `ds_setting`, or one an older DataJoin's
    /// `init` left unfinished), a view, or an index of DataJoin's name on another table. `init`
    /// kept each (`IF NOT EXISTS`), said it initialized the node, and every later command failed
    /// on it, or ran without the inbox's unique index (found from outside). Nil when none.
    static func foreignObject(_ db: Database) throws -> String? {
        let schema = try created()
        for (name, expected) in schema.columns.sorted(by: { $0.key < $1.key }) {
            guard let isTable = try db.dialect.isTable(db, name) else { continue }
            guard isTable else { return "its \(name) is a view, not a table, another program's" }
            let have = try db.dialect.columns(db, of: name).map(\.name)
            let missing = expected.filter { !have.contains($0) }
            // None seen: a table of another schema of the search path (PostgreSQL), not judged.
            guard !have.isEmpty, !missing.isEmpty else { continue }
            // Names are compared as written (PostgreSQL's `"Name"` is not `name`); where the
            // brand folds case, the message says so rather than call them missing.
            let folded = Set(have.map { $0.lowercased() })
            let what =
                missing.allSatisfy { folded.contains($0.lowercased()) }
                ? "has columns DataJoin's has only in other letter case"
                : "lacks columns DataJoin's has"
            let listed =
                missing.prefix(8).joined(separator: ", ") + (missing.count > 8 ? " and \(missing.count - 8) more" : "")
            return "its table \(name) \(what) (\(listed)), another program's or one an unfinished init left"
        }
        for (index, table) in schema.indexes.sorted(by: { $0.key < $1.key }) {
            if let holder = try db.dialect.holderOfIndexName(db, index), holder.lowercased() != table.lowercased() {
                return "the name of DataJoin's index \(index) (on \(table)) is taken by \(holder), another program's"
            }
        }
        return nil
    }
}

/// Program ids of the seed's ds_program_parameter rows.
public enum Program {
    public static let export: Int64 = 1000
    public static let `import`: Int64 = 1001
    /// The last inbox id written into a relayed bundle (`export --relay`).
    public static let relay: Int64 = 1002
}

func nowText() -> String { UTCText.iso8601(ms: Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))) }
