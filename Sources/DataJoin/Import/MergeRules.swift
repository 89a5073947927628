import Foundation

/// What applying one change did.
enum ApplyOutcome: Equatable {
    case applied
    /// Already there, or older than what the row holds (the loss is in the conflict log).
    case unchanged
    /// Cannot apply yet; kept in the inbox with the reason and retried on every import.
    case held(String)
}

extension Merger {
    static func size(_ v: Value) -> Int {
        switch v {
        case .text(let s): return s.utf8.count
        case .blob(let b): return b.count
        default: return 8
        }
    }
}

/// The apply rules of docs/conflict-rules.md, one change at a time.
///
/// Row existence follows the causal length (cl): odd = alive, even = deleted; a delete makes it
/// even, a re-insert odd again. A higher generation always wins, whatever the clocks say; inside
/// one generation every column takes the value with the highest version (HLC stamp, then node id).
struct Merger {
    let db: Database
    let tables: [String: TableInfo]
    let versions: VersionCache
    var conflicts: ConflictLog
    private var statements: [String: TableSQL] = [:]
    /// Set on the fast path: rows are read and written through it, many per statement.
    var batch: RowBatch?

    init(db: Database, tables: [String: TableInfo]) {
        self.db = db
        self.tables = tables
        versions = VersionCache(db: db)
        conflicts = ConflictLog(db: db)
    }

    // Rows go through the batch on the fast path, straight to the database otherwise.
    // `columns` are (value, position in the table) pairs.
    private func upsert(_ sql: TableSQL, _ key: [Value], _ bytes: KeyBytes, _ columns: [(Change.ColumnValue, Int)])
        throws
    {
        if let batch {
            try batch.upsert(sql.table.name, key, bytes: bytes, columns)
        } else {
            try sql.upsert(key, columns.map(\.0))
        }
    }
    private func update(_ sql: TableSQL, _ key: [Value], _ bytes: KeyBytes, _ columns: [(Change.ColumnValue, Int)])
        throws
    {
        if let batch {
            try batch.update(sql.table.name, key, bytes: bytes, columns)
        } else {
            try sql.update(key, columns.map(\.0))
        }
    }
    private func delete(_ sql: TableSQL, _ key: [Value], _ bytes: KeyBytes) throws {
        if let batch { try batch.delete(sql.table.name, key, bytes: bytes) } else { try sql.delete(key) }
    }

