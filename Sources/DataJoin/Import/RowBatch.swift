import Foundation

/// The application rows one chunk of changes touches, read in one query per table and written
/// back in a few multi-row statements at `flush()`: the merge rules see every earlier change of
/// the chunk through this overlay, and the database sees each row's final state once.
///
/// Used on the fast path only (no savepoint per change). If the database refuses a flush, the
/// bundle is rolled back and applied again change by change (Importer), so a refusal is still
/// held per change.
final class RowBatch {
    /// A row's values by column position (`TableInfo.columns`); nil: not known, or not set.
    /// Positions, not names: a dictionary per row had put String hashing and dictionary
    /// allocation at a sixth of an import (`perf`).
    typealias Slots = [Value?]

    private enum Pending {
        /// Insert, or set these columns of the existing row. `replace`: the row was deleted
        /// earlier in the chunk, so it is deleted first and inserted fresh.
        case upsert(Slots, replace: Bool)
        /// Set these columns of a row that exists.
        case update(Slots)
        case delete
    }

    /// A class: updated in place, never copied with its dictionaries.
    private final class TableState {
        let sql: TableSQL
        let width: Int
        init(sql: TableSQL) {
            self.sql = sql
            width = sql.table.columns.count
        }
        /// nil value: known not to exist.
        var rows: [KeyBytes: Slots?] = [:]
        var keys: [KeyBytes: [Value]] = [:]
        var pending: [KeyBytes: Pending] = [:]
        var order: [KeyBytes] = []
        /// Keys the database had no row for when read in this transaction.
        var absent = Set<KeyBytes>()
    }

    let db: Database
    private var tables: [String: TableState] = [:]
    private let flushOrder: [String]
    /// The table of the last call: changes come in runs of one table.
    private var lastName = ""
    private var lastState: TableState?

    init(db: Database, tables: [String: TableInfo], order: [String], within: [String: [ForeignKey]]) {
        self.db = db
        flushOrder = order
        for (name, t) in tables {
            self.tables[name] = TableState(sql: TableSQL(table: t, db: db, within: within[name] ?? []))
        }
    }

    private func state(_ name: String) -> TableState {
        if let s = lastState, name == lastName { return s }
        let s = tables[name]!
        lastName = name
        lastState = s
        return s
    }

    /// Reads the current rows of these keys (canonical), one statement per table and batch.
    func prefetch(_ keys: [(table: String, key: [Value], bytes: KeyBytes)]) throws {
        for (name, list) in Dictionary(grouping: keys, by: \.table) {
            guard let state = tables[name] else { continue }
            var missing: [[Value]] = []
            var missingBytes: [KeyBytes] = []
            for k in list {
                // Marked absent until the read below finds it; a key seen twice is read once.
                if state.rows[k.bytes] == nil {
                    state.rows[k.bytes] = .some(nil)
                    missing.append(k.key)
                    missingBytes.append(k.bytes)
                }
            }
            var found = Set<KeyBytes>()
            try state.sql.selectMany(missing) { key, row in
                let bytes = KeyBytes(KeyCodec.encode(key))
                state.rows[bytes] = .some(row.map { $0 })
                found.insert(bytes)
            }
            for bytes in missingBytes where !found.contains(bytes) { state.absent.insert(bytes) }
        }
    }

    /// `bytes`: the key's encoding (KeyCodec), which the caller already has.
    func select(_ table: String, _ key: [Value], bytes: KeyBytes) throws -> Slots? {
        let state = state(table)
        if let cached = state.rows[bytes] { return cached }
        let row = try state.sql.select(key).map { $0.map { $0 } }
        state.rows[bytes] = .some(row)
        if row == nil { state.absent.insert(bytes) }
        return row
    }

    private static func merged(_ prev: Slots, _ set: Slots) -> Slots {
        var out = prev
        for i in set.indices where set[i] != nil { out[i] = set[i] }
        return out
    }

