import Foundation

/// SQL for one tracked table's rows, built once per table and import run. Identifiers come from
/// the registry and are quoted by the dialect; every value is bound.
final class TableSQL {
    let table: TableInfo
    let db: Database
    private let keyWhere: String
    private let selectSQL: String
    private var upserts: [[String]: String] = [:]

    init(table: TableInfo, db: Database) {
        self.table = table
        self.db = db
        keyWhere = table.keyColumns.map { "\(db.quote($0.name)) = ?" }.joined(separator: " AND ")
        selectSQL = "SELECT \(table.columns.map { db.quote($0.name) }.joined(separator: ", ")) FROM \(db.quote(table.name)) WHERE \(keyWhere)"
    }

    func select(_ key: [Value]) throws -> [String: Value]? {
        guard let r = try db.firstRow(selectSQL, key) else { return nil }
        var out: [String: Value] = [:]
        for (i, c) in table.columns.enumerated() { out[c.name] = ValueConversion.normalize(r.values[i], kind: c.kind) }
        return out
    }

    /// Inserts the row, or overwrites the given columns when the key exists.
    func upsert(_ key: [Value], _ columns: [Change.ColumnValue]) throws {
        var names = table.keyColumns.map(\.name)
        var values = key
        for c in columns where !names.contains(c.name) { names.append(c.name); values.append(c.value) }
        try db.execute(upsertSQL(names), values)
    }

    private func upsertSQL(_ names: [String]) -> String {
        if let sql = upserts[names] { return sql }
        let keyNames = table.keyColumns.map { db.quote($0.name) }.joined(separator: ", ")
        let nonKey = names.filter { n in !table.keyColumns.contains { $0.name == n } }
        let action = nonKey.isEmpty ? "DO NOTHING" : "DO UPDATE SET " + nonKey.map { "\(db.quote($0)) = excluded.\(db.quote($0))" }.joined(separator: ", ")
        let sql = "INSERT INTO \(db.quote(table.name)) (\(names.map { db.quote($0) }.joined(separator: ", "))) VALUES (\(names.map { _ in "?" }.joined(separator: ", "))) ON CONFLICT (\(keyNames)) \(action)"
        upserts[names] = sql
        return sql
    }

    func update(_ key: [Value], _ columns: [Change.ColumnValue]) throws {
        guard !columns.isEmpty else { return }
        let set = columns.map { "\(db.quote($0.name)) = ?" }.joined(separator: ", ")
        try db.execute("UPDATE \(db.quote(table.name)) SET \(set) WHERE \(keyWhere)", columns.map(\.value) + key)
    }

    func delete(_ key: [Value]) throws {
        try db.execute("DELETE FROM \(db.quote(table.name)) WHERE \(keyWhere)", key)
    }
}
