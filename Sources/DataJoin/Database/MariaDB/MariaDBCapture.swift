import Foundation

/// Capture on MariaDB: row triggers (MariaDB has no statement triggers with transition
/// tables). Inserted rows are written as PostgreSQL's are: the values as a JSON array of their
/// texts, the column names once in `object_attribute`. TRUNCATE fires no trigger on MariaDB
/// and is not captured (docs/capture.md).
extension MariaDBDialect {
    public func installCapture(_ db: Database, _ t: TableInfo) throws {
        let n = CaptureTriggers.names(t.name)
        for name in [n.insert, n.update, n.delete] { _ = try identifier(name) }
        try removeCapture(db, table: t.name)
        for statement in Self.triggers(db, t) { try db.executeScript(SQL(raw: statement)) }
    }

    public func removeCapture(_ db: Database, table: String) throws {
        let n = CaptureTriggers.names(table)
        let cascades = Self.cascadeTriggerNames(table)
        for trigger in [n.insert, n.update, n.delete, cascades.delete, cascades.update] {
            try db.executeScript("DROP TRIGGER IF EXISTS \(Identifier(trigger))")
        }
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

    /// One column's value as text; bytes as hex, so any value survives JSON. A FLOAT is
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
        "JSON_ARRAY(" + t.columns.map { text(db, $0, rec) }.joined(separator: ", ") + ")"
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

    static func triggers(_ db: Database, _ t: TableInfo) -> [String] {
        let n = CaptureTriggers.names(t.name)
        let table = db.quote(t.name)
        let capturing = "@datajoin_applying IS NULL"
        let keySame = t.keyColumns.map { same(db, $0) }.joined(separator: " AND ")
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
            CREATE TRIGGER \(db.quote(n.insert)) AFTER INSERT ON \(table) FOR EACH ROW
            BEGIN
              IF \(capturing) THEN
                \(insert) (\(insertValues(db, t, "NEW")));
              END IF;
            END
            """,
            """
            CREATE TRIGGER \(db.quote(n.delete)) AFTER DELETE ON \(table) FOR EACH ROW
            BEGIN
              IF \(capturing) THEN
                \(insert) (\(deleteValues(db, t, "OLD")));
              END IF;
            END
            """,
            // A key change is a delete and an insert; otherwise one row per changed column.
            """
            CREATE TRIGGER \(db.quote(n.update)) AFTER UPDATE ON \(table) FOR EACH ROW
            BEGIN
              IF \(capturing) THEN
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
