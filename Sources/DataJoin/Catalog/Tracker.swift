import Foundation

/// `datajoin track` / `untrack`: registry entries plus capture triggers.
public enum Tracker {
    public struct Tracked: Sendable {
        public var table: String
        public var keyColumns: [String]
        public var warnings: [String]
        /// What was set up, for the record (not a warning).
        public var notes: [String] = []
        /// Rows captured as inserts by `--backfill`.
        public var backfilled: Int?
        /// Already tracked: only backfilled now.
        public var wasTracked = false
    }

    /// With `triggers` false the table is registered only: the application writes its own
    /// ds_change_outbox rows (the seed's CRUD-API path, docs/capture.md).
    /// `keyBlocks`: a key the database generates draws from this node's key block
    /// (docs/keys.md); false keeps the database's own numbering (inserts of one key on two
    /// nodes then merge, column by column).
    public static func track(
        _ db: Database, tables names: [String], triggers: Bool = true, backfill: Bool = false, keyBlocks: Bool = true
    )
        throws -> [Tracked]
    {
        _ = try NodeIdentity.load(db)
        guard !names.isEmpty else { throw DataJoinError(.usage, "name at least one table to track") }
        let existing = try trackedNames(db)
        let registered = try TableRegistry.load(db)
        var infos: [TableInfo] = []
        var refreshed: [String: CaptureDrift] = [:]
        var upToDate: [String] = []
        let staleCascades = try db.dialect.cascadeCaptureStale(db, tracked: existing)
        // Check every table first, so a bad name changes nothing.
        for given in names {
            let name = try resolve(db, given)
            if infos.contains(where: { $0.name == name }) { continue }
            if isOwnTable(name) {
                throw DataJoinError(.usage, "\(name) is one of DataJoin's own tables and cannot be tracked")
            }
            try checkName(db, name, of: "table")
            if let why = try db.dialect.notCapturable(db, table: name) {
                throw DataJoinError(.usage, "cannot track \(printable(name)): it is \(why) (docs/capture.md)")
            }
            guard let info = try TableRegistry.introspect(db, table: name) else {
                if let (schema, table) = qualified(name) {
                    // Tables are named as the connection sees them: one schema (docs/capture.md).
                    let cure = db.dialect.schemaCure(schema: Substring(schema), table: Substring(table))
                    throw DataJoinError(.noSuchTable, "table \(name) does not exist in \(db.displayName): \(cure)")
                }
                throw DataJoinError(.noSuchTable, "table \(name) does not exist in \(db.displayName)")
            }
            for c in info.columns { try checkName(db, c.name, of: "column", in: name) }
            guard !info.keyColumns.isEmpty else {
                throw DataJoinError(
                    .noPrimaryKey,
                    "table \(name) has no primary key; DataJoin needs one to know which row a change belongs to (add a PRIMARY KEY and track it again)"
                )
            }
            // A tracked table altered since: its capture is installed again for the columns it
            // has now, in one transaction (untrack then track left writes uncaptured between).
            if existing.contains(name), let known = registered[name],
                let drift = try CaptureDrift.of(db, known, cascadesChanged: staleCascades.contains(name))
            {
                guard known.keyColumns.map(\.name) == info.keyColumns.map(\.name) else {
                    throw DataJoinError(
                        .usage,
                        "table \(name) has a new primary key (\(info.keyColumns.map(\.name).joined(separator: ", "))) since it was tracked; "
                            + "export what it captured, then run 'datajoin untrack \(name)' and 'datajoin track \(name)' on every node"
                    )
                }
                if !triggers, try CaptureTriggers.wasInstalled(db, table: name) {
                    throw DataJoinError(
                        .usage,
                        "table \(name) has capture triggers; to let the application write its outbox rows instead, run 'datajoin untrack \(name)' and 'datajoin track --no-triggers \(name)'"
                    )
                }
                refreshed[name] = drift
                // Refused before anything is written: MariaDB commits the capture's DDL, and a
                // key too small for the block left the table half cured (found from outside).
                if keyBlocks, drift.captureLost || drift.keyBlockLost, try !KeyBlocks.optedOut(db, name) {
                    try KeyBlocks.checkFits(db, info)
                }
            } else if existing.contains(name) && !backfill {
                upToDate.append(name)
                continue
            }
            if backfill { try refuseBackfillOverPeersChanges(db, name) }
            if keyBlocks, !existing.contains(name), try !KeyBlocks.optedOut(db, info.name) {
                try KeyBlocks.checkPossible(db, info)
                try KeyBlocks.checkFits(db, info)
            }
            infos.append(info)
        }
        // Tracking a table twice is refused; named among tables altered since (a migration's
        // `track t1 t2`), it is left as it is (found from outside: the list stopped on it).
        if infos.isEmpty, let name = upToDate.first {
            throw DataJoinError(
                .alreadyTracked,
                "table \(name) is already tracked and its capture matches its columns: nothing to install again "
                    + "(a column widened within its kind of type needs no track); to install it anyway, run "
                    + "'datajoin untrack \(name)' first")
        }
        // Before anything is written, for every table: the brand may refuse one (MariaDB, a key
        // collation that merges keys), and MariaDB commits each DDL statement, so a refusal after
        // the first table's triggers left that table tracked (found from outside).
        let keyWarningsOf = try Dictionary(uniqueKeysWithValues: infos.map { ($0.name, try keyWarnings(db, $0)) })
        do {
            return try install(
                db, infos, existing: existing, registered: registered, refreshed: refreshed,
                keyWarningsOf: keyWarningsOf,
                keyBlocks: keyBlocks, triggers: triggers, backfill: backfill)
                + upToDate.map {
                    Tracked(
                        table: $0, keyColumns: [], warnings: [],
                        notes: ["\($0): already tracked and its capture matches its columns: left as it is"],
                        backfilled: nil, wasTracked: true)
                }
        } catch {
            // MariaDB committed the registry and any trigger made before the failure (a user
            // without the TRIGGER privilege): a table newly tracked is untracked again, or it
            // stayed tracked with no capture, and `status` blamed a dropped trigger (found from
            // outside). Best effort: the failure is what the operator must see.
            // A table untracked before keeps the columns it was registered with (its captured
            // changes still export by them; found in review), and the parents' cascade capture
            // is written again for the tables tracked now, as `untrack` does.
            if db.dialect.commitsEachDDL {
                for info in infos where !existing.contains(info.name) {
                    try? CaptureTriggers.remove(db, table: info.name)
                    try? db.retryingWrite { _ in
                        if let before = registered[info.name] {
                            try TableRegistry.save(db, before)
                            try db.execute("DELETE FROM ds_tracked_table WHERE table_name = ?", [.text(info.name)])
                        } else {
                            try TableRegistry.remove(db, table: info.name)
                        }
                    }
                }
                _ = try? db.retryingWrite { _ in try db.dialect.refreshCascadeCapture(db) }
            }
            throw error
        }
    }

