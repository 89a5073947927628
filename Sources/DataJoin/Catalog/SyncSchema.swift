import Foundation

/// DataJoin's own tables, installed by `datajoin init`. Names keep the seed's vocabulary
/// (docs/tables.md describes every column).
enum SyncSchema {
    /// Bumped when the tables change; stored in ds_node.schema_version.
    static let version = 8

    static func ddl(for brand: Brand) -> String {
        let id = brand == .sqlite ? "INTEGER PRIMARY KEY AUTOINCREMENT" : "BIGSERIAL PRIMARY KEY"
        let blob = brand == .sqlite ? "BLOB" : "BYTEA"
        let any = brand == .sqlite ? "" : "TEXT"
        return """
            CREATE TABLE IF NOT EXISTS ds_node (
                node_id TEXT PRIMARY KEY,
                epoch TEXT NOT NULL,
                schema_version BIGINT NOT NULL,
                public_key TEXT NOT NULL,
                hlc BIGINT NOT NULL DEFAULT 0,
                next_seq BIGINT NOT NULL DEFAULT 1,
                created_at TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS ds_node_key (
                node_id TEXT PRIMARY KEY,
                private_key TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS ds_setting (
                name TEXT PRIMARY KEY,
                value TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS ds_program_parameter (
                id BIGINT PRIMARY KEY,
                programtype TEXT NOT NULL,
                description TEXT,
                active_flag TEXT NOT NULL DEFAULT 'Y',
                status TEXT,
                fromserver TEXT,
                fromdb TEXT,
                fromtable TEXT,
                fromconnectionstring TEXT,
                fromoutboxpointer BIGINT NOT NULL DEFAULT 0,
                toserver TEXT,
                todb TEXT,
                totable TEXT,
                toconnectionstring TEXT,
                sort_ty TEXT,
                sort_seq BIGINT,
                org_id TEXT,
                update_datetime TEXT,
                updated_by_user TEXT,
                updated_by_server TEXT
            );
            CREATE TABLE IF NOT EXISTS ds_tracked_table (
                table_name TEXT PRIMARY KEY,
                pk_columns TEXT NOT NULL,
                tracked_at TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS ds_tracked_column (
                table_name TEXT NOT NULL,
                position BIGINT NOT NULL,
                column_name TEXT NOT NULL,
                data_type TEXT NOT NULL,
                pk_position BIGINT NOT NULL,
                PRIMARY KEY (table_name, column_name)
            );
            CREATE TABLE IF NOT EXISTS ds_change_outbox (
                id \(id),
                object_database TEXT,
                object_table TEXT NOT NULL,
                object_pk_attribute TEXT,
                object_attribute TEXT,
                object_id TEXT NOT NULL,
                object_value \(any),
                object_operation TEXT NOT NULL CHECK (object_operation IN ('I','U','D')),
                updated_by_server_id TEXT,
                captured_ms BIGINT,
                updated_by_user_id TEXT,
                object_value_old \(any),
                note1 TEXT,
                source_id BIGINT,
                seq BIGINT,
                hlc BIGINT,
                cl BIGINT
            );
            \(brand == .postgres ? "CREATE INDEX IF NOT EXISTS ds_change_outbox_unstamped_order ON ds_change_outbox (source_id, id) WHERE seq IS NULL;" : "")
            CREATE UNIQUE INDEX IF NOT EXISTS ds_change_outbox_seq ON ds_change_outbox (seq) WHERE seq IS NOT NULL;
            \(inboxTable(brand, name: "ds_change_inbox"))
            CREATE UNIQUE INDEX IF NOT EXISTS ds_change_inbox_origin_seq ON ds_change_inbox (origin, origin_epoch, seq);
            DROP INDEX IF EXISTS ds_change_inbox_held;
            DROP INDEX IF EXISTS ds_change_inbox_held_row;
            CREATE TABLE IF NOT EXISTS ds_change_held (
                id BIGINT PRIMARY KEY,
                object_table TEXT NOT NULL,
                object_id \(blob) NOT NULL,
                reason TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS ds_change_held_row ON ds_change_held (object_table, object_id);
            CREATE TABLE IF NOT EXISTS ds_bundle_seen (
                id \(id),
                sha256 TEXT NOT NULL UNIQUE,
                file_name TEXT NOT NULL,
                origin TEXT NOT NULL,
                origin_epoch TEXT NOT NULL,
                first_seq BIGINT NOT NULL,
                last_seq BIGINT NOT NULL,
                change_count BIGINT NOT NULL,
                loaded_count BIGINT NOT NULL,
                ingested_at TEXT NOT NULL,
                file_size BIGINT,
                file_mtime TEXT
            );
            CREATE INDEX IF NOT EXISTS ds_bundle_seen_file ON ds_bundle_seen (file_name, file_size, file_mtime);
            CREATE TABLE IF NOT EXISTS ds_row_version (
                object_table TEXT NOT NULL,
                object_id \(blob) NOT NULL,
                cl BIGINT NOT NULL,
                hlc BIGINT NOT NULL,
                node TEXT NOT NULL,
                PRIMARY KEY (object_table, object_id)
            );
            CREATE TABLE IF NOT EXISTS ds_column_version (
                object_table TEXT NOT NULL,
                object_id \(blob) NOT NULL,
                object_attribute TEXT NOT NULL,
                hlc BIGINT NOT NULL,
                node TEXT NOT NULL,
                PRIMARY KEY (object_table, object_id, object_attribute)
            );
            CREATE TABLE IF NOT EXISTS ds_conflict (
                id \(id),
                object_table TEXT NOT NULL,
                object_id TEXT NOT NULL,
                object_attribute TEXT,
                winner_value TEXT,
                winner_hlc BIGINT NOT NULL,
                winner_node TEXT NOT NULL,
                loser_value TEXT,
                loser_hlc BIGINT NOT NULL,
                loser_node TEXT NOT NULL,
                reason TEXT NOT NULL,
                recorded_at TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS ds_trusted_key (
                node_id TEXT PRIMARY KEY,
                public_key TEXT NOT NULL,
                trusted_at TEXT NOT NULL,
                revoked_at TEXT
            );
            CREATE TABLE IF NOT EXISTS ds_origin_state (
                origin TEXT NOT NULL,
                origin_epoch TEXT NOT NULL,
                contiguous BIGINT NOT NULL DEFAULT 0,
                max_seq BIGINT NOT NULL DEFAULT 0,
                inbox_floor BIGINT NOT NULL DEFAULT 0,
                last_bundle TEXT,
                last_seen_at TEXT,
                PRIMARY KEY (origin, origin_epoch)
            );
            CREATE TABLE IF NOT EXISTS ds_peer_receipt (
                peer TEXT NOT NULL,
                origin TEXT NOT NULL,
                origin_epoch TEXT NOT NULL,
                seq BIGINT NOT NULL,
                updated_at TEXT NOT NULL,
                PRIMARY KEY (peer, origin, origin_epoch)
            );
            CREATE TABLE IF NOT EXISTS ds_quarantine (
                path TEXT PRIMARY KEY,
                reason TEXT NOT NULL,
                quarantined_at TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS ds_apply_state (
                id BIGINT PRIMARY KEY,
                applying BIGINT NOT NULL DEFAULT 0
            );
            """
    }

