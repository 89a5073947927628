import Foundation

public struct ImportReport: Sendable, Equatable {
    public var bundles = 0
    public var applied = 0
    public var unchanged = 0
    public var held = 0
    public var released = 0
    public var conflicts = 0
    /// Changes held after the run, these and earlier ones: anything above 0 needs attention.
    public var stillHeld: Int64 = 0
    /// Bundles the database refused on the fast path (many rows per statement), applied again
    /// change by change. A refusal is a held change's normal way in; anything else here is a
    /// slow path hiding behind an error, which tests check for.
    public var retriedChangeByChange = 0
    /// Applied changes per table and operation ("insert", "update", "delete").
    public var perTable: [String: [String: Int]] = [:]
    /// Inbox ids above this came in with this run: one held and applied again within the run
    /// is applied, not an earlier hold released ("2 held, 1 earlier held change(s) released"
    /// while one was held; found from outside).
    var newAfter = Int64.max
    /// Held changes that applied (or were superseded) in this run, earlier holds or not: the
    /// retry goes on while a pass settles one (a change held and settled in one run is not
    /// counted as released, and the retry stopped after one pass; found in review).
    var settledFromHold = 0
    public init() {}

    /// Nothing applied, found unchanged, held or released, and nothing held from before.
    public var isEmpty: Bool { applied == 0 && unchanged == 0 && held == 0 && released == 0 && stillHeld == 0 }

    mutating func count(_ c: Change) {
        let op = c.op == .insert ? "insert" : c.op == .update ? "update" : "delete"
        perTable[c.table, default: [:]][op, default: 0] += 1
    }
}

/// `datajoin import`: inbox rows past the import pointer into the application tables, one
/// bundle per transaction, the pointer moved in that same transaction.
public enum Importer {
    /// Fast-path refusals in this process (`ImportReport.retriedChangeByChange`, summed): tests
    /// fail on one they did not provoke, as they fail on a server's unexpected ERROR.
    nonisolated(unsafe) public static var retriedChangeByChange = 0
    /// What the database said, the last time.
    nonisolated(unsafe) public static var lastRefusal = ""
    /// Bundles applied change by change because the fast path would not write what the source
    /// did (`SourceOrder`): slower, never a refusal. Tests count them where they expect none.
    nonisolated(unsafe) public static var appliedInSourceOrder = 0

    /// How far ahead of this node's clock a change's stamp may be before it is held: 24 hours.
    /// A laptop that slept for days without NTP, or sits in the wrong time zone setting, is
    /// hours off, and it must still apply its peers' changes (and then win with its own later
    /// edits); a clock set to the wrong year is not trusted (docs/conflict-rules.md).
    public static let defaultMaxClockAheadMs: Int64 = 24 * 3_600_000

