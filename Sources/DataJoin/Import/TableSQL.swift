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
        selectSQL =
            "SELECT \(table.columns.map { db.quote($0.name) }.joined(separator: ", ")) FROM \(db.quote(table.name)) WHERE \(keyWhere)"
    }

    /// The row's values by column position (`table.columns`), typed by the registry.
    func select(_ key: [Value]) throws -> [Value]? {
        guard let r = try db.firstRow(selectSQL, key) else { return nil }
        return normalized(r)
    }

    private func normalized(_ r: Row) -> [Value] {
        var out: [Value] = []
        out.reserveCapacity(table.columns.count)
        for (i, c) in table.columns.enumerated() { out.append(ValueConversion.normalize(r.values[i], kind: c.kind)) }
        return out
    }

    /// Inserts the row, or overwrites the given columns when the key exists.
    func upsert(_ key: [Value], _ columns: [Change.ColumnValue]) throws {
        var names = table.keyColumns.map(\.name)
        var values = key
        for c in columns where !names.contains(c.name) {
            names.append(c.name)
            values.append(c.value)
        }
        try db.execute(upsertSQL(names), values)
    }

    private func upsertSQL(_ names: [String]) -> String {
        if let sql = upserts[names] { return sql }
        let sql =
            "INSERT INTO \(db.quote(table.name)) (\(names.map { db.quote($0) }.joined(separator: ", "))) VALUES (\(names.map { _ in "?" }.joined(separator: ", "))) "
            + onConflict(names)
        upserts[names] = sql
        return sql
    }

    /// A duplicate key overwrites the value columns among `names`, or changes nothing.
    private func onConflict(_ names: [String]) -> String {
        let key = table.keyColumns.map { db.quote($0.name) }
        let values = names.filter { n in !table.keyColumns.contains { $0.name == n } }.map { db.quote($0) }
        return values.isEmpty
            ? db.dialect.skipDuplicate(key: key) : db.dialect.upsert(key: key, overwrite: values)
    }

    func update(_ key: [Value], _ columns: [Change.ColumnValue]) throws {
        guard !columns.isEmpty else { return }
        let set = columns.map { "\(db.quote($0.name)) = ?" }.joined(separator: ", ")
        try db.execute("UPDATE \(db.quote(table.name)) SET \(set) WHERE \(keyWhere)", columns.map(\.value) + key)
    }

    // MARK: - Many rows per statement (RowBatch)

    /// `(k) IN (?, …)` or `(k1, k2) IN ((?, ?), …)` for `n` keys.
    private func keyIn(_ n: Int, prefix: String = "") -> String {
        let k = table.keyColumns.count
        let cols = table.keyColumns.map { prefix + db.quote($0.name) }.joined(separator: ", ")
        let one = k == 1 ? "?" : "(" + Array(repeating: "?", count: k).joined(separator: ", ") + ")"
        return "(\(cols)) IN (\(Array(repeating: one, count: n).joined(separator: ", ")))"
    }

    /// Each row found: its canonical key and its values by column position.
    func selectMany(_ keys: [[Value]], _ body: ([Value], [Value]) -> Void) throws {
        let cols = table.columns.map { db.quote($0.name) }.joined(separator: ", ")
        var start = 0
        for n in MultiRow.pieces(keys.count, max: MultiRow.rowsPerStatement(table.keyColumns.count)) {
            let slice = keys[start..<start + n]
            start += n
            try db.query("SELECT \(cols) FROM \(db.quote(table.name)) WHERE \(keyIn(n))", slice.flatMap { $0 }) { r in
                let row = normalized(r)
                body(table.canonicalKey(table.keyPositions.map { row[$0] }), row)
            }
        }
    }

    func deleteMany(_ keys: [[Value]]) throws {
        var start = 0
        for n in MultiRow.pieces(keys.count, max: MultiRow.rowsPerStatement(table.keyColumns.count)) {
            let slice = keys[start..<start + n]
            start += n
            try db.execute("DELETE FROM \(db.quote(table.name)) WHERE \(keyIn(n))", slice.flatMap { $0 })
        }
    }

    /// Inserts rows, or sets `names` of those that exist. `fresh`: none of them exists.
    func upsertMany(_ names: [String], _ rows: [([Value], [Value])], fresh: Bool = false) throws {
        let keyNames = table.keyColumns.map(\.name)
        let valueNames = names.filter { !keyNames.contains($0) }
        let valueIndexes = valueNames.map { n in names.firstIndex(of: n)! }
        try db.insertMany(
            into: db.quote(table.name), columns: (keyNames + valueNames).map { db.quote($0) },
            rows: rows.map { key, values in key + valueIndexes.map { values[$0] } },
            onConflict: fresh ? nil : onConflict(names)
        )
    }

    /// Sets `names` of rows that exist. The values come in as a union with an empty select of
    /// the table itself, so PostgreSQL types each parameter as its column. On PostgreSQL each
    /// row is its own `SELECT`: a `VALUES` list types its parameters as text before the union
    /// sees them, and every update of a non-text column failed ("UNION types bigint and text
    /// cannot be matched") and went the slow way, change by change.
    func updateMany(_ names: [String], _ rows: [([Value], [Value])]) throws {
        let keyNames = table.keyColumns.map(\.name)
        let valueNames = names.filter { !keyNames.contains($0) }
        guard !valueNames.isEmpty else { return }
        let valueIndexes = valueNames.map { n in names.firstIndex(of: n)! }
        let all = keyNames + valueNames
        let set = valueNames.map { (column: db.quote($0), expression: "v." + db.quote($0)) }
        let match = keyNames.map { "d.\(db.quote($0)) = v.\(db.quote($0))" }.joined(separator: " AND ")
        let falsePredicate = db.dialect.falseCondition
        var start = 0
        for n in MultiRow.pieces(rows.count, max: MultiRow.rowsPerStatement(all.count)) {
            let slice = rows[start..<start + n]
            start += n
            let rowsSQL = db.dialect.parameterRows(n, width: all.count)
            let rows =
                "SELECT \(all.map { db.quote($0) }.joined(separator: ", ")) FROM \(db.quote(table.name)) WHERE \(falsePredicate) UNION ALL "
                + rowsSQL
            let sql = db.dialect.updateFrom(
                db.quote(table.name), alias: "d", set: set, rows: rows, rowsAlias: "v", match: match)
            try db.execute(sql, slice.flatMap { key, values in key + valueIndexes.map { values[$0] } })
        }
    }

    func delete(_ key: [Value]) throws {
        try db.execute("DELETE FROM \(db.quote(table.name)) WHERE \(keyWhere)", key)
    }
}
