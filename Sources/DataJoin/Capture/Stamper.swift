import Foundation

/// Gives committed, unstamped outbox rows their origin sequence number, HLC stamp and row
/// generation, and records their versions. Running at the start of every export and import
/// transaction means a row that commits late (after higher ids were exported) is stamped then,
/// with the next sequence number: the exporter never depends on ids committing in order.
///
/// Works in chunks: one read of the chunk, one read of the row versions it touches, then
/// multi-row writes, so the cost per change is a few bytes of SQL, not a round trip.
///
/// Two rules keep every captured row exported exactly once (docs/conflict-rules.md §6):
/// - a chunk is never read past what will be stamped now (`limit`), so a cursor that is saved
///   never passes an unstamped row (the SQLite backlog over one export step lost rows so);
/// - a source transaction is never split between two calls: once `limit` is reached, the rest
///   of the last transaction is still stamped, so no later commit of a lower transaction id can
///   get sequence numbers inside it.
enum Stamper {
    /// Seqs above the export pointer have never left this node. When the operator deleted one
    /// (the cure for a change too large for a bundle, docs/reliability.md), the ones after it
    /// move down, so no peer waits for a seq that will never come; `next_seq` follows. Only rows
    /// after the first gap are touched, each once.
    static func closeUnsentGaps(_ db: Database) throws -> Int {
        let pointer = try ProgramPointer.get(db, Program.export)
        let r = try db.firstRow(
            "SELECT count(*), max(seq) FROM ds_change_outbox WHERE seq > ?", [.integer(pointer)])
        let count = r?.int(0) ?? 0
        guard let high = r?.int(1), high - pointer > count else {
            // The last seqs were deleted (a held change, its cure applied): the next stamp
            // takes the first of them, or peers would wait for them for good.
            if let next = try db.scalar("SELECT next_seq FROM ds_node").asInt64, next > pointer + count + 1 {
                try db.execute("UPDATE ds_node SET next_seq = ?", [.integer(pointer + count + 1)])
                return Int(next - pointer - count - 1)
            }
            return 0
        }
        var moves: [(from: Int64, to: Int64)] = []
        var expected = pointer + 1
        try db.query("SELECT seq FROM ds_change_outbox WHERE seq > ? ORDER BY seq", [.integer(pointer)]) { row in
            let seq = row.int(0) ?? 0
            if seq != expected { moves.append((seq, expected)) }
            expected += 1
        }
        // Through negative values first: no step collides with the unique index on seq.
        for m in moves {
            try db.execute("UPDATE ds_change_outbox SET seq = ? WHERE seq = ?", [.integer(-m.from), .integer(m.from)])
        }
        for m in moves {
            try db.execute("UPDATE ds_change_outbox SET seq = ? WHERE seq = ?", [.integer(m.to), .integer(-m.from)])
        }
        try db.execute("UPDATE ds_node SET next_seq = ?", [.integer(pointer + count + 1)])
        return Int(high - pointer - count)
    }

    /// The id at or below which every outbox row is stamped, where the brand keeps such a cursor.
    static func stampedThrough(_ db: Database) throws -> Int64 { try db.dialect.stampedThrough(db) }

    /// How many captured rows wait for a sequence number.
    static func unstampedCount(_ db: Database) throws -> Int64 {
        try db.scalar(
            "SELECT count(*) FROM ds_change_outbox WHERE seq IS NULL AND id > ?", [.integer(try stampedThrough(db))]
        ).asInt64 ?? 0
    }

    /// Rows stamped never counted as waiting: ids at or below the cursor with no seq. None
    /// exist unless an older DataJoin stranded them (issue 10); the schema upgrade repairs them.
    static func strandedCount(_ db: Database) throws -> Int64 { try db.dialect.strandedCount(db) }

    private static let select: SQL =
        "SELECT id, object_table, object_id, object_operation, object_attribute, captured_ms, source_id FROM ds_change_outbox WHERE seq IS NULL"

    @discardableResult
    static func stampPending(
        _ db: Database, me: inout NodeIdentity, tables: [String: TableInfo], limit: Int = .max,
        progress: ((Int) -> Void)? = nil
    ) throws -> Int {
        let tuning = Tuning.current
        try db.dialect.prepareStamping(db)
        let offset = try HybridLogicalClock.testOffsetMs(db)
        let start = try stampedThrough(db)
        var cursor = StampCursor(throughId: start)
        var total = 0
        while true {
            let rows: [Row]
            if total < limit {
                rows = try nextChunk(db, &cursor, size: min(tuning.stampChunk, limit - total))
            } else if cursor.inTransaction {
                // The step is full: finish the last source transaction, never split it.
                rows = try nextChunk(db, &cursor, size: tuning.stampChunk)
            } else {
                break
            }
            if rows.isEmpty { break }
            try stamp(db, rows, me: &me, tables: tables, offsetMs: offset, batch: tuning.stampBatch)
            total += rows.count
            progress?(total)
        }
        if total > 0 {
            try db.execute("UPDATE ds_node SET hlc = ?, next_seq = ?", [.integer(me.hlc), .integer(me.nextSeq)])
        }
        if cursor.throughId != start {
            try db.dialect.setStampedThrough(db, cursor.throughId)
        }
        return total
    }

