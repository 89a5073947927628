import Crypto
import Foundation

/// MariaDB fires no trigger for the rows its foreign keys' `ON DELETE` / `ON UPDATE` actions
/// change, so a parent's key change reached peers as a delete and an insert without the
/// children's updates, and their own cascade deleted the children (found from outside). A
/// tracked parent's `BEFORE DELETE` and `BEFORE UPDATE` triggers therefore write what its
/// cascade is about to do to tracked tables, deepest rows first, as SQLite's and PostgreSQL's
/// capture does (docs/capture.md):
/// - `CASCADE` on delete: a delete of each referencing row;
/// - `SET NULL`: an update of each referencing column to NULL;
/// - `CASCADE` on update: an update of each referencing column to the parent's new value, or,
///   when the column is in the child's key, a delete of the old key and an insert of the new.
/// Before the parent's row changes, the rows are found by the values they still hold.
struct MariaDBCascadeCapture {
    /// InnoDB refuses a cascade deeper than 15 levels, so no deeper row can change.
    static let maxDepth = 15
    /// Statements per trigger: a graph of many paths would make each parent's delete run
    /// thousands; past this, `track` warns.
    static let maxStatements = 64

    typealias Key = ForeignKey

    /// What the walk reached: the rows of one table, by an alias and the joins back to the
    /// root row (`OLD`).
    struct Reach {
        var alias: String
        var from: [String]
        var conditions: [String]
    }

    /// A referencing column's value after the cascade.
    enum NewValue {
        case null
        case root(ColumnInfo)
    }

    enum Change {
        case deleted
        case updated([String: NewValue])
    }

    let db: Database
    let tables: [String: TableInfo]
    let keys: [String: [Key]]
    private(set) var statements: [String] = []
    /// Written after every update: cascaded deletes, and the delete and insert of a cascaded
    /// key change. An update of a row written after its delete made peers refuse the bundle
    /// (an impossible stamp).
    private(set) var after: [String] = []
    private(set) var truncated = false

    init(_ db: Database, tables: [String: TableInfo], foreignKeys: [ForeignKeyColumn]) {
        self.db = db
        self.tables = tables
        keys = ForeignKey.byParent(foreignKeys) { tables[$0.child] != nil && tables[$0.parent] != nil }
    }

    /// The columns of `table` whose change some tracked child's `ON UPDATE` follows.
    func followedColumns(_ table: String) -> [String] {
        var out: [String] = []
        for key in keys[table] ?? [] where key.onUpdate == .cascade || key.onUpdate == .setNull {
            for c in key.columns where !out.contains(c.parent) { out.append(c.parent) }
        }
        return out
    }

    /// The statements a delete of a `table` row runs before it.
    mutating func onDelete(_ table: String) -> [String] {
        statements = []
        after = []
        truncated = false
        walk(table, nil, .deleted, depth: 0)
        // A row that one key (or path) sets NULL and another deletes ends deleted, as at the origin.
        return statements + after
    }

    /// The statements an update of a `table` row runs before it.
    mutating func onUpdate(_ t: TableInfo) -> [String] {
        statements = []
        after = []
        truncated = false
        var set: [String: NewValue] = [:]
        for name in followedColumns(t.name) {
            if let c = t.column(name) { set[name] = .root(c) }
        }
        if !set.isEmpty { walk(t.name, nil, .updated(set), depth: 0) }
        return statements + after
    }

