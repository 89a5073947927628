import Foundation

/// Capture on SQLite: row triggers, one per column for updates (docs/capture.md).
extension SQLiteDialect {
    public func installCapture(_ db: Database, _ t: TableInfo) throws {
        try removeCapture(db, table: t.name)
        for stmt in Self.triggers(db, t) { try db.executeScript(SQL(raw: stmt)) }
    }

    /// Before schema version 13 the triggers wrote some reals a unit in the last place off;
    /// before 15 they wrote an insert's row as an object of name/value pairs (slower).
    public func upgradeCapture(_ db: Database, from version: Int) throws {
        // Schema 22: a change only the column's collation or SQLite's numeric comparison saw as
        // none is captured (`changed`).
        try CaptureTriggers.rewriteOnUpgrade(db, from: version, before: 22)
    }

    public func removeCapture(_ db: Database, table: String) throws {
        let n = CaptureTriggers.names(table)
        // Every capture trigger of the table, whatever columns it had when they were made, and
        // this table's triggers wherever they are: a table renamed away took them along, and
        // they captured its writes under this name (found from outside: `track` then failed,
        // "trigger … already exists").
        let prefix = "ds_capture_", columnPrefix = n.update + "_c"
        let found = try db.rows(
            """
            SELECT name FROM sqlite_master WHERE type = 'trigger' AND ((tbl_name = ? COLLATE NOCASE AND substr(name, 1, ?) = ?)
              OR name IN (?, ?, ?) OR substr(name, 1, ?) = ?)
            """,
            [
                .text(table), .integer(Int64(prefix.count)), .text(prefix), .text(n.insert), .text(n.update),
                .text(n.delete), .integer(Int64(columnPrefix.count)), .text(columnPrefix),
            ]
        ).compactMap { $0.string(0) }
        for trig in Set(found + [n.insert, n.update, n.delete]) {
            try db.executeScript("DROP TRIGGER IF EXISTS \(Identifier(trig))")
        }
    }

    public var captureNamesFixedAtInstall: Bool { true }
    public var commitsEachDDL: Bool { false }
    public var clampsIntegersOnAlter: Bool { false }
    public var recordsSourceTransactions: Bool { false }
    public var typeChangesRewriteValues: Bool { false }
    public func schemaCure(schema: Substring, table: Substring) -> String {
        "DataJoin tracks the tables of the database file itself, named without a schema: track \(table) "
            + "(an attached database is a node of its own: --db that file)"
    }

    public func isCurrentSchema(_ db: Database, _ schema: String) throws -> Bool {
        schema.lowercased() == "main"
    }

    public func notCapturable(_ db: Database, table: String) throws -> String? {
        let type = try db.scalar(
            "SELECT type FROM sqlite_master WHERE name = ? COLLATE NOCASE AND type IN ('table', 'view')", [.text(table)]
        ).asString
        return type == "view" ? "a view, not a table: track the tables it reads" : nil
    }

    public func captureInstalled(_ db: Database, table: String) throws -> Bool {
        let n = CaptureTriggers.names(table)
        return try db.scalar(
            // SQLite finds a table whatever the case of its name; a rename to `Items` keeps them.
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? COLLATE NOCASE AND name IN (?, ?)",
            [.text(table), .text(n.insert), .text(n.delete)]
        ).asInt64 == 2
    }

    public func missingCaptureTriggers(_ db: Database, _ t: TableInfo) throws -> CaptureTriggerCheck {
        let n = CaptureTriggers.names(t.name)
        let expected = [n.insert, n.delete, n.update] + t.valueColumns.indices.map { n.update + "_c\($0 + 1)" }
        var present = Set<String>()
        try db.query(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? COLLATE NOCASE AND substr(name, 1, 11) = 'ds_capture_'",
            [.text(t.name)]
        ) { r in
            if let name = r.string(0) { present.insert(name) }
        }
        return CaptureTriggerCheck(expected: expected, present: present, capturingDeletes: [n.delete, n.update])
    }