    public static func run(_ db: Database, reporter: Reporter = SilentReporter(), shouldStop: () -> Bool = { false })
        throws -> ImportReport
    {
        _ = try NodeIdentity.load(db)
        let tables = try TableRegistry.loadWithLiveTypes(db)
        let foreignKeys = try ForeignKeys.load(db, tables: Array(tables.keys))
        let order = foreignKeys.parentsFirst
        let sourceOrder = try SourceOrder.load(db, tables: tables, foreignKeys: foreignKeys)
        let cascade = CascadeWait(foreignKeys: foreignKeys, tables: tables)
        let maxAhead =
            try Settings.int(db, "max_clock_ahead_ms", range: 0...HybridLogicalClock.maxMs) ?? defaultMaxClockAheadMs
        var report = ImportReport()
        report.newAfter = try ProgramPointer.get(db, Program.import)
        let total = try db.scalar(
            "SELECT count(*) FROM ds_change_inbox WHERE id > ?", [.integer(report.newAfter)]
        ).asInt64
        try retryHeldUntilSettled(
            db, tables: tables, order: order, maxAhead: maxAhead, cascade: cascade, report: &report)
        while !shouldStop() {
            // First the fast path; a bundle the fast path would not write as the source did goes
            // change by change in its order, constraints still checked at the end. If the database
            // refuses a change, the bundle is rolled back and applied again with a savepoint per
            // change, constraints checked at once, so that change is held.
            let applyNextBundle = { (mode: ApplyMode) throws -> Bool in
                try db.retryingWrite { _ -> Bool in
                    let pointer = try ProgramPointer.get(db, Program.import)
                    guard
                        let bundle = try db.scalar(
                            "SELECT bundle_id FROM ds_change_inbox WHERE id > ? ORDER BY id LIMIT 1",
                            [.integer(pointer)]
                        ).asInt64
                    else {
                        return false
                    }
                    let (last, bundles) = try group(db, after: pointer, first: bundle)
                    var partial = report
                    try applyRange(
                        db, tables: tables, order: order, maxAhead: maxAhead, rows: .through(last),
                        after: pointer, sourceOrder: sourceOrder, cascade: cascade,
                        mode: mode, report: &partial
                    ) { r in
                        // Within a bundle too: one bundle can hold a million changes.
                        reporter.progress(
                            WorkProgress(
                                phase: "import", changes: Int64(r.applied + r.unchanged + r.held), totalChanges: total))
                    }
                    try ProgramPointer.set(db, Program.import, last)
                    partial.bundles += bundles
                    report = partial
                    reporter.progress(
                        WorkProgress(
                            phase: "import", changes: Int64(report.applied + report.unchanged + report.held),
                            totalChanges: total))
                    reporter.verbose(
                        bundles == 1
                            ? "applied bundle \(bundle): inbox \(pointer + 1)-\(last)"
                            : "applied \(bundles) bundles from \(bundle): inbox \(pointer + 1)-\(last)")
                    return true
                }
            }
            let refused = { (error: Error, mode: ApplyMode) throws -> Bool in
                let path = mode == .fast ? "on the fast path" : "in the bundle's order"
                reporter.verbose(
                    "the database refused a change \(path) (\(error)); applying the bundle again change by change")
                report.retriedChangeByChange += 1
                Self.retriedChangeByChange += 1
                Self.lastRefusal = "\(error)"
                return try applyNextBundle(.heldOneByOne)
            }
            let more: Bool
            do {
                more = try applyNextBundle(.fast)
            } catch let error where TransactionError.unwrap(error) is SourceOrderNeeded {
                // Not a refusal: the fast path would not write what the source did (SourceOrder).
                let why = (TransactionError.unwrap(error) as? SourceOrderNeeded)?.reason ?? ""
                reporter.verbose("a bundle must apply in its own order (\(why)); applying it change by change")
                Self.appliedInSourceOrder += 1
                do {
                    more = try applyNextBundle(.inOrder)
                } catch  where isRefusal(db, error) {
                    more = try refused(error, .inOrder)
                }
            } catch  where isRefusal(db, error) {
                more = try refused(error, .fast)
            }
            if !more { break }
        }
        if report.bundles > 0 {
            try retryHeldUntilSettled(
                db, tables: tables, order: order, maxAhead: maxAhead, cascade: cascade, report: &report)
            // This node's own rows that came back (a restored backup) move its generators past them.
            try KeyBlocks.raise(db)
        }
        try db.refreshStatistics(["ds_row_version", "ds_column_version"], after: report.applied + report.unchanged)
        report.stillHeld = try NodeStatus.heldCount(db)
        if report.bundles > 0 {
            reporter.progress(
                WorkProgress(
                    phase: "import", changes: Int64(report.applied + report.unchanged + report.held),
                    totalChanges: total, final: true))
        }
        return report
    }

    /// `import --drop-held ORIGIN#SEQ`: the operator gives up on a held change that can never
    /// apply (its cause cannot be fixed). It is logged in the conflict log as dropped, with its
    /// reason, and never retried; nothing else changes. Returns what was dropped, described.
    public static func dropHeld(_ db: Database, origin: String, seq: Int64) throws -> String {
        try db.retryingWrite { _ in
            guard
                let id = try db.firstRow(
                    """
                    SELECT h.id FROM ds_change_held AS h
                    JOIN ds_change_inbox AS i ON i.id = h.id WHERE i.origin = ? AND i.seq = ? ORDER BY h.id DESC LIMIT 1
                    """, [.text(origin), .integer(seq)])?.int(0)
            else {
                throw DataJoinError(
                    .usage, "no held change \(origin)#\(seq) here ('datajoin status' lists the held ones)")
            }
            return try dropHeld(db, id: id)
        }
    }

    /// `import --drop-held-table T`: gives up on every held change of a table this node does
    /// not keep, in one transaction (found from outside: one flag per change, 51 of them).
    /// Refused for a table tracked here, whose held changes apply once their cause is cured.
    /// Returns how many.
    public static func dropHeld(_ db: Database, table: String) throws -> Int {
        if try Tracker.trackedNames(db).contains(table) {
            throw DataJoinError(
                .usage,
                "table \(table) is tracked here: its held changes apply once the cause 'datajoin status' names is cured; "
                    + "give up one that never can with 'datajoin import --drop-held ORIGIN#SEQ'")
        }
        return try db.retryingWrite { _ in
            let held = try db.rows(
                "SELECT id FROM ds_change_held WHERE object_table = ? ORDER BY id", [.text(table)]
            ).compactMap { $0.int(0) }
            guard !held.isEmpty else {
                throw DataJoinError(
                    .usage, "no held change of table \(table) here ('datajoin status' lists the held ones)")
            }
            for id in held { _ = try dropHeld(db, id: id) }
            return held.count
        }
    }

