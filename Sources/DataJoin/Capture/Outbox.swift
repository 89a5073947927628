import Foundation

/// Reads ds_change_outbox rows back as typed changes. The triggers store keys and values as
/// text (JSON for keys and inserted rows); the registry's column kinds type them again.
enum Outbox {
    static let columns: SQL =
        "id, object_table, object_id, object_operation, object_attribute, object_value, object_value_old, captured_ms, source_id, seq, hlc, cl, object_pk_attribute"

    static func key(_ r: Row, tables: [String: TableInfo], dialect: Dialect) throws -> [Value] {
        let tableName = r.string(1) ?? ""
        let raw = try CapturedJSON.array(r.string(2) ?? "[]")
        let keyCols = tables[tableName]?.keyColumns ?? []
        return raw.enumerated().map { i, text in
            dialect.capturedValue(text, column: i < keyCols.count ? keyCols[i] : nil)
        }
    }

    /// The column names of captured inserts: a constant of each table's trigger, parsed once
    /// per run of rows that share it, not once per row.
    final class ColumnNames {
        private var last: (text: String, names: [String])?

        func parse(_ text: String) throws -> [String] {
            if let last, last.text == text { return last.names }
            let names = try CapturedJSON.array(text)
            guard names.allSatisfy({ $0 != nil }) else {
                throw DataJoinError(.internalError, "a captured column name is null")
            }
            last = (text, names.map { $0! })
            return last!.names
        }
    }

    /// A stamped outbox row as a change of this node.
    static func change(_ r: Row, me: NodeIdentity, tables: [String: TableInfo], dialect: Dialect, names: ColumnNames)
        throws
        -> Change
    {
        let tableName = r.string(1) ?? ""
        let table = tables[tableName]
        guard let op = Operation(rawValue: r.string(3) ?? "") else {
            throw DataJoinError(.internalError, "outbox row \(r.int(0) ?? 0) has an unknown operation")
        }
        var columns: [Change.ColumnValue] = []
        var old: Value?
        switch op {
        case .insert:
            let captured = r.string(5) ?? "{}"
            if captured.utf8.first == UInt8(ascii: "[") {
                // Values in column order, the names in object_attribute (PostgreSQL's triggers).
                let columnNames = try names.parse(r.string(4) ?? "[]")
                let values = try CapturedJSON.array(captured)
                guard columnNames.count == values.count else {
                    throw DataJoinError(
                        .internalError,
                        "outbox row \(r.int(0) ?? 0) has \(values.count) values for \(columnNames.count) column names")
                }
                for (name, text) in zip(columnNames, values) {
                    columns.append(
                        .init(name: name, value: dialect.capturedValue(text, column: table?.column(name))))
                }
            } else {
                for (name, text) in try CapturedJSON.object(captured) {
                    columns.append(
                        .init(name: name, value: dialect.capturedValue(text, column: table?.column(name))))
                }
            }
        case .update:
            let name = r.string(4) ?? ""
            columns.append(
                .init(
                    name: name,
                    value: dialect.capturedValue(r.values[5].asString, column: table?.column(name))))
            old = dialect.capturedValue(r.values[6].asString, column: table?.column(name))
        case .delete: break
        }
        var change = Change(
            origin: me.nodeId, epoch: me.epoch, seq: r.int(9) ?? 0, hlc: r.int(10) ?? 0, txid: r.int(8) ?? 0, op: op,
            table: tableName, cl: r.int(11) ?? 1, key: try key(r, tables: tables, dialect: dialect), columns: columns,
            oldValue: old)
        change.keyNames = table?.keyColumns.map(\.name) ?? KeyNames.decode(r.string(12) ?? "")
        return change
    }
}
