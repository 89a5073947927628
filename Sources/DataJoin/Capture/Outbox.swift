import Foundation

/// Reads ds_change_outbox rows back as typed changes. The triggers store keys and values as
/// text (JSON for keys and inserted rows; MariaDB's inserted rows as `SizedValues`); the
/// registry's column kinds type them again.
enum Outbox {
    static let columns: SQL =
        "id, object_table, object_id, object_operation, object_attribute, object_value, object_value_old, captured_ms, source_id, seq, hlc, cl, object_pk_attribute"

    static func key(_ r: Row, tables: [String: TableInfo], dialect: Dialect) throws -> [Value] {
        try key(r, table: tables[r.string(1) ?? ""], dialect: dialect)
    }

    private static func key(_ r: Row, table: TableInfo?, dialect: Dialect) throws -> [Value] {
        let raw = try CapturedJSON.array(r.string(2) ?? "[]")
        let keyCols = table?.keyColumns ?? []
        return raw.enumerated().map { i, text in
            dialect.capturedValue(text, column: i < keyCols.count ? keyCols[i] : nil)
        }
    }

    /// What the rows of one export share: the column names of captured inserts (a constant of
    /// each table's trigger), each table's definition and its columns for the names a row
    /// carries. Rows of one table come in runs and name their columns in one order, so
    /// comparing the names with the last row's replaces a hash lookup per column (an export
    /// spent a fifth of its time looking names up).
    final class ColumnNames {
        private var last: (text: String, names: [String])?
        private var lastTable: (name: String, info: TableInfo?, keyNames: [String])?
        private var lastColumns: (table: String, names: [String], infos: [ColumnInfo?])?

        func parse(_ text: String) throws -> [String] {
            if let last, last.text == text { return last.names }
            let names = try CapturedJSON.array(text)
            guard names.allSatisfy({ $0 != nil }) else {
                throw DataJoinError(.internalError, "a captured column name is null")
            }
            last = (text, names.map { $0! })
            return last!.names
        }

        func table(_ name: String, in tables: [String: TableInfo]) -> (info: TableInfo?, keyNames: [String]) {
            if let lastTable, lastTable.name == name { return (lastTable.info, lastTable.keyNames) }
            let info = tables[name]
            lastTable = (name, info, info?.keyColumns.map(\.name) ?? [])
            return (info, lastTable!.keyNames)
        }

        func columns(_ table: String, _ info: TableInfo?, names: [String]) -> [ColumnInfo?] {
            if let lastColumns, lastColumns.table == table, lastColumns.names == names { return lastColumns.infos }
            let infos = names.map { info?.column($0) }
            lastColumns = (table, names, infos)
            return infos
        }
    }

    /// A stamped outbox row as a change of this node.
    static func change(_ r: Row, me: NodeIdentity, tables: [String: TableInfo], dialect: Dialect, names: ColumnNames)
        throws
        -> Change
    {
        let tableName = r.string(1) ?? ""
        let (table, keyNames) = names.table(tableName, in: tables)
        guard let op = Operation(rawValue: r.string(3) ?? "") else {
            throw DataJoinError(.internalError, "outbox row \(r.int(0) ?? 0) has an unknown operation")
        }
        var columns: [Change.ColumnValue] = []
        var old: Value?
        switch op {
        case .insert:
            let captured = r.string(5) ?? "{}"
            let first = captured.utf8.first
            let columnNames: [String], values: [String?]
            // Which row, in every message about its values (found from outside); built only then.
            func row() -> String { "outbox row \(r.int(0) ?? 0)" + (r.int(9).map { " (seq \($0))" } ?? "") }
            do {
                if first == UInt8(ascii: "[") || first == SizedValues.marker {
                    // Values in column order, the names in object_attribute (PostgreSQL's and
                    // MariaDB's triggers).
                    columnNames = try names.parse(r.string(4) ?? "[]")
                    values =
                        first == SizedValues.marker ? try SizedValues.parse(captured) : try CapturedJSON.array(captured)
                } else {
                    let pairs = try CapturedJSON.object(captured)
                    columnNames = pairs.map(\.0)
                    values = pairs.map(\.1)
                }
            } catch let e as DataJoinError {
                throw DataJoinError(e.code, "\(row()): \(e.message)")
            }
            guard columnNames.count == values.count else {
                throw DataJoinError(
                    .internalError, "\(row()) has \(values.count) values for \(columnNames.count) column names")
            }
            let infos = names.columns(tableName, table, names: columnNames)
            columns.reserveCapacity(columnNames.count)
            for i in columnNames.indices {
                columns.append(.init(name: columnNames[i], value: dialect.capturedValue(values[i], column: infos[i])))
            }
        case .update:
            let name = r.string(4) ?? ""
            let info = table?.column(name)
            columns.append(.init(name: name, value: dialect.capturedValue(r.values[5].asString, column: info)))
            old = dialect.capturedValue(r.values[6].asString, column: info)
        case .delete: break
        }
        var change = Change(
            origin: me.nodeId, epoch: me.epoch, seq: r.int(9) ?? 0, hlc: r.int(10) ?? 0, txid: r.int(8) ?? 0, op: op,
            table: tableName, cl: r.int(11) ?? 1, key: try key(r, table: table, dialect: dialect), columns: columns,
            oldValue: old)
        change.keyNames = table != nil ? keyNames : KeyNames.decode(r.string(12) ?? "")
        return change
    }
}
