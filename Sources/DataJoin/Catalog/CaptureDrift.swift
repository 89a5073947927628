import Foundation

/// A tracked table whose columns are no longer those its capture was installed for: `ALTER TABLE`
/// after `datajoin track`. Capture writes only the registered columns, so writes to a column added
/// since never leave this node, and nothing else would say so (found from outside: peers kept
/// NULL for good while `check` said OK).
public struct CaptureDrift: Sendable, Equatable {
    public var table: String
    /// Columns the table has and capture does not write.
    public var added: [String]
    /// Columns capture writes and the table no longer has (dropped or renamed).
    public var missing: [String]
    /// Columns whose type changed: "name (old → new)". Their values are still typed as the old
    /// one at export (found from outside: '007' into a column made text went out as 7).
    public var retyped: [String] = []
    /// Columns narrowed or converted within their kind (`narrows`): "name (old → new)". The
    /// ALTER rounded or cut the rows it rewrote here (`numeric(10,4)` to `(10,2)`, `DATETIME(6)`
    /// to `(0)`) with no trigger firing, so peers kept the old values while `check` passed
    /// (found from outside).
    public var narrowed: [String] = []
    /// Tracked, and no such table here: dropped, renamed, or outside this connection's search path.
    public var gone = false
    /// Every one of its capture triggers is gone while the table is here: rebuilt (a new table,
    /// the rows copied, the old one dropped and the new one renamed) or replaced. Nothing is
    /// captured.
    public var captureLost = false
    /// Some of its capture triggers are gone or disabled while others remain (one dropped by
    /// hand, `ALTER TABLE … DISABLE TRIGGER`): the writes they captured are not captured.
    public var triggersMissing: [String] = []
    /// Among the triggers lost, one that captured deletes or key changes: a backfill sends the
    /// rows there are, so what was deleted meanwhile stays on the peers.
    public var deletesLost = false
    /// The tables its foreign keys cascade to need a backfill too: a cascade trigger was lost
    /// (MariaDB), or its foreign keys changed since their cascade capture was written.
    public var cascadesLost = false
    /// MariaDB: its foreign keys changed since `track` wrote the capture of their cascades (a key
    /// added went uncaptured, a key dropped kept capturing; found from outside).
    public var cascadesChanged = false
    /// This database user cannot see the table's triggers (MariaDB without the TRIGGER
    /// privilege): whether its writes are captured is unknown here.
    public var triggersUnseen = false
    /// Its generated key no longer draws from the node's key block (a PostgreSQL sequence
    /// replaced or altered, MariaDB's key-block trigger dropped), so the table's own counter
    /// hands out ids that other nodes hand out too.
    public var keyBlockLost = false
    /// The key columns capture was installed for, when the primary key changed since.
    public var keyWas: [String]?
    /// SQLite: the same columns in another order, as renames leave them. SQLite rewrites the
    /// triggers' column references on a rename but not the names they write, so values went out
    /// under their old names (a swap of two columns' names swapped their values on every peer;
    /// found from outside).
    public var reordered = false
    /// Now something whose writes its triggers cannot all see: a view, a partition, a table
    /// with inheritance children (tracked before `track` refused them, or changed since).
    public var notCapturable: String?

    /// Every tracked table that drifted, in name order: one catalog read per table.
    public static func find(_ db: Database) throws -> [CaptureDrift] {
        let registered = try TableRegistry.load(db)
        let tracked = try Tracker.trackedNames(db)
        let stale = try db.dialect.cascadeCaptureStale(db, tracked: tracked)
        return try tracked.compactMap { name in
            guard let known = registered[name] else { return nil }
            return try of(db, known, cascadesChanged: stale.contains(name))
        }
    }

