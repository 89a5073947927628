import Foundation

/// A delete whose target cascade could act on rows that lag its origin waits.
///
/// Deleting a parent row here runs this database's own `ON DELETE CASCADE` (or `SET NULL`,
/// `SET DEFAULT`) on the rows referencing it. At the origin, the rows that still referenced it
/// were cascaded there too, and those cascades travel as changes of their own (captured by the
/// children's triggers on SQLite and PostgreSQL, by the parent's on MariaDB). A row that references it
/// here but no longer did at the origin lags: the change that moved it elsewhere (an update of
/// its foreign key, or a parent's key change captured as a delete and an insert) is not applied
/// here yet, because a bundle arrived out of order, was held, or comes later in the same source
/// transaction. Cascading then would delete or unlink that row for good, and its move, arriving
/// later, would find nothing (docs/conflict-rules.md, "Constraints").
///
/// So, at the moment of the delete, a delete of a row that some row here references through
/// such a key is held while a change its origin made before it, or in its transaction, has not
/// been applied here: not arrived yet, later in the inbox, or held. The retry of held changes
/// applies it once they are, and the cascade then acts only on rows that are where the origin
/// had them. A row referencing it that its origin never saw (inserted concurrently elsewhere)
/// does not make it wait once the origin's own changes are here: the cascade is then what every
/// node does.
/// A delete waiting, in one apply, for the updates of its own transaction that come after it.
struct PostponedDelete {
    let row: Row
    let change: Change
    let key: CanonicalKey
    /// The inbox id of the last of those updates.
    let after: Int64
}

struct CascadeWait {
    private let keys: [String: [ForeignKey]]
    private let tables: [String: TableInfo]
    private var probes: [String: [SQL]] = [:]
    /// Shared by every apply of one run: read once per origin.
    private let late = LateRows()

    /// Each table's foreign keys to itself whose `ON DELETE` changes its rows (`TableSQL`).
    let within: [String: [ForeignKey]]

    static let none = CascadeWait(keys: [:], tables: [:])

    private init(keys: [String: [ForeignKey]], tables: [String: TableInfo]) {
        self.keys = keys
        self.tables = tables
        var within: [String: [ForeignKey]] = [:]
        for (parent, fks) in keys where fks.contains(where: { $0.child == parent }) {
            within[parent] = fks.filter { $0.child == parent }
        }
        self.within = within
    }

    init(foreignKeys: ForeignKeys, tables: [String: TableInfo]) {
        self.init(keys: foreignKeys.cascading, tables: tables)
    }

    /// The tables the delete of a `parent` row can reach through such keys, its children's
    /// children included: a held move of a grandchild is lost to a grandparent's cascade too
    /// (found from outside).
    /// `selfLoops` false: not through a table's key to itself (`mayReference`).
    private func descendants(of parent: String, selfLoops: Bool = true) -> [String] {
        var seen = Set<String>()
        var next = [parent]
        while let t = next.popLast() {
            for k in keys[t] ?? [] where (selfLoops || k.child != t) && seen.insert(k.child).inserted {
                next.append(k.child)
            }
        }
        return seen.sorted()
    }

    /// Each table referencing `parent` through such a key → its columns that do.
    private func foreignKeyColumns(of parent: String) -> [String: Set<String>] {
        var out: [String: Set<String>] = [:]
        for k in keys[parent] ?? [] { out[k.child, default: []].formUnion(k.columns.map(\.child)) }
        return out
    }

