import Foundation

/// Capture on MariaDB: row triggers (MariaDB has no statement triggers with transition
/// tables). Inserted rows are written as each value's byte count and text (`rowValues`), the
/// column names once in `object_attribute` as PostgreSQL's are. TRUNCATE fires no trigger on
/// MariaDB and is not captured (docs/capture.md).
extension MariaDBDialect {
    public func installCapture(_ db: Database, _ t: TableInfo) throws {
        let n = CaptureTriggers.names(t.name)
        for name in [n.insert, n.update, n.delete] { _ = try identifier(name) }
        // This table's triggers on another table (it was renamed away, and a new one took its
        // name) capture that table's writes under this name, and CREATE OR REPLACE cannot move
        // them (found from outside: `track` failed with error 1360): dropped first.
        // Another tracked table's capture triggers on this one (renamed over it) captured its
        // writes under both names (found from outside): dropped too. Its own cascade triggers stay.
        let cascades = Self.cascadeTriggerNames(t.name)
        let elsewhere = try db.rows(
            """
            SELECT TRIGGER_NAME FROM information_schema.TRIGGERS
            WHERE TRIGGER_SCHEMA = DATABASE() AND ((TRIGGER_NAME IN (?, ?, ?) AND BINARY EVENT_OBJECT_TABLE <> BINARY ?)
              OR (BINARY EVENT_OBJECT_TABLE = BINARY ? AND SUBSTRING(TRIGGER_NAME, 1, 11) = 'ds_capture_' AND TRIGGER_NAME NOT IN (?, ?, ?, ?, ?)))
            """,
            [
                .text(n.insert), .text(n.update), .text(n.delete), .text(t.name), .text(t.name), .text(n.insert),
                .text(n.update), .text(n.delete), .text(cascades.delete), .text(cascades.update),
            ]
        ).compactMap { $0.string(0) }
        for trigger in elsewhere { try db.executeScript("DROP TRIGGER IF EXISTS \(Identifier(trigger))") }
        // Replaced in place, not dropped first: MariaDB commits each trigger statement, and a
        // write between a drop and its create went uncaptured (found from outside: `track` of an
        // altered table lost about ten statements of a running application each time).
        for statement in try Self.triggers(db, t) { try db.executeScript(SQL(raw: statement)) }
    }

    public func removeCapture(_ db: Database, table: String) throws {
        let n = CaptureTriggers.names(table)
        let cascades = Self.cascadeTriggerNames(table)
        for trigger in [n.insert, n.update, n.delete, cascades.delete, cascades.update] {
            try db.executeScript("DROP TRIGGER IF EXISTS \(Identifier(trigger))")
        }
        // What was recorded of its cascade capture goes with it.
        try db.execute(
            "DELETE FROM ds_setting WHERE name IN (?, ?)",
            [.text(Self.cascadeSetting + table), .text(Self.cascadeKeysSetting + table)])
    }

    public var captureNamesFixedAtInstall: Bool { false }
    public var commitsEachDDL: Bool { true }
    public var clampsIntegersOnAlter: Bool { true }
    public var recordsSourceTransactions: Bool { false }
    public var typeChangesRewriteValues: Bool { true }
    public func schemaCure(schema: Substring, table: Substring) -> String {
        "DataJoin tracks the tables of the database in the URL, named without it; to sync \(table) of database \(schema), "
            + "use mariadb://…/\(schema) and track \(table)"
    }

    public func isCurrentSchema(_ db: Database, _ schema: String) throws -> Bool {
        try db.scalar("SELECT DATABASE()").asString == schema
    }

    public func notCapturable(_ db: Database, table: String) throws -> String? {
        let type = try db.scalar(
            "SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND BINARY TABLE_NAME = BINARY ?",
            [.text(table)]
        ).asString
        if type == "VIEW" { return "a view, not a table: track the tables it reads" }
        // The capture triggers cast every column to text, which a spatial type refuses: every
        // write of the application failed once it was tracked (found from outside).
        if let spatial = try db.firstRow(
            """
            SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS
            WHERE TABLE_SCHEMA = DATABASE() AND BINARY TABLE_NAME = BINARY ? AND DATA_TYPE IN
              ('geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon',
               'geometrycollection')
            ORDER BY ORDINAL_POSITION LIMIT 1
            """, [.text(table)])
        {
            return
                "a table with a column of a spatial type (\(spatial.string(0) ?? "") \(spatial.string(1) ?? "")), which DataJoin cannot capture: keep such columns in a table of their own that is not tracked"
        }
        return nil
    }