    public func backfill(_ db: Database, _ t: TableInfo) throws -> Int {
        let table = db.quote(t.name), lit = CaptureTriggers.literal(t.name),
            pkNames = CaptureTriggers.literal(KeyNames.encode(t.keyColumns.map(\.name)))
        return try db.execute(
            SQL(
                raw:
                    """
                    INSERT INTO ds_change_outbox (\(Self.sqliteColumns))
                    SELECT \(lit), \(pkNames), \(Self.sqliteKey(db, t, "ds_n")), 'I', \(Self.sqliteNames(t)), \(Self.sqliteRow(db, t, "ds_n")), NULL, \(Self.sqliteNowMs) FROM \(table) AS ds_n
                    """))
    }

    /// Tags a value with its storage class so the exporter reads it back exactly:
    /// i42, r0.5, tabc, b00ff; NULL stays NULL. A real is written with 17 significant digits
    /// when SQLite reads those back as the same double, else with 21: SQLite's `printf` gets
    /// the 17th digit wrong for about one double in 400 (most of them above 1e200 or below
    /// 1e-200), and peers received them one or two units in the last place off (found from
    /// outside). 21 digits read back exactly (checked against a correctly rounded parser for
    /// 900,000 random doubles, `TypeMatrixTests.testRealsOfEveryMagnitudeTravelBitExact`).
    static func sqliteTagged(_ expr: String) -> String {
        "CASE typeof(\(expr)) WHEN 'integer' THEN 'i' || \(expr) WHEN 'real' THEN 'r' || "
            + "(CASE WHEN CAST(printf('%!.17g', \(expr)) AS REAL) = \(expr) THEN printf('%!.17g', \(expr)) ELSE printf('%!.20e', \(expr)) END) "
            + "WHEN 'text' THEN 't' || \(expr) WHEN 'blob' THEN 'b' || hex(\(expr)) ELSE NULL END"
    }

    static let sqliteColumns =
        "object_table, object_pk_attribute, object_id, object_operation, object_attribute, object_value, object_value_old, captured_ms"
    static let sqliteNowMs = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"

    static func sqliteKey(_ db: Database, _ t: TableInfo, _ rec: String) -> String {
        "json_array(" + t.keyColumns.map { sqliteTagged("\(rec).\(db.quote($0.name))") }.joined(separator: ", ") + ")"
    }

    /// A row's values in column order, as a JSON array; the names go in `object_attribute`
    /// (`sqliteNames`), as PostgreSQL's triggers write them. An object of name/value pairs cost
    /// a tracked insert 15 % more (schema versions before 15 wrote one; the exporter reads both).
    static func sqliteRow(_ db: Database, _ t: TableInfo, _ rec: String) -> String {
        let values = t.columns.map { sqliteTagged("\(rec).\(db.quote($0.name))") }
        // A SQLite function takes at most 127 arguments: a wider row is built as arrays of
        // 60 values whose texts are joined into one (their values are strings or null, so
        // each text has exactly one bracket at each end).
        let split = Tuning.current.sqliteCaptureSplit
        if values.count <= split { return "json_array(" + values.joined(separator: ", ") + ")" }
        let chunks = stride(from: 0, to: values.count, by: split).map {
            "json_array(" + values[$0..<min($0 + split, values.count)].joined(separator: ", ") + ")"
        }
        return chunks.enumerated().map { i, c in
            i == 0 ? "rtrim(\(c), ']')" : i == chunks.count - 1 ? "ltrim(\(c), '[')" : "ltrim(rtrim(\(c), ']'), '[')"
        }.joined(separator: " || ',' || ")
    }

    /// The column names of `sqliteRow`, a constant of the trigger.
    static func sqliteNames(_ t: TableInfo) -> String {
        CaptureTriggers.literal(KeyNames.encode(t.columns.map(\.name)))
    }

