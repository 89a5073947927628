import Foundation

/// The versions the importer reads and writes, kept in memory for a chunk of changes: reads come
/// from one prefetch, writes go out in a few multi-row statements at `flush()`. After a
/// rollback to a savepoint, `reset()` forgets everything not flushed.
final class VersionCache {
    typealias Key = VersionStore.Key
    let store: VersionStore
    private var rows: [Key: VersionStore.RowState?] = [:]
    private var columns: [Key: [String: Version]] = [:]
    private var dirtyRows = Set<Key>()
    private var dirtyColumns = Set<Key>()
    /// Rows read in this transaction and found without a version, not written since: their
    /// first version is a plain insert.
    private var absent = Set<Key>()
    /// Rows whose column versions in the database may be non-empty: only those are deleted
    /// before their column versions are written again (a row updated for the first time has
    /// none, and the delete had been a tenth of a PostgreSQL update import).
    private var stored = Set<Key>()

    init(db: Database) { store = VersionStore(db: db) }

    func prefetch(_ keys: [Key]) throws {
        let missing = Array(Set(keys.filter { rows[$0] == nil }))
        guard !missing.isEmpty else { return }
        let found = try store.rows(missing.map { ($0.table, $0.key) })
        for k in missing {
            rows[k] = .some(found[k])
            if found[k] == nil { absent.insert(k) }
        }
        // The column versions of the rows that have a version, in the same few round trips.
        for (table, list) in Dictionary(
            grouping: missing.filter { found[$0] != nil && columns[$0] == nil }, by: \.table)
        {
            let got = try store.columns(table: table, keys: list.map(\.key))
            for k in list {
                columns[k] = got[k] ?? [:]
                if got[k]?.isEmpty == false { stored.insert(k) }
            }
        }
    }

    func row(_ table: String, _ key: [UInt8]) throws -> VersionStore.RowState? {
        let k = Key(table: table, key: key)
        if let cached = rows[k] { return cached }
        let r = try store.row(table, key)
        rows[k] = .some(r)
        if r == nil { absent.insert(k) }
        return r
    }

    func setRow(_ table: String, _ key: [UInt8], _ state: VersionStore.RowState) {
        let k = Key(table: table, key: key)
        rows[k] = .some(state)
        dirtyRows.insert(k)
    }

    func columns(_ table: String, _ key: [UInt8]) throws -> [String: Version] {
        let k = Key(table: table, key: key)
        if let c = columns[k] { return c }
        // A row without a version has no column versions either.
        let c = try rows[k].map { $0 == nil } == true ? [:] : store.columns(table, key)
        columns[k] = c
        if !c.isEmpty { stored.insert(k) }
        return c
    }

    func column(_ table: String, _ key: [UInt8], _ column: String) throws -> Version? {
        try columns(table, key)[column]
    }

    func setColumn(_ table: String, _ key: [UInt8], _ column: String, _ v: Version) throws {
        var c = try columns(table, key)
        c[column] = v
        let k = Key(table: table, key: key)
        columns[k] = c
        dirtyColumns.insert(k)
    }

    func clearColumns(_ table: String, _ key: [UInt8]) throws {
        let k = Key(table: table, key: key)
        if try !columns(table, key).isEmpty {
            columns[k] = [:]
            dirtyColumns.insert(k)
        }
    }

    func clearColumn(_ table: String, _ key: [UInt8], _ column: String) throws {
        var c = try columns(table, key)
        guard c.removeValue(forKey: column) != nil else { return }
        let k = Key(table: table, key: key)
        columns[k] = c
        dirtyColumns.insert(k)
    }

    func flush() throws {
        let write = { (k: Key) in self.rows[k].flatMap { $0 }.map { (k.table, k.key, $0) } }
        try store.setRows(dirtyRows.filter { absent.contains($0) }.compactMap(write), fresh: true)
        try store.setRows(dirtyRows.filter { !absent.contains($0) }.compactMap(write))
        absent.subtract(dirtyRows)
        let keys = Array(dirtyColumns)
        try store.clearColumns(keys.filter { stored.contains($0) }.map { ($0.table, $0.key) })
        // Just cleared: every one of them is a plain insert.
        try store.setColumns(
            keys.flatMap { k in (columns[k] ?? [:]).map { (k.table, k.key, $0.key, $0.value) } }, fresh: true)
        for k in keys { if columns[k]?.isEmpty == false { stored.insert(k) } else { stored.remove(k) } }
        dirtyRows.removeAll()
        dirtyColumns.removeAll()
    }

    func reset() {
        absent.removeAll()
        stored.removeAll()
        rows.removeAll()
        columns.removeAll()
        dirtyRows.removeAll()
        dirtyColumns.removeAll()
    }
}