    public func captureInstalled(_ db: Database, table: String) throws -> Bool {
        let n = CaptureTriggers.names(table)
        return try db.scalar(
            """
            SELECT count(*) FROM information_schema.TRIGGERS
            WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = ? AND TRIGGER_NAME IN (?, ?)
            """, [.text(table), .text(n.insert), .text(n.delete)]
        ).asInt64 == 2
    }

    /// Before 17 every trigger skipped all of an import's writes, its cascades too: written again,
    /// and the key-block triggers, which took no block id for an application trigger's insert
    /// during an import.
    public func upgradeCapture(_ db: Database, from version: Int) throws {
        // 18: a cascade within the table the importer writes is the importer's to run; 25: a
        // row's values without `JSON_ARRAY` (`rowValues`; 24 was a form never shipped).
        guard version < 25 else { return }
        _ = try refreshCascadeCapture(db)
        guard version < 17, try KeyBlocks.latest(db) != nil else { return }
        for t in try KeyBlocks.blockedTables(db) {
            guard let key = try generatedKey(db, t), try !keyBlockLost(db, t, key, range: 0...0) else { continue }
            try installKeyBlockTrigger(db, t, key)
        }
    }

    /// information_schema.TRIGGERS lists a table's triggers only to a user with the TRIGGER
    /// privilege on it: a user that may only read saw none, and `check` told it to track and
    /// backfill again and delete rows by hand on every peer (found from outside). Its grants,
    /// global, on the table, or on this database by its exact name: a grant on a pattern
    /// (`tz_chk`.*, where `_` matches any character) shows no trigger (MariaDB 10.11). One
    /// granted through a role is not seen here, which matters only when the triggers are gone
    /// too.
    public func triggersHidden(_ db: Database, table: String) throws -> Bool {
        let grantee: SQL =
            "CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')"
        let n = try db.scalar(
            """
            SELECT (SELECT count(*) FROM information_schema.USER_PRIVILEGES
                     WHERE GRANTEE = \(grantee) AND PRIVILEGE_TYPE = 'TRIGGER')
                 + (SELECT count(*) FROM information_schema.SCHEMA_PRIVILEGES
                     WHERE GRANTEE = \(grantee) AND PRIVILEGE_TYPE = 'TRIGGER'
                       AND TABLE_SCHEMA = REPLACE(REPLACE(DATABASE(), '_', CONCAT(CHAR(92), '_')), '%', CONCAT(CHAR(92), '%')))
                 + (SELECT count(*) FROM information_schema.TABLE_PRIVILEGES
                     WHERE GRANTEE = \(grantee) AND TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?
                       AND PRIVILEGE_TYPE = 'TRIGGER')
            """, [.text(table)]
        ).asInt64
        return n == 0
    }

    public func missingCaptureTriggers(_ db: Database, _ t: TableInfo) throws -> CaptureTriggerCheck {
        let n = CaptureTriggers.names(t.name)
        var expected = [n.insert, n.update, n.delete]
        // The cascade triggers installed for it (a dropped one left the rows a cascade changed
        // on this node only, found from outside). The key block's is `keyBlockLost`.
        let cascades = Self.cascadeTriggerNames(t.name)
        let installed = try Settings.int(db, Self.cascadeSetting + t.name, range: 0...3) ?? 0
        if installed & 1 != 0 { expected.append(cascades.delete) }
        if installed & 2 != 0 { expected.append(cascades.update) }
        var present = Set<String>()
        try db.query(
            """
            SELECT TRIGGER_NAME FROM information_schema.TRIGGERS
            WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = ? AND BINARY EVENT_OBJECT_TABLE = BINARY ?
              AND SUBSTRING(TRIGGER_NAME, 1, 3) = 'ds_'
            """, [.text(t.name), .text(t.name)]
        ) { r in
            if let name = r.string(0) { present.insert(name) }
        }
        // A child's key a cascade updated left its old key on the peers: as a delete lost.
        return CaptureTriggerCheck(
            expected: expected, present: present,
            capturingDeletes: [n.delete, n.update, cascades.delete, cascades.update],
            capturingCascades: [cascades.delete, cascades.update])
    }

    public func backfill(_ db: Database, _ t: TableInfo) throws -> Int {
        try db.execute(
            SQL(
                raw:
                    """
                    INSERT INTO ds_change_outbox (\(Self.columns))
                    SELECT \(Self.insertValues(db, t, "ds_n")) FROM \(db.quote(t.name)) AS ds_n
                    """))
    }

    static let columns =
        "object_table, object_pk_attribute, object_id, object_operation, object_attribute, object_value, object_value_old, captured_ms, updated_by_user_id"
    static let common = "FLOOR(UNIX_TIMESTAMP(SYSDATE(6)) * 1000), CURRENT_USER()"