    /// `columns`: each value with its column's position in the table.
    func upsert(_ table: String, _ key: [Value], bytes: KeyBytes, _ columns: [(Change.ColumnValue, Int)]) throws {
        let before = try select(table, key, bytes: bytes)
        let state = state(table)
        var row = before ?? Slots(repeating: nil, count: state.width)
        for (p, v) in zip(state.sql.table.keyPositions, key) { row[p] = v }
        var set = Slots(repeating: nil, count: state.width)
        for (c, p) in columns {
            row[p] = c.value
            set[p] = c.value
        }
        switch state.pending[bytes] {
        case .upsert(let prev, let replace)?: state.pending[bytes] = .upsert(Self.merged(prev, set), replace: replace)
        case .update(let prev)?: state.pending[bytes] = .upsert(Self.merged(prev, set), replace: false)
        case .delete?: state.pending[bytes] = .upsert(set, replace: true)
        case nil:
            state.pending[bytes] = .upsert(set, replace: false)
            state.order.append(bytes)
        }
        state.keys[bytes] = key
        state.rows[bytes] = .some(row)
    }

    func update(_ table: String, _ key: [Value], bytes: KeyBytes, _ columns: [(Change.ColumnValue, Int)]) throws {
        guard !columns.isEmpty, var row = try select(table, key, bytes: bytes) else { return }
        let state = state(table)
        var set = Slots(repeating: nil, count: state.width)
        for (c, p) in columns {
            row[p] = c.value
            set[p] = c.value
        }
        switch state.pending[bytes] {
        case .upsert(let prev, let replace)?: state.pending[bytes] = .upsert(Self.merged(prev, set), replace: replace)
        case .update(let prev)?: state.pending[bytes] = .update(Self.merged(prev, set))
        case .delete?: return
        case nil:
            state.pending[bytes] = .update(set)
            state.order.append(bytes)
        }
        state.keys[bytes] = key
        state.rows[bytes] = .some(row)
    }

    func delete(_ table: String, _ key: [Value], bytes: KeyBytes) throws {
        let state = state(table)
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
                switch s.pending[$0] {
                case .delete?: return true
                case .upsert(_, true)?: return true
                default: return false
                }
            }
            try s.sql.deleteMany(deletes.map { s.keys[$0]! })
        }
        for name in names {
            let s = tables[name]!
            let columns = s.sql.table.columns
            // Rows grouped by the columns they set; rows that set every column (inserts) share one.
            let all = Array(columns.indices)
            func shape(_ slots: Slots) -> [Int] {
                if !slots.contains(where: { $0 == nil }) { return all }
                return slots.indices.filter { slots[$0] != nil }
            }
            // A row the database did not have, or deleted above, is a plain INSERT: on PostgreSQL
            // `ON CONFLICT` costs a speculative insertion per row. A row an application inserted
            // after this transaction's snapshot then fails the key, and the bundle is applied
            // again change by change in a new transaction, which sees that row.
            struct Group: Hashable {
                var set: [Int]
                var fresh: Bool
            }
            var upserts: [Group: [([Value], [Value])]] = [:]
            var updates: [[Int]: [([Value], [Value])]] = [:]
            for bytes in s.order {
                switch s.pending[bytes] {
                case .upsert(let slots, let replace)?:
                    let set = shape(slots)
                    upserts[Group(set: set, fresh: replace || s.absent.contains(bytes)), default: []].append(
                        (s.keys[bytes]!, set.map { slots[$0]! }))
                case .update(let slots)?:
                    let set = shape(slots)
                    updates[set, default: []].append((s.keys[bytes]!, set.map { slots[$0]! }))
                default: break
                }
            }
            for (group, rows) in upserts.sorted(by: { a, b in
                a.key.fresh != b.key.fresh ? a.key.fresh : a.key.set.lexicographicallyPrecedes(b.key.set)
            }) {
                try s.sql.upsertMany(group.set.map { columns[$0].name }, rows, fresh: group.fresh)
            }
            if !updates.isEmpty {
                try db.dialect.planOnce(db) {
                    for (set, rows) in updates.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                        try s.sql.updateMany(set.map { columns[$0].name }, rows)
                    }
                }
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
            state.absent.removeAll(keepingCapacity: true)
        }
    }
}