    /// Gives up one held change, by its inbox id: logged as dropped, with its reason.
    private static func dropHeld(_ db: Database, id: Int64) throws -> String {
        guard
            let r = try db.firstRow(
                """
                SELECT h.id, i.object_table, i.object_id, i.object_operation, i.hlc, h.reason, i.origin, i.seq
                FROM ds_change_held AS h JOIN ds_change_inbox AS i ON i.id = h.id WHERE h.id = ?
                """, [.integer(id)])
        else { throw DataJoinError(.internalError, "held change \(id) is gone") }
        let origin = r.string(6) ?? "", seq = r.int(7) ?? 0
        let table = r.string(1) ?? ""
        let key: [Value] = {
            if case .blob(let b) = r.values[2] { return (try? KeyCodec.decode(b)) ?? [] } else { return [] }
        }()
        // What is given up is kept in the log: the change's values as one JSON object (found
        // from outside: a dropped insert's row was gone without a trace).
        // A change that does not decode is dropped all the same: this is the last resort.
        let values =
            (try? db.firstRow(
                "SELECT \(inboxColumns) FROM ds_change_inbox WHERE id = ?", [.integer(id)]
            ).map { try change($0, db).columns }) ?? []
        var log = ConflictLog(db: db)
        try log.record(
            table: table, key: key, column: nil, winner: nil, winnerVersion: .zero, loser: nil,
            loggedLoser: values.isEmpty ? nil : ConflictLog.loggedRow(values),
            loserVersion: Version(hlc: r.int(4) ?? 0, node: origin),
            reason:
                "held change \(origin)#\(seq) (\(r.string(3) ?? "?")) dropped by the operator; it was held because: \(r.string(5) ?? "")"
        )
        try db.execute("DELETE FROM ds_change_held WHERE id = ?", [.integer(id)])
        return "\(origin)#\(seq) \(table) \(KeyCodec.display(key))"
    }

    /// The inbox rows the next import transaction applies: the first bundle past the pointer
    /// whole, and the small bundles after it while they fit in `Tuning.importGroup` rows (a
    /// bundle is never split: loads run one at a time, so its rows are contiguous). Returns the
    /// last inbox id and the number of bundles.
    static func group(_ db: Database, after pointer: Int64, first bundle: Int64) throws -> (last: Int64, bundles: Int) {
        // Found from the bundle's start, not the inbox's end: `max(id) WHERE bundle_id = ?` walked
        // every row loaded after the bundle, once per transaction (a backlog cost its square).
        let next = try db.scalar(
            "SELECT id FROM ds_change_inbox WHERE id > ? AND bundle_id <> ? ORDER BY id LIMIT 1",
            [.integer(pointer), .integer(bundle)]
        ).asInt64
        let firstLast =
            try db.scalar(
                "SELECT max(id) FROM ds_change_inbox WHERE id > ? AND id < ?",
                [.integer(pointer), .integer(next ?? Int64.max)]
            ).asInt64 ?? pointer
        let upper = pointer + Int64(Tuning.current.importGroup)
        guard firstLast < upper else { return (firstLast, 1) }
        // The bundle that reaches past the limit stays for the next transaction.
        var end = upper
        if let straddler = try db.scalar(
            "SELECT bundle_id FROM ds_change_inbox WHERE id > ? ORDER BY id LIMIT 1", [.integer(upper)]
        ).asInt64,
            let start = try db.scalar(
                "SELECT min(id) FROM ds_change_inbox WHERE bundle_id = ? AND id > ?",
                [.integer(straddler), .integer(pointer)]
            ).asInt64
        {
            end = min(end, start - 1)
        }
        guard end > firstLast,
            let last = try db.scalar(
                "SELECT max(id) FROM ds_change_inbox WHERE id > ? AND id <= ?", [.integer(firstLast), .integer(end)]
            ).asInt64
        else { return (firstLast, 1) }
        let bundles =
            try db.scalar(
                "SELECT count(DISTINCT bundle_id) FROM ds_change_inbox WHERE id > ? AND id <= ?",
                [.integer(pointer), .integer(last)]
            ).asInt64 ?? 1
        return (last, Int(bundles))
    }

    /// The most passes over the held changes in one retry. Each pass tries them in inbox order,
    /// so a chain of held changes that wait for each other against that order (a child held for
    /// its held parent loaded after it) releases one link per pass; the rest waits for the next
    /// import, so a long chain cannot make one import quadratic in the held changes.
    static let maxRetryPasses = 4

    /// Retries the held changes again while a pass releases something: a held change applied
    /// late in one pass can be what an earlier one (a child, a delete waiting for it) waited for.
    private static func retryHeldUntilSettled(
        _ db: Database, tables: [String: TableInfo], order: [String], maxAhead: Int64, cascade: CascadeWait,
        report: inout ImportReport
    ) throws {
        for _ in 0..<maxRetryPasses {
            let settled = report.settledFromHold
            try retryHeld(db, tables: tables, order: order, maxAhead: maxAhead, cascade: cascade, report: &report)
            if report.settledFromHold == settled { break }
        }
    }