    /// The drift of one tracked table against its registered definition; nil when none.
    static func of(_ db: Database, _ known: TableInfo, cascadesChanged: Bool? = nil) throws -> CaptureDrift? {
        guard let liveColumns = try TableRegistry.introspect(db, table: known.name)?.columns else {
            return CaptureDrift(table: known.name, added: [], missing: [], gone: true)
        }
        let live = liveColumns.map(\.name)
        let knownNames = known.columns.map(\.name)
        var d = CaptureDrift(
            table: known.name, added: live.filter { !knownNames.contains($0) },
            missing: knownNames.filter { !live.contains($0) })
        d.notCapturable = try db.dialect.notCapturable(db, table: known.name)
        if try CaptureTriggers.wasInstalled(db, table: known.name) {
            let triggers = try db.dialect.missingCaptureTriggers(db, known)
            if triggers.missing.count == triggers.expected.count,
                try db.dialect.triggersHidden(db, table: known.name)
            {
                d.triggersUnseen = true
                return d
            } else if triggers.missing.count == triggers.expected.count {
                d.captureLost = true
            } else {
                d.triggersMissing = triggers.missing
            }
            d.deletesLost = d.captureLost || triggers.deletesLost
            d.cascadesLost = triggers.cascadesLost
        }
        d.cascadesChanged =
            try cascadesChanged
            ?? db.dialect.cascadeCaptureStale(db, tracked: try Tracker.trackedNames(db)).contains(known.name)
        if d.cascadesChanged {
            // A key added since cascaded deletes here uncaptured: no backfill removes them.
            d.cascadesLost = true
            d.deletesLost = true
        }
        let liveKey = liveColumns.filter { $0.pkPosition > 0 }.sorted { $0.pkPosition < $1.pkPosition }.map(\.name)
        if liveKey != known.keyColumns.map(\.name) { d.keyWas = known.keyColumns.map(\.name) }
        // Also for a table tracked with --no-triggers: its application writes the outbox, the
        // database still hands out its ids (found from outside). Not for a key renamed or
        // replaced: its generator is asked by the key's registered name.
        if d.keyWas == nil { d.keyBlockLost = try KeyBlocks.lost(db, known) }
        d.reordered =
            db.dialect.captureNamesFixedAtInstall && d.added.isEmpty && d.missing.isEmpty && live != knownNames
        for c in liveColumns {
            // By the kind values are typed as, not the type's text, which an older version may
            // have spelled otherwise in the registry.
            if let was = known.column(c.name), was.kind != c.kind {
                // A SQLite column may have no declared type at all.
                let name = { (type: String) in type.isEmpty ? "no type" : type }
                d.retyped.append("\(c.name) (\(name(was.dataType)) → \(name(c.dataType)))")
            } else if db.dialect.typeChangesRewriteValues, let was = known.column(c.name),
                Self.narrows(from: was, to: c, clampsIntegers: db.dialect.clampsIntegersOnAlter)
            {
                d.narrowed.append("\(c.name) (\(was.dataType) → \(c.dataType))")
            }
        }
        return d.added.isEmpty && d.missing.isEmpty && d.retyped.isEmpty && d.narrowed.isEmpty && !d.captureLost
            && d.triggersMissing.isEmpty
            && !d.keyBlockLost && !d.cascadesChanged && d.keyWas == nil && !d.reordered && d.notCapturable == nil
            ? nil : d
    }

    /// A type of the same kind that may hold a value otherwise: a length, precision or scale
    /// made smaller (`numeric(10,4)` to `(10,2)`, `varchar(20)` to `(10)`, `timestamp` to
    /// `timestamp(0)`, MariaDB's `DATETIME(6)` to `DATETIME`), or another type (`double
    /// precision` to `real`, and back: `real`'s 0.1 becomes 0.100000001490116), but for a few
    /// that keep every value's text (`varchar` to `text`). An integer type narrows when it is a
    /// smaller one or changes its sign (MariaDB without strict mode clamps values to it; found
    /// from outside); its `(n)` is MariaDB's display width, which changes no value.
    static func narrows(from was: ColumnInfo, to now: ColumnInfo, clampsIntegers: Bool = true) -> Bool {
        guard was.kind == now.kind else { return false }
        // A member taken out of an `ENUM` or a `SET`, or renamed in its case only, empties or
        // cuts the values that held it (MariaDB without strict mode; found from outside).
        if ["enum", "set"].contains(was.type.beforeParenthesis),
            was.type.beforeParenthesis == now.type.beforeParenthesis
        {
            return !members(was.dataType).isSubset(of: members(now.dataType))
        }
        guard was.type.lowered != now.type.lowered else { return false }
        // A PostgreSQL type outside the search path is named with its schema (`public.mood`).
        var old = was.type.withoutParentheses.lowercased()
        let base = now.type.withoutParentheses.lowercased()
        if old.hasSuffix("." + base) || base.hasSuffix("." + old) { old = base }
        if let from = ranks[old.split(separator: " ").first ?? ""] {
            // Another kind of type of the same value kind (MariaDB's `BIT`): it may not hold it.
            guard let to = ranks[base.split(separator: " ").first ?? ""] else { return true }
            // PostgreSQL refuses a value a smaller integer cannot hold.
            guard clampsIntegers else { return false }
            let wasUnsigned = old.contains("unsigned"), isUnsigned = base.contains("unsigned")
            return to < from || (isUnsigned && !wasUnsigned) || (wasUnsigned && !isUnsigned && to <= from)
        }
        guard old == base else { return !(widenings[old] ?? []).contains(base) }
        let from = numbers(was.type.lowered), to = numbers(now.type.lowered)
        // No number is a time type's default precision: PostgreSQL's (which names the zone,
        // `timestamp without time zone`) is 6, MariaDB's 0.
        if base.contains("time zone") || base.hasPrefix("interval") { return (from.first ?? 6) > (to.first ?? 6) }
        if ["datetime", "time", "timestamp"].contains(base) { return (from.first ?? 0) > (to.first ?? 0) }
        if from.isEmpty || to.isEmpty { return from.isEmpty && !to.isEmpty }
        return zip(from, to).contains { $1 < $0 } || to.count < from.count
    }

