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

    /// The column names of captured inserts: a constant of each table's trigger, parsed once
    /// per run of rows that share it, not once per row.
    final class ColumnNames {
        private var last: (text: String, names: [String])?

        func parse(_ text: String) throws -> [String] {
            if let last, last.text == text { return last.names }
            let names = try CapturedJSON.array(text)
            guard names.allSatisfy({ $0 != nil }) else { throw DataJoinError(.internalError, "a captured column name is null") }
            last = (text, names.map { $0! })
            return last!.names
        }
    }

    /// A stamped outbox row as a change of this node.
    static func change(_ r: Row, me: NodeIdentity, tables: [String: TableInfo], brand: Brand, names: ColumnNames) throws -> Change {
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
            let captured = r.string(5) ?? "{}"
            if captured.utf8.first == UInt8(ascii: "[") {
                // Values in column order, the names in object_attribute (PostgreSQL's triggers).
                let columnNames = try names.parse(r.string(4) ?? "[]")
                let values = try CapturedJSON.array(captured)
                guard columnNames.count == values.count else {
                    throw DataJoinError(.internalError, "outbox row \(r.int(0) ?? 0) has \(values.count) values for \(columnNames.count) column names")
                }
                for (name, text) in zip(columnNames, values) {
                    columns.append(.init(name: name, value: ValueConversion.fromCaptured(text, brand: brand, kind: kind(name))))
                }
            } else {
                for (name, text) in try CapturedJSON.object(captured) {
                    columns.append(.init(name: name, value: ValueConversion.fromCaptured(text, brand: brand, kind: kind(name))))
                }
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
///
/// Works in chunks: one read of the chunk, one read of the row versions it touches, then
/// multi-row writes, so the cost per change is a few bytes of SQL, not a round trip.
enum Stamper {
    static let chunk = 2000
    static let batch = 400

    private typealias RowKey = VersionStore.Key

    /// SQLite: every outbox row at or below this id is stamped. SQLite has one writer at a time
    /// and AUTOINCREMENT never reuses an id, so id order is commit order and the unstamped rows
    /// are always the ids above it: the backlog is a rowid range, and the outbox needs no index
    /// on `seq IS NULL` that every captured row would have to update (capture ~15% faster).
    static let stampedThroughSetting = "outbox_stamped_through_id"

    static func stampedThrough(_ db: Database) throws -> Int64 {
        guard db.brand == .sqlite else { return 0 }
        return try Settings.int(db, stampedThroughSetting) ?? 0
    }

    /// How many captured rows wait for a sequence number.
    static func unstampedCount(_ db: Database) throws -> Int64 {
        try db.scalar("SELECT count(*) FROM ds_change_outbox WHERE seq IS NULL AND id > ?", [.integer(try stampedThrough(db))]).asInt64 ?? 0
    }

    @discardableResult
    static func stampPending(_ db: Database, me: inout NodeIdentity, tables: [String: TableInfo], limit: Int = .max) throws -> Int {
        let versions = VersionStore(db: db)
        let offset = try HybridLogicalClock.testOffsetMs(db)
        if db.brand == .postgres {
            // For the rest of the transaction (the importer's too, which stamps first): the
            // version tables may have grown by a million rows since their statistics were
            // taken, and every statement of stamping and import has an index path (keys, ids).
            // Bitmap scans too: on such statistics the planner bitmap-scanned the version
            // table's whole `object_table` prefix and filtered 100,000 rows for 400 keys.
            try db.execute("SET LOCAL enable_seqscan = off")
            try db.execute("SET LOCAL enable_bitmapscan = off")
        }
        var total = 0
        let select = "SELECT id, object_table, object_id, object_operation, object_attribute, captured_ms, source_id FROM ds_change_outbox WHERE seq IS NULL"
        var through = try stampedThrough(db)
        let throughBefore = through
        // PostgreSQL: a stamped row leaves a dead entry in the partial index until vacuum, so
        // each chunk starts after the last one (keyset) instead of at the index's start, which
        // would walk every row stamped so far. NULL source ids (rows an application wrote
        // itself) sort last, as in ORDER BY.
        var after: (source: Int64, id: Int64)?
        var nullPhase = false
        var lastNullId: Int64 = 0
        while true {
            var rows: [Row] = []
            switch db.brand {
            case .sqlite:
                rows = try db.rows(select + " AND id > ? ORDER BY id LIMIT \(chunk)", [.integer(through)])
                through = rows.last?.int(0) ?? through
            case .postgres:
                if !nullPhase {
                    rows = try after.map {
                        try db.rows(select + " AND source_id IS NOT NULL AND (source_id, id) > (?, ?) ORDER BY source_id, id LIMIT \(chunk)", [.integer($0.source), .integer($0.id)])
                    } ?? db.rows(select + " AND source_id IS NOT NULL ORDER BY source_id, id LIMIT \(chunk)")
                    if rows.isEmpty { nullPhase = true }
                }
                if nullPhase {
                    rows = try db.rows(select + " AND source_id IS NULL AND id > ? ORDER BY id LIMIT \(chunk)", [.integer(lastNullId)])
                }
                if let last = rows.last {
                    if nullPhase { lastNullId = last.int(0) ?? 0 } else { after = (last.int(6) ?? 0, last.int(0) ?? 0) }
                }
            }
            if rows.isEmpty || total >= limit { break }
            let keys: [RowKey] = try rows.map { r in
                let table = r.string(1) ?? ""
                let raw = try CapturedJSON.array(r.string(2) ?? "[]")
                let keyCols = tables[table]?.keyColumns ?? []
                let values = raw.enumerated().map { i, text in ValueConversion.fromCaptured(text, brand: db.brand, kind: i < keyCols.count ? keyCols[i].kind : .any) }
                return RowKey(table: table, key: KeyCodec.encode(tables[table]?.canonicalKey(values) ?? values))
            }
            var states = try versions.rows(Set(keys).map { ($0.table, $0.key) })
            let hadVersion = Set(states.keys)
            var rowWrites: [RowKey: VersionStore.RowState] = [:]
            var cleared: [RowKey] = []
            var columnWrites: [RowKey: [String: Version]] = [:]
            var outbox: [[Value]] = []
            for (r, key) in zip(rows, keys) {
                let captured = r.int(5).map { $0 + offset } ?? HybridLogicalClock.nowMs(offsetMs: offset)
                me.hlc = HybridLogicalClock.tick(after: me.hlc, physicalMs: captured)
                let version = Version(hlc: me.hlc, node: me.nodeId)
                let current = states[key]
                let cl: Int64
                switch Operation(rawValue: r.string(3) ?? "") {
                case .insert, .delete:
                    let isInsert = r.string(3) == "I"
                    cl = isInsert ? current.map { $0.cl % 2 == 1 ? $0.cl : $0.cl + 1 } ?? 1 : current.map { $0.cl % 2 == 1 ? $0.cl + 1 : $0.cl } ?? 2
                    states[key] = .init(cl: cl, version: version)
                    rowWrites[key] = states[key]
                    // Column versions reset with the generation; updates later in this chunk set them again.
                    if current != nil || columnWrites[key] != nil { cleared.append(key) }
                    columnWrites[key] = nil
                case .update:
                    cl = current?.cl ?? 1
                    if current == nil {
                        states[key] = .init(cl: 1, version: .zero)
                        rowWrites[key] = states[key]
                    }
                    columnWrites[key, default: [:]][r.string(4) ?? ""] = version
                case nil:
                    throw DataJoinError(.internalError, "outbox row \(r.int(0) ?? 0) has an unknown operation")
                }
                outbox.append([r.values[0], .integer(me.nextSeq), .integer(me.hlc), .integer(cl)])
                me.nextSeq += 1
            }
            try versions.clearColumns(cleared.map { ($0.table, $0.key) })
            // Rows without a version (most inserts) and columns just cleared: plain inserts.
            let noColumnVersions = Set(cleared).union(keys.filter { !hadVersion.contains($0) })
            for fresh in [true, false] {
                try versions.setRows(rowWrites.filter { hadVersion.contains($0.key) != fresh }.map { ($0.key.table, $0.key.key, $0.value) }, fresh: fresh)
                try versions.setColumns(columnWrites.filter { noColumnVersions.contains($0.key) == fresh }
                    .flatMap { k, cols in cols.map { (k.table, k.key, $0.key, $0.value) } }, fresh: fresh)
            }
            if db.brand == .postgres {
                // One statement per chunk, four array parameters: the server parses and binds
                // four values instead of 1,600 per 400 rows (the stamp writes were the largest
                // statement of a PostgreSQL export).
                func array(_ i: Int) -> Value { .text("{" + outbox.map { String($0[i].asInt64 ?? 0) }.joined(separator: ",") + "}") }
                try db.execute("""
                    UPDATE ds_change_outbox SET seq = v.seq, hlc = v.hlc, cl = v.cl, updated_by_server_id = ?
                    FROM unnest(CAST(? AS bigint[]), CAST(? AS bigint[]), CAST(? AS bigint[]), CAST(? AS bigint[])) AS v(id, seq, hlc, cl)
                    WHERE ds_change_outbox.id = v.id
                    """, [.text(me.nodeId), array(0), array(1), array(2), array(3)])
            } else {
                for part in stride(from: 0, to: outbox.count, by: batch) {
                    let slice = outbox[part..<min(part + batch, outbox.count)]
                    let tuples = slice.map { _ in "(CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT))" }.joined(separator: ", ")
                    try db.execute("""
                        WITH v(id, seq, hlc, cl) AS (VALUES \(tuples))
                        UPDATE ds_change_outbox SET seq = v.seq, hlc = v.hlc, cl = v.cl, updated_by_server_id = ? FROM v WHERE ds_change_outbox.id = v.id
                        """, slice.flatMap { $0 } + [.text(me.nodeId)])
                }
            }
            total += rows.count
        }
        if total > 0 {
            try db.execute("UPDATE ds_node SET hlc = ?, next_seq = ?", [.integer(me.hlc), .integer(me.nextSeq)])
        }
        if through != throughBefore {
            try Settings.set(db, stampedThroughSetting, through)
        }
        return total
    }
}