    /// The payload is the last column: SQLite then writes a large one straight into the row's
    /// pages (a zeroblob, then incremental blob I/O) without building a record that holds it.
    static func inboxTable(_ brand: Brand, name: String) -> String {
        let id = brand == .sqlite ? "INTEGER PRIMARY KEY AUTOINCREMENT" : "BIGSERIAL PRIMARY KEY"
        let blob = brand == .sqlite ? "BLOB" : "BYTEA"
        return """
            CREATE TABLE IF NOT EXISTS \(name) (
                id \(id),
                origin TEXT NOT NULL,
                origin_epoch TEXT NOT NULL,
                seq BIGINT NOT NULL,
                hlc BIGINT NOT NULL,
                source_id BIGINT NOT NULL DEFAULT 0,
                object_table TEXT NOT NULL,
                object_id \(blob) NOT NULL,
                object_pk_attribute TEXT,
                object_operation TEXT NOT NULL,
                cl BIGINT NOT NULL,
                bundle_id BIGINT NOT NULL,
                -- Unused since schema 8 (always 'new' and NULL): a held change is a row of
                -- ds_change_held, so that holding it never rewrites this row and its payload.
                status TEXT NOT NULL DEFAULT 'new',
                reason TEXT,
                received_at TEXT NOT NULL,
                object_value \(blob)
            );
            """
    }

    static let inboxColumnList =
        "id, origin, origin_epoch, seq, hlc, source_id, object_table, object_id, object_pk_attribute, object_operation, cl, bundle_id, status, reason, received_at, object_value"