    /// Whether an inserted row of `table` with `values` may reference the row `c` deletes: false
    /// only when `table` references `c.table` directly (not also through another table) by its
    /// key columns, and for each such key the row holds NULL or a value that differs from the
    /// deleted row's however a collation compares (`SourceOrder.collisionKey`). A key of a table
    /// to itself is no other way: a row below one of its children is that child's, whose own
    /// cascade every node captures, and a delete that waited for such an insert, whose parent
    /// the other node had deleted, waited for good, as did that node (found from outside).
    fileprivate func mayReference(_ c: Change, insertOf table: String, values: [Change.ColumnValue]) -> Bool {
        guard let parent = tables[c.table] else { return true }
        let all = keys[c.table] ?? []
        let direct = all.filter { $0.child == table }
        if direct.isEmpty
            || all.contains(where: {
                $0.child != c.table && descendants(of: $0.child, selfLoops: false).contains(table)
            })
        {
            return true
        }
        var deleted: [String: Value] = [:]
        for (column, value) in zip(parent.keyColumns, c.key) { deleted[column.name] = value }
        var row: [String: Value] = [:]
        for v in values { row[v.name] = v.value }
        for k in direct {
            var differs = false
            for (child, parentColumn) in k.columns {
                // A key to another column, or a column the insert leaves to its default: unknown.
                guard let p = deleted[parentColumn], let v = row[child] else { return true }
                if v == .null || SourceOrder.collisionKey(v) != SourceOrder.collisionKey(p) { differs = true }
            }
            if !differs { return true }
        }
        return false
    }

    /// Deletes of this table can cascade to tracked rows here.
    func covers(_ table: String) -> Bool { keys[table] != nil }

    /// In a chunk about to go on the fast path: a delete that may have to wait, decided change by
    /// change in the bundle's order instead. Only the origin's state is read here, once per
    /// origin: most chunks of deletes come from origins whose changes are all applied.
    func fastPathReason(_ db: Database, _ changes: [Change], lastId: Int64) throws -> String? {
        var latest: [String: Change] = [:]
        for c in changes where c.op == .delete && covers(c.table) {
            let id = c.origin + "\u{0}" + c.epoch
            if let seen = latest[id], seen.seq >= c.seq { continue }
            latest[id] = c
        }
        for c in latest.values.sorted(by: { $0.origin < $1.origin }) {
            // Any held insert below counts here: each delete of the chunk decides for its own
            // row, change by change.
            if let wait = try unapplied(db, c, after: lastId, heldOtherThan: nil, anyHeldInsert: true) {
                let why: String
                switch wait {
                case .missing(let text), .heldInsert(let text, _): why = text
                case .after: why = "its transaction moves rows off them later"
                }
                return "it deletes rows of \(c.table) that other tracked rows may reference, and \(why)"
            }
        }
        return nil
    }

    /// What a delete does now.
    enum Decision {
        /// Held with this reason, retried with the held changes.
        case hold(String)
        /// Applied once the bundle's rows up to this inbox id are: the updates of its own
        /// transaction that move rows off it come later in the same bundle (or import). The
        /// reason holds it if they are not applied by the end.
        case after(Int64, String)

        var reason: String {
            switch self {
            case .hold(let reason), .after(_, let reason): return reason
            }
        }
    }

    /// Whether the delete `c` (inbox row `id`) waits, or nil to apply it now. Inbox rows up to
    /// `appliedThrough` are applied or held.
    mutating func decision(_ db: Database, _ c: Change, key: [Value], id: Int64, appliedThrough: Int64) throws
        -> Decision?
    {
        // The origin's state first: its queries use DataJoin's indexes, while the probe for a
        // referencing row scans the child table where the application has no index on it.
        // A key this node cannot hold is held by the rules, never probed for: bytes for an
        // integer key reached the server and failed every import (found in review).
        guard c.op == .delete, let parent = tables[c.table], keys[c.table] != nil,
            parent.keyKindProblem(c.key) == nil, ValueFit.keyProblem(c.key, table: parent, dialect: db.dialect) == nil,
            let wait = try unapplied(db, c, after: appliedThrough, heldOtherThan: id, anyHeldInsert: false)
        else { return nil }
        let child: String
        let why: String
        switch wait {
        case .heldInsert(let text, let table):
            // Its row is not here yet, so the probe would not find it; with no row to delete
            // here there is no cascade to wait for (it was held for good, found from outside).
            guard try TableSQL(table: parent, db: db).exists(key) else { return nil }
            (child, why) = (table, text)
        case .after, .missing:
            guard let found = try referencingTable(db, parent, key: key) else { return nil }
            child = found
            if case .missing(let text) = wait {
                why = text
            } else {
                why = "\(c.origin)'s updates of its transaction that move them are not applied here yet"
            }
        }
        let reason =
            "deleting \(c.table) \(KeyCodec.display(key)) here would cascade to rows of \(child) that reference it, "
            + "and \(why); it waits so that the cascade acts only on rows where \(c.origin) had them"
        if case .after(let last) = wait { return .after(last, reason) }
        return .hold(reason)
    }

