import Foundation

/// The application rows one chunk of changes touches, read in one query per table and written
/// back in a few multi-row statements at `flush()`: the merge rules see every earlier change of
/// the chunk through this overlay, and the database sees each row's final state once.
///
/// Used on the fast path only (no savepoint per change). If the database refuses a flush, the
/// bundle is rolled back and applied again change by change (Importer), so a refusal is still
/// held per change.
final class RowBatch {
    private enum Pending {
        /// Insert, or set these columns of the existing row. `replace`: the row was deleted
        /// earlier in the chunk, so it is deleted first and inserted fresh.
        case upsert([String: Value], replace: Bool)
        /// Set these columns of a row that exists.
        case update([String: Value])
        case delete
    }

    /// A class: updated in place, never copied with its dictionaries.
    private final class TableState {
        let sql: TableSQL
        init(sql: TableSQL) { self.sql = sql }
        /// nil value: known not to exist.
        var rows: [KeyBytes: [String: Value]?] = [:]
        var keys: [KeyBytes: [Value]] = [:]
        var pending: [KeyBytes: Pending] = [:]
        var order: [KeyBytes] = []
    }

    let db: Database
    private var tables: [String: TableState] = [:]
    private let flushOrder: [String]

    init(db: Database, tables: [String: TableInfo], order: [String]) {
        self.db = db
        flushOrder = order
        for (name, t) in tables { self.tables[name] = TableState(sql: TableSQL(table: t, db: db)) }
    }

    /// Reads the current rows of these keys (canonical), one statement per table and batch.
    func prefetch(_ keys: [(table: String, key: [Value])]) throws {
        for (name, list) in Dictionary(grouping: keys, by: \.table) {
            guard let state = tables[name] else { continue }
            var missing: [[Value]] = []
            for k in list {
                let bytes = KeyBytes(KeyCodec.encode(k.key))
                // Marked absent until the read below finds it; a key seen twice is read once.
                if state.rows[bytes] == nil { state.rows[bytes] = .some(nil); missing.append(k.key) }
            }
            try state.sql.selectMany(missing) { key, row in state.rows[KeyBytes(KeyCodec.encode(key))] = .some(row) }
        }
    }

    /// `bytes`: the key's encoding (KeyCodec), which the caller already has.
    func select(_ table: String, _ key: [Value], bytes: KeyBytes) throws -> [String: Value]? {
        if let cached = tables[table]?.rows[bytes] { return cached }
        let state = tables[table]!
        let row = try state.sql.select(key)
        state.rows[bytes] = .some(row)
        return row
    }

    func upsert(_ table: String, _ key: [Value], bytes: KeyBytes, _ columns: [Change.ColumnValue]) throws {
        let before = try select(table, key, bytes: bytes)
        let state = tables[table]!
        var row = before ?? [:]
        row.reserveCapacity(state.sql.table.columns.count)
        for (c, v) in zip(state.sql.table.keyColumns, key) { row[c.name] = v }
        var set: [String: Value] = [:]
        set.reserveCapacity(columns.count)
        for c in columns { row[c.name] = c.value; set[c.name] = c.value }
        switch state.pending[bytes] {
        case .upsert(let prev, let replace)?: state.pending[bytes] = .upsert(prev.merging(set) { $1 }, replace: replace)
        case .update(let prev)?: state.pending[bytes] = .upsert(prev.merging(set) { $1 }, replace: false)
        case .delete?: state.pending[bytes] = .upsert(set, replace: true)
        case nil: state.pending[bytes] = .upsert(set, replace: false); state.order.append(bytes)
        }
        state.keys[bytes] = key
        state.rows[bytes] = .some(row)
    }

    func update(_ table: String, _ key: [Value], bytes: KeyBytes, _ columns: [Change.ColumnValue]) throws {
        guard !columns.isEmpty, var row = try select(table, key, bytes: bytes) else { return }
        let state = tables[table]!
        var set: [String: Value] = [:]
        for c in columns { row[c.name] = c.value; set[c.name] = c.value }
        switch state.pending[bytes] {
        case .upsert(let prev, let replace)?: state.pending[bytes] = .upsert(prev.merging(set) { $1 }, replace: replace)
        case .update(let prev)?: state.pending[bytes] = .update(prev.merging(set) { $1 })
        case .delete?: return
        case nil: state.pending[bytes] = .update(set); state.order.append(bytes)
        }
        state.keys[bytes] = key
        state.rows[bytes] = .some(row)
    }

    func delete(_ table: String, _ key: [Value], bytes: KeyBytes) throws {
        let state = tables[table]!
        if state.pending[bytes] == nil { state.order.append(bytes) }
        state.pending[bytes] = .delete
        state.keys[bytes] = key
        state.rows[bytes] = .some(nil)
    }

    /// Writes every row's final state: deletes children first, inserts and updates parents first.
    func flush() throws {
        let names = flushOrder.filter { tables[$0] != nil } + tables.keys.filter { !flushOrder.contains($0) }.sorted()
        for name in names.reversed() {
            let s = tables[name]!
            let deletes = s.order.filter {
                switch s.pending[$0] { case .delete?: return true; case .upsert(_, true)?: return true; default: return false }
            }
            try s.sql.deleteMany(deletes.map { s.keys[$0]! })
        }
        for name in names {
            let s = tables[name]!
            var upserts: [[String]: [([Value], [String: Value])]] = [:]
            var updates: [[String]: [([Value], [String: Value])]] = [:]
            // Rows that set every column (inserts) share one list of names, not a sort each.
            let allNames = s.sql.table.columns.map(\.name).sorted()
            func names(_ cols: [String: Value]) -> [String] { cols.count == allNames.count ? allNames : cols.keys.sorted() }
            for bytes in s.order {
                switch s.pending[bytes] {
                case .upsert(let cols, _)?: upserts[names(cols), default: []].append((s.keys[bytes]!, cols))
                case .update(let cols)?: updates[names(cols), default: []].append((s.keys[bytes]!, cols))
                default: break
                }
            }
            for (names, rows) in upserts.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                try s.sql.upsertMany(names, rows.map { key, cols in (key, names.map { cols[$0]! }) })
            }
            for (names, rows) in updates.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                try s.sql.updateMany(names, rows.map { key, cols in (key, names.map { cols[$0]! }) })
            }
        }
        reset()
    }

    /// Forgets everything (after a flush, or a rollback).
    func reset() {
        for state in tables.values {
            state.rows.removeAll(keepingCapacity: true)
            state.keys.removeAll(keepingCapacity: true)
            state.pending.removeAll(keepingCapacity: true)
            state.order.removeAll(keepingCapacity: true)
        }
    }
}