    /// A backfill stamps every row now: changes of the table that peers sent and this node has
    /// not applied (held, or not imported yet) would lose to it on every node, though made
    /// before it (found from outside: a late node's backfill after adding a column wiped the
    /// values its peers had written there).
    static func refuseBackfillOverPeersChanges(_ db: Database, _ name: String) throws {
        let waiting =
            try (db.scalar("SELECT count(*) FROM ds_change_held WHERE object_table = ?", [.text(name)]).asInt64 ?? 0)
            + (db.scalar(
                "SELECT count(*) FROM ds_change_inbox WHERE object_table = ? AND id > ?",
                [.text(name), .integer(try ProgramPointer.get(db, Program.import))]
            ).asInt64 ?? 0)
        guard waiting > 0 else { return }
        throw DataJoinError(
            .needsSetup,
            "no backfill of \(name): \(waiting) change(s) of it from peers wait here (held, or not imported yet), and a backfill "
                + "stamps every row now, so it would beat them on every node; run 'datajoin track \(TerminalText.argument(name))' "
                + "without --backfill if its columns changed, then 'datajoin import', then 'datajoin track --backfill \(TerminalText.argument(name))'; "
                + "a change that stays held has its cause and cure in 'datajoin status' (one that can never apply here: "
                + "'datajoin import --drop-held ORIGIN#SEQ')")
    }

