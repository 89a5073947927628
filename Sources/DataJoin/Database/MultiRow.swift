import Foundation

/// Many rows per statement: how they are split, and how they are inserted.
enum MultiRow {
    /// Row counts per statement: full batches, then powers of two, so only a few statement
    /// shapes are ever prepared.
    static func pieces(_ total: Int, max: Int) -> [Int] {
        var out: [Int] = []
        var left = total
        while left >= max {
            out.append(max)
            left -= max
        }
        var p = 1
        while p * 2 <= max { p *= 2 }
        while left > 0 {
            while p > left { p /= 2 }
            out.append(p)
            left -= p
        }
        return out
    }

    /// Rows per statement for `columns` parameters a row: up to 256, under 30,000 parameters.
    static func rowsPerStatement(_ columns: Int) -> Int { Swift.max(1, Swift.min(256, 30_000 / Swift.max(columns, 1))) }

}

extension Database {
    /// Inserts `rows` into `table` . `onConflict`: the
    /// clause for rows that may exist. Without one (none of the rows exists) PostgreSQL takes
    /// `COPY` from `Tuning.copyThreshold` rows, which parses no SQL and binds no parameters, and
    /// the rest is a plain INSERT: `ON CONFLICT` costs PostgreSQL a speculative insertion per
    /// row, about twice the insert. COPY fires the table's triggers and checks its constraints
    /// as INSERT does (it ignores rules).
    func insertMany(into table: SQL, columns: [SQL], rows: [[Value]], onConflict: SQL?) throws {
        let list = columns.joined(separator: ", ")
        if onConflict == nil, rows.count >= Tuning.current.copyThreshold,
            try bulkLoad(into: table, columns: list, { send in for r in rows { try send(r) } })
        {
            return
        }
        let end = onConflict.map { " " + $0 } ?? ""
        var start = 0
        for n in MultiRow.pieces(rows.count, max: MultiRow.rowsPerStatement(columns.count)) {
            let slice = rows[start..<start + n]
            start += n
            let values = SQL.placeholderRows(n, width: columns.count)
            try execute("INSERT INTO \(table) (\(list)) VALUES \(values)\(end)", slice.flatMap { $0 })
        }
    }
}