    private mutating func walk(_ table: String, _ reach: Reach?, _ change: Change, depth: Int) {
        let parentRows = reach?.alias ?? "OLD"
        for key in keys[table] ?? [] {
            guard let child = tables[key.child] else { continue }
            // Deeper than InnoDB's limit the statement fails, so nothing there changes.
            guard depth < Self.maxDepth else { continue }
            guard statements.count + after.count < Self.maxStatements else {
                truncated = true
                return
            }
            let alias = "ds_c\(depth + 1)"
            var next = Reach(
                alias: alias, from: ["\(db.quote(child.name)) AS \(alias)"] + (reach?.from ?? []),
                conditions: key.columns.map { "\(alias).\(db.quote($0.child)) = \(parentRows).\(db.quote($0.parent))" }
                    + (reach?.conditions ?? []))
            // A delete's cascade within its own table is the importer's to run, as a statement
            // of its own (`TableSQL.cascadeWithin`): here it would also take the rows the
            // importer deletes next, and send them back (schema 18; found from outside).
            if depth == 0, key.child == table, case .deleted = change {
                next.conditions.append(MariaDBDialect.notImporting(table))
            }
            var set: [String: NewValue] = [:]
            switch change {
            case .deleted:
                if key.onDelete == .cascade {
                    walk(child.name, next, .deleted, depth: depth + 1)
                    emit(deleteValues(child, alias), next, into: \.after)
                    continue
                }
                guard key.onDelete == .setNull else { continue }
                for c in key.columns { set[c.child] = .null }
            case .updated(let parentSet):
                let touched = key.columns.filter { parentSet[$0.parent] != nil }
                guard !touched.isEmpty else { continue }
                switch key.onUpdate {
                case .cascade: for c in touched { set[c.child] = parentSet[c.parent] }
                case .setNull: for c in key.columns { set[c.child] = .null }
                default: continue
                }
                // Only rows whose parent's referenced values do change.
                let changes = touched.map { c in
                    "NOT (\(same(parentSet[c.parent]!, "\(parentRows).\(db.quote(c.parent))", tables[table]?.column(c.parent))))"
                }
                next.conditions.append("(" + changes.joined(separator: " OR ") + ")")
            }
            walk(child.name, next, .updated(set), depth: depth + 1)
            emitUpdates(child, next, set)
        }
    }

    private mutating func emit(
        _ values: String, _ reach: Reach, _ extra: [String] = [],
        into list: WritableKeyPath<MariaDBCascadeCapture, [String]> = \.statements
    ) {
        guard statements.count + after.count < Self.maxStatements else {
            truncated = true
            return
        }
        self[keyPath: list].append(
            "INSERT INTO \(MariaDBDialect.cascadePending) (\(MariaDBDialect.columns)) SELECT \(values) FROM "
                + reach.from.joined(separator: ", ") + " WHERE " + (reach.conditions + extra).joined(separator: " AND ")
        )
    }

    /// A change of key columns is a delete of the old key and an insert of the new row, as the
    /// row's own trigger writes it; otherwise one update per column that changes.
    private mutating func emitUpdates(_ t: TableInfo, _ reach: Reach, _ set: [String: NewValue]) {
        let alias = reach.alias
        let keyChanges = t.keyColumns.filter { set[$0.name] != nil }
        if !keyChanges.isEmpty {
            let differs = keyChanges.map { "NOT (\(same(set[$0.name]!, "\(alias).\(db.quote($0.name))", $0)))" }
            let condition = "(" + differs.joined(separator: " OR ") + ")"
            emit(deleteValues(t, alias), reach, [condition], into: \.after)
            let row = t.columns.map { c in set[c.name].map(captured) ?? MariaDBDialect.captured(db, c, alias) }
            let names = CaptureTriggers.literal(
                "[" + t.columns.map { JSON.quote($0.name) }.joined(separator: ",") + "]")
            emit(
                "\(MariaDBDialect.header(t)), JSON_ARRAY(\(t.keyColumns.map { set[$0.name].map(text) ?? MariaDBDialect.text(db, $0, alias) }.joined(separator: ", "))), 'I', \(names), \(MariaDBDialect.rowValues(row)), NULL, \(MariaDBDialect.common)",
                reach, [condition], into: \.after)
            return
        }
        for c in t.columns {
            guard let value = set[c.name] else { continue }
            let old = "\(alias).\(db.quote(c.name))"
            emit(
                "\(MariaDBDialect.header(t)), \(MariaDBDialect.key(db, t, alias)), 'U', \(CaptureTriggers.literal(c.name)), \(text(value)), \(MariaDBDialect.text(db, c, alias)), \(MariaDBDialect.common)",
                reach, ["NOT (\(same(value, old, c)))"])
        }
    }

    private func deleteValues(_ t: TableInfo, _ alias: String) -> String { MariaDBDialect.deleteValues(db, t, alias) }

    private func captured(_ v: NewValue) -> MariaDBDialect.CapturedValue {
        switch v {
        case .null: return .init(text: "NULL", raw: "NULL")
        case .root(let c): return MariaDBDialect.captured(db, c, "NEW")
        }
    }

