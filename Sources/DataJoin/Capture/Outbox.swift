import Foundation

/// Reads ds_change_outbox rows back as typed changes. The triggers store keys and values as
/// text (JSON for keys and inserted rows); the registry's column kinds type them again.
enum Outbox {
    static let columns = "id, object_table, object_id, object_operation, object_attribute, object_value, object_value_old, captured_ms, source_id, seq, hlc, cl, object_pk_attribute"

    static func key(_ r: Row, tables: [String: TableInfo], brand: Brand) throws -> [Value] {
        let tableName = r.string(1) ?? ""
        let raw = try CapturedJSON.array(r.string(2) ?? "[]")
        let keyCols = tables[tableName]?.keyColumns ?? []
        return raw.enumerated().map { i, text in
            ValueConversion.fromCaptured(text, brand: brand, kind: i < keyCols.count ? keyCols[i].kind : .any)
        }
    }

    /// A stamped outbox row as a change of this node.
    static func change(_ r: Row, me: NodeIdentity, tables: [String: TableInfo], brand: Brand) throws -> Change {
        let tableName = r.string(1) ?? ""
        let table = tables[tableName]
        let kind = { (name: String) in table?.column(name)?.kind ?? .any }
        guard let op = Operation(rawValue: r.string(3) ?? "") else {
            throw DataJoinError(.internalError, "outbox row \(r.int(0) ?? 0) has an unknown operation")
        }
        var columns: [Change.ColumnValue] = []
        var old: Value?
        switch op {
        case .insert:
            for (name, text) in try CapturedJSON.object(r.string(5) ?? "{}") {
                columns.append(.init(name: name, value: ValueConversion.fromCaptured(text, brand: brand, kind: kind(name))))
            }
        case .update:
            let name = r.string(4) ?? ""
            columns.append(.init(name: name, value: ValueConversion.fromCaptured(r.values[5].asString, brand: brand, kind: kind(name))))
            old = ValueConversion.fromCaptured(r.values[6].asString, brand: brand, kind: kind(name))
        case .delete: break
        }
        var change = Change(origin: me.nodeId, epoch: me.epoch, seq: r.int(9) ?? 0, hlc: r.int(10) ?? 0, txid: r.int(8) ?? 0, op: op,
                            table: tableName, cl: r.int(11) ?? 1, key: try key(r, tables: tables, brand: brand), columns: columns, oldValue: old)
        change.keyNames = table?.keyColumns.map(\.name) ?? (r.string(12) ?? "").split(separator: ",").map(String.init)
        return change
    }
}

/// Gives committed, unstamped outbox rows their origin sequence number, HLC stamp and row
/// generation, and records their versions. Running at the start of every export and import
/// transaction means a row that commits late (after higher ids were exported) is stamped then,
/// with the next sequence number: the exporter never depends on ids committing in order.
enum Stamper {
    @discardableResult
    static func stampPending(_ db: Database, me: inout NodeIdentity, tables: [String: TableInfo]) throws -> Int {
        let versions = VersionStore(db: db)
        let offset = try HybridLogicalClock.testOffsetMs(db)
        var total = 0
        while true {
            let rows = try db.rows("SELECT \(Outbox.columns) FROM ds_change_outbox WHERE seq IS NULL ORDER BY source_id, id LIMIT 2000")
            if rows.isEmpty { break }
            for r in rows {
                let table = r.string(1) ?? ""
                let keyValues = try Outbox.key(r, tables: tables, brand: db.brand)
                let key = KeyCodec.encode(tables[table]?.canonicalKey(keyValues) ?? keyValues)
                let captured = r.int(7).map { $0 + offset } ?? HybridLogicalClock.nowMs(offsetMs: offset)
                me.hlc = HybridLogicalClock.tick(after: me.hlc, physicalMs: captured)
                let version = Version(hlc: me.hlc, node: me.nodeId)
                let seq = me.nextSeq
                me.nextSeq += 1
                let current = try versions.row(table, key)
                let cl: Int64
                switch Operation(rawValue: r.string(3) ?? "") {
                case .insert:
                    cl = current.map { $0.cl % 2 == 1 ? $0.cl : $0.cl + 1 } ?? 1
                    try versions.setRow(table, key, .init(cl: cl, version: version))
                    try versions.clearColumns(table, key)
                case .update:
                    cl = current?.cl ?? 1
                    if current == nil { try versions.setRow(table, key, .init(cl: 1, version: .zero)) }
                    try versions.setColumn(table, key, r.string(4) ?? "", version)
                case .delete:
                    cl = current.map { $0.cl % 2 == 1 ? $0.cl + 1 : $0.cl } ?? 2
                    try versions.setRow(table, key, .init(cl: cl, version: version))
                    try versions.clearColumns(table, key)
                case nil:
                    throw DataJoinError(.internalError, "outbox row \(r.int(0) ?? 0) has an unknown operation")
                }
                try db.execute("UPDATE ds_change_outbox SET seq = ?, hlc = ?, cl = ?, updated_by_server_id = ? WHERE id = ?",
                               [.integer(seq), .integer(me.hlc), .integer(cl), .text(me.nodeId), r.values[0]])
                total += 1
            }
        }
        if total > 0 {
            try db.execute("UPDATE ds_node SET hlc = ?, next_seq = ?", [.integer(me.hlc), .integer(me.nextSeq)])
        }
        return total
    }
}
