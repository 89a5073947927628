import Foundation

/// Capture on PostgreSQL: statement triggers over transition tables, a row trigger for key
/// changes, TRUNCATE refused (docs/capture.md).
extension PostgresDialect {
    /// PostgreSQL cuts a name at 63 bytes (NAMEDATALEN − 1); a legacy trigger name is looked
    /// up the way the server stored it.
    static func pgName(_ s: String) -> String {
        var out = ""
        for ch in s.unicodeScalars {
            if out.utf8.count + String(ch).utf8.count > 63 { break }
            out.unicodeScalars.append(ch)
        }
        return out
    }

    /// Triggers written before version 14 captured values in the application session's own
    /// DateStyle, TimeZone and float digits; before 15 they read the clock, the user and the
    /// transaction id once per captured row.
    public func upgradeCapture(_ db: Database, from version: Int) throws {
        try CaptureTriggers.rewriteOnUpgrade(db, from: version)
        if version < 19 { try Self.registerDomainsAsTheirBaseTypes(db) }
        // Schema 21: `inet` values are captured as PostgreSQL prints them (`capturedText`).
        // Schema 22: updates are compared byte for byte, whatever the columns' collations. A
        // table with an `inet` key keeps its capture until it is untracked and tracked again:
        // its peers hold its keys in the old spelling (docs/types.md).
        if version < 22 {
            for t in try CaptureTriggers.trackedAndPresent(db)
            where !t.keyColumns.contains(where: { Self.outputFunction($0.dataType) != nil }) {
                if try missingCaptureTriggers(db, t).missing.isEmpty { try installCapture(db, t) }
            }
        }
    }

    /// An application's write locks its table, then (in its capture trigger) the outbox; an
    /// upgrade that locked DataJoin's tables first and then rewrote a table's triggers
    /// deadlocked with it, and the server rolled the application's statement back (found from
    /// outside). So the tracked tables first, all of them, in the mode the trigger rewrite
    /// needs (`DROP TRIGGER` takes ACCESS EXCLUSIVE: a lesser lock left the rewrite waiting
    /// behind a reader that then wrote; found in review). A wait inside `LOCK` that holds some
    /// of them deadlocked with a transaction writing two in the other order (found from
    /// outside): each try waits less than the server's `deadlock_timeout`, is undone whole when
    /// it times out (a savepoint), and is tried again until --lock-timeout. Writers and readers
    /// of the tracked tables then wait until the upgrade commits.
    public func lockForUpgrade(_ db: Database) throws {
        let tables = try CaptureTriggers.trackedAndPresent(db)
        guard !tables.isEmpty else { return }
        let lock: SQL =
            "LOCK TABLE \(tables.map { "\($0.identifier)" as SQL }.joined(separator: ", ")) IN ACCESS EXCLUSIVE MODE"
        let deadlockMs =
            try db.scalar("SELECT setting::bigint FROM pg_settings WHERE name = 'deadlock_timeout'").asInt64 ?? 1_000
        // Longer tries as the wait goes on (transactions longer than a try), never half the
        // deadlock timeout: an application waiting behind a try is let go long before it. The
        // whole statement is bounded, not each table's wait (`lock_timeout` is per lock; found
        // in review: waits on several busy tables added up past the deadlock timeout).
        let longestTryMs = max(1, deadlockMs / 2)
        let before = try db.scalar("SELECT current_setting('statement_timeout')").asString ?? "0"
        var wait = LockWait.Wait("the tracked tables, which other sessions use, to upgrade this node")
        var attempt = 0
        while true {
            let leftMs = Int64(max(0, LockWait.timeoutSeconds - wait.waited) * 1_000)
            let tryMs = max(1, min(longestTryMs, Int64(50) << min(attempt, 10), leftMs))
            do {
                try db.write { _ in
                    _ = try db.scalar("SELECT set_config('statement_timeout', ?, true)", [.text("\(tryMs)ms")])
                    try db.executeScript(lock)
                }
                _ = try db.scalar("SELECT set_config('statement_timeout', ?, true)", [.text(before)])
                return
            } catch  where Self.triedTooLong(error) {
                // As long again free for the applications: a try blocks the tables it holds.
                usleep(UInt32(min(tryMs, 500)) * 1_000)
            }
            guard wait.keepWaiting(attempt: attempt) else {
                throw DataJoinError(
                    .locked,
                    "the tracked tables were not all free at once for \(LockWait.timeoutText) s (other sessions' transactions, "
                        + "a long query, autovacuum), and the upgrade of this node writes their capture again; nothing changed: "
                        + "try again when they are quieter, or raise --lock-timeout")
            }
            attempt += 1
        }
    }