    /// One column's value as text; bytes as hex, so any value is text. A FLOAT is
    /// written as the double it holds (its own text keeps 6 digits), and a TIMESTAMP in UTC
    /// whatever the writing session's time zone (its text is in that zone).
    static func text(_ db: Database, _ c: ColumnInfo, _ rec: String) -> String {
        let expr = "\(rec).\(db.quote(c.name))"
        let type = c.dataType.lowercased()
        if c.kind == .blob { return "HEX(\(expr))" }
        if type.hasPrefix("float") { return "CAST(CAST(\(expr) AS DOUBLE) AS CHAR)" }
        // Two's complement: BIT(64) above 2^63 - 1 travels as a negative integer and comes
        // back as the same bits.
        if type.hasPrefix("bit") { return "CAST(CAST(\(expr) AS SIGNED) AS CHAR)" }
        if type.hasPrefix("timestamp") {
            return "CAST(DATE_ADD(TIMESTAMP'1970-01-01 00:00:00', INTERVAL UNIX_TIMESTAMP(\(expr)) SECOND) AS CHAR)"
        }
        return "CAST(\(expr) AS CHAR)"
    }

    static func key(_ db: Database, _ t: TableInfo, _ rec: String) -> String {
        "JSON_ARRAY(" + t.keyColumns.map { text(db, $0, rec) }.joined(separator: ", ") + ")"
    }

    static func row(_ db: Database, _ t: TableInfo, _ rec: String) -> String {
        rowValues(t.columns.map { captured(db, $0, rec) })
    }

    /// One value as the capture writes it: its text, and the column it is read from, whose
    /// NULL `rowValues` tests (never the text's: a conversion that fails must not pass for a
    /// NULL value).
    struct CapturedValue {
        var text: String
        var raw: String
    }

    static func captured(_ db: Database, _ c: ColumnInfo, _ rec: String) -> CapturedValue {
        CapturedValue(text: text(db, c, rec), raw: "\(rec).\(db.quote(c.name))")
    }

    /// A row's values as `SizedValues`: `L`, then `n` or each text's byte count, `:` and the
    /// text. `JSON_ARRAY` gives NULL, with no error, for one value in bands of sizes (measured
    /// on MariaDB 10.11 with `max_allowed_packet` at 1 GiB: 58 to 100 MiB failed, 51 to 56 and
    /// 120 to 130 MiB did not), and the trigger's `JSON_ARRAY` then gave NULL for every later
    /// row of the table, however small, until `FLUSH TABLES` (found from outside: export held
    /// every insert after one of 60 MiB). Escaping by hand with `REPLACE` instead took minutes
    /// per 8 MiB holding many `\` and could not be killed (found from outside). The sized form
    /// escapes nothing: one pass over each value. Every table uses it: a column widened to
    /// `LONGTEXT` after `track` keeps the trigger it had (found from outside: a table tracked
    /// with TEXT kept `JSON_ARRAY`, and stuck). A value whose text MariaDB fails to build makes
    /// the whole row NULL, which export holds; only a NULL value is `n`.
    static func rowValues(_ values: [CapturedValue]) -> String {
        let sized = values.map { v in "IF(\(v.raw) IS NULL, 'n', CONCAT(OCTET_LENGTH(\(v.text)), ':', \(v.text)))" }
        return "CONCAT('L', " + sized.joined(separator: ", ") + ")"
    }

    static func header(_ t: TableInfo) -> String {
        CaptureTriggers.literal(t.name) + ", " + CaptureTriggers.literal(KeyNames.encode(t.keyColumns.map(\.name)))
    }

    static func insertValues(_ db: Database, _ t: TableInfo, _ rec: String) -> String {
        let names = CaptureTriggers.literal("[" + t.columns.map { JSON.quote($0.name) }.joined(separator: ",") + "]")
        return "\(header(t)), \(key(db, t, rec)), 'I', \(names), \(row(db, t, rec)), NULL, \(common)"
    }

    static func deleteValues(_ db: Database, _ t: TableInfo, _ rec: String) -> String {
        "\(header(t)), \(key(db, t, rec)), 'D', NULL, NULL, NULL, \(common)"
    }

    /// Same value: numbers compare as numbers (a FLOAT's text keeps 6 digits), everything
    /// else by its bytes, so a change of case or of trailing spaces is a change whatever the
    /// column's collation says.
    static func same(_ db: Database, _ c: ColumnInfo) -> String {
        let q = db.quote(c.name)
        if [.integer, .real, .boolean].contains(c.kind) { return "NEW.\(q) <=> OLD.\(q)" }
        return "CAST(NEW.\(q) AS BINARY) <=> CAST(OLD.\(q) AS BINARY)"
    }