    /// Integer types by size: a smaller rank holds fewer values.
    private static let ranks: [Substring: Int] = [
        "tinyint": 1, "smallint": 2, "mediumint": 3, "int": 4, "integer": 4, "bigint": 5,
    ]

    /// Other types that hold every value of a type with the same text (PostgreSQL's and
    /// MariaDB's names, parentheses taken out).
    private static let widenings: [String: Set<String>] = [
        "character varying": ["text"], "character": ["text", "character varying"],
        "bpchar": ["text", "character varying"],
        "varchar": ["text", "mediumtext", "longtext"], "char": ["varchar", "text", "mediumtext", "longtext"],
        "tinytext": ["text", "mediumtext", "longtext"], "text": ["mediumtext", "longtext"],
        "mediumtext": ["longtext"], "tinyblob": ["blob", "mediumblob", "longblob"],
        "blob": ["mediumblob", "longblob"], "mediumblob": ["longblob"],
        "varbinary": ["blob", "mediumblob", "longblob"],
    ]

    /// The quoted members of an `ENUM` or a `SET` as declared (case kept): `a`, `b` of
    /// `enum('a','b')`; `''` is a quote within one, and a comma or a parenthesis within one is
    /// part of it.
    private static func members(_ type: String) -> Set<String> {
        var out: Set<String> = [], member = "", inside = false
        var chars = type.drop { $0 != "(" }.makeIterator()
        while let c = chars.next() {
            if inside {
                if c != "'" {
                    member.append(c)
                    continue
                }
                // `''` is a quote within the member; one alone ends it.
                guard let next = chars.next() else { break }
                if next == "'" {
                    member.append("'")
                    continue
                }
                out.insert(member)
                member = ""
                inside = false
                if next == ")" { break }
            } else if c == "'" {
                inside = true
            } else if c == ")" {
                break
            }
        }
        return out
    }

    /// The numbers within a type's parentheses: `[10, 4]` of `numeric(10,4)`.
    private static func numbers(_ type: String) -> [Int] {
        guard let open = type.firstIndex(of: "("), let close = type[open...].firstIndex(of: ")") else { return [] }
        return type[type.index(after: open)..<close].split(separator: ",").compactMap {
            Int($0.trimmingCharacters(in: .whitespaces))
        }
    }

    /// How the message of `triggersUnseen` starts (`status` heads it apart).
    static let unseenPrefix = "cannot see the triggers of table "