    private func text(_ v: NewValue) -> String {
        switch v {
        case .null: return "NULL"
        case .root(let c): return MariaDBDialect.text(db, c, "NEW")
        }
    }

    /// The new value equals `old` as the row's own update trigger compares (numbers by value,
    /// the rest by bytes).
    private func same(_ v: NewValue, _ old: String, _ column: ColumnInfo?) -> String {
        switch v {
        case .null: return "\(old) IS NULL"
        case .root(let c):
            let new = "NEW.\(db.quote(c.name))"
            let numbers: [ValueKind] = [.integer, .real, .boolean]
            if numbers.contains(c.kind), let column, numbers.contains(column.kind) {
                return "\(new) <=> \(old)"
            }
            return "CAST(\(new) AS BINARY) <=> CAST(\(old) AS BINARY)"
        }
    }
}

extension MariaDBDialect {
    /// A session's cascade rows between a parent's BEFORE trigger and its AFTER trigger.
    static let cascadePending = "ds_cascade_pending"

    /// Names the row whose BEFORE trigger wrote the pending cascade rows: only that row's AFTER
    /// trigger moves them. A row `IGNORE` skipped has no AFTER DELETE, and its rows must not
    /// ride on the next row's (of this table or another).
    static func cascadeMark(_ db: Database, _ t: TableInfo) -> String {
        "CONCAT(\(CaptureTriggers.literal(t.name)), '\\0', \(key(db, t, "OLD")))"
    }

    /// In a row's AFTER trigger, before its own outbox row: the cascade rows its BEFORE trigger
    /// wrote, to the outbox if its change `happened`; anything else pending is dropped.
    static func flushCascade(_ db: Database, _ t: TableInfo, happened: String = "TRUE") -> String {
        """
        IF @datajoin_cascade_pending IS NOT NULL THEN
              IF @datajoin_cascade_pending = \(cascadeMark(db, t)) AND \(happened) THEN
                INSERT INTO ds_change_outbox (\(columns)) SELECT \(columns) FROM \(cascadePending) ORDER BY ds_seq;
              END IF;
              DELETE FROM \(cascadePending);
              SET @datajoin_cascade_pending = NULL;
            END IF;
        """
    }

    /// `ds_setting` name: which of a table's cascade triggers are installed (1 delete, 2 update),
    /// so that a dropped one is drift.
    static let cascadeSetting = "capture_cascades:"

    static func cascadeTriggerNames(_ table: String) -> (delete: String, update: String) {
        (
            CaptureTriggers.generatedName("ds_capture_casd_", table),
            CaptureTriggers.generatedName("ds_capture_casu_", table)
        )
    }