    /// The first tracked table with a row referencing the row `key` of `table` through a key
    /// whose `ON DELETE` changes it.
    private mutating func referencingTable(_ db: Database, _ table: TableInfo, key: [Value]) throws -> String? {
        let list = keys[table.name] ?? []
        if probes[table.name] == nil {
            let keyWhere = table.keyColumns.map { "\($0.identifier.qualified(by: "p")) = ?" as SQL }
                .joined(separator: " AND ")
            probes[table.name] = list.map { k in
                let on = k.columns.map {
                    "\(Identifier($0.child).qualified(by: "c")) = \(Identifier($0.parent).qualified(by: "p"))" as SQL
                }.joined(separator: " AND ")
                return
                    "SELECT 1 FROM \(Identifier(k.child)) AS c JOIN \(table.identifier) AS p ON \(on) WHERE \(keyWhere) LIMIT 1"
            }
        }
        for (k, probe) in zip(list, probes[table.name] ?? []) where try db.firstRow(probe, key) != nil {
            return k.child
        }
        return nil
    }

    /// A change of `c`'s origin made before it that is not applied here, described: not arrived,
    /// later in the inbox (rows after `after` are not applied yet), or held on a table
    /// referencing `c`'s; or, in its PostgreSQL transaction, an update of such a table after it
    /// (PostgreSQL captures a parent's key change before the updates its cascade made).
    fileprivate enum Unapplied {
        case missing(String)
        /// An insert of a row of this table that may reference it is held.
        case heldInsert(String, table: String)
        /// Only updates of its own transaction, up to this inbox id, are still to come.
        case after(Int64)
    }

    /// `anyHeldInsert`: a held insert below counts whatever row it references.
    private func unapplied(_ db: Database, _ c: Change, after: Int64, heldOtherThan: Int64?, anyHeldInsert: Bool)
        throws -> Unapplied?
    {
        let holds = try Holdings.state(db, origin: c.origin, epoch: c.epoch)
        if holds.contiguous < c.seq - 1 {
            return .missing(
                "\(c.origin)'s changes from #\(holds.contiguous + 1) have not arrived here (it deleted it at #\(c.seq))"
            )
        }
        let children = descendants(of: c.table)
        if let seq = try late.earlier(db, origin: c.origin, epoch: c.epoch, than: c.seq, after: after) {
            return .missing("\(c.origin)'s change #\(seq) is not applied here yet")
        }
        if let held = try heldBelow(db, c, tables: children, otherThan: heldOtherThan, anyHeldInsert: anyHeldInsert) {
            return held
        }
        // SQLite and MariaDB origins have no transaction id (0), and capture cascades first.
        if c.txid != 0,
            let last = try late.lastMove(
                db, after: c, of: foreignKeyColumns(of: c.table), below: Set(descendants(of: c.table)),
                notAppliedAfter: after)
        {
            return .after(last)
        }
        return nil
    }
}