    /// The next `size` unstamped rows in stamping order, and the cursor moved past them.
    private static func nextChunk(_ db: Database, _ cursor: inout StampCursor, size: Int) throws -> [Row] {
        try db.dialect.nextStampChunk(db, &cursor, select: select, size: size)
    }

    private typealias RowKey = VersionStore.Key

    /// The versions one chunk of stamps produces, gathered before anything is written.
    private struct ChunkWrites {
        var rowWrites: [RowKey: VersionStore.RowState] = [:]
        var cleared: [RowKey] = []
        var columnWrites: [RowKey: [String: Version]] = [:]
        /// (id, seq, hlc, cl) per outbox row.
        var stamps: [[Int64]] = []

        /// Keys kept without a version here: none of their versions is written.
        mutating func drop(_ keys: Set<RowKey>) {
            for k in keys {
                rowWrites[k] = nil
                columnWrites[k] = nil
            }
            cleared.removeAll { keys.contains($0) }
        }
    }

    private static func stamp(
        _ db: Database, _ rows: [Row], me: inout NodeIdentity, tables: [String: TableInfo], offsetMs: Int64, batch: Int
    ) throws {
        let versions = VersionStore(db: db)
        // A key this brand cannot keep in its version tables (MariaDB: longer than it indexes)
        // is stamped and sent without a version here: export never stops at it (found from
        // outside). Its peers version it; this node merges it as a row it has no version of.
        var unversioned = Set<RowKey>()
        let keys = try rowKeys(db, rows, tables: tables, unversioned: &unversioned)
        let states = try versions.rows(Set(keys).map { ($0.table, $0.key) })
        let hadVersion = Set(states.keys)
        var notCaptured = NotCaptured(tables)
        var w = try stampRows(rows, keys: keys, states: states, me: &me, offsetMs: offsetMs) { table, attribute in
            notCaptured.columns(table, attribute)
        }
        if !unversioned.isEmpty { w.drop(unversioned) }
        try writeVersions(
            versions, w, keys: unversioned.isEmpty ? keys : keys.filter { !unversioned.contains($0) },
            hadVersion: hadVersion)
        try writeStamps(db, w.stamps, node: me.nodeId, batch: batch)
    }

    /// Each row's version key: its table and canonical key, encoded. Keys the brand cannot
    /// keep a version of go into `unversioned` too.
    private static func rowKeys(
        _ db: Database, _ rows: [Row], tables: [String: TableInfo], unversioned: inout Set<RowKey>
    ) throws -> [RowKey] {
        try rows.map { r in
            let table = r.string(1) ?? ""
            let raw = try CapturedJSON.array(r.string(2) ?? "[]")
            let keyCols = tables[table]?.keyColumns ?? []
            let values = raw.enumerated().map { i, text in
                db.dialect.capturedValue(text, column: i < keyCols.count ? keyCols[i] : nil)
            }
            let canonical = tables[table]?.canonicalKey(values) ?? values
            let key = RowKey(table: table, key: KeyCodec.encode(canonical))
            if db.dialect.keyProblem(canonical) != nil { unversioned.insert(key) }
            return key
        }
    }

    /// The tracked columns an insert's capture did not write (a column added since its
    /// trigger was made, or left out by an application that writes the outbox): their values
    /// here are no write, so they get the zero version, as peers give them (found from outside:
    /// rows inserted while `track` ran kept their new column's value here and took the peers'
    /// elsewhere, `check` OK). Inserts of one table in a row carry one column list: the common
    /// case is a comparison with the one before.
    struct NotCaptured {
        let tables: [String: TableInfo]
        private var last: (table: String, attribute: String, missing: [String])?
        private var seen: [String: [String]] = [:]

        init(_ tables: [String: TableInfo]) { self.tables = tables }