    /// A try of `lockForUpgrade` that ran out of its time (the statement's, or a lock's).
    static func triedTooLong(_ error: Error) -> Bool {
        DatabaseErrors.isLocked(error) || (TransactionError.unwrap(error) as? PostgresError)?.sqlState == "57014"
    }

    /// Schema 19: a tracked column whose type is a domain is registered as the domain's base
    /// type, as `track` registers it now (`columns`). Left as the domain, its kind would differ
    /// from the live one and `check` would report a capture drift until `track` ran again. The
    /// capture itself does not change: PostgreSQL's triggers capture text of every type.
    static func registerDomainsAsTheirBaseTypes(_ db: Database) throws {
        let domains = try db.rows(
            """
            SELECT c.table_name, c.column_name FROM ds_tracked_column AS c
            JOIN pg_catalog.pg_type AS t ON t.oid = to_regtype(c.data_type) WHERE t.typtype = 'd'
            """)
        for (table, list) in Dictionary(grouping: domains, by: { $0.string(0) ?? "" }) {
            let live = try PostgresDialect().columns(db, of: table)
            for r in list {
                guard let column = r.string(1), let now = live.first(where: { $0.name == column }) else { continue }
                try db.execute(
                    "UPDATE ds_tracked_column SET data_type = ? WHERE table_name = ? AND column_name = ?",
                    [.text(now.dataType), .text(table), .text(column)])
            }
        }
    }

    public func installCapture(_ db: Database, _ t: TableInfo) throws {
        // The names DataJoin makes must reach the catalog whole, or one table's could be another's.
        let n = CaptureTriggers.names(t.name), f = CaptureTriggers.statementFunctions(t.name)
        for name in [n.function, n.insert, n.update, n.updateRows, n.delete, n.truncate, f.insert, f.update, f.delete] {
            _ = try identifier(name)
        }
        try removeCapture(db, table: t.name)
        try db.executeScript(SQL(raw: Self.triggers(db, t)))
    }