    private static func retryHeld(
        _ db: Database, tables: [String: TableInfo], order: [String], maxAhead: Int64, cascade: CascadeWait,
        report: inout ImportReport
    ) throws {
        let pointer = try ProgramPointer.get(db, Program.import)
        guard try db.scalar("SELECT count(*) FROM ds_change_held WHERE id <= ?", [.integer(pointer)]).asInt64 ?? 0 > 0
        else { return }
        var partial = report
        try db.retryingWrite { _ in
            partial = report
            try applyRange(
                db, tables: tables, order: order,
                maxAhead: maxAhead, rows: .heldThrough(pointer), cascade: cascade,
                mode: .heldOneByOne, coalesce: true, report: &partial)
        }
        report = partial
    }

    /// A payload of this size or more is not read with its row but on its own, a piece at a time
    /// (`Database.readBlob`): PostgreSQL sends bytea as hex text, and the row's result held twice
    /// the value besides its bytes. The import's reads; MariaDB's streams leave less with their
    /// rows (`streamedInboxColumns`).
    static let largePayloadBytes = 1 << 20

    /// An inbox row's payload, or NULL when it is `inlineBelow` bytes or more (too large to
    /// read with its row: `change` reads it a megabyte at a time).
    static func payload(inlineBelow: Int) -> SQL {
        "CASE WHEN length(object_value) >= \(literal: inlineBelow) THEN NULL ELSE object_value END"
    }

    static let smallPayload = payload(inlineBelow: largePayloadBytes)

    static func inboxColumns(inlineBelow: Int) -> SQL {
        "id, origin, origin_epoch, seq, hlc, source_id, object_table, object_id, object_operation, cl, "
            + payload(inlineBelow: inlineBelow) + ", "
            + "CASE WHEN EXISTS (SELECT 1 FROM ds_change_held AS h WHERE h.id = ds_change_inbox.id) THEN 'held' ELSE 'new' END, object_pk_attribute, length(object_value)"
    }

    static let inboxColumns = inboxColumns(inlineBelow: largePayloadBytes)

    /// For a stream through a cursor whose rows per fetch are counted before their sizes are
    /// known (MariaDB's prefetch, up to 500 rows): payloads of 8 KiB and more are read apart, a
    /// query each, so a fetch holds about 4 MiB of them at most. (A hub's relay of 120 values
    /// of 900 KiB after 5,000 small changes had them in one fetch: 254 MiB on PostgreSQL, whose
    /// fetches now stop at their bytes.)
    static func streamedInboxColumns(_ db: Database) -> SQL {
        db.dialect.streamsByCount ? inboxColumns(inlineBelow: streamedInlineBytes) : inboxColumns
    }

    static let streamedInlineBytes = 8 << 10

    static func change(_ r: Row, _ db: Database) throws -> Change {
        guard case .blob(let keyBytes) = r.values[7], let op = Operation(rawValue: r.string(8) ?? "") else {
            throw DataJoinError(.internalError, "inbox row \(r.int(0) ?? 0) is damaged")
        }
        let cols: [Change.ColumnValue], old: Value?
        if case .blob(let b) = r.values[10] {
            (cols, old) = try Change.decodePayload(b)
        } else if let length = r.int(13), length > 0, let id = r.int(0) {
            // Straight from the database into the values, a megabyte at a time.
            var reader = ByteReader(
                BlobSource(db: db, table: "ds_change_inbox", column: "object_value", rowid: id, length: Int(length)))
            (cols, old) = try Change.decodePayload(&reader)
        } else {
            (cols, old) = try Change.decodePayload([])
        }
        var c = Change(
            origin: r.string(1) ?? "", epoch: r.string(2) ?? "", seq: r.int(3) ?? 0, hlc: r.int(4) ?? 0,
            txid: r.int(5) ?? 0, op: op,
            table: r.string(6) ?? "", cl: r.int(9) ?? 1, key: try KeyCodec.decode(keyBytes), columns: cols,
            oldValue: old)
        c.keyNames = KeyNames.decode(r.string(12) ?? "")
        return c
    }

    /// Runs between a chunk's reads and its writes: a test commits an application's write there.
    nonisolated(unsafe) static var afterPrefetch: (() throws -> Void)?

    /// The database refused a change (a constraint, a type): not a lost connection or a bug.
    static func isRefusal(_ db: Database, _ error: Error) -> Bool {
        // A change whose savepoint could not be rolled back to or released is no refusal: the
        // transaction cannot go on as if it had not run (MariaDB ends it, savepoints and all, on
        // a deadlock). A COMMIT's refusal is one (SQLite checks deferred foreign keys there).
        if (error as? TransactionError)?.inSavepoint == true { return false }
        return db.isRefusal(error)
    }