    /// SQLite nodes of versions before 6 have the payload in the middle of the inbox's row: the
    /// table is rebuilt with it last, ids and the AUTOINCREMENT counter kept (the import
    /// pointer is an id; no id may ever be handed out twice).
    static func movePayloadLast(_ db: Database) throws {
        guard db.brand == .sqlite,
            try db.scalar("SELECT name FROM pragma_table_info('ds_change_inbox') ORDER BY cid DESC LIMIT 1").asString
                != "object_value"
        else { return }
        let counter = try db.scalar("SELECT seq FROM sqlite_sequence WHERE name = 'ds_change_inbox'").asInt64 ?? 0
        try db.executeScript(inboxTable(.sqlite, name: "ds_change_inbox_v6"))
        try db.executeScript(
            "INSERT INTO ds_change_inbox_v6 (\(inboxColumnList)) SELECT \(inboxColumnList) FROM ds_change_inbox")
        try db.executeScript("DROP TABLE ds_change_inbox")
        try db.executeScript("ALTER TABLE ds_change_inbox_v6 RENAME TO ds_change_inbox")
        // An inbox emptied by pruning has no counter row after the copy: write it back either way.
        let top = max(counter, try db.scalar("SELECT coalesce(max(id), 0) FROM ds_change_inbox").asInt64 ?? 0)
        try db.execute("DELETE FROM sqlite_sequence WHERE name = 'ds_change_inbox'")
        try db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('ds_change_inbox', ?)", [.integer(top)])
    }

    /// Brings the tables of a node initialized by an older DataJoin up to this version.
    static func upgrade(_ db: Database, from version: Int64) throws {
        guard version < Int64(Self.version) else { return }
        try db.inTransaction {
            if version < 2 {
                try db.executeScript("ALTER TABLE ds_change_inbox ADD COLUMN object_pk_attribute TEXT")
                try db.executeScript("ALTER TABLE ds_bundle_seen ADD COLUMN file_size BIGINT")
                try db.executeScript("ALTER TABLE ds_bundle_seen ADD COLUMN file_mtime TEXT")
            }
            if version < 4 {
                // Stamping reads unstamped rows in (source transaction, id) order: this index
                // gives that order without sorting every unstamped row for every chunk.
                try db.executeScript("DROP INDEX IF EXISTS ds_change_outbox_unstamped")
                // Partial now: as a full index it served `seq IS NULL` too, and both planners
                // chose it for the backlog and then sorted the whole backlog for every chunk.
                try db.executeScript("DROP INDEX IF EXISTS ds_change_outbox_seq")
            }
            if version < 5 && db.brand == .sqlite {
                // Stamping finds the backlog above a stored id instead of through an index
                // (Stamper.stampedThroughSetting): the id below the first unstamped row.
                try db.execute(
                    """
                    INSERT INTO ds_setting (name, value) SELECT ?, coalesce((SELECT min(id) - 1 FROM ds_change_outbox WHERE seq IS NULL),
                      (SELECT max(id) FROM ds_change_outbox), 0) WHERE true ON CONFLICT (name) DO UPDATE SET value = excluded.value
                    """, [.text(Stamper.stampedThroughSetting)])
                try db.executeScript("DROP INDEX IF EXISTS ds_change_outbox_unstamped_order")
            }
            if version < 6 {
                // Versions before 6 could move SQLite's stamping cursor over rows they never
                // stamped (a backlog over one export step): such rows go back into the backlog
                // and the next export stamps and sends them.
                _ = try Stamper.repairStranded(db)
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
            if version < 7 {
                // The payload last in the inbox's row (SQLite; a no-op where it is already).
                try movePayloadLast(db)
            }
            try db.executeScript(ddl(for: db.brand))
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
            try db.execute(
                "INSERT INTO ds_program_parameter (id, programtype, description, active_flag, status, fromtable, fromoutboxpointer) SELECT ?, 'relay', 'inbox to relayed bundles', 'Y', 'idle', 'ds_change_inbox', 0 WHERE NOT EXISTS (SELECT 1 FROM ds_program_parameter WHERE id = ?)",
                [.integer(Program.relay), .integer(Program.relay)])
            try db.execute("UPDATE ds_node SET schema_version = ?", [.integer(Int64(Self.version))])
        }
    }

    static func hasColumn(_ db: Database, table: String, column: String) throws -> Bool {
        let sql =
            db.brand == .sqlite
            ? "SELECT count(*) FROM pragma_table_info(?) WHERE name = ?"
            : "SELECT count(*) FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass(?) AND attname = ? AND NOT attisdropped"
        return try db.scalar(sql, [.text(table), .text(column)]).asInt64 ?? 0 > 0
    }

    static func installed(_ db: Database) throws -> Bool {
        let sql =
            db.brand == .sqlite
            ? "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'ds_node'"
            : "SELECT count(*) FROM (SELECT to_regclass('ds_node') AS t) AS ds_r WHERE t IS NOT NULL"
        return try db.scalar(sql).asInt64 ?? 0 > 0
    }
}

/// Program ids of the seed's ds_program_parameter rows.
public enum Program {
    public static let export: Int64 = 1000
    public static let `import`: Int64 = 1001
    /// The last inbox id written into a relayed bundle (`export --relay`).
    public static let relay: Int64 = 1002
}

func nowText() -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return f.string(from: Date())
}