    /// The column's value changed, byte for byte and storage class: `IS NOT` alone compares by
    /// the column's collation, so `'abc'` to `'ABC'` in a `COLLATE NOCASE` column (or `'x'` to
    /// `'x  '` in `RTRIM`) was no change, and peers kept the old text for good (found from
    /// outside); nor was `1` to `1.0`, which SQLite compares as numbers.
    static func changed(_ q: String) -> String {
        "(NEW.\(q) IS NOT OLD.\(q) COLLATE BINARY OR typeof(NEW.\(q)) <> typeof(OLD.\(q)))"
    }

    static func triggers(_ db: Database, _ t: TableInfo) -> [String] {
        let n = CaptureTriggers.names(t.name)
        let table = db.quote(t.name)
        let lit = CaptureTriggers.literal(t.name)
        let pkNames = CaptureTriggers.literal(KeyNames.encode(t.keyColumns.map(\.name)))
        let ms = sqliteNowMs
        // Not the importer's own statement on this table; a cascade its statement on another
        // table causes here is this node's change (`Dialect.setApplying`).
        let notApplying = "(SELECT writing FROM ds_apply_state WHERE id = 1) <> \(lit)"
        func key(_ rec: String) -> String { sqliteKey(db, t, rec) }
        func row(_ rec: String) -> String { sqliteRow(db, t, rec) }
        let names = sqliteNames(t)
        let cols = sqliteColumns
        let keyChanged = t.keyColumns.map { Self.changed(db.quote($0.name)) }.joined(separator: " OR ")
        let keyList = t.keyColumns.map { db.quote($0.name) }.joined(separator: ", ")
        // Updates: one trigger per column, `AFTER UPDATE OF` that column, so an UPDATE runs only
        // the triggers of the columns it sets (SQLite picks them when it prepares the statement)
        // instead of testing every column of every row.
        var triggers = [
            """
            CREATE TRIGGER \(db.quote(n.insert)) AFTER INSERT ON \(table) WHEN \(notApplying) BEGIN
            INSERT INTO ds_change_outbox (\(cols)) VALUES (\(lit), \(pkNames), \(key("NEW")), 'I', \(names), \(row("NEW")), NULL, \(ms));
            END
            """,
            """
            CREATE TRIGGER \(db.quote(n.delete)) AFTER DELETE ON \(table) WHEN \(notApplying) BEGIN
            INSERT INTO ds_change_outbox (\(cols)) VALUES (\(lit), \(pkNames), \(key("OLD")), 'D', NULL, NULL, NULL, \(ms));
            END
            """,
            """
            CREATE TRIGGER \(db.quote(n.update)) AFTER UPDATE OF \(keyList) ON \(table) WHEN (\(keyChanged)) AND \(notApplying) BEGIN
            INSERT INTO ds_change_outbox (\(cols)) VALUES (\(lit), \(pkNames), \(key("OLD")), 'D', NULL, NULL, NULL, \(ms));
            INSERT INTO ds_change_outbox (\(cols)) VALUES (\(lit), \(pkNames), \(key("NEW")), 'I', \(names), \(row("NEW")), NULL, \(ms));
            END
            """,
        ]
        for (i, c) in t.valueColumns.enumerated() {
            let q = db.quote(c.name)
            triggers.append(
                """
                CREATE TRIGGER \(db.quote(n.update + "_c\(i + 1)")) AFTER UPDATE OF \(q) ON \(table)
                WHEN \(Self.changed(q)) AND NOT (\(keyChanged)) AND \(notApplying) BEGIN
                INSERT INTO ds_change_outbox (\(cols)) VALUES (\(lit), \(pkNames), \(key("NEW")), 'U', \(CaptureTriggers.literal(c.name)), \(sqliteTagged("NEW.\(q)")), \(sqliteTagged("OLD.\(q)")), \(ms));
                END
                """)
        }
        return triggers
    }

}