    /// Writes what `track` checked: the registry, the key blocks, the capture, the backfill.
    private static func install(
        _ db: Database, _ infos: [TableInfo], existing: [String], registered: [String: TableInfo],
        refreshed: [String: CaptureDrift], keyWarningsOf: [String: [String]], keyBlocks: Bool, triggers: Bool,
        backfill: Bool
    ) throws -> [Tracked] {
        try db.retryingWrite { _ in
            // This node's own inserts captured before an ALTER that added columns, and not
            // stamped yet, are stamped first, so the new columns' marks below cover them (found
            // from outside: such a row kept its default over a peer's value, for good). Before
            // anything else is written: by the registry they were captured with, and inside
            // this transaction (MariaDB commits each DDL statement; found in review).
            // Columns each table gained since it was registered, worked out once.
            let added = Dictionary(
                infos.compactMap { info -> (String, [String])? in
                    guard let before = registered[info.name] else { return nil }
                    let old = Set(before.columns.map(\.name))
                    let new = info.columns.map(\.name).filter { !old.contains($0) }
                    return new.isEmpty ? nil : (info.name, new)
                }, uniquingKeysWith: { first, _ in first })
            if !added.isEmpty {
                var me = try NodeIdentity.reload(db)
                _ = try Stamper.stampPending(db, me: &me, tables: registered)
            }
            var tracked = try infos.map { info in
                let wasTracked = existing.contains(info.name)
                let optedOut = try KeyBlocks.optedOut(db, info.name)
                let useBlocks = keyBlocks && !optedOut
                var notes: [String] = []
                var blockRange: ClosedRange<Int64>?
                if !wasTracked {
                    try TableRegistry.save(db, info)
                    // The key block first, capture second: MariaDB commits each DDL statement, and
                    // a row inserted in between was captured with the database's own id.
                    if useBlocks { blockRange = try KeyBlocks.setUp(db, info) }
                    if triggers { try CaptureTriggers.install(db, info) }
                }
                var warnings = wasTracked ? [] : keyWarningsOf[info.name] ?? []
                // Tracked before with fewer columns (altered since, untracked or not): the new
                // columns' values here are no write a peer must yield to.
                if let before = registered[info.name] {
                    let now = Set(info.columns.map(\.name))
                    if let columns = added[info.name] {
                        try VersionStore(db: db).markUnwritten(info.name, columns: columns)
                    }
                    // A column dropped here: its versions go with it, or a column of that name
                    // added again would take them for its own values.
                    let dropped = before.columns.map(\.name).filter { !now.contains($0) }
                    if !dropped.isEmpty { try VersionStore(db: db).forget(info.name, columns: dropped) }
                }
                if let drift = refreshed[info.name] {
                    let before = registered[info.name]
                    try TableRegistry.save(db, info)
                    // A table tracked with --no-triggers keeps none: its application writes the
                    // outbox, and triggers too would capture each write twice.
                    let hadTriggers = try drift.captureLost || CaptureTriggers.wasInstalled(db, table: info.name)
                    if triggers && hadTriggers { try CaptureTriggers.install(db, info) }
                    // A rebuilt table has a counter of its own again, and a dropped MariaDB
                    // key-block trigger left the database's: back onto the node's block (also
                    // with --no-triggers, whose application gives no ids).
                    if useBlocks && (drift.captureLost || drift.keyBlockLost),
                        let r = try KeyBlocks.setUp(db, info), let key = try db.dialect.generatedKey(db, info)
                    {
                        notes.append(
                            "\(info.name).\(key.column): new ids come from this node's key block again, \(r.lowerBound)…\(r.upperBound)"
                        )
                    }
                    let old = before?.columns.map(\.name) ?? []
                    let added = info.columns.map(\.name).filter { !old.contains($0) }
                    notes.append(
                        hadTriggers
                            ? "\(info.name): capture installed again for its columns as they are now"
                                + (added.isEmpty ? "" : "; it now writes \(added.joined(separator: ", "))")
                            : "\(info.name): its columns recorded again as they are now (tracked without triggers: none installed)"
                    )
                    if drift.deletesLost {
                        // A backfill sends the rows there are, never a row that is gone (found
                        // from outside: peers kept the rows deleted meanwhile, and check said OK).
                        warnings.append(
                            "\(info.name): writes made while its capture triggers were gone were not captured; "
                                + (backfill
                                    ? ""
                                    : "run 'datajoin track --backfill \(TerminalText.argument(info.name))' to send its rows as they are, and ")
                                + "delete by hand on every peer the rows deleted here meanwhile (and the old keys of rows whose key changed): "
                                + "no backfill sends a delete"
                                + (drift.cascadesLost
                                    ? "; and run 'datajoin track --backfill' for each table its foreign keys cascade to"
                                    : ""))
                    } else if drift.cascadesLost {
                        warnings.append(
                            "\(info.name): rows its foreign keys' cascades changed meanwhile were not captured as they happened; "
                                + "run 'datajoin track --backfill' for each table its foreign keys cascade to")
                    } else if (drift.captureLost || !drift.triggersMissing.isEmpty) && !backfill {
                        warnings.append(
                            "\(info.name): writes made while its capture triggers were gone were not captured; "
                                + "run 'datajoin track --backfill \(TerminalText.argument(info.name))' to send its rows as they are"
                        )
                    } else if !added.isEmpty && !backfill {
                        warnings.append(
                            "\(info.name): writes to \(added.joined(separator: ", ")) before now were not captured, and peers' "
                                + "writes of them win here (values peers hold already come only with a backfill on a node that "
                                + "had them first); if the application wrote them since the ALTER TABLE, run 'datajoin import', "
                                + "then 'datajoin track --backfill \(TerminalText.argument(info.name))' to send its rows as they are"
                        )
                    } else if !drift.narrowed.isEmpty && !backfill {
                        // After this `check` passes: the last word that peers may hold other values.
                        warnings.append(
                            "\(info.name): the values the ALTER of \(drift.narrowed.joined(separator: ", ")) rewrote here were not captured; "
                                + "run 'datajoin track --backfill \(TerminalText.argument(info.name))' on one node that ran it, "
                                + "to send its rows as they are there")
                    }
                }
                if wasTracked, refreshed[info.name] != nil, !keyBlocks, !optedOut,
                    let key = try db.dialect.generatedKey(db, info)
                {
                    // The cure `checkFits` names for a rebuilt table whose key no longer fits.
                    try KeyBlocks.optOut(db, info.name)
                    warnings.append(
                        "\(info.name).\(key.column): no key block from now on (--no-key-blocks): rows inserted on two nodes with one id merge, column by column"
                    )
                }
                if !wasTracked, let key = try db.dialect.generatedKey(db, info) {
                    // One word about the key, below, not two.
                    warnings.removeAll { $0.contains(KeyBlocks.sameIdsWarning) }
                    if let r = blockRange {
                        notes.append(
                            "\(info.name).\(key.column): new ids come from this node's key block, \(r.lowerBound)…\(r.upperBound)"
                        )
                    } else if useBlocks {
                        warnings.append(
                            "\(info.name).\(key.column): this node has no key block yet, so it hands out the same ids as the others; "
                                + "get one from the hub ('datajoin key-blocks grant --node NAME' there, 'datajoin key-blocks add N' here; docs/keys.md)"
                        )
                    } else {
                        try KeyBlocks.optOut(db, info.name)
                        warnings.append(
                            "\(info.name).\(key.column): no key block (--no-key-blocks): rows inserted on two nodes with one id merge, column by column"
                        )
                    }
                }
                // In the same transaction as the triggers: no row is captured twice or missed.
                let backfilled = backfill ? try CaptureTriggers.backfill(db, info) : nil
                if !backfill, !wasTracked, registered[info.name] != nil {
                    // Tracked before and untracked since: its rows may hold writes no trigger saw,
                    // which a snapshot would send under their old versions (found from outside).
                    warnings.append(
                        "\(info.name) was tracked here before and untracked since: writes made meanwhile were not captured; "
                            + "run 'datajoin track --backfill \(TerminalText.argument(info.name))' to send its rows as they are, "
                            + "and delete by hand on every peer the rows deleted here meanwhile (no backfill sends a delete)"
                    )
                } else if !backfill, !wasTracked, let n = try rowsBefore(db, info) {
                    warnings.append(
                        "\(info.name) already holds \(n) row(s); they are not exported (only changes from now on are). "
                            + "For peers to receive them, run 'datajoin track --backfill \(info.name)' (README: adopting DataJoin on databases that already hold rows)"
                    )
                }
                return Tracked(
                    table: info.name, keyColumns: info.keyColumns.map(\.name), warnings: warnings, notes: notes,
                    backfilled: backfilled, wasTracked: wasTracked)
            }
            for w in try db.dialect.refreshCascadeCapture(db) {
                if let i = tracked.firstIndex(where: { $0.table == w.table }), !tracked[i].wasTracked {
                    tracked[i].warnings.append(w.warning)
                }
            }
            return tracked
        }
    }

