import Foundation

/// SQL for one tracked table's rows, built once per table and import run. Identifiers come from
/// the registry, as `Identifier`s; every value is bound.
final class TableSQL {
    let table: TableInfo
    let db: Database
    private let name: Identifier
    private let keyWhere: SQL
    private let selectSQL: SQL
    private var inserts: [[String]: SQL] = [:]

    /// Foreign keys of the table to itself whose `ON DELETE` the importer runs as statements of
    /// their own (`cascadeWithin`).
    private let within: [ForeignKey]
    /// Rows the importer deletes next, one by one (`Merger.deleting`).
    var deletingNext: Set<[Value]> = []

    init(table: TableInfo, db: Database, within: [ForeignKey] = []) {
        self.table = table
        self.db = db
        self.within = within
        name = table.identifier
        keyWhere = table.keyColumns.map { "\($0.identifier) = ?" as SQL }.joined(separator: " AND ")
        selectSQL = "SELECT \(db.dialect.selected(table.columns)) FROM \(name) WHERE \(keyWhere)"
    }

    /// Capture skips the importer's own statements on this table, and only those: a cascade
    /// they cause on another table is this node's change (`Dialect.setApplying`).
    private func writing() throws { try db.setApplying(table.name) }

    /// Whether the row is here, without reading its values.
    func exists(_ key: [Value]) throws -> Bool {
        try db.firstRow("SELECT 1 FROM \(name) WHERE \(keyWhere)", key) != nil
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

    /// Inserts a row the table does not have. Not an upsert: MariaDB's `ON DUPLICATE KEY UPDATE`
    /// fires on any unique index, and overwrote another row holding the same unique value
    /// (found from outside); a plain insert is refused, and the change is held.
    func insert(_ key: [Value], _ columns: [Change.ColumnValue]) throws {
        try writing()
        var names = table.keyColumns.map(\.name)
        var values = key
        for c in columns where !names.contains(c.name) {
            names.append(c.name)
            values.append(c.value)
        }
        try db.execute(insertSQL(names), values)
    }

    private func insertSQL(_ names: [String]) -> SQL {
        if let sql = inserts[names] { return sql }
        let sql: SQL = "INSERT INTO \(name) (\(names.map(Identifier.init))) VALUES (\(db.dialect.marks(names.count)))"
        inserts[names] = sql
        return sql
    }

    /// A duplicate key overwrites the value columns among `names`, or changes nothing.
    private func onConflict(_ names: [String]) -> SQL {
        let key = table.keyColumns.map { "\($0.identifier)" as SQL }
        let values = names.filter { n in !table.keyColumns.contains { $0.name == n } }.map {
            "\(Identifier($0))" as SQL
        }
        return values.isEmpty
            ? db.dialect.skipDuplicate(key: key) : db.dialect.upsert(key: key, overwrite: values)
    }

    func update(_ key: [Value], _ columns: [Change.ColumnValue]) throws {
        try writing()
        guard !columns.isEmpty else { return }
        let set = columns.map { "\(Identifier($0.name)) = ?" as SQL }.joined(separator: ", ")
        try db.execute("UPDATE \(name) SET \(set) WHERE \(keyWhere)", columns.map(\.value) + key)
    }

    /// What deleting the rows of `keys` (canonical) does, through a foreign key of the table to
    /// itself, to its other rows: done first, as this node's own statement, which capture sees.
    /// Left to the database inside the importer's delete, it could not be told from that delete
    /// on SQLite and PostgreSQL, and went nowhere: a row added on one node under a row another
    /// node deleted stayed there and nowhere else (found from outside). The rows `keys` name are
    /// the importer's to delete, never part of the cascade: the bundle deletes them itself.
    private func cascadeWithin(_ keys: [[Value]]) throws {
        guard !within.isEmpty else { return }
        let these = Set(keys)
        for fk in within where fk.onDelete.changesChildren {
            // Each row read once (a cycle ends). The import's own rows (these, and the deletes
            // due with them, tested in place: thousands due together each asked) are left to
            // its statement, and the cascade goes on below them: a row this node added there
            // is this node's cascade too (found in review).
            var visited = these
            var frontier = keys
            var levels: [[[Value]]] = []
            // A cascade's whole subtree, read a level at a time and deleted deepest first, each
            // statement with nothing left below it: InnoDB stops a cascade 15 levels deep, and
            // a deeper subtree held the delete on a MariaDB node for good (found from outside).
            repeat {
                let found = try referencing(frontier, fk, visited: &visited)
                let ours = found.filter { !deletingNext.contains($0) }
                if !ours.isEmpty { levels.append(ours) }
                frontier = fk.onDelete == .cascade ? found : []
            } while !frontier.isEmpty
            guard !levels.isEmpty else { continue }
            try db.setApplying(nil)
            for rows in levels.reversed() {
                var start = 0
                for n in MultiRow.pieces(rows.count, max: MultiRow.rowsPerStatement(table.keyColumns.count)) {
                    let slice = rows[start..<start + n]
                    start += n
                    let which = keyIn(n)
                    let sql: SQL
                    switch fk.onDelete {
                    case .cascade: sql = "DELETE FROM \(name) WHERE \(which)"
                    case .setNull:
                        let set = fk.columns.map { "\(Identifier($0.child)) = NULL" as SQL }.joined(separator: ", ")
                        sql = "UPDATE \(name) SET \(set) WHERE \(which)"
                    case .setDefault, .restrict, .noAction:
                        let set = try fk.columns.map {
                            "\(Identifier($0.child)) = \(try db.dialect.columnDefault(db, table: table.name, column: $0.child))"
                                as SQL
                        }.joined(separator: ", ")
                        sql = "UPDATE \(name) SET \(set) WHERE \(which)"
                    }
                    try db.execute(sql, slice.flatMap { $0 })
                }
            }
        }
    }

    /// The rows referencing the rows of `keys` through `fk`, not in `visited` (then added to it).
    private func referencing(_ keys: [[Value]], _ fk: ForeignKey, visited: inout Set<[Value]>) throws -> [[Value]] {
        let join = fk.columns.map { c, p in
            "\(Identifier(c).qualified(by: "c")) = \(Identifier(p).qualified(by: "p"))" as SQL
        }.joined(separator: " AND ")
        var rows: [[Value]] = []
        var start = 0
        for n in MultiRow.pieces(keys.count, max: MultiRow.rowsPerStatement(table.keyColumns.count)) {
            let slice = keys[start..<start + n]
            start += n
            let sql: SQL = """
                SELECT \(table.keyColumns.map { $0.identifier.qualified(by: "c") }.joined(separator: ", ")) \
                FROM \(name) AS p \
                JOIN \(name) AS c ON \(join) \
                WHERE \(db.dialect.keyIn(table.keyColumns.map { $0.identifier.qualified(by: "p") }, count: n))
                """
            try db.query(sql, slice.flatMap { $0 }) { r in
                let key = table.canonicalKey(r.values)
                if visited.insert(key).inserted { rows.append(key) }
            }
        }
        return rows
    }

    // MARK: - Many rows per statement (RowBatch)

    /// The rows of `n` keys, in the words the brand answers with an index lookup per key.
    private func keyIn(_ n: Int) -> SQL { db.dialect.keyIn(table.keyColumns.map { "\($0.identifier)" }, count: n) }

    /// Each row found: its canonical key and its values by column position.
    func selectMany(_ keys: [[Value]], _ body: ([Value], [Value]) -> Void) throws {
        var start = 0
        for n in MultiRow.pieces(keys.count, max: MultiRow.rowsPerStatement(table.keyColumns.count)) {
            let slice = keys[start..<start + n]
            start += n
            try db.query(
                "SELECT \(db.dialect.selected(table.columns)) FROM \(name) WHERE \(keyIn(n))", slice.flatMap { $0 }
            ) { r in
                let row = normalized(r)
                body(table.canonicalKey(table.keyPositions.map { row[$0] }), row)
            }
        }
    }

    func deleteMany(_ keys: [[Value]]) throws {
        guard !keys.isEmpty else { return }
        try cascadeWithin(keys)
        try writing()
        var start = 0
        for n in MultiRow.pieces(keys.count, max: MultiRow.rowsPerStatement(table.keyColumns.count)) {
            let slice = keys[start..<start + n]
            start += n
            try db.execute("DELETE FROM \(name) WHERE \(keyIn(n))", slice.flatMap { $0 })
        }
    }

    /// Inserts rows, or sets `names` of those that exist. `fresh`: none of them exists.
    func upsertMany(_ names: [String], _ rows: [([Value], [Value])], fresh: Bool = false) throws {
        guard !rows.isEmpty else { return }
        try writing()
        let keyNames = table.keyColumns.map(\.name)
        let valueNames = names.filter { !keyNames.contains($0) }
        let valueIndexes = valueNames.map { n in names.firstIndex(of: n)! }
        try db.insertMany(
            into: "\(name)", columns: (keyNames + valueNames).map { "\(Identifier($0))" },
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
        guard !valueNames.isEmpty, !rows.isEmpty else { return }
        try writing()
        let valueIndexes = valueNames.map { n in names.firstIndex(of: n)! }
        let all = (keyNames + valueNames).map(Identifier.init)
        let set = valueNames.map { n in
            let id = Identifier(n)
            let expression = table.column(n).map { db.dialect.assigned(id.qualified(by: "v"), to: $0) }
            return (column: "\(id)" as SQL, expression: expression ?? id.qualified(by: "v"))
        }
        let match = keyNames.map(Identifier.init).map { "\($0.qualified(by: "d")) = \($0.qualified(by: "v"))" as SQL }
            .joined(separator: " AND ")
        let falsePredicate = db.dialect.falseCondition
        var start = 0
        for n in MultiRow.pieces(rows.count, max: MultiRow.rowsPerStatement(all.count)) {
            let slice = rows[start..<start + n]
            start += n
            let rowsSQL = db.dialect.parameterRows(n, width: all.count)
            let rows: SQL = "SELECT \(all) FROM \(name) WHERE \(falsePredicate) UNION ALL \(rowsSQL)"
            let sql = db.dialect.updateFrom(
                "\(name)", alias: "d", set: set, rows: rows, rowsAlias: "v", match: match)
            try db.execute(sql, slice.flatMap { key, values in key + valueIndexes.map { values[$0] } })
        }
    }

    func delete(_ key: [Value]) throws {
        try cascadeWithin([key])
        try writing()
        try db.execute("DELETE FROM \(name) WHERE \(keyWhere)", key)
    }
}