extension CascadeWait {
    /// A held change of `c`'s origin on `tables` that `c` waits for: an update or delete made
    /// before it (or a move later in its PostgreSQL transaction), or an insert made before it of
    /// a row that may reference it (a held insert is not here for the cascade to reach; it waits
    /// only so that the insert, once released, is the cascade's: an origin whose cascade was not
    /// captured, a MariaDB parent not tracked, sends no delete for it; and one referencing another parent held every delete of its origin on this
    /// table, found from outside).
    ///
    /// Read from the held list to the inbox, one primary-key probe per held row, in a form each
    /// brand runs in that order: from the inbox side, SQLite (a join) and PostgreSQL (a
    /// `CROSS JOIN` too, without statistics) walked every row of the origin for each delete, a
    /// 9,000-parent key change in minutes (found from outside).
    fileprivate func heldBelow(
        _ db: Database, _ c: Change, tables: [String], otherThan: Int64?, anyHeldInsert: Bool
    ) throws -> Unapplied? {
        let marks = db.dialect.marks(tables.count)
        let names = tables.map { Value.text($0) }
        guard try db.firstRow("SELECT 1 FROM ds_change_held WHERE object_table IN (\(marks)) LIMIT 1", names) != nil
        else { return nil }
        var rows: [(id: Int64, table: String, seq: Int64, op: String, txid: Int64, key: [Value]?)] = []
        try db.query(
            """
            SELECT h.id, h.object_table,
              (SELECT i.seq FROM ds_change_inbox AS i WHERE i.id = h.id),
              (SELECT i.object_operation FROM ds_change_inbox AS i WHERE i.id = h.id),
              (SELECT i.source_id FROM ds_change_inbox AS i WHERE i.id = h.id),
              (SELECT i.origin FROM ds_change_inbox AS i WHERE i.id = h.id),
              (SELECT i.origin_epoch FROM ds_change_inbox AS i WHERE i.id = h.id),
              (SELECT i.object_id FROM ds_change_inbox AS i WHERE i.id = h.id)
            FROM ds_change_held AS h WHERE h.object_table IN (\(marks)) AND h.id <> ? ORDER BY h.id
            """, names + [.integer(otherThan ?? 0)]
        ) { r in
            // The origin is compared here: in the subquery, PostgreSQL without statistics chose
            // the origin's index over the primary key (seconds per delete, found from outside).
            guard let id = r.int(0), let table = r.string(1), let seq = r.int(2), let op = r.string(3),
                r.string(5) == c.origin, r.string(6) == c.epoch
            else { return }
            // A held change of the deleted row itself (a table's key to itself) is one the delete
            // supersedes, not a row below it: waiting for it held both for good (found from outside).
            var key: [Value]?
            if table == c.table, let t = self.tables[table], case .blob(let bytes) = r.values[7],
                let decoded = try? KeyCodec.decode(bytes)
            {
                key = t.canonicalKey(decoded)
                if key == t.canonicalKey(c.key) { return }
            }
            rows.append((id, table, seq, op, r.int(4) ?? 0, key))
        }
        // Through another table back to its own, any counts: `isBelow` reads only its own keys.
        let ownKeysOnly = !descendants(of: c.table, selfLoops: false).contains(c.table)
        for row in rows where row.op != "I" && (row.seq < c.seq || (c.txid != 0 && row.op == "U" && row.txid == c.txid))
        {
            // In the deleted row's own table, only a row below it here is the cascade's: any
            // other (its parent moved elsewhere, a sibling) held its delete for good (found from
            // outside). The fast path asks for its chunk as a whole and counts every one.
            if !anyHeldInsert, ownKeysOnly, let key = row.key, try !isBelow(db, key, c) {
                continue
            }
            return .missing("\(c.origin)'s change #\(row.seq) to a row referencing it is held here")
        }
        for row in rows where row.op == "I" && row.seq < c.seq {
            var may = anyHeldInsert
            if !may {
                let payload = try db.scalar(
                    """
                    SELECT \(Importer.smallPayload) FROM ds_change_inbox WHERE id = ?
                    """, [.integer(row.id)])
                // A payload too large to read here may reference it.
                if case .blob(let bytes) = payload {
                    may = mayReference(c, insertOf: row.table, values: try Change.decodePayload(bytes).0)
                } else {
                    may = true
                }
            }
            if may {
                return .heldInsert(
                    "\(c.origin)'s insert #\(row.seq) of a row that may reference it is held here", table: row.table)
            }
        }
        return nil
    }
}