    /// Applies the inbox rows `rows` names inside the caller's transaction. Local changes are
    /// stamped first, so every comparison sees their versions.
    /// `after` is the only lower bound on `id`: SQLite bounds a rowid range by one of several
    /// `id > ?` terms and filters by the rest, so a second one made every chunk read the inbox
    /// again from the bundle's start (a 1M-change bundle: 1,000 chunks, each slower).
    static func applyRange(
        _ db: Database, tables registered: [String: TableInfo], order: [String], maxAhead: Int64, rows inbox: InboxRows,
        after: Int64 = 0, sourceOrder: SourceOrder = .none, cascade: CascadeWait = .none,
        mode: ApplyMode, coalesce: Bool = false, report: inout ImportReport,
        afterChunk: ((ImportReport) -> Void)? = nil
    ) throws {
        var me = try NodeIdentity.reload(db)
        // Stamping reads what was captured by the registry; the changes of a table untracked
        // and dropped here are held as a table's not tracked here (never read from it).
        try Stamper.stampPending(db, me: &me, tables: registered)
        let gone = try TableRegistry.untrackedAndGone(db, registered)
        let tables = gone.isEmpty ? registered : registered.filter { !gone.contains($0.key) }
        try setApplying(db, true)
        // Change by change, checked at once: a PostgreSQL constraint declared INITIALLY DEFERRED
        // too, or its refusal would come at COMMIT, for no one change, every run (found from outside).
        try deferForeignKeys(db, mode != .heldOneByOne)
        let window = try StampWindow(db, maxAheadMs: maxAhead)
        var merger = Merger(db: db, tables: tables, within: cascade.within)
        var cascade = cascade
        if mode == .fast {
            merger.batch = RowBatch(db: db, tables: tables, order: order, within: cascade.within)
        }
        var cursor = ImportCursor(afterId: after, clock: me.hlc)
        let storedClock = me.hlc
        // A delete that reaches tracked rows here through the database's own cascade (`ON
        // DELETE CASCADE`, `SET NULL`, `SET DEFAULT`) is this node's change on those rows,
        // captured unstamped. Stamped before any later change is decided, it takes the
        // generation each row had then. Stamped at the end of the run, it took the generation a
        // later change of the same row in this run had set (a re-insert of a newer one, or the
        // same one applied again change by change): the row stayed here, its version said
        // deleted, and the delete removed the newer row everywhere else (found from outside,
        // `check` OK). Deletes in a row are stamped together: a delete never brings a row back,
        // and an origin that deletes many parents sends them with their children between them
        // (stamping after each parent flushed the batch per parent; found in review). The stamps
        // come after every change this run received, as they did in the next run (found in
        // review: a peer's clock ahead made a `SET NULL` older than the insert it follows).
        var cascaded = false
        func stampCascade(before next: Change?) throws {
            guard cascaded, next?.op != .delete else { return }
            cascaded = false
            try merger.batch?.flush()
            try merger.versions.flush()
            me.hlc = max(me.hlc, cursor.clock)
            if try Stamper.stampPending(db, me: &me, tables: registered) > 0 { merger.versions.reset() }
            cursor.clock = max(cursor.clock, me.hlc)
        }
        func applied(_ c: Change, _ outcome: ApplyOutcome) {
            if outcome == .applied, c.op == .delete, cascade.covers(c.table) { cascaded = true }
        }
        // Deletes waiting for the updates of their own transaction later in this apply
        // (`CascadeWait`), applied once the loop has passed them.
        var postponed: [PostponedDelete] = []
        // Each table's place in `order` (parents first), read once per run, not per change.
        let rank = Dictionary(order.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        func applyPostponed(through id: Int64, final: Bool) throws {
            // Children's deletes before their parents' (`order` lists parents first): a parent's
            // delete due with its child's would cascade to the child, and that cascade would go
            // out as this node's change too. Within one table, the latest first: PostgreSQL
            // captures a statement's own rows before the rows its cascade deletes from the same
            // table (only PostgreSQL origins' deletes wait here), and the rows due together are
            // the importer's own, never a cascade of this node's (`TableSQL.cascadeWithin`).
            guard !postponed.isEmpty else { return }
            let due = postponed.enumerated().filter { final || $0.element.after <= id }.sorted {
                let (a, b) = (rank[$0.element.change.table] ?? 0, rank[$1.element.change.table] ?? 0)
                return a != b ? a > b : $0.offset > $1.offset
            }.map(\.element)
            guard !due.isEmpty else { return }
            postponed.removeAll { final || $0.after <= id }
            try merger.deleting(due)
            defer { merger.deleting([:]) }
            for p in due {
                try stampCascade(before: p.change)
                // Its transaction's moves are behind it now: a wait left is a hold.
                let wait = try cascade.decision(
                    db, p.change, key: p.key.key, id: p.row.int(0) ?? 0, appliedThrough: inbox.appliedThrough(id))
                let outcome =
                    try wait.map { .held($0.reason) }
                    ?? decide(
                        db, p.change, canonical: p.key, window: window, savepoints: mode == .heldOneByOne,
                        merger: &merger)
                try settle(db, outcome, of: p.change, row: p.row, report: &report, cursor: &cursor)
                applied(p.change, outcome)
                // Settled: a row its delete left (held, or a later generation here) is no longer
                // the import's to delete, and a parent's cascade reaching it is this node's.
                merger.settled(p.change.table, p.key.key)
            }
        }
        let chunks = try InboxChunks(
            db, tables: tables, inbox, after: after, coalesce: coalesce, readAhead: mode == .fast)
        defer { chunks.cancel() }
        while true {
            let (rows, changes) = try chunks.next(after: cursor.afterId)
            if rows.isEmpty {
                try applyPostponed(through: cursor.afterId, final: true)
                try merger.versions.flush()
                merger.versions.reset()
                break
            }
            if mode == .fast,
                let reason = try sourceOrder.reason(changes)
                    ?? cascade.fastPathReason(db, changes, lastId: rows.last?.int(0) ?? 0)
            {
                throw SourceOrderNeeded(reason: reason)
            }
            let canonical = try prefetch(
                changes, tables: tables, dialect: db.dialect, versions: merger.versions, batch: merger.batch)
            try afterPrefetch?()
            for ((r, c), k) in zip(zip(rows, changes), canonical) {
                try applyPostponed(through: cursor.afterId, final: false)
                try stampCascade(before: c)
                cursor.afterId = r.int(0) ?? 0
                let wait =
                    mode != .fast && k != nil
                    ? try cascade.decision(
                        db, c, key: k?.key ?? [], id: cursor.afterId,
                        appliedThrough: inbox.appliedThrough(cursor.afterId))
                    : nil
                if case .after(let last, _) = wait, let k {
                    postponed.append(PostponedDelete(row: r, change: c, key: k, after: last))
                    continue
                }
                let outcome =
                    try wait.map { .held($0.reason) }
                    ?? decide(
                        db, c, canonical: k, window: window, savepoints: mode == .heldOneByOne, merger: &merger)
                try settle(db, outcome, of: c, row: r, report: &report, cursor: &cursor)
                applied(c, outcome)
            }
            try applyPostponed(through: cursor.afterId, final: false)
            // Written out and forgotten: memory stays flat however large the bundle.
            try merger.batch?.flush()
            try merger.versions.flush()
            merger.versions.reset()
            afterChunk?(report)
        }
        try stampCascade(before: nil)
        report.conflicts += merger.conflicts.recorded
        if cursor.clock != storedClock {
            // Receiving moves the clock past every stamp seen (never past the held future ones).
            // Compared with the clock stored, not `me.hlc`: a cascade's stamping that stamped
            // nothing had moved `me.hlc` to the clock in memory only, the node's clock stayed
            // behind what it had applied, and its next edit lost everywhere else to the change
            // it followed, while it stayed here (found from outside: a laptop differed for good).
            try db.execute(
                "UPDATE ds_node SET hlc = ? WHERE hlc < ?", [.integer(cursor.clock), .integer(cursor.clock)])
        }
        if mode != .heldOneByOne { try deferForeignKeys(db, false) }
        try setApplying(db, false)
    }

    /// The inbox rows of the next chunk (`after` < id <= `end`) and their changes, decoded;
    /// with `coalesce`, held inserts carry the values of their held updates.
    static func readChunk(
        _ db: Database, tables: [String: TableInfo], _ inbox: InboxRows, after: Int64, end: Int64,
        coalesce: Bool
    ) throws -> (rows: [Row], changes: [Change]) {
        let (condition, params) = inbox.condition(after: after, end: end)
        var rows = try db.rows(
            "SELECT \(inboxColumns) FROM ds_change_inbox WHERE \(condition) ORDER BY id", params)
        if rows.isEmpty { return ([], []) }
        var changes = try rows.map { try change($0, db) }
        // Decoded: the payloads' bytes are not needed twice (memory with large values).
        for i in rows.indices { rows[i].values[10] = .null }
        if coalesce {
            // The held updates of these rows in other chunks too: an insert and the update that
            // fixes it apply together wherever the chunk boundary falls.
            let others = try heldUpdates(db, of: changes, outside: after, end)
            changes = Array(withTheirUpdates(changes + others, tables: tables).prefix(changes.count))
        }
        return (rows, changes)
    }

    /// Each change's canonical key and its bytes, computed once for the prefetches and the
    /// rules; the chunk's row versions (and, on the fast path, its rows) read ahead.
    private static func prefetch(
        _ changes: [Change], tables: [String: TableInfo], dialect: Dialect, versions: VersionCache, batch: RowBatch?
    ) throws -> [CanonicalKey?] {
        let canonical: [CanonicalKey?] = changes.map { c in
            guard let t = tables[c.table], c.key.count == t.keyColumns.count else { return nil }
            let key = t.canonicalKey(c.key)
            return (key, KeyCodec.encode(key))
        }
        try versions.prefetch(
            zip(changes, canonical).compactMap { c, k in k.map { VersionCache.Key(table: c.table, key: $0.bytes) } }
        )
        // Not a key with bytes this node holds for a column of another type (`ValueFit`): a
        // lookup by it would be an error on PostgreSQL's server. SQLite keeps such bytes. Nor
        // one with a character its MariaDB column's character set lacks ("Illegal mix of
        // collations"; found from outside).
        try batch?.prefetch(
            zip(changes, canonical).compactMap { c, k in
                guard let k, let t = tables[c.table],
                    !zip(t.keyColumns, k.key).contains(where: { col, v in
                        switch v {
                        case .blob: return dialect.valueProblem(v, col) != nil
                        case .text where col.charset != nil:
                            return dialect.valueProblem(v, col) != nil
                        default: return false
                        }
                    })
                else { return nil }
                return (c.table, k.key, KeyBytes(k.bytes))
            })
        return canonical
    }

    /// What becomes of one change: held when its stamp is outside `window`, else applied by
    /// the merge rules.
    private static func decide(
        _ db: Database, _ c: Change, canonical k: CanonicalKey?, window: StampWindow,
        savepoints: Bool, merger: inout Merger
    ) throws -> ApplyOutcome {
        if let reason = window.holdReason(c) { return .held(reason) }
        if !savepoints { return try merger.apply(c, canonical: k) }
        // A change the database refuses (a constraint, a value its column cannot
        // hold) is held; the rest of the bundle still applies. Inside the bundle's
        // transaction, `write` is a savepoint: a refusal undoes this change only.
        do {
            return try db.write { _ in
                let outcome = try merger.apply(c, canonical: k)
                try merger.versions.flush()
                return outcome
            }
        } catch  where isRefusal(db, error) {
            merger.versions.reset()
            return .held("cannot apply here: \(error)" + (db.dialect.refusalAdvice(error).map { "; " + $0 } ?? ""))
        }
    }

    /// Counts the outcome in `report`; a change that applied is no longer held, and one that
    /// cannot apply is held with its reason.
    private static func settle(
        _ db: Database, _ outcome: ApplyOutcome, of c: Change, row r: Row, report: inout ImportReport,
        cursor: inout ImportCursor
    ) throws {
        let id = r.int(0) ?? 0
        let wasHeld = r.string(11) == "held"
        switch outcome {
        case .applied, .unchanged:
            if outcome == .applied {
                report.applied += 1
                report.count(c)
            } else {
                report.unchanged += 1
            }
            cursor.clock = max(cursor.clock, c.hlc)
            if wasHeld {
                report.settledFromHold += 1
                if id > report.newAfter { report.held -= 1 } else { report.released += 1 }
                try db.execute("DELETE FROM ds_change_held WHERE id = ?", [.integer(id)])
            }
        case .held(let reason):
            if !wasHeld { report.held += 1 }
            // Its own row: the inbox row and its payload are never rewritten for it.
            try db.execute(
                "INSERT INTO ds_change_held (id, object_table, object_id, reason) VALUES (?, ?, ?, ?) "
                    + db.dialect.upsert(key: ["id"], overwrite: ["reason"]),
                [.integer(id), r[6], r[7], .text(reason)])
        }
    }

    /// Without savepoints, foreign keys (and PostgreSQL's DEFERRABLE constraints) are checked once
    /// at the end, so a parent and its children apply in any order, and values swapped in one
    /// statement at the source apply in its order; a violation left at the end refuses the
    /// bundle, which then applies again change by change with immediate checks, holding the
    /// offending changes.
    static func deferForeignKeys(_ db: Database, _ on: Bool) throws { try db.dialect.deferForeignKeys(db, on) }

    /// A held insert carries the values of the held updates of the same row generation made
    /// after it at its origin, wherever they are in the inbox: an update loaded before its
    /// insert (bundles out of order) was not carried, and an insert refused by a foreign key to a
    /// parent deleted here (an `ON DELETE SET NULL` whose update came first) stayed held for
    /// good (found from outside). An insert refused by a unique index stays refused on every retry with its
    /// first values, while the update that fixes it waits for that very insert; together they
    /// apply. The updates still apply after it (their values are then already there), so the row
    /// ends with the same values and versions as applying them one by one.
    static func withTheirUpdates(_ changes: [Change], tables: [String: TableInfo]) -> [Change] {
        func rowKey(_ c: Change) -> String? {
            guard let t = tables[c.table] else { return nil }
            return c.table + "\u{0}" + Hex.encode(KeyCodec.encode(t.canonicalKey(c.key))) + "\u{0}" + String(c.cl)
        }
        var updates: [String: [(index: Int, change: Change)]] = [:]
        for (i, c) in changes.enumerated() where c.op == .update {
            if let k = rowKey(c) { updates[k, default: []].append((i, c)) }
        }
        guard !updates.isEmpty else { return changes }
        var out = changes
        for (i, c) in changes.enumerated() where c.op == .insert {
            guard let k = rowKey(c), let later = updates[k] else { continue }
            var best: [String: Version] = [:]
            for (_, u) in later {
                guard let col = u.columns.first, let at = out[i].columns.firstIndex(where: { $0.name == col.name })
                else { continue }
                let v = Version(hlc: u.hlc, node: u.origin)
                if v > Version(hlc: c.hlc, node: c.origin) && v > (best[col.name] ?? .zero) {
                    out[i].columns[at].value = col.value
                    best[col.name] = v
                }
            }
        }
        return out
    }

    /// The last inbox id of the next chunk: at most `importChunk` rows, and no more payload bytes
    /// than `chunkBytes` (at least one row), so memory stays flat whatever the values' sizes.
    /// Lengths come from the row headers; no value is read for them.
    static func chunkEnd(_ db: Database, _ inbox: InboxRows, after: Int64) throws
        -> (end: Int64, bytes: Int64, rows: Int)
    {
        let tuning = Tuning.current
        var end = after
        var bytes: Int64 = 0
        var rows = 0
        var full = false
        let (first, params) = inbox.first(tuning.importChunk, after: after)
        try db.query(first, params) { r in
            guard !full else { return }
            let size = max(0, r.int(1) ?? 0)
            if end != after && bytes + size > Int64(tuning.chunkBytes) {
                full = true
                return
            }
            end = r.int(0) ?? end
            bytes += size
            rows += 1
        }
        return (end, bytes, rows)
    }

    /// The held updates of the rows `changes` insert, loaded at or before inbox id `first` or
    /// after `last` (the chunk's own are in `changes`).
    static func heldUpdates(_ db: Database, of changes: [Change], outside first: Int64, _ last: Int64) throws
        -> [Change]
    {
        let inserts = Dictionary(grouping: changes.filter { $0.op == .insert }, by: \.table)
        var out: [Change] = []
        for (table, list) in inserts {
            let keys = Array(Set(list.map { KeyBytes(KeyCodec.encode($0.key)) }))
            for part in stride(from: 0, to: keys.count, by: VersionStore.batch) {
                let slice = keys[part..<min(part + VersionStore.batch, keys.count)]
                let marks = db.dialect.marks(slice.count)
                try db.query(
                    "SELECT \(inboxColumns) FROM ds_change_inbox WHERE id IN (SELECT id FROM ds_change_held WHERE object_table = ? "
                        + "AND object_id IN (\(marks))) AND object_operation = 'U' AND (id <= ? OR id > ?) ORDER BY id",
                    [.text(table)] + slice.map { .blob($0.bytes) } + [.integer(first), .integer(last)]
                ) { out.append(try change($0, db)) }
            }
        }
        return out
    }

    /// Switches capture off for this transaction only: a crash rolls the switch back with it.
    static func setApplying(_ db: Database, _ on: Bool) throws { try db.setApplying(on ? "" : nil) }
}

/// How a bundle is written.
enum ApplyMode {
    /// Each row's final state, many rows per statement, constraints checked at the end.
    case fast
    /// Change by change in the bundle's order, constraints checked at the end (`SourceOrder`).
    case inOrder
    /// Change by change, each in a savepoint with constraints checked at once: a change the
    /// database refuses is held, the rest applies.
    case heldOneByOne
}

/// A chunk whose rows the fast path would not write as the source did (`SourceOrder`): its
/// bundle is applied change by change, in the source's order.
struct SourceOrderNeeded: Error {
    var reason: String
}

/// The inbox rows an apply reads, one chunk at a time. Each chunk's query is bounded by the
/// chunk itself, so a chunk costs its own rows, not those after it: SQLite bounds a rowid range
/// by the first `id > ?` and `id <= ?` terms and only filters by the rest (a group's bound first
/// made every chunk read to the group's end: a 1M-change import read 50 GB), and a held list
/// given as `id IN (SELECT id FROM ds_change_held)` was read whole for every chunk.
enum InboxRows {
    /// Every row up to this id: the bundles of one import transaction.
    case through(Int64)
    /// The held rows up to this id, found through ds_change_held's own key.
    case heldThrough(Int64)