    /// Installs or drops each tracked table's cascade triggers to match the foreign keys among
    /// tracked tables now: run after every `track` and `untrack`, since a parent's triggers
    /// name its tracked children. `CREATE OR REPLACE` leaves no moment without capture.
    /// Returns a warning per table whose cascades reach further than the triggers capture.
    public func refreshCascadeCapture(_ db: Database) throws -> [(table: String, warning: String)] {
        let tracked = Set(try Tracker.trackedNames(db))
        let tables = try TableRegistry.load(db).filter { tracked.contains($0.key) }
        var capture = MariaDBCascadeCapture(db, tables: tables, foreignKeys: try foreignKeys(db, among: tracked))
        var warnings: [(String, String)] = []
        // Columns other tables reference, per table, in one read of the schema's keys.
        var referenced: [String: Set<String>] = [:]
        try db.query(
            """
            SELECT referenced_table_name, referenced_column_name FROM information_schema.key_column_usage
            WHERE table_schema = DATABASE() AND referenced_table_name IS NOT NULL
            """, []
        ) { r in
            if let t = r.string(0), let c = r.string(1) { referenced[t, default: []].insert(c) }
        }
        for name in tracked.sorted() {
            guard let t = tables[name] else { continue }
            let names = Self.cascadeTriggerNames(name)
            // A table registered without triggers writes its own outbox rows (docs/capture.md).
            let own = CaptureTriggers.names(name)
            var present = Set<String>()
            try db.query(
                """
                SELECT trigger_name FROM information_schema.triggers
                WHERE trigger_schema = DATABASE() AND event_object_table = ? AND BINARY event_object_table = BINARY ?
                  AND BINARY trigger_name IN (BINARY ?, BINARY ?, BINARY ?)
                """, [.text(name), .text(name), .text(own.insert), .text(own.update), .text(own.delete)]
            ) { r in if let n = r.string(0) { present.insert(n) } }
            let hasCapture = present.contains(own.insert)
            // The row triggers too: they move the cascade's rows (an upgraded node's lacked it).
            // Only with all three there: one that lost a trigger keeps what it has, so `check`
            // reports the drift (rewriting all three hid a lost delete trigger, and the deletes
            // it missed; found in review). Its cascades are captured as before.
            if present.count == 3 {
                for trigger in try Self.triggers(db, t, referenced: referenced[name] ?? []) {
                    try db.executeScript(SQL(raw: trigger))
                }
            }
            let deletes = hasCapture ? capture.onDelete(name) : []
            let deletesTruncated = capture.truncated
            let updates = hasCapture ? capture.onUpdate(t) : []
            let truncated = deletesTruncated || capture.truncated
            if truncated {
                warnings.append(
                    (
                        name,
                        "\(name): its foreign keys' cascades reach more than \(MariaDBCascadeCapture.maxStatements) paths of tracked tables; only the first are captured (docs/capture.md)"
                    ))
            }
            try install(db, names.delete, on: t, event: "DELETE", deletes, guard: nil)
            let followed = capture.followedColumns(name).compactMap { t.column($0) }
            let changed = followed.map { "NOT (\(Self.same(db, $0)))" }.joined(separator: " OR ")
            try install(db, names.update, on: t, event: "UPDATE", updates, guard: changed)
            let installed: Int64 = (deletes.isEmpty ? 0 : 1) | (updates.isEmpty ? 0 : 2)
            if installed == 0 {
                try db.execute("DELETE FROM ds_setting WHERE name = ?", [.text(Self.cascadeSetting + name)])
            } else {
                try Settings.set(db, Self.cascadeSetting + name, installed)
            }
        }
        // A parent that is not tracked has no triggers to capture its cascade.
        let children = tracked.sorted()
        if !children.isEmpty {
            try db.query(
                """
                SELECT table_name, referenced_table_name FROM information_schema.referential_constraints
                WHERE constraint_schema = DATABASE() AND table_name IN (\(marks(children.count)))
                  AND (delete_rule IN ('CASCADE', 'SET NULL', 'SET DEFAULT') OR update_rule IN ('CASCADE', 'SET NULL', 'SET DEFAULT'))
                ORDER BY table_name, constraint_name
                """, children.map { .text($0) }
            ) { r in
                if let child = r.string(0), let parent = r.string(1), !tracked.contains(parent) {
                    warnings.append(
                        (
                            child,
                            "\(child): its foreign key to \(parent) cascades (ON DELETE/UPDATE CASCADE or SET NULL), and \(parent) is not tracked; MariaDB fires no trigger for rows a cascade changes, so track \(parent) too, or those changes are not synced"
                        ))
                }
            }
        }
        let prints = try cascadeFingerprints(db, tracked: tracked)
        for name in tracked {
            if let print = prints[name] {
                try Settings.set(db, Self.cascadeKeysSetting + name, text: print)
            } else {
                try db.execute("DELETE FROM ds_setting WHERE name = ?", [.text(Self.cascadeKeysSetting + name)])
            }
        }
        try Settings.set(db, Self.cascadeKeysRecorded, 1)
        return warnings
    }

    /// `ds_setting` names: per tracked table, a digest of the foreign keys among tracked tables
    /// that reference it, as its cascade capture was written for them; and whether this node
    /// records them (a node upgraded from an earlier version does from its next `track`).
    static let cascadeKeysSetting = "capture_cascade_keys:"
    static let cascadeKeysRecorded = "capture_cascade_keys_recorded"