extension CascadeWait {
    /// Whether the row `key` of `c`'s table is below the row `c` deletes here, through the
    /// table's keys to itself: its parents read upwards, each once (a cycle ends), and past
    /// 1,000 rows read it counts as below.
    fileprivate func isBelow(_ db: Database, _ key: [Value], _ c: Change) throws -> Bool {
        guard let t = tables[c.table] else { return true }
        let own = (keys[c.table] ?? []).filter { $0.child == c.table }
        let target = t.canonicalKey(c.key)
        let keyWhere = t.keyColumns.map { "\($0.identifier.qualified(by: "c")) = ?" as SQL }.joined(separator: " AND ")
        let parents: [SQL] = own.map { k in
            let on = k.columns.map {
                "\(Identifier($0.parent).qualified(by: "p")) = \(Identifier($0.child).qualified(by: "c"))" as SQL
            }.joined(separator: " AND ")
            return """
                SELECT \(t.keyColumns.map { $0.identifier.qualified(by: "p") }.joined(separator: ", ")) \
                FROM \(t.identifier) AS c JOIN \(t.identifier) AS p ON \(on) WHERE \(keyWhere)
                """
        }
        var seen: Set<[Value]> = [key]
        var frontier = [key]
        while !frontier.isEmpty {
            var next: [[Value]] = []
            for row in frontier {
                for sql in parents {
                    try db.query(sql, row) { r in
                        let p = t.canonicalKey(r.values)
                        if seen.insert(p).inserted { next.append(p) }
                    }
                }
            }
            if seen.contains(target) || seen.count > 1_000 { return true }
            frontier = next
        }
        return false
    }
}

/// What an import run reads once of the inbox for `CascadeWait`, per origin and transaction.
private final class LateRows {
    /// Rows loaded after a row of the same origin with a higher seq (a bundle that arrived late),
    /// as runs of consecutive seqs: the only rows after an inbox position with a seq below a
    /// row at or before it.
    private var late: [String: [(ids: ClosedRange<Int64>, seqs: ClosedRange<Int64>)]] = [:]
    /// The highest inbox id when an origin was read: rows loaded since are read on each ask.
    private var readThrough: [String: Int64] = [:]
    /// Per origin, PostgreSQL transaction and parent table: the transaction's updates of tables
    /// referencing it, after its first delete asked about.
    private var moves: [String: (from: Int64, highest: Int64?)] = [:]