    public func removeCapture(_ db: Database, table: String) throws {
        let n = CaptureTriggers.names(table)
        // Triggers first (by the names of this version and of older ones), then the
        // functions they ran: only this table's, so no other table's trigger depends on them.
        let f = CaptureTriggers.statementFunctions(table)
        let legacy = CaptureTriggers.legacyNames(table)
        let triggers = [n.insert, n.update, n.updateRows, n.delete, n.truncate] + legacy.dropFirst()
        let functions =
            [n.function, f.insert, f.update, f.delete, n.truncate] + [legacy[0], legacy[5]]
            + CaptureTriggers.legacyFunctions(table)
        var script = triggers.map { "DROP TRIGGER IF EXISTS \(db.quote(Self.pgName($0))) ON \(db.quote(table));" }
        // Another tracked table's capture triggers that came to this table by a rename (one
        // table renamed over another) captured its writes under both names (found from
        // outside): every capture trigger on this table goes, whoever's it was.
        try db.query(
            """
            SELECT t.tgname FROM pg_catalog.pg_trigger AS t JOIN pg_catalog.pg_class AS c ON c.oid = t.tgrelid
            WHERE c.relname = ? AND c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = current_schema())
              AND NOT t.tgisinternal AND substr(t.tgname, 1, 11) = 'ds_capture_'
            """, [.text(table)]
        ) { r in
            if let trigger = r.string(0) {
                script.append("DROP TRIGGER IF EXISTS \(db.quote(trigger)) ON \(db.quote(table));")
            }
        }
        // The table renamed since keeps its triggers under its new name, still running this
        // table's functions (found from outside: they captured its rows under the old name, and
        // untrack failed on the functions they used). Dropped with them, wherever they are, and
        // under whatever name: a trigger renamed by hand made `track` fail on its function.
        for function in [n.function, f.insert, f.update, f.delete, n.truncate] where function.utf8.count <= 63 {
            try db.query(
                """
                SELECT t.tgname, c.relname FROM pg_catalog.pg_trigger AS t
                JOIN pg_catalog.pg_class AS c ON c.oid = t.tgrelid
                JOIN pg_catalog.pg_proc AS p ON p.oid = t.tgfoid
                WHERE p.proname = ? AND p.pronamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = current_schema())
                """, [.text(function)]
            ) { r in
                if let trigger = r.string(0), let other = r.string(1) {
                    script.append("DROP TRIGGER IF EXISTS \(db.quote(trigger)) ON \(db.quote(other));")
                }
            }
        }
        // An old name cut at 63 bytes may be another table's function: dropped only when
        // nothing depends on it any more (no CASCADE), and only when it fits uncut.
        script += functions.filter { $0.utf8.count <= 63 }.map { "DROP FUNCTION IF EXISTS \(db.quote($0))();" }
        try db.executeScript(SQL(raw: script.joined(separator: "\n")))
    }