    /// `canonical`: the change's canonical key and its bytes, when the caller has them already.
    mutating func apply(_ c: Change, canonical: (key: [Value], bytes: [UInt8])? = nil) throws -> ApplyOutcome {
        guard let t = tables[c.table] else {
            return .held(
                "table \(c.table) is not tracked here; create it and run 'datajoin track', then 'datajoin import'")
        }
        // Each column's position, looked up once: the rules below index rows by it.
        var positions: [Int] = []
        positions.reserveCapacity(c.columns.count)
        for col in c.columns {
            guard let p = t.position(col.name) else {
                return .held(
                    "column \(c.table).\(col.name) does not exist here; add it, re-run 'datajoin track \(c.table)', then 'datajoin import'"
                )
            }
            positions.append(p)
        }
        guard c.key.count == t.keyColumns.count else {
            return .held("\(c.table) has a \(t.keyColumns.count)-column key here but the change has \(c.key.count)")
        }
        // SQLite lets a non-INTEGER PRIMARY KEY column hold NULL; such a row cannot be found again
        // by its key (NULL = NULL is not true), so its later changes would wait for ever. Held
        // from the start, with the reason: visible, and the same on every node.
        if c.key.contains(.null) {
            return .held(
                "\(c.table): the key (\(t.keyColumns.map(\.name).joined(separator: ", "))) of this row is NULL on \(c.origin); "
                    + "a row without a key cannot be matched on another node: give it a key there")
        }
        if let problem = db.dialect.keyProblem(c.key) { return .held("\(c.table): \(problem)") }
        let key = canonical?.key ?? t.canonicalKey(c.key)
        let keyBytes = canonical?.bytes ?? KeyCodec.encode(key)
        let rowKey = KeyBytes(keyBytes)
        let incoming = Version(hlc: c.hlc, node: c.origin)
        let sql = statements[c.table] ?? TableSQL(table: t, db: db)
        statements[c.table] = sql
        let state = try versions.row(c.table, keyBytes)
        // The local row's values by column position (nil: not set in a row inserted earlier in
        // this batch).
        var localRow: [Value?]??
        func current() throws -> [Value?]? {
            if let r = localRow { return r }
            let r: [Value?]?
            if let batch {
                r = try batch.select(c.table, key, bytes: rowKey)
            } else {
                r = try sql.select(key).map { $0.map { $0 } }
            }
            localRow = .some(r)
            return r
        }
        // A row present before tracking started counts as generation 1 with the zero version.
        let localCl = try state?.cl ?? (current() == nil ? 0 : 1)
        let rowVersion = state?.version ?? .zero
        // Each value, typed by its column, with the column's position.
        let placed = zip(c.columns, positions).map {
            (
                Change.ColumnValue(name: $0.name, value: ValueConversion.normalize($0.value, kind: t.columns[$1].kind)),
                $1
            )
        }
        if c.op != .delete, let problem = ValueFit.problem(placed, table: t, dialect: db.dialect) {
            return .held(problem)
        }

        switch c.op {
        case .insert:
            if c.cl < localCl {
                try conflicts.record(
                    table: c.table, key: key, column: nil, winner: nil, winnerVersion: rowVersion, loser: nil,
                    loserVersion: incoming,
                    reason:
                        "insert of generation \(c.cl) arrived after generation \(localCl) (the row was deleted or re-created since)"
                )
                return .unchanged
            }
            if c.cl > localCl {
                if localCl % 2 == 1, let local = try current() {
                    for (v, p) in placed {
                        guard let lv = local[p], lv != v.value else { continue }
                        try conflicts.record(
                            table: c.table, key: key, column: v.name, winner: v.value, winnerVersion: incoming,
                            loser: lv,
                            loserVersion: rowVersion, reason: "row re-created by generation \(c.cl) elsewhere")
                    }
                }
                try upsert(sql, key, rowKey, placed)
                // Column versions are cleared before the row's new version is set: a row that had
                // no version has none to clear (and nothing to look up).
                try versions.clearColumns(c.table, keyBytes)
                versions.setRow(c.table, keyBytes, .init(cl: c.cl, version: incoming))
                return .applied
            }
            // The same generation: concurrent inserts of one key, or this insert again.
            let columnVersions = try versions.columns(c.table, keyBytes)
            guard incoming > rowVersion else {
                if incoming != rowVersion, let local = try current() {
                    for (v, p) in placed {
                        guard let lv = local[p], lv != v.value else { continue }
                        try conflicts.record(
                            table: c.table, key: key, column: v.name, winner: lv,
                            winnerVersion: columnVersions[v.name] ?? rowVersion,
                            loser: v.value, loserVersion: incoming,
                            reason: "concurrent insert of the same key; the other is newer")
                    }
                }
                return .unchanged
            }
            let local = try current()
            var winners: [(Change.ColumnValue, Int)] = []
            for (v, p) in placed {
                let localVersion = columnVersions[v.name] ?? rowVersion
                let localValue = local?[p] ?? nil
                if localVersion < incoming {
                    winners.append((v, p))
                    if let lv = localValue, lv != v.value, local != nil {
                        try conflicts.record(
                            table: c.table, key: key, column: v.name, winner: v.value, winnerVersion: incoming,
                            loser: lv,
                            loserVersion: localVersion, reason: "concurrent insert of the same key; this one is newer")
                    }
                    if columnVersions[v.name] != nil { try versions.clearColumn(c.table, keyBytes, v.name) }
                } else if let lv = localValue, lv != v.value {
                    try conflicts.record(
                        table: c.table, key: key, column: v.name, winner: lv, winnerVersion: localVersion,
                        loser: v.value,
                        loserVersion: incoming, reason: "insert older than a later update of this column")
                }
            }
            if local == nil {
                try upsert(sql, key, rowKey, winners)
            } else {
                let changed = winners.filter { v, p in (local?[p] ?? nil) != v.value }
                try update(sql, key, rowKey, changed)
            }
            versions.setRow(c.table, keyBytes, .init(cl: c.cl, version: incoming))
            return .applied

        case .update:
            guard let (v, position) = placed.first else { return .unchanged }
            if c.cl < localCl {
                try conflicts.record(
                    table: c.table, key: key, column: v.name, winner: nil, winnerVersion: rowVersion, loser: v.value,
                    loserVersion: incoming,
                    reason: localCl % 2 == 0
                        ? "update of a row deleted since (delete wins)"
                        : "update of an older generation of a re-created row")
                return .unchanged
            }
            if c.cl > localCl {
                return .held(
                    "waiting for generation \(c.cl) of \(c.table) \(KeyCodec.display(key)): its insert has not arrived yet"
                )
            }
            guard let local = try current() else {
                return .held("\(c.table) \(KeyCodec.display(key)) is missing here although its version says it exists")
            }
            let localVersion = try versions.column(c.table, keyBytes, v.name) ?? rowVersion
            let localValue = local[position] ?? .null
            if incoming == localVersion { return .unchanged }
            if incoming < localVersion {
                if localValue != v.value {
                    try conflicts.record(
                        table: c.table, key: key, column: v.name, winner: localValue, winnerVersion: localVersion,
                        loser: v.value,
                        loserVersion: incoming, reason: "update older than the value held here")
                }
                return .unchanged
            }
            // An update whose old and new values together passed 64 MiB was sent without its old
            // value (NULL): that is not a concurrent edit (BundleWriter).
            let oldLeftOut =
                c.oldValue == .null && Self.size(localValue) + Self.size(v.value) > BundleFormat.maxChangeBytes - 1_024
            if let old = c.oldValue, !oldLeftOut, localValue != old, localValue != v.value {
                try conflicts.record(
                    table: c.table, key: key, column: v.name, winner: v.value, winnerVersion: incoming,
                    loser: localValue,
                    loserVersion: localVersion, reason: "concurrent update; the incoming one is newer")
            }
            if localValue != v.value {
                try update(sql, key, rowKey, [(v, position)])
            }
            // A row present before tracking gets its implicit version written down, as the
            // stamper does: a column version never stands without its row's (`check`).
            if state == nil { versions.setRow(c.table, keyBytes, .init(cl: 1, version: .zero)) }
            try versions.setColumn(c.table, keyBytes, v.name, incoming)
            return .applied

        case .delete:
            if c.cl > localCl {
                if localCl > 0 || state == nil {
                    try delete(sql, key, rowKey)
                }
                // Column versions are cleared before the row's new version is set: a row that had
                // no version has none to clear (and nothing to look up).
                try versions.clearColumns(c.table, keyBytes)
                versions.setRow(c.table, keyBytes, .init(cl: c.cl, version: incoming))
                return .applied
            }
            if c.cl == localCl && incoming > rowVersion {
                // Two nodes deleted the same generation: keep the higher version everywhere.
                versions.setRow(c.table, keyBytes, .init(cl: c.cl, version: incoming))
            }
            return .unchanged
        }
    }
}