    /// Returns warnings: a tracked table whose foreign key to an untracked one cascades (MariaDB:
    /// that cascade is no longer captured).
    @discardableResult
    public static func untrack(_ db: Database, tables names: [String]) throws -> [String] {
        try untracking(db, tables: names).warnings
    }

    /// `untrack`, with the tables as the catalog names them (`ITEM` given, `item` untracked).
    public static func untracking(_ db: Database, tables names: [String]) throws -> (
        names: [String], warnings: [String]
    ) {
        _ = try NodeIdentity.load(db)
        let existing = try trackedNames(db)
        let names = try names.map { existing.contains($0) ? $0 : try resolve(db, $0) }
        for name in names where !existing.contains(name) {
            throw DataJoinError(.notTracked, "table \(name) is not tracked")
        }
        return try db.retryingWrite { _ in
            for name in names {
                try CaptureTriggers.remove(db, table: name)
                // The column list stays in the registry so changes already captured still export.
                try db.execute("DELETE FROM ds_tracked_table WHERE table_name = ?", [.text(name)])
            }
            // A parent's cascade triggers no longer name the untracked table.
            return (names, try db.dialect.refreshCascadeCapture(db).map(\.warning))
        }
    }

    /// The table a name given means, as the catalog spells it: SQLite finds `ITEMS` as table
    /// `items`, and tracking both spellings installed capture twice (found from outside). Named
    /// with the connection's own schema (`public.t`, `main.t`, `shop.t` on MariaDB's `shop`), it
    /// is the same table as `t` (found from outside: refused, with a cure that was already
    /// true); a table whose own name holds the dot is found first.
    static func resolve(_ db: Database, _ given: String) throws -> String {
        let found = try resolveAsSpelled(db, given)
        guard db.dialect.foldsUnquotedNames, try db.dialect.columns(db, of: found).isEmpty else { return found }
        // Found as SQL reads it: PostgreSQL's `track Sales_Order` is sales_order (found from
        // outside: refused). A table whose name has capitals was found as spelled above.
        let folded = foldedOutsideQuotes(given)
        guard folded != given else { return found }
        let name = try resolveAsSpelled(db, folded)
        return try db.dialect.columns(db, of: name).isEmpty ? found : name
    }