    /// A seq below `seq` of the origin's rows after inbox id `after`, if any.
    func earlier(_ db: Database, origin: String, epoch: String, than seq: Int64, after: Int64) throws -> Int64? {
        let key = origin + "\u{0}" + epoch
        let params: [Value] = [.text(origin), .text(epoch)]
        if late[key] == nil {
            readThrough[key] = try db.scalar("SELECT max(id) FROM ds_change_inbox").asInt64 ?? 0
            // Rows not applied yet are the only ones that matter; below the lowest of their seqs
            // every row is applied (or held, which the caller checks).
            let lowest =
                try db.scalar(
                    "SELECT min(seq) FROM ds_change_inbox WHERE id > ? AND origin = ? AND origin_epoch = ?",
                    [.integer(after)] + params
                ).asInt64 ?? Int64.max
            // Descending seqs: a row is late when a row with a higher seq has a lower id.
            var runs: [(ids: ClosedRange<Int64>, seqs: ClosedRange<Int64>)] = []
            var lowestId = Int64.max
            try db.query(
                "SELECT seq, id FROM ds_change_inbox WHERE origin = ? AND origin_epoch = ? AND seq >= ? ORDER BY seq DESC",
                params + [.integer(lowest)]
            ) { r in
                guard let s = r.int(0), let id = r.int(1) else { return }
                if id > lowestId {
                    if let last = runs.last, last.seqs.lowerBound == s + 1 {
                        runs[runs.count - 1] = (
                            min(id, last.ids.lowerBound)...max(id, last.ids.upperBound), s...last.seqs.upperBound
                        )
                    } else {
                        runs.append((id...id, s...s))
                    }
                }
                lowestId = min(lowestId, id)
            }
            late[key] = runs
        }
        for run in late[key] ?? [] where run.ids.upperBound > after && run.seqs.lowerBound < seq {
            return run.seqs.lowerBound
        }
        // Rows loaded since the origin was read, usually none: asked only if there are any, as
        // SQLite answers it by walking the origin's seqs below `seq`, every row for each delete.
        let since = max(after, readThrough[key] ?? 0)
        guard try db.scalar("SELECT max(id) FROM ds_change_inbox").asInt64 ?? 0 > since else { return nil }
        return try db.scalar(
            "SELECT seq FROM ds_change_inbox WHERE id > ? AND origin = ? AND origin_epoch = ? AND seq < ? LIMIT 1",
            [.integer(since)] + params + [.integer(seq)]
        ).asInt64
    }

    /// The inbox id of the last update of a foreign-key column in `columns` (table → columns) in
    /// `c`'s transaction, after `c`, not applied yet (after inbox id `notAppliedAfter`). A transaction's seqs follow
    /// each other (the stamper stamps it whole).
    /// `below`: the tables a cascade from `c`'s table reaches. Any change of its transaction on
    /// them counts too, not only an update of a referencing column: a parent's key change two
    /// levels deep is a delete and an insert of the child (its key holds the parent's), and the
    /// parent's delete, applied first, cascaded through it to the grandchild, whose move then
    /// found nothing (found from outside; since schema 17 that cascade is captured, and the loss
    /// went back to the origin).
    func lastMove(
        _ db: Database, after c: Change, of columns: [String: Set<String>], below: Set<String>, notAppliedAfter: Int64
    ) throws
        -> Int64?
    {
        let key = c.origin + "\u{0}" + c.epoch + "\u{0}" + String(c.txid) + "\u{0}" + c.table
        if let known = moves[key], known.from > c.seq {
            moves[key] = nil
        }
        if moves[key] == nil {
            // Only the highest inbox id that counts: memory stays flat however large the
            // transaction (found in review), and the delete waits until every one is behind it.
            var highest: Int64?
            func counts(_ id: Int64) { highest = max(highest ?? id, id) }
            var next = c.seq
            var done = false
            while !done {
                var n = 0
                try db.query(
                    """
                    SELECT seq, id, source_id, object_operation, object_table,
                      \(Importer.smallPayload)
                    FROM ds_change_inbox WHERE origin = ? AND origin_epoch = ? AND seq > ? ORDER BY seq LIMIT 1000
                    """, [.text(c.origin), .text(c.epoch), .integer(next)]
                ) { r in
                    n += 1
                    guard !done, let s = r.int(0) else { return }
                    next = s
                    if r.int(2) != c.txid {
                        done = true
                    } else if r.string(3) == "U", let t = r.string(4), columns[t] != nil {
                        // A payload too large to read here counts as a move of any column.
                        var column: String?
                        if case .blob(let b) = r.values[5] { column = try Change.decodePayload(b).0.first?.name }
                        if column.map({ columns[t]?.contains($0) ?? false }) ?? true { counts(r.int(1) ?? 0) }
                    } else if let t = r.string(4), below.contains(t) {
                        counts(r.int(1) ?? 0)
                    }
                }
                if n < 1000 { done = true }
            }
            moves[key] = (c.seq, highest)
        }
        guard let highest = moves[key]?.highest, highest > notAppliedAfter else { return nil }
        return highest
    }
}