    /// One line: what is not synced, and the cure.
    public var message: String {
        if triggersUnseen {
            return
                "\(Self.unseenPrefix)\(table): this database user lacks the TRIGGER privilege, without which MariaDB shows none, "
                + "so whether its writes are captured is unknown here; run this as the user that ran 'datajoin track', "
                + "or grant it: GRANT TRIGGER ON <database>.* TO <user> (docs/capture.md)"
        }
        if gone {
            return
                "tracked table \(table) does not exist here (dropped, renamed, or outside this connection's search path); "
                + "run 'datajoin untrack \(TerminalText.argument(table))', and 'datajoin track NEWNAME' for a renamed one (docs/capture.md)"
        }
        if let notCapturable {
            return
                "tracked table \(table) is \(notCapturable): its writes are not all captured; run 'datajoin untrack \(TerminalText.argument(table))' (docs/capture.md)"
        }
        if let keyWas {
            return
                "table \(table) has a new primary key since 'datajoin track' (its capture keys rows by \(keyWas.joined(separator: ", "))): "
                + "its changes reach the wrong rows on every peer; export what it captured, then run 'datajoin untrack \(TerminalText.argument(table))' and "
                + "'datajoin track \(TerminalText.argument(table))' on every node, the same key everywhere (docs/capture.md)"
        }
        var what: [String] = []
        if captureLost {
            what.append(
                "lost its capture triggers (rebuilt or replaced, or its triggers dropped or disabled, since 'datajoin track', or a 'datajoin track' that did not finish): "
                    + "its writes are not captured")
        }
        if !triggersMissing.isEmpty {
            let shown = triggersMissing.prefix(5).joined(separator: ", ")
            let more = triggersMissing.count > 5 ? " and \(triggersMissing.count - 5) more" : ""
            what.append(
                "lost capture trigger(s) \(shown)\(more) (dropped or disabled since 'datajoin track', or a 'datajoin track' that did not finish): "
                    + "the writes they captured are not captured")
        }
        if keyBlockLost {
            what.append(
                "no longer draws new ids from this node's key block (its key-block trigger or sequence dropped, replaced or changed since 'datajoin track'): "
                    + "its new ids came from the table's own counter, "
                    + "which other nodes use too, so rows inserted meanwhile may collide with theirs ('datajoin check' names collisions)"
            )
        }
        if cascadesChanged {
            what.append(
                "has foreign keys added, dropped or changed since 'datajoin track': the capture of their cascades is out of date"
            )
        }
        if reordered {
            what.append(
                "has its columns in another order than when it was tracked (columns renamed?): its capture writes values under their old names"
            )
        }
        if !added.isEmpty {
            what.append(
                "has column(s) \(added.joined(separator: ", ")) that its capture does not write (added after 'datajoin track'): writes to them are not synced"
            )
        }
        if !missing.isEmpty {
            what.append(
                "no longer has column(s) \(missing.joined(separator: ", ")) that its capture writes (dropped or renamed): its triggers may fail"
            )
        }
        if !retyped.isEmpty {
            what.append(
                "changed the type of column(s) \(retyped.joined(separator: ", ")) since 'datajoin track': their values are typed as before"
            )
        }
        let arg = TerminalText.argument(table)
        if !narrowed.isEmpty, what.isEmpty, added.isEmpty, missing.isEmpty, retyped.isEmpty, !reordered {
            return
                "table \(table) narrowed or converted column(s) \(narrowed.joined(separator: ", ")) since 'datajoin track': "
                + "the ALTER may have rounded or cut the values it rewrote here, uncaptured, so peers may keep the old ones; "
                + "run 'datajoin track \(arg)' "
                + "on every node that ran it, then 'datajoin track --backfill \(arg)' on one of them only, "
                + "to send its rows as they are there (docs/capture.md)"
        }
        if !narrowed.isEmpty {
            what.append(
                "narrowed or converted column(s) \(narrowed.joined(separator: ", ")): the values the ALTER rewrote here were not captured"
            )
        }
        var deletes =
            deletesLost
            ? ", and delete by hand on every peer the rows deleted here meanwhile (no backfill sends a delete)" : ""
        if cascadesLost {
            deletes +=
                ", and 'datajoin track --backfill' each table its foreign keys cascade to (their rows a cascade changed meanwhile)"
        }
        if keyBlockLost && !captureLost && triggersMissing.isEmpty && !cascadesChanged && added.isEmpty
            && missing.isEmpty && narrowed.isEmpty
            && retyped.isEmpty && !reordered
        {
            return
                "table \(table) \(what.joined(separator: ", and ")); run 'datajoin track \(arg)' to put it back (docs/keys.md)"
        }
        if added.isEmpty && missing.isEmpty && retyped.isEmpty && !reordered {
            return
                "table \(table) \(what.joined(separator: ", and ")); run 'datajoin track \(arg)' to install them again, "
                + "then 'datajoin track --backfill \(arg)' to send its rows as they are\(deletes) (docs/capture.md)"
        }
        return
            "table \(table) \(what.joined(separator: ", and ")); run 'datajoin track \(arg)' to capture its columns as they are now "
            + "(the same ALTER TABLE on every node first), then 'datajoin import'; if the application wrote them "
            + "before that, then 'datajoin track --backfill \(arg)' to send its rows as they are\(deletes) (docs/capture.md)"
    }
}