    public var captureNamesFixedAtInstall: Bool { false }
    public var commitsEachDDL: Bool { false }
    public var clampsIntegersOnAlter: Bool { false }
    public var recordsSourceTransactions: Bool { true }
    public var typeChangesRewriteValues: Bool { true }
    public func schemaCure(schema: Substring, table: Substring) -> String {
        // In the URL as the server reads it: a name of other than lower-case letters, digits
        // and `_` in double quotes (unquoted, PostgreSQL folds it to another schema's name;
        // found from outside), every other character percent-encoded, and `public` after it,
        // where DataJoin's own tables are found.
        let plain = schema.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_"
        }
        let named = plain ? String(schema) : "\"" + schema.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        let ascii = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
        let encoded = named.addingPercentEncoding(withAllowedCharacters: ascii) ?? named
        return "DataJoin tracks the tables of one schema (the connection's current schema), named without it; to sync "
            + "\(table) of schema \(schema), connect with that schema first in the search path "
            + "(postgresql://…/db?options=-csearch_path%3D\(encoded),public) and track \(table)"
    }

    /// PostgreSQL folds an unquoted name's ASCII letters to lower case.
    public var foldsUnquotedNames: Bool { true }

    public func isCurrentSchema(_ db: Database, _ schema: String) throws -> Bool {
        try db.scalar("SELECT current_schema()").asString == schema
    }

    public func notCapturable(_ db: Database, table: String) throws -> String? {
        guard
            let r = try db.firstRow(
                """
                SELECT c.relkind::text, c.relispartition::int,
                  EXISTS (SELECT 1 FROM pg_catalog.pg_inherits AS i WHERE i.inhparent = c.oid)::int,
                  EXISTS (SELECT 1 FROM pg_catalog.pg_inherits AS i WHERE i.inhrelid = c.oid)::int
                FROM pg_catalog.pg_class AS c
                WHERE c.relname = ? AND c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = current_schema())
                """, [.text(table)])
        else { return nil }
        let kind = r.string(0)
        // Statement triggers fire for the table a statement names, never for its partitions or
        // inheritance children or parents: writes made through another of them went uncaptured
        // (found from outside for partitioned tables; the rest checked then).
        if r.int(1) == 1 {
            return "a partition of a partitioned table: writes made through the partitioned table bypass its triggers, "
                + "so DataJoin cannot capture it; sync a table that is not partitioned"
        }
        if kind == "r" && r.int(2) == 1 {
            return "a table other tables inherit from: rows written to its child tables bypass its triggers, "
                + "so DataJoin cannot capture it; sync a table without inheritance"
        }
        if r.int(3) == 1 {
            return
                "a table that inherits from another: updates and deletes made through the parent bypass its triggers, "
                + "so DataJoin cannot capture it; sync a table without inheritance"
        }
        switch kind {
        case "v", "m": return "a view, not a table: track the tables it reads"
        case "f": return "a foreign table, whose rows live on another server: track it there"
        case "p":
            // Found from outside: a row an update moved to another partition, and every write
            // made to a partition directly, went uncaptured (the parent's triggers never fired).
            return
                "a partitioned table: writes made to its partitions directly and rows an update moves between partitions "
                + "bypass its triggers, so DataJoin cannot capture it; sync a table that is not partitioned"
        default: return nil
        }
    }

    public func captureInstalled(_ db: Database, table: String) throws -> Bool {
        let n = CaptureTriggers.names(table)
        return try db.scalar(
            """
            SELECT count(*) FROM pg_catalog.pg_trigger AS t JOIN pg_catalog.pg_class AS c ON c.oid = t.tgrelid
            WHERE c.relname = ? AND t.tgname IN (?, ?) AND t.tgenabled <> 'D'
              AND c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = current_schema())
            """, [.text(table), .text(Self.pgName(n.insert)), .text(Self.pgName(n.delete))]
        ).asInt64 == 2
    }

    public func missingCaptureTriggers(_ db: Database, _ t: TableInfo) throws -> CaptureTriggerCheck {
        let n = CaptureTriggers.names(t.name)
        let expected = [n.insert, n.updateRows, n.update, n.delete, n.truncate].map(Self.pgName)
        var present = Set<String>()
        // A trigger disabled (`DISABLE TRIGGER`), or set to fire only in replica sessions
        // (`ENABLE REPLICA TRIGGER`, found from outside), captures nothing: missing too.
        try db.query(
            """
            SELECT t.tgname FROM pg_catalog.pg_trigger AS t JOIN pg_catalog.pg_class AS c ON c.oid = t.tgrelid
            WHERE c.relname = ? AND t.tgenabled IN ('O', 'A') AND NOT t.tgisinternal AND substr(t.tgname, 1, 11) = 'ds_capture_'
              AND c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = current_schema())
            """, [.text(t.name)]
        ) { r in
            if let name = r.string(0) { present.insert(name) }
        }
        return CaptureTriggerCheck(
            // Without its guard a TRUNCATE goes through, uncaptured: a delete of every row.
            expected: expected, present: present, capturingDeletes: [n.delete, n.update, n.truncate].map(Self.pgName))
    }

    public func backfill(_ db: Database, _ t: TableInfo) throws -> Int {
        let table = db.quote(t.name), lit = CaptureTriggers.literal(t.name),
            pkNames = CaptureTriggers.literal(KeyNames.encode(t.keyColumns.map(\.name)))
        return try db.execute(
            SQL(
                raw:
                    """
                    INSERT INTO ds_change_outbox (\(Self.postgresColumns))
                    SELECT \(lit), \(pkNames), \(Self.postgresKey(db, t, "ds_n")), 'I', \(Self.postgresRowNames(t)), \(Self.postgresRow(db, t, "ds_n")), NULL, \(Self.postgresCommonOutside) FROM \(table) AS ds_n
                    """))
    }

    static let postgresColumns =
        "object_table, object_pk_attribute, object_id, object_operation, object_attribute, object_value, object_value_old, captured_ms, updated_by_user_id, source_id"
    /// The settings a value's text depends on, as every node reads it: an application session
    /// with its own DateStyle, TimeZone, IntervalStyle, bytea_output or extra_float_digits made
    /// the capture write `02/01/2024` for a date (read as 1 February by a node with MDY), an
    /// offset other than `+00`, or a rounded double (found from outside). Where the session's
    /// settings differ they are set for the capture and put back after it, for the rest of the
    /// transaction as they were; a session with the usual settings pays five reads.
    static let settleOutput = """
        IF current_setting('DateStyle') <> 'ISO, MDY' OR current_setting('IntervalStyle') <> 'postgres'
             OR current_setting('TimeZone') NOT IN ('UTC', 'Etc/UTC') OR current_setting('bytea_output') <> 'hex'
             OR current_setting('extra_float_digits')::int < 1 THEN
            ds_s := ARRAY[current_setting('DateStyle'), current_setting('IntervalStyle'), current_setting('TimeZone'),
                          current_setting('bytea_output'), current_setting('extra_float_digits')];
            PERFORM set_config('DateStyle', 'ISO, MDY', true), set_config('IntervalStyle', 'postgres', true),
                    set_config('TimeZone', 'UTC', true), set_config('bytea_output', 'hex', true),
                    set_config('extra_float_digits', '1', true);
          END IF;
        """
    static let restoreOutput = """
        IF ds_s IS NOT NULL THEN
            PERFORM set_config('DateStyle', ds_s[1], true), set_config('IntervalStyle', ds_s[2], true),
                    set_config('TimeZone', ds_s[3], true), set_config('bytea_output', ds_s[4], true),
                    set_config('extra_float_digits', ds_s[5], true);
          END IF;
        """

    /// The capture time, user and source transaction of every row a trigger writes, read once
    /// per trigger call into `postgresCommonDeclare`'s variables: once per row, they cost a
    /// tracked `COPY` 9 %. A statement trigger runs after its statement's last row, so the time
    /// is the same moment either way.
    /// Each variable with its type and the expression it holds.
    private static let commonValues = [
        ("ds_ms", "bigint", "(extract(epoch from clock_timestamp()) * 1000)::bigint"),
        ("ds_user", "text", "current_user"), ("ds_tx", "bigint", "txid_current()"),
    ]
    static let postgresCommon = commonValues.map(\.0).joined(separator: ", ")
    /// The same, in a statement of its own (a backfill).
    static let postgresCommonOutside = commonValues.map(\.2).joined(separator: ", ")
    static let postgresCommonDeclare = commonValues.map { "  \($0.0) \($0.1);" }.joined(separator: "\n")
    /// Set after the skip and, in a statement trigger, only when the statement changed rows: a
    /// statement that changes none takes no transaction id here (as before version 15).
    static let postgresCommonSet = commonValues.map { "\($0.0) := \($0.2);" }.joined(separator: " ")
    /// Variables win over a table's columns of the same name (`ds_user`, `ds_moved_from`), which
    /// plpgsql would otherwise refuse as ambiguous on every write (found in review).
    static let postgresVariablesFirst = "#variable_conflict use_variable"

    static func postgresKey(_ db: Database, _ t: TableInfo, _ rec: String) -> String {
        "json_build_array(" + t.keyColumns.map { capturedText(db, rec, $0) }.joined(separator: ", ") + ")::text"
    }

    /// A value as the text PostgreSQL prints for it, which is what a `SELECT` (a snapshot) reads
    /// and every node stores. `::text` is that text but for `inet`, whose cast to text adds the
    /// mask of a single address (`10.1.2.3/32`: SQLite stored that spelling, and MariaDB's
    /// `INET6` refused it; found from outside): its output function is called. A `character(n)`
    /// travels by its cast, without its padding, which is how every read here takes it
    /// (`PostgresDialect.selected`).
    static func capturedText(_ db: Database, _ rec: String, _ column: ColumnInfo) -> String {
        let value = "\(rec).\(db.quote(column.name))"
        guard let output = outputFunction(column.dataType) else { return value + "::text" }
        return "pg_catalog.textin(pg_catalog.\(output)(\(value)))"
    }

    /// The output function of a type whose cast to text is not the text it prints (an array's
    /// is: it prints its elements).
    static func outputFunction(_ type: String) -> String? {
        type == "inet" ? "inet_out" : nil
    }

    /// An inserted row: its values as a JSON array in column order, the column names once in
    /// `object_attribute` (a constant of the trigger). An object with the names in every row
    /// cost a tracked bulk insert ~15 % more (docs/performance.md); the names stay in the row,
    /// so a backlog still decodes after the table is tracked again with other columns.
    /// json_build_array writes text directly; a function takes at most 100 arguments, so wider
    /// tables are built in chunks and joined as jsonb.
    static func postgresRow(_ db: Database, _ t: TableInfo, _ rec: String) -> String {
        let values = t.columns.map { capturedText(db, rec, $0) }
        let split = Tuning.current.postgresCaptureSplit
        if values.count <= split { return "json_build_array(" + values.joined(separator: ", ") + ")::text" }
        let chunks = stride(from: 0, to: values.count, by: split).map { start in
            "jsonb_build_array(" + values[start..<min(start + split, values.count)].joined(separator: ", ") + ")"
        }
        return "(" + chunks.joined(separator: " || ") + ")::text"
    }

    static func postgresRowNames(_ t: TableInfo) -> String {
        CaptureTriggers.literal("[" + t.columns.map { JSON.quote($0.name) }.joined(separator: ",") + "]")
    }

    static func triggers(_ db: Database, _ t: TableInfo) -> String {
        // Dollar-quote tags that no table or column name contains, so no name can end a
        // function body early.
        let allNames = ([t.name] + t.columns.map(\.name)).joined(separator: "\u{0}")
        var k = 0
        while allNames.contains("$ds\(k)") { k += 1 }
        let tag = "$ds\(k)$", sqlTag = "$ds\(k)sql$"
        let n = CaptureTriggers.names(t.name)
        let table = db.quote(t.name)
        let lit = CaptureTriggers.literal(t.name)
        let pkNames = CaptureTriggers.literal(KeyNames.encode(t.keyColumns.map(\.name)))
        func key(_ rec: String) -> String { postgresKey(db, t, rec) }
        func row(_ rec: String) -> String { postgresRow(db, t, rec) }
        let rowNames = postgresRowNames(t)
        let cols = postgresColumns
        let common = postgresCommon, declare = postgresCommonDeclare, setCommon = postgresCommonSet
        let variablesFirst = postgresVariablesFirst
        func unlessEmpty(_ transition: String) -> String {
            "PERFORM 1 FROM \(transition) LIMIT 1; IF NOT FOUND THEN RETURN NULL; END IF;"
        }
        let keyNew = t.keyColumns.map { "NEW.\(db.quote($0.name))" }.joined(separator: ", ")
        let keyOld = t.keyColumns.map { "OLD.\(db.quote($0.name))" }.joined(separator: ", ")
        let f = CaptureTriggers.statementFunctions(t.name)
        // The importer's own statement on this table; a cascade it causes here from another table
        // is this node's change (`Dialect.setApplying`). One within this table (a self-reference)
        // joins the statement's own transition table, and is skipped with it.
        let skip =
            "IF current_setting('datajoin.writing', true) = \(CaptureTriggers.literal(t.name)) THEN RETURN NULL; END IF;"
        let (settle, restore) = (Self.settleOutput, Self.restoreOutput)
        // Inserts, deletes and updates: one statement per application statement, over its
        // transition tables (no per-row plpgsql).
        func statementTrigger(_ function: String, _ trigger: String, event: String, transition: String, body: String)
            -> String
        {
            """
            CREATE FUNCTION \(db.quote(function))() RETURNS trigger LANGUAGE plpgsql AS \(tag)
            \(body)
            \(tag);
            CREATE TRIGGER \(db.quote(trigger)) AFTER \(event) ON \(table)
              REFERENCING \(transition) FOR EACH STATEMENT EXECUTE FUNCTION \(db.quote(function))();
            """
        }
        func insertSelect(_ select: String, from transition: String) -> String {
            """
            \(variablesFirst)
            DECLARE
              ds_s text[];
            \(declare)
            BEGIN
              \(skip)
              \(unlessEmpty(transition))
              \(setCommon)
              \(settle)
              INSERT INTO ds_change_outbox (\(cols)) SELECT \(lit), \(pkNames), \(select);
              \(restore)
              RETURN NULL;
            END
            """
        }
        // An update that keeps the key: old and new rows joined on the key, one outbox row per
        // column whose text changed. A row whose key changed is a delete plus an insert, written
        // by the row-level trigger below, which also notes its first insert's outbox id. Then:
        // - those rows are left out of the join (a moved row's new key may equal another row's
        //   old key, and joining them would invent updates);
        // - the statement's inserts are moved after all its deletes. With a deferrable key the
        //   row triggers see rows in any order (1→2 before 2→3), and replaying "delete 1, insert
        //   2, delete 2" would lose a row.
        let moved = "'datajoin.moved_' || TG_RELID"
        let keyJoin = t.keyColumns.map { "ds_o.\(db.quote($0.name)) = ds_n.\(db.quote($0.name))" }.joined(
            separator: " AND ")
        // Compared byte for byte: the texts keep their columns' collations, and one column in a
        // case-insensitive (nondeterministic) collation made the whole list compare so, which
        // hid an update of case in every column; two collations made every update of the table
        // fail (found from outside).
        let changedColumns = t.valueColumns.map { c in
            "(\(CaptureTriggers.literal(c.name)), \(capturedText(db, "ds_n", c)) COLLATE pg_catalog.\"C\", "
                + "\(capturedText(db, "ds_o", c)) COLLATE pg_catalog.\"C\")"
        }.joined(separator: ", ")
        let thisStatementsInserts = { (from: String) in
            """
            ds_x.id >= \(from) AND ds_x.seq IS NULL AND ds_x.source_id = txid_current()
                    AND ds_x.object_table = \(lit) AND ds_x.object_operation = 'I'
            """
        }
        let updateSelect = { (from: String, common: String) in
            """
            INSERT INTO ds_change_outbox (\(cols))
                SELECT \(lit), \(pkNames), \(key("ds_n")), 'U', ds_c.name, ds_c.new_value, ds_c.old_value, \(common)
                FROM ds_old_rows AS ds_o JOIN ds_new_rows AS ds_n ON \(keyJoin)
                CROSS JOIN LATERAL (VALUES \(changedColumns)) AS ds_c (name, new_value, old_value)
                WHERE ds_c.new_value IS DISTINCT FROM ds_c.old_value AND (\(from) IS NULL OR NOT EXISTS (
                  SELECT 1 FROM ds_change_outbox AS ds_x WHERE \(thisStatementsInserts(from)) AND ds_x.object_id = \(key("ds_n"))))
            """
        }
        // plpgsql keeps the plan it made the first time, sized for that statement's rows
        // (transition tables have no statistics). Statements of up to 1,000 rows share that
        // plan; a larger one is planned for its own size (a hash join, not a nested loop over
        // a million rows), without JIT. No SET clause on the function: it cost single-row
        // updates (pgbench) a tenth of their speed.
        let updateValues =
            t.valueColumns.isEmpty
            ? ""
            : """
              PERFORM 1 FROM ds_new_rows OFFSET 1000 LIMIT 1;
              IF NOT FOUND THEN
                \(updateSelect("ds_moved_from", common));
              ELSE
                ds_jit := current_setting('jit');
                PERFORM set_config('jit', 'off', true);
                EXECUTE \(sqlTag)\(updateSelect("$1", "$2, $3, $4"))\(sqlTag) USING ds_moved_from, ds_ms, ds_user, ds_tx;
                PERFORM set_config('jit', ds_jit, true);
              END IF;
            """
        let updateBody = """
            \(variablesFirst)
            DECLARE
              ds_moved_from bigint := nullif(current_setting(\(moved), true), '')::bigint;
              ds_jit text;
              ds_s text[];
            \(declare)
            BEGIN
              \(skip)
              \(unlessEmpty("ds_new_rows"))
              \(setCommon)
              \(settle)
            \(updateValues)
              IF ds_moved_from IS NOT NULL THEN
                PERFORM set_config(\(moved), '', true);
                UPDATE ds_change_outbox AS ds_x SET id = nextval('ds_change_outbox_id_seq'::regclass) WHERE \(thisStatementsInserts("ds_moved_from"));
              END IF;
              \(restore)
              RETURN NULL;
            END
            """
        return """
            \(statementTrigger(f.insert, n.insert, event: "INSERT", transition: "NEW TABLE AS ds_new_rows",
                               body: insertSelect("\(key("ds_n")), 'I', \(rowNames), \(row("ds_n")), NULL, \(common) FROM ds_new_rows AS ds_n", from: "ds_new_rows")))
            \(statementTrigger(f.delete, n.delete, event: "DELETE", transition: "OLD TABLE AS ds_old_rows",
                               body: insertSelect("\(key("ds_o")), 'D', NULL, NULL, NULL, \(common) FROM ds_old_rows AS ds_o", from: "ds_old_rows")))
            \(statementTrigger(f.update, n.updateRows, event: "UPDATE",
                               transition: "OLD TABLE AS ds_old_rows NEW TABLE AS ds_new_rows", body: updateBody))
            CREATE FUNCTION \(db.quote(n.function))() RETURNS trigger LANGUAGE plpgsql AS \(tag)
            \(variablesFirst)
            DECLARE
              ds_id bigint;
              ds_s text[];
            \(declare)
            BEGIN
              \(skip)
              \(setCommon)
              \(settle)
              INSERT INTO ds_change_outbox (\(cols)) VALUES (\(lit), \(pkNames), \(key("OLD")), 'D', NULL, NULL, NULL, \(common));
              INSERT INTO ds_change_outbox (\(cols)) VALUES (\(lit), \(pkNames), \(key("NEW")), 'I', \(rowNames), \(row("NEW")), NULL, \(common))
                RETURNING id INTO ds_id;
              IF nullif(current_setting(\(moved), true), '') IS NULL THEN
                PERFORM set_config(\(moved), ds_id::text, true);
              END IF;
              \(restore)
              RETURN NULL;
            END
            \(tag);
            CREATE TRIGGER \(db.quote(n.update)) AFTER UPDATE ON \(table)
              FOR EACH ROW WHEN (ROW(\(keyOld)) IS DISTINCT FROM ROW(\(keyNew))) EXECUTE FUNCTION \(db.quote(n.function))();
            CREATE FUNCTION \(db.quote(n.truncate))() RETURNS trigger LANGUAGE plpgsql AS \(tag)
            BEGIN
              \(skip)
              RAISE EXCEPTION 'TRUNCATE of DataJoin-tracked table % is refused: it would not be synced. Use DELETE, or run datajoin untrack first.', TG_TABLE_NAME;
            END
            \(tag);
            CREATE TRIGGER \(db.quote(n.truncate)) BEFORE TRUNCATE ON \(table)
              FOR EACH STATEMENT EXECUTE FUNCTION \(db.quote(n.truncate))();
            """
    }
}