    /// ASCII capitals outside quotes in lower case, as PostgreSQL folds an identifier.
    static func foldedOutsideQuotes(_ given: String) -> String {
        var quote: Unicode.Scalar?
        var out = String.UnicodeScalarView()
        for c in given.unicodeScalars {
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "\"" || c == "`" {
                quote = c
            } else if c.value >= 0x41 && c.value <= 0x5A {
                out.append(Unicode.Scalar(c.value + 0x20)!)
                continue
            }
            out.append(c)
        }
        return String(out)
    }

    private static func resolveAsSpelled(_ db: Database, _ given: String) throws -> String {
        if let name = try db.dialect.catalogName(db, table: given) { return name }
        guard try db.dialect.columns(db, of: given).isEmpty else { return given }
        guard let (schema, table) = qualified(given) else {
            // A name as SQL quotes it (`"my table"`), found under its own name (found from outside).
            let bare = unquoted(Substring(given))
            guard bare != given else { return given }
            if let name = try db.dialect.catalogName(db, table: bare) { return name }
            return try db.dialect.columns(db, of: bare).isEmpty ? given : bare
        }
        guard try db.dialect.isCurrentSchema(db, schema) else { return given }
        return try db.dialect.catalogName(db, table: table) ?? table
    }

    /// The schema and table of `schema.table`, each unquoted; a dot inside quotes is part of a
    /// name (`"a.b"`, `main."a.b"`). Nil when no dot outside quotes qualifies it.
    static func qualified(_ given: String) -> (schema: String, table: String)? {
        var quote: Unicode.Scalar?
        for i in given.unicodeScalars.indices {
            let c = given.unicodeScalars[i]
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "\"" || c == "`" {
                quote = c
            } else if c == "." {
                let after = given.unicodeScalars.index(after: i)
                return (
                    unquoted(Substring(given.unicodeScalars[..<i])), unquoted(Substring(given.unicodeScalars[after...]))
                )
            }
        }
        return nil
    }