    /// The inbox rows up to this id are applied or held, when the row `id` is being applied.
    func appliedThrough(_ id: Int64) -> Int64 {
        switch self {
        case .through: return id
        case .heldThrough(let last): return last
        }
    }

    /// The rows with `after` < id <= `end`.
    func condition(after: Int64, end: Int64) -> (SQL, [Value]) {
        switch self {
        case .through(let last):
            return ("id > ? AND id <= ?", [.integer(after), .integer(min(end, last))])
        case .heldThrough(let last):
            return (
                "id IN (SELECT id FROM ds_change_held WHERE id > ? AND id <= ?)",
                [.integer(after), .integer(min(end, last))]
            )
        }
    }

    /// Id and payload length of the first `n` rows after `after`.
    func first(_ n: Int, after: Int64) -> (SQL, [Value]) {
        switch self {
        case .through(let last):
            return (
                "SELECT id, coalesce(length(object_value), 0) FROM ds_change_inbox WHERE id > ? AND id <= ? ORDER BY id LIMIT \(literal: n)",
                [.integer(after), .integer(last)]
            )
        case .heldThrough(let last):
            return (
                """
                SELECT i.id, coalesce(length(i.object_value), 0) FROM ds_change_held AS h JOIN ds_change_inbox AS i ON i.id = h.id
                WHERE h.id > ? AND h.id <= ? ORDER BY h.id LIMIT \(literal: n)
                """,
                [.integer(after), .integer(last)]
            )
        }
    }
}
