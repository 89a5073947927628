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

/// A change's primary key in its canonical form, and that form's bytes (the version tables' key).
typealias CanonicalKey = (key: [Value], bytes: [UInt8])

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
    /// Tables whose key the database generates, looked up when two inserts of a key first meet.
    private var generatedKeys: [String: Bool] = [:]
    /// Set on the fast path: rows are read and written through it, many per statement.
    var batch: RowBatch?

    /// Each table's foreign keys to itself whose cascade the importer runs (`TableSQL`).
    private let within: [String: [ForeignKey]]
    /// Nodes known here in more than one epoch (restored from a backup), this one included
    /// when it was: looked up once.
    private var restoredNodes: Set<String>?

    init(db: Database, tables: [String: TableInfo], within: [String: [ForeignKey]]) {
        self.db = db
        self.tables = tables
        self.within = within
        versions = VersionCache(db: db)
        conflicts = ConflictLog(db: db)
    }

    /// Two versions of one node's own history: its edits arriving out of order are no
    /// conflict. A node restored from a backup is not one history: its new edit did not see
    /// the one it lost, and that is logged as between two nodes (found in review).
    private mutating func oneHistory(_ a: Version, _ b: Version) throws -> Bool {
        guard a.node == b.node, !a.node.isEmpty else { return false }
        if restoredNodes == nil {
            var nodes = Set(
                try db.rows(
                    "SELECT origin FROM ds_origin_state WHERE \(Exporter.notSnapshot) GROUP BY origin HAVING count(*) > 1"
                ).compactMap { $0.string(0) })
            if try !Settings.names(db, prefix: Epochs.issuedSetting("")).isEmpty {
                nodes.insert(try NodeIdentity.load(db).nodeId)
            }
            restoredNodes = nodes
        }
        return !restoredNodes!.contains(a.node)
    }

    /// A value placed for its column: the value, and the column's position in the table.
    typealias PlacedValue = (Change.ColumnValue, Int)

    // Rows go through the batch on the fast path, straight to the database otherwise.
    /// Change by change, the row was read in this transaction: an insert when it is absent, an
    /// update of its key's row when it is there, never a write that matches another unique index.
    private func upsert(_ row: inout LocalRow, _ columns: [PlacedValue]) throws {
        if let batch {
            try batch.upsert(row.sql.table.name, row.key, bytes: row.rowKey, columns)
        } else if try row.current() == nil {
            try row.sql.insert(row.key, columns.map(\.0))
        } else {
            try row.sql.update(
                row.key, columns.map(\.0).filter { c in !row.sql.table.keyColumns.contains { $0.name == c.name } })
        }
    }
    private func update(_ row: LocalRow, _ columns: [PlacedValue]) throws {
        if let batch {
            try batch.update(row.sql.table.name, row.key, bytes: row.rowKey, columns)
        } else {
            try row.sql.update(row.key, columns.map(\.0))
        }
    }
    private func delete(_ row: LocalRow) throws {
        if let batch {
            try batch.delete(row.sql.table.name, row.key, bytes: row.rowKey)
        } else {
            try row.sql.delete(row.key)
        }
    }

    /// `canonical`: the change's canonical key and its bytes, when the caller has them already.
    mutating func apply(_ c: Change, canonical: CanonicalKey? = nil) throws -> ApplyOutcome {
        let t: TableInfo
        let placed: [PlacedValue]
        switch placement(of: c) {
        case .held(let reason): return .held(reason)
        case .placed(let table, let values): (t, placed) = (table, values)
        }
        var row = try localRow(c, t, canonical: canonical)
        // The values' fit is checked after the row is read, as it always was: the database sees
        // the same reads, in the same order, for a held change too.
        if c.op != .delete,
            let problem = ValueFit.problem(try valuesWritten(c, row, placed), table: t, dialect: db.dialect)
        {
            return .held(problem)
        }
        switch c.op {
        case .insert: return try applyInsert(c, &row, placed)
        case .update: return try applyUpdate(c, &row, placed)
        case .delete: return try applyDelete(c, row)
        }
    }

    /// The checks that hold a change whatever the row holds here: a table or column not
    /// tracked, a key that cannot be matched. Passed, its values typed by their columns.
    private func placement(of c: Change) -> Placement {
        guard let t = tables[c.table] else {
            // No peer writes these through capture: a forged or damaged change, never tracked.
            if Tracker.isOwnTable(c.table) {
                return .held(
                    "table \(c.table) is one of DataJoin's own tables, which no change from a peer may write; "
                        + "give up its changes with 'datajoin import --drop-held-table \(c.table)', and ask who signed it"
                )
            }
            return .held(
                "table \(c.table) is not tracked here; run 'datajoin track \(c.table)' (create the table first if it is missing), then 'datajoin import'; "
                    + "if this node does not keep \(c.table), give up its changes with 'datajoin import --drop-held-table \(c.table)'"
            )
        }
        // Each column's position, looked up once: the rules below index rows by it.
        var columns: [Change.ColumnValue] = [], positions: [Int] = []
        columns.reserveCapacity(c.columns.count)
        positions.reserveCapacity(c.columns.count)
        for col in c.columns {
            guard let p = t.position(col.name) else {
                // An insert's NULL in a column this node does not have (dropped here, or not yet
                // added) is the row as this node holds it: applied without it (found from
                // outside: a node that dropped a column held every later insert for good).
                if c.op == .insert, col.value == .null { continue }
                return .held(
                    "column \(c.table).\(col.name) does not exist here; add it, re-run 'datajoin track \(c.table)', then 'datajoin import'; "
                        + "if it was dropped or renamed here on purpose, run the same ALTER TABLE and 'datajoin track \(c.table)' on \(c.origin), "
                        + "then 'datajoin track --backfill \(c.table)' there (its rows come again without it), and drop this one with 'datajoin import --drop-held \(c.origin)#\(c.seq)'"
                )
            }
            columns.append(col)
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
        if let problem = t.keyKindProblem(c.key) { return .held("\(c.table): \(problem)") }
        if let problem = ValueFit.keyProblem(c.key, table: t, dialect: db.dialect) { return .held(problem) }
        // The key's columns by name, not only by count: a key of (b) applied as a key of (a)
        // overwrote and then deleted another row (found from outside).
        if !c.keyNames.isEmpty, c.keyNames != t.keyColumns.map(\.name) {
            return .held(
                "\(c.table): the key is (\(c.keyNames.joined(separator: ", "))) on \(c.origin) but "
                    + "(\(t.keyColumns.map(\.name).joined(separator: ", "))) here: give the table the same primary key on every node"
            )
        }
        // Each value, typed by its column, with the column's position.
        let placed = zip(columns, positions).map {
            (
                Change.ColumnValue(
                    name: $0.name,
                    value: db.dialect.storedValue(
                        ValueConversion.normalize($0.value, kind: t.columns[$1].kind), t.columns[$1])),
                $1
            )
        }
        return .placed(t, placed)
    }

    /// The values the rules below would write: none of an older generation, of an insert no
    /// newer than the row or an update no newer than its column; of a newer insert of the same
    /// generation, those newer than their column. Only they are checked for a fit: a value
    /// this node cannot store must not hold a change that would never write it, or it would
    /// wait for good after the row's delete or a newer edit (found from outside: every import
    /// exited 2 for it).
    private func valuesWritten(_ c: Change, _ row: LocalRow, _ placed: [PlacedValue]) throws -> [PlacedValue] {
        if c.cl != row.cl || row.state == nil { return c.cl < row.cl ? [] : placed }
        switch c.op {
        case .insert:
            let columnVersions = try versions.columns(c.table, row.keyBytes)
            return placed.filter { v, _ in (columnVersions[v.name] ?? row.version) < row.incoming }
        case .update:
            guard let name = placed.first?.0.name else { return placed }
            return row.incoming > (try versions.column(c.table, row.keyBytes, name) ?? row.version) ? placed : []
        case .delete: return []
        }
    }

    /// An insert of a row identical to the one held, where it is that row: the same node's
    /// backfill after tracking the table again, or a row held before tracking on either side
    /// (a zero version: a copy of this database, its snapshot, its backfill; found from
    /// outside: every row of such a backfill was reported). Identical rows two nodes inserted
    /// apart stay a collision: one of them is gone (found in review).
    private func sameRowAgain(_ row: inout LocalRow, _ placed: [PlacedValue]) throws -> Bool {
        guard row.incoming.node == row.version.node || row.version.hlc == 0 || row.incoming.hlc == 0,
            let local = try row.current()
        else { return false }
        return placed.allSatisfy { v, p in (local[p] ?? nil) == v.value }
    }

    private mutating func generated(_ table: String) throws -> Bool {
        if let known = generatedKeys[table] { return known }
        let g = try tables[table].map { try db.dialect.generatedKey(db, $0) != nil } ?? false
        generatedKeys[table] = g
        return g
    }

    /// The rows the caller deletes next, one by one: a cascade within their table leaves them
    /// to it (`TableSQL.cascadeWithin`). Not a row a later generation here outlives the delete
    /// of: it stays, and a parent's cascade reaching it is this node's (found in review).
    mutating func deleting(_ due: [PostponedDelete]) throws {
        var keys: [String: Set<[Value]>] = [:]
        for p in due {
            if let here = try versions.row(p.change.table, p.key.bytes), here.cl > p.change.cl { continue }
            keys[p.change.table, default: []].insert(p.key.key)
        }
        deleting(keys)
    }

    /// The same by table. Empty: none.
    mutating func deleting(_ keys: [String: Set<[Value]>]) {
        for name in Set(keys.keys).union(statements.keys) {
            guard let t = tables[name] else { continue }
            let sql = statements[name] ?? TableSQL(table: t, db: db, within: within[name] ?? [])
            statements[name] = sql
            sql.deletingNext = keys[name] ?? []
        }
    }

    /// A row of `deleting` whose delete has settled.
    func settled(_ table: String, _ key: [Value]) { statements[table]?.deletingNext.remove(key) }

    /// The row `c` is for, with its version; its values are read when a rule needs them.
    private mutating func localRow(_ c: Change, _ t: TableInfo, canonical: CanonicalKey?) throws
        -> LocalRow
    {
        let key = canonical?.key ?? t.canonicalKey(c.key)
        let keyBytes = canonical?.bytes ?? KeyCodec.encode(key)
        let sql = statements[c.table] ?? TableSQL(table: t, db: db, within: within[c.table] ?? [])
        statements[c.table] = sql
        return try LocalRow(
            table: c.table, key: key, keyBytes: keyBytes, incoming: Version(hlc: c.hlc, node: c.origin),
            state: try versions.row(c.table, keyBytes), sql: sql, batch: batch)
    }

    private mutating func applyInsert(_ c: Change, _ row: inout LocalRow, _ placed: [PlacedValue]) throws
        -> ApplyOutcome
    {
        if c.cl < row.cl {
            try conflicts.record(
                table: c.table, key: row.key, column: nil, winner: nil, winnerVersion: row.version, loser: nil,
                loserVersion: row.incoming,
                reason:
                    "insert of generation \(c.cl) arrived after generation \(row.cl) (the row was deleted or re-created since)"
            )
            return .unchanged
        }
        if c.cl > row.cl { return try insertNewGeneration(c, &row, placed) }
        // The same generation: concurrent inserts of one key, or this insert again. Of a key
        // the database generates, two inserts are two rows that should never have met. Two zero
        // versions are one row both nodes held before tracking (a snapshot sends it so), not
        // two inserts (found in review: a snapshot into a copy of its node reported one).
        if row.state != nil, row.incoming != row.version, row.incoming.hlc != 0 || row.version.hlc != 0,
            try generated(c.table), try !sameRowAgain(&row, placed)
        {
            try KeyCollisions.record(db, table: c.table, key: row.key, row: row.version, insert: row.incoming)
        }
        let columnVersions = try versions.columns(c.table, row.keyBytes)
        guard row.incoming > row.version else {
            // Columns no write here carried (added since the row was written: the zero
            // version) take this insert's values, older than the row or not.
            let unwritten = placed.filter { v, _ in (columnVersions[v.name] ?? row.version) < row.incoming }
            let unwrittenAt = Set(unwritten.map(\.1))
            if row.incoming != row.version, let local = try row.current() {
                for (v, p) in placed where !unwrittenAt.contains(p) {
                    guard let lv = local[p], lv != v.value else { continue }
                    try conflicts.record(
                        table: c.table, key: row.key, column: v.name, winner: lv,
                        winnerVersion: columnVersions[v.name] ?? row.version,
                        loser: v.value, loserVersion: row.incoming,
                        reason: "concurrent insert of the same key; the other is newer")
                }
            }
            for name in nullsNotHere(c, placed, row) where (columnVersions[name] ?? row.version) < row.incoming {
                try versions.setColumn(c.table, row.keyBytes, name, row.incoming)
            }
            return try insertUnwritten(c, &row, unwritten)
        }
        return try insertNewerValues(c, &row, placed, columnVersions: columnVersions)
    }

    /// An insert no newer than the row still writes the columns whose value here no write
    /// carried, and they keep its version (found from outside: a column added on one node first
    /// kept the other node's default for good, `check` OK).
    private mutating func insertUnwritten(_ c: Change, _ row: inout LocalRow, _ unwritten: [PlacedValue]) throws
        -> ApplyOutcome
    {
        guard !unwritten.isEmpty, let local = try row.current() else { return .unchanged }
        try update(row, unwritten.filter { v, p in (local[p] ?? nil) != v.value })
        for (v, _) in unwritten { try versions.setColumn(c.table, row.keyBytes, v.name, row.incoming) }
        return .applied
    }

    /// A later generation re-creates the row: its values replace what the row held.
    private mutating func insertNewGeneration(_ c: Change, _ row: inout LocalRow, _ placed: [PlacedValue]) throws
        -> ApplyOutcome
    {
        if row.cl % 2 == 1, let local = try row.current() {
            for (v, p) in placed {
                guard let lv = local[p], lv != v.value else { continue }
                try conflicts.record(
                    table: c.table, key: row.key, column: v.name, winner: v.value, winnerVersion: row.incoming,
                    loser: lv,
                    loserVersion: row.version, reason: "row re-created by generation \(c.cl) elsewhere")
            }
        }
        try upsert(&row, placed)
        // Column versions are cleared before the row's new version is set: a row that had
        // no version has none to clear (and nothing to look up).
        try versions.clearColumns(c.table, row.keyBytes)
        for name in try notCarried(by: placed, row) { try versions.setColumn(c.table, row.keyBytes, name, .zero) }
        for name in nullsNotHere(c, placed, row) { try versions.setColumn(c.table, row.keyBytes, name, row.incoming) }
        versions.setRow(c.table, row.keyBytes, .init(cl: c.cl, version: row.incoming))
        return .applied
    }

    /// The columns an insert sets to NULL that this node does not have (yet): applied without
    /// them, their write is kept as a version, so that `track` of the column added here later
    /// does not take it for no write (found in review: an older insert's value then won here
    /// only).
    private func nullsNotHere(_ c: Change, _ placed: [PlacedValue], _ row: LocalRow) -> [String] {
        guard placed.count < c.columns.count else { return [] }
        return c.columns.filter { $0.value == .null && row.sql.table.position($0.name) == nil }.map(\.name)
    }

    /// The columns of the table an insert does not carry (its origin does not have them yet):
    /// their values here are no write of the insert's.
    private func notCarried(by placed: [PlacedValue], _ row: LocalRow) throws -> [String] {
        let columns = row.sql.table.columns
        guard placed.count < columns.count else { return [] }
        let carried = Set(placed.map(\.1))
        return columns.indices.filter { !carried.contains($0) }.map { columns[$0].name }
    }

    /// A newer insert of the same generation: each column takes the value with the higher
    /// version, the insert's or a later update's held here.
    private mutating func insertNewerValues(
        _ c: Change, _ row: inout LocalRow, _ placed: [PlacedValue], columnVersions: [String: Version]
    ) throws -> ApplyOutcome {
        let local = try row.current()
        var winners: [PlacedValue] = []
        for (v, p) in placed {
            let localVersion = columnVersions[v.name] ?? row.version
            let localValue = local?[p] ?? nil
            if localVersion < row.incoming {
                winners.append((v, p))
                if let lv = localValue, lv != v.value, local != nil {
                    try conflicts.record(
                        table: c.table, key: row.key, column: v.name, winner: v.value, winnerVersion: row.incoming,
                        loser: lv,
                        loserVersion: localVersion, reason: "concurrent insert of the same key; this one is newer")
                }
                if columnVersions[v.name] != nil { try versions.clearColumn(c.table, row.keyBytes, v.name) }
            } else if let lv = localValue, lv != v.value, try !oneHistory(row.incoming, localVersion) {
                try conflicts.record(
                    table: c.table, key: row.key, column: v.name, winner: lv, winnerVersion: localVersion,
                    loser: v.value,
                    loserVersion: row.incoming, reason: "insert older than a later update of this column")
            }
        }
        if local == nil {
            try upsert(&row, winners)
        } else {
            let changed = winners.filter { v, p in (local?[p] ?? nil) != v.value }
            try update(row, changed)
        }
        // A column the insert does not carry keeps the version its value had.
        for name in try notCarried(by: placed, row) where columnVersions[name] == nil {
            try versions.setColumn(c.table, row.keyBytes, name, row.version)
        }
        for name in nullsNotHere(c, placed, row) where (columnVersions[name] ?? row.version) < row.incoming {
            try versions.setColumn(c.table, row.keyBytes, name, row.incoming)
        }
        versions.setRow(c.table, row.keyBytes, .init(cl: c.cl, version: row.incoming))
        return .applied
    }

    private mutating func applyUpdate(_ c: Change, _ row: inout LocalRow, _ placed: [PlacedValue]) throws
        -> ApplyOutcome
    {
        guard let (v, position) = placed.first else { return .unchanged }
        if c.cl < row.cl {
            // A node's own update that arrives after its own delete lost nothing of another's.
            if try oneHistory(row.incoming, row.version) { return .unchanged }
            try conflicts.record(
                table: c.table, key: row.key, column: v.name, winner: nil, winnerVersion: row.version,
                loser: v.value,
                loserVersion: row.incoming,
                reason: row.cl % 2 == 0
                    ? "update of a row deleted since (delete wins)"
                    : "update of an older generation of a re-created row")
            return .unchanged
        }
        if c.cl > row.cl {
            return .held(
                "waiting for generation \(c.cl) of \(c.table) \(KeyCodec.display(row.key)): its insert has not arrived yet, or is held (its reason is listed with it)"
            )
        }
        guard let local = try row.current() else {
            return .held("\(c.table) \(KeyCodec.display(row.key)) is missing here although its version says it exists")
        }
        let localVersion = try versions.column(c.table, row.keyBytes, v.name) ?? row.version
        let localValue = local[position] ?? .null
        if row.incoming == localVersion { return .unchanged }
        if row.incoming < localVersion {
            // One node's own edits arriving out of order are not concurrent: the later replaced
            // the earlier on that node first (found from outside: they were logged as conflicts).
            if localValue != v.value, try !oneHistory(row.incoming, localVersion) {
                try conflicts.record(
                    table: c.table, key: row.key, column: v.name, winner: localValue, winnerVersion: localVersion,
                    loser: v.value,
                    loserVersion: row.incoming, reason: "update older than the value held here")
            }
            return .unchanged
        }
        return try updateNewer(c, row, (v, position), localValue: localValue, localVersion: localVersion)
    }

    /// An update newer than the column's value here: it takes the column.
    private mutating func updateNewer(
        _ c: Change, _ row: LocalRow, _ placed: PlacedValue, localValue: Value, localVersion: Version
    ) throws -> ApplyOutcome {
        let (v, position) = placed
        // An update whose old and new values together passed 64 MiB was sent without its old
        // value (NULL): that is not a concurrent edit (BundleWriter).
        let oldLeftOut =
            c.oldValue == .null && Self.size(localValue) + Self.size(v.value) > BundleFormat.maxChangeBytes - 1_024
        if let old = c.oldValue, !oldLeftOut, !localValue.matchesCaptured(old), localValue != v.value,
            try !oneHistory(row.incoming, localVersion)
        {
            try conflicts.record(
                table: c.table, key: row.key, column: v.name, winner: v.value, winnerVersion: row.incoming,
                loser: localValue,
                loserVersion: localVersion, reason: "concurrent update; the incoming one is newer")
        }
        if localValue != v.value {
            try update(row, [(v, position)])
        }
        // A row present before tracking gets its implicit version written down, as the
        // stamper does: a column version never stands without its row's (`check`).
        if row.state == nil { versions.setRow(c.table, row.keyBytes, .init(cl: 1, version: .zero)) }
        try versions.setColumn(c.table, row.keyBytes, v.name, row.incoming)
        return .applied
    }

    private func applyDelete(_ c: Change, _ row: LocalRow) throws -> ApplyOutcome {
        if c.cl > row.cl {
            if row.cl > 0 || row.state == nil {
                try delete(row)
            }
            // Column versions are cleared before the row's new version is set: a row that had
            // no version has none to clear (and nothing to look up).
            try versions.clearColumns(c.table, row.keyBytes)
            versions.setRow(c.table, row.keyBytes, .init(cl: c.cl, version: row.incoming))
            return .applied
        }
        if c.cl == row.cl && row.incoming > row.version {
            // Two nodes deleted the same generation: keep the higher version everywhere.
            versions.setRow(c.table, row.keyBytes, .init(cl: c.cl, version: row.incoming))
        }
        return .unchanged
    }
}