    /// A part of a schema-qualified name as SQL quotes it (`"main"."t"`, `` `shop`.`t` ``): the
    /// name itself. Unqualified names are taken as the catalog holds them, quotes and all.
    static func unquoted(_ part: Substring) -> String {
        // By scalars: a name that begins with a combining mark makes one Character of it and
        // its quote.
        let s = part.unicodeScalars
        for q: Unicode.Scalar in ["\"", "`"] where s.count >= 2 && s.first == q && s.last == q {
            let inner = String(String.UnicodeScalarView(s.dropFirst().dropLast()))
            return inner.replacingOccurrences(of: "\(q)\(q)", with: "\(q)")
        }
        return String(part)
    }

    public static func trackedNames(_ db: Database) throws -> [String] {
        try db.rows("SELECT table_name FROM ds_tracked_table ORDER BY table_name").compactMap { $0.string(0) }
    }

    /// A name that reaches every peer whole, or a refusal before anything is written. PostgreSQL
    /// cuts a name past 63 bytes in every statement, so three longer names tracked as three
    /// tables were one table, and one insert went out three times; a name no bundle can carry
    /// (over 128 bytes, a control character) stopped every later export of the node (both found
    /// from outside).
    static func checkName(_ db: Database, _ name: String, of what: String, in table: String? = nil) throws {
        let whose = table.map { " of table \(printable($0))" } ?? ""
        do {
            _ = try db.dialect.identifier(name)
        } catch let e as DataJoinError {
            throw DataJoinError(
                .usage, "cannot track \(what) \(printable(name))\(whose): \(e.message); rename it on every node")
        }
        guard (try? BundleReader.identifier(name, what)) != nil else {
            throw DataJoinError(
                .usage,
                "cannot track \(what) \(printable(name))\(whose): a bundle carries names of 1 to 128 bytes without "
                    + "control characters, and this one has \(name.utf8.count) bytes; rename it on every node")
        }
    }

    /// A name for a one-line message: control characters shown as `?`, long names cut.
    /// DataJoin's own tables, which `track` refuses and no peer's change may write.
    static func isOwnTable(_ name: String) -> Bool { name.hasPrefix("ds_") }

    static func printable(_ name: String) -> String {
        let shown = String(
            String.UnicodeScalarView(
                name.unicodeScalars.prefix(80).map {
                    $0.value < 0x20 || $0.value == 0x7F ? "?" : $0
                }))
        return "'" + shown + (name.unicodeScalars.count > 80 ? "…" : "") + "'"
    }

    /// How many rows the table holds ("1000000+" past a million; nil when none): rows from before
    /// tracking are not exported unless backfilled, and nothing else would say so.
    static func rowsBefore(_ db: Database, _ t: TableInfo) throws -> String? {
        let n =
            try db.scalar("SELECT count(*) FROM (SELECT 1 FROM \(t.identifier) LIMIT 1000001) AS ds_t").asInt64 ?? 0
        return n == 0 ? nil : n > 1_000_000 ? "1000000+" : String(n)
    }

    /// Keys handed out by a local sequence collide between nodes, and a key column that may
    /// hold NULL matches nothing elsewhere: say so at track time.
    static func keyWarnings(_ db: Database, _ t: TableInfo) throws -> [String] {
        try db.dialect.keyWarnings(db, t)
    }
}