    /// Per tracked table, a digest of the foreign keys among tracked tables that reference it and
    /// cascade (`CASCADE`, `SET NULL`, `SET DEFAULT`; their columns and rules): what its cascade
    /// triggers are written from. Only the tracked tables are read: a query over the whole schema
    /// opens every table in it, and opening a SEQUENCE drops its cached values.
    func cascadeFingerprints(_ db: Database, tracked: Set<String>) throws -> [String: String] {
        let names = tracked.sorted()
        guard !names.isEmpty else { return [:] }
        var rules: [String: String] = [:]
        try db.query(
            """
            SELECT table_name, constraint_name, delete_rule, update_rule FROM information_schema.referential_constraints
            WHERE constraint_schema = DATABASE() AND table_name IN (\(marks(names.count)))
            """, names.map { .text($0) }
        ) { r in
            // A key that only refuses (RESTRICT, NO ACTION) has no cascade to capture.
            let cascading = ["CASCADE", "SET NULL", "SET DEFAULT"]
            guard cascading.contains(r.string(2) ?? "") || cascading.contains(r.string(3) ?? "") else { return }
            rules[(r.string(0) ?? "") + "\u{1}" + (r.string(1) ?? "")] =
                (r.string(2) ?? "") + "\u{1}" + (r.string(3) ?? "")
        }
        var lines: [String: [String]] = [:]
        try db.query(
            """
            SELECT table_name, constraint_name, column_name, referenced_table_name, referenced_column_name
            FROM information_schema.key_column_usage
            WHERE table_schema = DATABASE() AND table_name IN (\(marks(names.count))) AND referenced_table_name IS NOT NULL
            """, names.map { .text($0) }
        ) { r in
            // `IN` matches names whatever their case; an untracked `Child` beside a tracked `child`
            // is not one of them.
            guard let child = r.string(0), let parent = r.string(3), tracked.contains(child), tracked.contains(parent),
                let rule = rules[child + "\u{1}" + (r.string(1) ?? "")]
            else { return }
            lines[parent, default: []].append(
                [child, r.string(1) ?? "", r.string(2) ?? "", r.string(4) ?? "", rule].joined(separator: "\u{1}"))
        }
        return lines.mapValues { Hex.encode(Array(SHA256.hash(data: Array($0.sorted().joined(separator: "\n").utf8)))) }
    }

    public func cascadeCaptureStale(_ db: Database, tracked: [String]) throws -> Set<String> {
        guard try Settings.int(db, Self.cascadeKeysRecorded) != nil else { return [] }
        let now = try cascadeFingerprints(db, tracked: Set(tracked))
        var stale = Set<String>()
        // A parent tracked with --no-triggers has no cascade capture to be out of date.
        for name in tracked
        where try Settings.text(db, Self.cascadeKeysSetting + name) != now[name]
            && CaptureTriggers.wasInstalled(db, table: name)
        {
            stale.insert(name)
        }
        return stale
    }

    private func install(
        _ db: Database, _ name: String, on t: TableInfo, event: String, _ body: [String], guard: String?
    )
        throws
    {
        guard !body.isEmpty else {
            try db.executeScript("DROP TRIGGER IF EXISTS \(Identifier(name))")
            return
        }
        // Also while importing: the rows a cascade reaches are never the importer's own writes,
        // and may be rows the deleting node never saw (docs/conflict-rules.md).
        let condition = `guard`.map { "(\($0))" } ?? "TRUE"
        // Into a session's temporary table, moved to the outbox by the row's AFTER trigger: MariaDB
        // runs a BEFORE trigger also for a row that `DELETE IGNORE` or `UPDATE IGNORE` then skips
        // (its children were sent as deleted, found from outside).
        let pending = Self.cascadePending
        try db.executeScript(
            SQL(
                raw: """
                    CREATE OR REPLACE TRIGGER \(db.quote(name)) BEFORE \(event) ON \(db.quote(t.name)) FOR EACH ROW
                    BEGIN
                      IF \(condition) THEN
                        IF @datajoin_cascade_table IS NULL THEN
                          CREATE TEMPORARY TABLE IF NOT EXISTS \(pending) (ds_seq BIGINT AUTO_INCREMENT PRIMARY KEY)
                            SELECT \(Self.columns) FROM ds_change_outbox WHERE FALSE;
                          SET @datajoin_cascade_table = 1;
                        END IF;
                        DELETE FROM \(pending);
                        \(body.map { $0 + ";" }.joined(separator: "\n    "))
                        SET @datajoin_cascade_pending = \(Self.cascadeMark(db, t));
                      END IF;
                    END
                    """))
    }
}
