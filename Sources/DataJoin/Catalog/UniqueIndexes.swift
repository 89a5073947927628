import Foundation

/// A unique index of a tracked table other than its key, as the brand's catalog describes it.
public struct UniqueIndex: Equatable, Sendable {
    public var table: String
    public var name: String
    /// The columns it reads: its own, and those of an expression or a partial index's condition
    /// where the brand names them; nil where it cannot (SQLite's expressions): any column.
    public var columns: [String]?
    /// True when it compares the columns' values themselves; false for an expression, a prefix
    /// or a generated column, where two different values can collide.
    public var plain: Bool

    public init(table: String, name: String, columns: [String]?, plain: Bool) {
        self.table = table
        self.name = name
        self.columns = columns
        self.plain = plain
    }
}

enum UniqueIndexes {
    /// Per tracked table, the unique indexes a bundle's writes can collide on. An index on the
    /// key columns alone is left out (a key change is a delete and an insert, and deletes go
    /// first); a column that is not tracked (generated) makes the index read any column.
    static func of(_ db: Database, tables: [String: TableInfo]) throws -> [String: [UniqueIndex]] {
        var out: [String: [UniqueIndex]] = [:]
        for var u in try db.dialect.uniqueIndexes(db, among: Set(tables.keys)) {
            guard let t = tables[u.table] else { continue }
            if let cols = u.columns {
                if Set(cols) == Set(t.keyColumns.map(\.name)) && u.plain { continue }
                if cols.contains(where: { t.column($0) == nil }) {
                    u.columns = nil
                    u.plain = false
                }
            }
            out[u.table, default: []].append(u)
        }
        return out
    }
}