    /// Columns whose change the database may refuse: the key, unique indexes, foreign keys of
    /// the table and columns other tables reference.
    /// `referenced`: the columns other tables reference, read once for all tables by
    /// `refreshCascadeCapture`, which rewrites these triggers after every `track`.
    static func refusableColumns(_ db: Database, _ t: TableInfo, referenced: Set<String>) throws -> Set<String> {
        var out = Set(t.keyColumns.map(\.name)).union(referenced)
        for sql in [
            "SELECT column_name FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ? AND BINARY table_name = BINARY ? AND non_unique = 0",
            "SELECT column_name FROM information_schema.key_column_usage WHERE table_schema = DATABASE() AND table_name = ? AND BINARY table_name = BINARY ? AND referenced_table_name IS NOT NULL",
        ] {
            for r in try db.rows(SQL(raw: sql), [.text(t.name), .text(t.name)]) {
                if let c = r.string(0) { out.insert(c) }
            }
        }
        return out
    }

    static func triggers(_ db: Database, _ t: TableInfo, referenced: Set<String> = []) throws -> [String] {
        let refusableNames = try refusableColumns(db, t, referenced: referenced)
        let refusable = t.columns.filter { refusableNames.contains($0.name) }.map { same(db, $0) }.joined(
            separator: " AND ")
        let n = CaptureTriggers.names(t.name)
        let table = db.quote(t.name)
        // Not the importer's own statement on this table (`Dialect.setApplying`).
        let capturing = notImporting(t.name)
        let keySame = t.keyColumns.map { same(db, $0) }.joined(separator: " AND ")
        // MariaDB runs AFTER UPDATE also for a row that `UPDATE IGNORE` skipped (a duplicate or
        // a foreign key refused it): a key change that never happened reached peers as a delete
        // and an insert (found from outside). The row as NEW says is there only if it happened.
        // Asked for key changes and cascades only: for every update, 100,000 updates of one
        // column took 9.6 s instead of 5.3 s.
        let happened =
            "EXISTS (SELECT 1 FROM \(table) AS ds_now WHERE "
            // The key as it is (binary collations, `track` makes sure), so the primary key finds it.
            + (t.keyColumns.map { "ds_now.\(db.quote($0.name)) <=> NEW.\(db.quote($0.name))" }
            + t.valueColumns.map { c in
                let q = db.quote(c.name)
                return [.integer, .real, .boolean].contains(c.kind)
                    ? "ds_now.\(q) <=> NEW.\(q)" : "CAST(ds_now.\(q) AS BINARY) <=> CAST(NEW.\(q) AS BINARY)"
            }).joined(separator: " AND ") + ")"
        let insert = "INSERT INTO ds_change_outbox (\(columns)) VALUES"
        let updates = t.valueColumns.map { c in
            """
                  IF NOT (\(same(db, c))) THEN
                    \(insert) (\(header(t)), \(key(db, t, "NEW")), 'U', \(CaptureTriggers.literal(c.name)), \(text(db, c, "NEW")), \(text(db, c, "OLD")), \(common));
                  END IF;
            """
        }.joined(separator: "\n")
        return [
            """
            CREATE OR REPLACE TRIGGER \(db.quote(n.insert)) AFTER INSERT ON \(table) FOR EACH ROW
            BEGIN
              IF \(capturing) THEN
                \(insert) (\(insertValues(db, t, "NEW")));
              END IF;
            END
            """,
            """
            CREATE OR REPLACE TRIGGER \(db.quote(n.delete)) AFTER DELETE ON \(table) FOR EACH ROW
            BEGIN
              \(flushCascade(db, t))
              IF \(capturing) THEN
                \(insert) (\(deleteValues(db, t, "OLD")));
              END IF;
            END
            """,
            // A key change is a delete and an insert; otherwise one row per changed column.
            """
            CREATE OR REPLACE TRIGGER \(db.quote(n.update)) AFTER UPDATE ON \(table) FOR EACH ROW
            BEGIN
              DECLARE ds_happened BOOLEAN DEFAULT TRUE;
              DECLARE ds_capturing BOOLEAN DEFAULT \(capturing);
              -- Looked up only for a key change or a cascade (it doubled an ordinary update's cost).
              IF @datajoin_cascade_pending IS NOT NULL OR (ds_capturing AND NOT (\(refusable))) THEN
                SET ds_happened = \(happened);
              END IF;
              -- A cascade is captured also when the importer wrote this row: it may reach rows
              -- the origin never saw.
              \(flushCascade(db, t, happened: "ds_happened"))
              IF ds_capturing AND ds_happened THEN
                IF NOT (\(keySame)) THEN
                  \(insert) (\(deleteValues(db, t, "OLD")));
                  \(insert) (\(insertValues(db, t, "NEW")));
            \(updates.isEmpty ? "" : "    ELSE\n" + updates)
                END IF;
              END IF;
            END
            """,
        ]
    }
}
