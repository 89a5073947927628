import Foundation

/// Reads table definitions from the database catalog and from DataJoin's registry.
enum TableRegistry {
    /// The live definition of a table, or nil when it does not exist.
    static func introspect(_ db: Database, table: String) throws -> TableInfo? {
        let cols = try db.dialect.columns(db, of: table)
        return cols.isEmpty ? nil : TableInfo(name: table, columns: cols)
    }

    /// The registry's tracked tables, each column's declared type as the catalog has it now
    /// where the column still has the kind it was tracked with. The value checks of an import
    /// hold what a column would round or cut: a column narrowed since `track` (`numeric(10,4)`
    /// to `numeric(10,2)`, `VARCHAR(10)` to `(5)`, `DATETIME(6)` to `(0)`) had values rounded
    /// and cut while they were checked against the old type, and one widened held values that
    /// fit (found from outside). A change of kind is drift (`CaptureDrift`), typed as tracked.
    static func loadWithLiveTypes(_ db: Database) throws -> [String: TableInfo] {
        var tables = try load(db)
        for name in try Tracker.trackedNames(db) {
            guard let known = tables[name], let live = try introspect(db, table: name) else { continue }
            for (i, c) in known.columns.enumerated() {
                guard let now = live.column(c.name) else { continue }
                if now.kind == c.kind, now.dataType != c.dataType { tables[name]!.columns[i].dataType = now.dataType }
                tables[name]!.columns[i].charset = now.charset
            }
        }
        return tables
    }

    /// Tables untracked here that are gone (dropped): their changes are held as a table's not
    /// tracked here, with the cures (found from outside: held as the database's "no such
    /// table", no cure given). They stay in the registry: what was captured of them still
    /// stamps and exports by it.
    static func untrackedAndGone(_ db: Database, _ tables: [String: TableInfo]) throws -> Set<String> {
        let tracked = Set(try Tracker.trackedNames(db))
        return Set(try tables.keys.filter { try !tracked.contains($0) && db.dialect.columns(db, of: $0).isEmpty })
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
