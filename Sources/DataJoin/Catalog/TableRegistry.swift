import Foundation

/// Reads table definitions from the database catalog and from DataJoin's registry.
enum TableRegistry {
    /// The live definition of a table, or nil when it does not exist.
    static func introspect(_ db: Database, table: String) throws -> TableInfo? {
        var cols: [ColumnInfo] = []
        switch db.brand {
        case .sqlite:
            try db.query("SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid", [.text(table)]) { r in
                let type = r.string(1) ?? ""
                cols.append(
                    ColumnInfo(
                        name: r.string(0) ?? "", dataType: type, kind: .forSQLite(type), pkPosition: Int(r.int(2) ?? 0))
                )
            }
        case .postgres:
            let sql = """
                SELECT a.attname, format_type(a.atttypid, a.atttypmod), coalesce((SELECT k.ord FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) WHERE k.attnum = a.attnum), 0)
                FROM pg_catalog.pg_attribute a
                JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
                JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary
                WHERE c.relname = ? AND n.nspname = current_schema() AND c.relkind IN ('r', 'p')
                  AND a.attnum > 0 AND NOT a.attisdropped
                ORDER BY a.attnum
                """
            try db.query(sql, [.text(table)]) { r in
                let type = r.string(1) ?? ""
                let base = type.components(separatedBy: "(").first ?? type
                cols.append(
                    ColumnInfo(
                        name: r.string(0) ?? "", dataType: type, kind: .forPostgres(base),
                        pkPosition: Int(r.int(2) ?? 0)))
            }
        }
        return cols.isEmpty ? nil : TableInfo(name: table, columns: cols)
    }

    static func load(_ db: Database) throws -> [String: TableInfo] {
        var tables: [String: TableInfo] = [:]
        try db.query(
            "SELECT table_name, column_name, data_type, pk_position FROM ds_tracked_column ORDER BY table_name, position",
            []
        ) { r in
            let t = r.string(0) ?? ""
            let type = r.string(2) ?? ""
            let kind: ValueKind =
                db.brand == .sqlite ? .forSQLite(type) : .forPostgres(type.components(separatedBy: "(").first ?? type)
            tables[t, default: TableInfo(name: t, columns: [])].columns.append(
                ColumnInfo(name: r.string(1) ?? "", dataType: type, kind: kind, pkPosition: Int(r.int(3) ?? 0)))
        }
        return tables
    }

    static func save(_ db: Database, _ table: TableInfo) throws {
        try db.execute("DELETE FROM ds_tracked_column WHERE table_name = ?", [.text(table.name)])
        try db.execute("DELETE FROM ds_tracked_table WHERE table_name = ?", [.text(table.name)])
        try db.execute(
            "INSERT INTO ds_tracked_table (table_name, pk_columns, tracked_at) VALUES (?, ?, ?)",
            [.text(table.name), .text(table.keyColumns.map(\.name).joined(separator: ",")), .text(nowText())])
        for (i, c) in table.columns.enumerated() {
            try db.execute(
                "INSERT INTO ds_tracked_column (table_name, position, column_name, data_type, pk_position) VALUES (?, ?, ?, ?, ?)",
                [
                    .text(table.name), .integer(Int64(i)), .text(c.name), .text(c.dataType),
                    .integer(Int64(c.pkPosition)),
                ])
        }
    }

    static func remove(_ db: Database, table: String) throws {
        try db.execute("DELETE FROM ds_tracked_column WHERE table_name = ?", [.text(table)])
        try db.execute("DELETE FROM ds_tracked_table WHERE table_name = ?", [.text(table)])
    }
}
