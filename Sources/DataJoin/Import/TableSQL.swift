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

    // MARK: - Many rows per statement (RowBatch)

    /// `(k) IN (?, …)` or `(k1, k2) IN ((?, ?), …)` for `n` keys.
    private func keyIn(_ n: Int, prefix: String = "") -> String {
        let k = table.keyColumns.count
        let cols = table.keyColumns.map { prefix + db.quote($0.name) }.joined(separator: ", ")
        let one = k == 1 ? "?" : "(" + Array(repeating: "?", count: k).joined(separator: ", ") + ")"
        return "(\(cols)) IN (\(Array(repeating: one, count: n).joined(separator: ", ")))"
    }

    /// Row counts per statement: full batches, then powers of two, so only a few statement
    /// shapes are ever prepared.
    static func pieces(_ total: Int, max: Int) -> [Int] {
        var out: [Int] = []
        var left = total
        while left >= max { out.append(max); left -= max }
        var p = 1
        while p * 2 <= max { p *= 2 }
        while left > 0 {
            while p > left { p /= 2 }
            out.append(p)
            left -= p
        }
        return out
    }

    /// Fewer new rows than this go in with INSERT: a COPY costs a few round trips of its own.
    static let copyFrom = 32

    private func rowsPerStatement(_ columns: Int) -> Int { Swift.max(1, Swift.min(256, 30_000 / Swift.max(columns, 1))) }

    /// Each row found: its canonical key and its values by column position.
    func selectMany(_ keys: [[Value]], _ body: ([Value], [Value]) -> Void) throws {
        let cols = table.columns.map { db.quote($0.name) }.joined(separator: ", ")
        var start = 0
        for n in Self.pieces(keys.count, max: rowsPerStatement(table.keyColumns.count)) {
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
        for n in Self.pieces(keys.count, max: rowsPerStatement(table.keyColumns.count)) {
            let slice = keys[start..<start + n]
            start += n
            try db.execute("DELETE FROM \(db.quote(table.name)) WHERE \(keyIn(n))", slice.flatMap { $0 })
        }
    }

    /// Inserts rows, or sets `names` of those that exist. `fresh`: none of them exists (a plain
    /// INSERT).
    func upsertMany(_ names: [String], _ rows: [([Value], [Value])], fresh: Bool = false) throws {
        let keyNames = table.keyColumns.map(\.name)
        let valueNames = names.filter { !keyNames.contains($0) }
        let valueIndexes = valueNames.map { n in names.firstIndex(of: n)! }
        let all = keyNames + valueNames
        let action = valueNames.isEmpty ? "DO NOTHING" : "DO UPDATE SET " + valueNames.map { "\(db.quote($0)) = excluded.\(db.quote($0))" }.joined(separator: ", ")
        let tuple = "(" + Array(repeating: "?", count: all.count).joined(separator: ", ") + ")"
        if fresh, rows.count >= Self.copyFrom, let pg = db as? PostgresDatabase {
            // New rows on PostgreSQL: COPY, which parses no SQL and binds no parameters. It fires
            // the table's triggers and checks its constraints as INSERT does (it ignores rules).
            try pg.copyIn("COPY \(db.quote(table.name)) (\(all.map { db.quote($0) }.joined(separator: ", "))) FROM STDIN") { send in
                for (key, values) in rows { try send(CopyText.line(key + valueIndexes.map { values[$0] })) }
            }
            return
        }
        var start = 0
        for n in Self.pieces(rows.count, max: rowsPerStatement(all.count)) {
            let slice = rows[start..<start + n]
            start += n
            let sql = "INSERT INTO \(db.quote(table.name)) (\(all.map { db.quote($0) }.joined(separator: ", "))) VALUES "
                + Array(repeating: tuple, count: n).joined(separator: ", ")
                + (fresh ? "" : " ON CONFLICT (\(keyNames.map { db.quote($0) }.joined(separator: ", "))) \(action)")
            try db.execute(sql, slice.flatMap { key, values in key + valueIndexes.map { values[$0] } })
        }
    }

    /// Sets `names` of rows that exist. The values come in as a union with an empty select of
    /// the table itself, so PostgreSQL types each parameter as its column.
    func updateMany(_ names: [String], _ rows: [([Value], [Value])]) throws {
        let keyNames = table.keyColumns.map(\.name)
        let valueNames = names.filter { !keyNames.contains($0) }
        guard !valueNames.isEmpty else { return }
        let valueIndexes = valueNames.map { n in names.firstIndex(of: n)! }
        let all = keyNames + valueNames
        let tuple = "(" + Array(repeating: "?", count: all.count).joined(separator: ", ") + ")"
        let set = valueNames.map { "\(db.quote($0)) = v.\(db.quote($0))" }.joined(separator: ", ")
        let match = keyNames.map { "d.\(db.quote($0)) = v.\(db.quote($0))" }.joined(separator: " AND ")
        let falsePredicate = db.brand == .postgres ? "false" : "0"
        var start = 0
        for n in Self.pieces(rows.count, max: rowsPerStatement(all.count)) {
            let slice = rows[start..<start + n]
            start += n
            let sql = "UPDATE \(db.quote(table.name)) AS d SET \(set) FROM (SELECT \(all.map { db.quote($0) }.joined(separator: ", ")) FROM \(db.quote(table.name)) WHERE \(falsePredicate) UNION ALL VALUES "
                + Array(repeating: tuple, count: n).joined(separator: ", ") + ") AS v WHERE \(match)"
            try db.execute(sql, slice.flatMap { key, values in key + valueIndexes.map { values[$0] } })
        }
    }

    func delete(_ key: [Value]) throws {
        try db.execute("DELETE FROM \(db.quote(table.name)) WHERE \(keyWhere)", key)
    }
}