        mutating func columns(_ table: String, _ attribute: String?) -> [String] {
            guard let attribute, let t = tables[table] else { return [] }
            if let last, last.table == table, last.attribute == attribute { return last.missing }
            let cacheKey = table + "\u{0}" + attribute
            let missing =
                seen[cacheKey]
                ?? {
                    let captured = Set(
                        (try? CapturedJSON.array(attribute))?.compactMap { $0 } ?? t.columns.map(\.name))
                    return t.columns.map(\.name).filter { !captured.contains($0) }
                }()
            seen[cacheKey] = missing
            last = (table, attribute, missing)
            return missing
        }
    }

    /// Each row's seq, HLC stamp and generation, in order, and the versions they produce;
    /// `states` (the row versions held before the chunk) follow the rows stamped.
    private static func stampRows(
        _ rows: [Row], keys: [RowKey], states: [RowKey: VersionStore.RowState], me: inout NodeIdentity,
        offsetMs: Int64, notCaptured: (String, String?) -> [String]
    ) throws -> ChunkWrites {
        var states = states
        var w = ChunkWrites()
        for (r, key) in zip(rows, keys) {
            let id = r.int(0) ?? 0
            let captured =
                r.int(5).map { HybridLogicalClock.shifted($0, by: offsetMs) }
                ?? HybridLogicalClock.nowMs(offsetMs: offsetMs)
            me.hlc = HybridLogicalClock.tick(after: me.hlc, physicalMs: captured)
            let version = Version(hlc: me.hlc, node: me.nodeId)
            let current = states[key]
            let cl: Int64
            switch Operation(rawValue: r.string(3) ?? "") {
            case .insert:
                cl = current.map { $0.cl % 2 == 1 ? $0.cl : $0.cl + 1 } ?? 1
                newGeneration(&w, &states, key, cl: cl, version: version, hadState: current != nil)
                for name in notCaptured(key.table, r.string(4)) { w.columnWrites[key, default: [:]][name] = .zero }
            case .delete:
                cl = current.map { $0.cl % 2 == 1 ? $0.cl + 1 : $0.cl } ?? 2
                newGeneration(&w, &states, key, cl: cl, version: version, hadState: current != nil)
            case .update where current.map({ $0.cl % 2 == 0 }) ?? false:
                // Its row was deleted after it by a write capture does not see: an import's,
                // after the cascade it ran (`TableSQL.cascadeWithin`) set a column in the same
                // transaction. It belongs to the generation before that delete, which supersedes
                // it everywhere; in the deleted one no bundle may carry it, and every export
                // failed on it (found from outside). The row is gone: no column version.
                cl = (current?.cl ?? 2) - 1
            case .update:
                cl = current?.cl ?? 1
                if current == nil {
                    states[key] = .init(cl: 1, version: .zero)
                    w.rowWrites[key] = states[key]
                }
                w.columnWrites[key, default: [:]][r.string(4) ?? ""] = version
            case nil:
                throw DataJoinError(
                    .internalError, "outbox row \(id) has an unknown operation '\((r.string(3) ?? "").prefix(8))'")
            }
            w.stamps.append([id, me.nextSeq, me.hlc, cl])
            me.nextSeq += 1
        }
        return w
    }

    /// An insert or delete starts a row generation: column versions reset with it, and updates
    /// later in the same chunk set them again.
    private static func newGeneration(
        _ w: inout ChunkWrites, _ states: inout [RowKey: VersionStore.RowState], _ key: RowKey,
        cl: Int64, version: Version, hadState: Bool
    ) {
        states[key] = .init(cl: cl, version: version)
        w.rowWrites[key] = states[key]
        if hadState || w.columnWrites[key] != nil { w.cleared.append(key) }
        w.columnWrites[key] = nil
    }

    private static func writeVersions(
        _ versions: VersionStore, _ w: ChunkWrites, keys: [RowKey], hadVersion: Set<RowKey>
    ) throws {
        try versions.clearColumns(w.cleared.map { ($0.table, $0.key) })
        // Rows without a version (most inserts) and columns just cleared: plain inserts.
        let noColumnVersions = Set(w.cleared).union(keys.filter { !hadVersion.contains($0) })
        for fresh in [true, false] {
            try versions.setRows(
                w.rowWrites.filter { hadVersion.contains($0.key) != fresh }.map {
                    ($0.key.table, $0.key.key, $0.value)
                }, fresh: fresh)
            try versions.setColumns(
                w.columnWrites.filter { noColumnVersions.contains($0.key) == fresh }
                    .flatMap { k, cols in cols.map { (k.table, k.key, $0.key, $0.value) } }, fresh: fresh)
        }
    }

    private static func writeStamps(_ db: Database, _ stamps: [[Int64]], node: String, batch: Int) throws {
        try db.dialect.writeStamps(db, stamps, node: node, batch: batch)
    }
}
