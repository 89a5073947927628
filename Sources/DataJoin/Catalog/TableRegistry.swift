import Foundation

/// Reads table definitions from the database catalog and from DataJoin's registry.
enum TableRegistry {
    /// The live definition of a table, or nil when it does not exist.
    static func introspect(_ db: Database, table: String) throws -> TableInfo? {
        let cols = try db.dialect.columns(db, of: table)
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
            let kind = db.dialect.valueKind(declaredType: type)
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
