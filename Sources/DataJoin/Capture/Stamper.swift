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
    /// SQLite: every outbox row at or below this id is stamped. SQLite has one writer at a time
    /// and AUTOINCREMENT never reuses an id, so id order is commit order and the unstamped rows
    /// are always the ids above it: the backlog is a rowid range, and the outbox needs no index
    /// on `seq IS NULL` that every captured row would have to update (capture ~15% faster).
    static let stampedThroughSetting = "outbox_stamped_through_id"

    /// Seqs above the export pointer have never left this node. When the operator deleted one
    /// (the cure for a change too large for a bundle, docs/reliability.md), the ones after it
    /// move down, so no peer waits for a seq that will never come; `next_seq` follows. Only rows
    /// after the first gap are touched, each once.
    static func closeUnsentGaps(_ db: Database) throws -> Int {
        let pointer = try ProgramPointer.get(db, Program.export)
        guard
            let r = try db.firstRow(
                "SELECT count(*), max(seq) FROM ds_change_outbox WHERE seq > ?", [.integer(pointer)]),
            let count = r.int(0), let high = r.int(1), high - pointer > count
        else { return 0 }
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

    static func stampedThrough(_ db: Database) throws -> Int64 {
        guard db.brand == .sqlite else { return 0 }
        return try Settings.int(db, stampedThroughSetting) ?? 0
    }

    /// How many captured rows wait for a sequence number.
    static func unstampedCount(_ db: Database) throws -> Int64 {
        try db.scalar(
            "SELECT count(*) FROM ds_change_outbox WHERE seq IS NULL AND id > ?", [.integer(try stampedThrough(db))]
        ).asInt64 ?? 0
    }

    /// Rows stamped never counted as waiting: ids at or below SQLite's cursor with no seq. None
    /// exist unless an older DataJoin stranded them (issue 10); the schema upgrade repairs them.
    static func strandedCount(_ db: Database) throws -> Int64 {
        guard db.brand == .sqlite else { return 0 }
        return try db.scalar(
            "SELECT count(*) FROM ds_change_outbox WHERE seq IS NULL AND id <= ?", [.integer(try stampedThrough(db))]
        ).asInt64 ?? 0
    }

    /// Moves SQLite's cursor below any stranded row, so the next stamping picks it up.
    static func repairStranded(_ db: Database) throws -> Int64 {
        guard db.brand == .sqlite else { return 0 }
        let through = try stampedThrough(db)
        guard
            let first = try db.scalar(
                "SELECT min(id) FROM ds_change_outbox WHERE seq IS NULL AND id <= ?", [.integer(through)]
            ).asInt64
        else {
            return 0
        }
        let count = try strandedCount(db)
        try Settings.set(db, stampedThroughSetting, first - 1)
        return count
    }

    /// Where reading goes on from, in the brand's stamping order.
    struct Cursor {
        /// SQLite: the last id read (saved as `stampedThroughSetting`).
        var throughId: Int64
        /// PostgreSQL: source transactions still to stamp in this call, in order (source id,
        /// rows), a window at a time.
        var transactions: ArraySlice<(source: Int64, rows: Int64)> = []
        /// PostgreSQL: a transaction larger than a chunk, read in parts: its source id and the
        /// last id read.
        var partial: (source: Int64, afterId: Int64)?
        /// PostgreSQL: every transaction is stamped; rows an application wrote itself (NULL
        /// source_id) come last, in id order.
        var nullPhase = false
        var lastNullId: Int64 = 0
    }

    private static let select =
        "SELECT id, object_table, object_id, object_operation, object_attribute, captured_ms, source_id FROM ds_change_outbox WHERE seq IS NULL"

    @discardableResult
    static func stampPending(
        _ db: Database, me: inout NodeIdentity, tables: [String: TableInfo], limit: Int = .max,
        progress: ((Int) -> Void)? = nil
    ) throws -> Int {
        let tuning = Tuning.current
        if db.brand == .postgres {
            // For the rest of the transaction (the importer's too, which stamps first): the
            // version tables may have grown by a million rows since their statistics were
            // taken, and every statement of stamping and import has an index path (keys, ids).
            // Bitmap scans too: on such statistics the planner bitmap-scanned the version
            // table's whole `object_table` prefix and filtered 100,000 rows for 400 keys.
            try db.execute("SET LOCAL enable_seqscan = off")
            try db.execute("SET LOCAL enable_bitmapscan = off")
        }
        let offset = try HybridLogicalClock.testOffsetMs(db)
        let start = try stampedThrough(db)
        var cursor = Cursor(throughId: start)
        var total = 0
        while true {
            let rows: [Row]
            if total < limit {
                rows = try nextChunk(db, &cursor, size: min(tuning.stampChunk, limit - total))
            } else if cursor.partial != nil {
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
            try Settings.set(db, stampedThroughSetting, cursor.throughId)
        }
        return total
    }

    /// The next `size` unstamped rows in stamping order, and the cursor moved past them.
    private static func nextChunk(_ db: Database, _ cursor: inout Cursor, size: Int) throws -> [Row] {
        switch db.brand {
        case .sqlite:
            let rows = try db.rows(select + " AND id > ? ORDER BY id LIMIT \(size)", [.integer(cursor.throughId)])
            cursor.throughId = rows.last?.int(0) ?? cursor.throughId
            return rows
        case .postgres:
            return try nextPostgresChunk(db, &cursor, size: size)
        }
    }

    /// PostgreSQL: whole source transactions in the order of their last outbox id, which is
    /// commit order wherever order matters. Two transactions that write the same row are
    /// serialized by its lock: the later one's outbox row for it gets its id only after the
    /// earlier one committed, so the earlier one's last id is lower. Transaction id order is not
    /// commit order: a transaction that began first and committed last was stamped first, lost
    /// last-writer-wins on every peer, and an update of a row re-inserted by a newer transaction
    /// got a deleted generation and stopped export for good (both found from outside).
    private static func nextPostgresChunk(_ db: Database, _ cursor: inout Cursor, size: Int) throws -> [Row] {
        if let p = cursor.partial {
            let rows = try db.rows(
                select + " AND source_id = ? AND id > ? ORDER BY id LIMIT \(size)",
                [.integer(p.source), .integer(p.afterId)])
            cursor.partial = rows.count < size ? nil : (p.source, rows.last?.int(0) ?? p.afterId)
            if !rows.isEmpty { return rows }
        }
        if !cursor.nullPhase {
            if cursor.transactions.isEmpty {
                // The next window of transactions; the ones stamped already drop out of it.
                let window = try db.rows(
                    """
                    SELECT source_id, max(id), count(*) FROM ds_change_outbox WHERE seq IS NULL AND source_id IS NOT NULL
                    GROUP BY source_id ORDER BY max(id) LIMIT \(max(size, 1_000))
                    """
                ).map { (source: $0.int(0) ?? 0, rows: $0.int(2) ?? 0) }
                cursor.transactions = window[...]
                if window.isEmpty { cursor.nullPhase = true }
            }
            if let first = cursor.transactions.first, first.rows >= Int64(size) {
                // One transaction of a chunk or more: read in parts.
                cursor.transactions.removeFirst()
                cursor.partial = (first.source, Int64.min)
                return try nextPostgresChunk(db, &cursor, size: size)
            }
            // Whole transactions that fit in the chunk, read together, put in their order.
            var batch: [Int64] = []
            var count: Int64 = 0
            while let t = cursor.transactions.first, count + t.rows <= Int64(size) {
                batch.append(t.source)
                count += t.rows
                cursor.transactions.removeFirst()
            }
            if !batch.isEmpty {
                let order = Dictionary(uniqueKeysWithValues: batch.enumerated().map { ($1, $0) })
                let rows = try db.rows(
                    select + " AND source_id = ANY (CAST(? AS bigint[])) ORDER BY id",
                    [.text("{" + batch.map(String.init).joined(separator: ",") + "}")])
                return rows.sorted { a, b in
                    let ta = order[a.int(6) ?? 0] ?? 0, tb = order[b.int(6) ?? 0] ?? 0
                    return ta != tb ? ta < tb : (a.int(0) ?? 0) < (b.int(0) ?? 0)
                }
            }
            if !cursor.nullPhase { return try nextPostgresChunk(db, &cursor, size: size) }
        }
        let rows = try db.rows(
            select + " AND source_id IS NULL AND id > ? ORDER BY id LIMIT \(size)", [.integer(cursor.lastNullId)])
        cursor.lastNullId = rows.last?.int(0) ?? cursor.lastNullId
        return rows
    }

    private typealias RowKey = VersionStore.Key

    /// The versions one chunk of stamps produces, gathered before anything is written.
    private struct ChunkWrites {
        var rowWrites: [RowKey: VersionStore.RowState] = [:]
        var cleared: [RowKey] = []
        var columnWrites: [RowKey: [String: Version]] = [:]
        /// (id, seq, hlc, cl) per outbox row.
        var stamps: [[Int64]] = []
    }

    private static func stamp(
        _ db: Database, _ rows: [Row], me: inout NodeIdentity, tables: [String: TableInfo], offsetMs: Int64, batch: Int
    ) throws {
        let versions = VersionStore(db: db)
        let keys: [RowKey] = try rows.map { r in
            let table = r.string(1) ?? ""
            let raw = try CapturedJSON.array(r.string(2) ?? "[]")
            let keyCols = tables[table]?.keyColumns ?? []
            let values = raw.enumerated().map { i, text in
                ValueConversion.fromCaptured(text, brand: db.brand, kind: i < keyCols.count ? keyCols[i].kind : .any)
            }
            return RowKey(table: table, key: KeyCodec.encode(tables[table]?.canonicalKey(values) ?? values))
        }
        var states = try versions.rows(Set(keys).map { ($0.table, $0.key) })
        let hadVersion = Set(states.keys)
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
            case .delete:
                cl = current.map { $0.cl % 2 == 1 ? $0.cl + 1 : $0.cl } ?? 2
                newGeneration(&w, &states, key, cl: cl, version: version, hadState: current != nil)
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
        try writeVersions(versions, w, keys: keys, hadVersion: hadVersion)
        try writeStamps(db, w.stamps, node: me.nodeId, batch: batch)
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
        if db.brand == .postgres {
            // One statement per chunk, four array parameters: the server parses and binds
            // four values instead of 1,600 per 400 rows (the stamp writes were the largest
            // statement of a PostgreSQL export).
            func array(_ i: Int) -> Value { .text("{" + stamps.map { String($0[i]) }.joined(separator: ",") + "}") }
            try db.execute(
                """
                UPDATE ds_change_outbox SET seq = v.seq, hlc = v.hlc, cl = v.cl, updated_by_server_id = ?
                FROM unnest(CAST(? AS bigint[]), CAST(? AS bigint[]), CAST(? AS bigint[]), CAST(? AS bigint[])) AS v(id, seq, hlc, cl)
                WHERE ds_change_outbox.id = v.id
                """, [.text(node), array(0), array(1), array(2), array(3)])
            return
        }
        for part in stride(from: 0, to: stamps.count, by: batch) {
            let slice = stamps[part..<min(part + batch, stamps.count)]
            let tuples = slice.map { _ in "(CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT))"
            }.joined(separator: ", ")
            try db.execute(
                """
                WITH v(id, seq, hlc, cl) AS (VALUES \(tuples))
                UPDATE ds_change_outbox SET seq = v.seq, hlc = v.hlc, cl = v.cl, updated_by_server_id = ? FROM v WHERE ds_change_outbox.id = v.id
                """, slice.flatMap { $0.map { Value.integer($0) } } + [.text(node)])
        }
    }
}
