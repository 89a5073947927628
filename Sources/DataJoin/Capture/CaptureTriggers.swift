import Crypto
import Foundation

/// Generates the capture triggers of one tracked table. Inserts and deletes become one row-level
/// outbox row; an update becomes one outbox row per changed column (old and new value); an update
/// of the key becomes a delete plus an insert. Writes made by DataJoin's importer are skipped
/// (docs/capture.md says how each brand knows).
enum CaptureTriggers {
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

    static func literal(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "''") + "'" }

    typealias Names = (
        function: String, insert: String, update: String, updateRows: String, delete: String, truncate: String
    )

    /// The names of a table's triggers and functions: a readable prefix of the table's name and
    /// 8 hex digits of its SHA-256, so two tables never share one and every name fits
    /// PostgreSQL's 63 bytes, whatever the table is called (issue 10). Kinds are at most 16
    /// bytes, the prefix 28, the hash 9: 53 in all.
    static func names(_ table: String) -> Names {
        let n = { (kind: String) in generatedName(kind, table) }
        return (
            n("ds_capture_"), n("ds_capture_ins_"), n("ds_capture_upd_"), n("ds_capture_updrows_"),
            n("ds_capture_del_"), n("ds_capture_trunc_")
        )
    }

    /// PostgreSQL: the statement-level functions that capture inserts and deletes.
    static func statementFunctions(_ table: String) -> (insert: String, update: String, delete: String) {
        (
            generatedName("ds_capture_insr_", table), generatedName("ds_capture_updr_", table),
            generatedName("ds_capture_delr_", table)
        )
    }

    static func generatedName(_ kind: String, _ table: String) -> String {
        var prefix = ""
        for ch in table.unicodeScalars where ch.value >= 0x20 && ch.value != 0x7F {
            if prefix.utf8.count + String(ch).utf8.count > 28 { break }
            prefix.unicodeScalars.append(ch)
        }
        let digest = SHA256.hash(data: Array(table.utf8))
        return kind + prefix + "_" + Hex.encode(Array(digest.prefix(4)))
    }

    /// Names of versions before 6 (the table's name after a prefix): dropped when a table is
    /// tracked again or untracked, so an upgraded node keeps no second set of triggers.
    static func legacyNames(_ table: String) -> [String] {
        [
            "ds_capture_", "ds_capture_ins_", "ds_capture_upd_", "ds_capture_updrows_", "ds_capture_del_",
            "ds_capture_trunc_",
        ].map { $0 + table }
    }

    static func legacyFunctions(_ table: String) -> [String] {
        ["ds_capture_ins_rows_", "ds_capture_upd_rows_", "ds_capture_del_rows_"].map { $0 + table }
    }

    static func install(_ db: Database, _ t: TableInfo) throws {
        try remove(db, table: t.name)
        switch db.brand {
        case .sqlite: for stmt in sqlite(db, t) { try db.executeScript(stmt) }
        case .postgres: try db.executeScript(postgres(db, t))
        }
    }

    static func remove(_ db: Database, table: String) throws {
        let n = names(table)
        switch db.brand {
        case .sqlite:
            // Every capture trigger of the table, whatever columns it had when they were made.
            let prefix = "ds_capture_"
            let found = try db.rows(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? AND substr(name, 1, ?) = ?",
                [.text(table), .integer(Int64(prefix.count)), .text(prefix)]
            ).compactMap { $0.string(0) }
            for trig in Set(found + [n.insert, n.update, n.delete]) {
                try db.executeScript("DROP TRIGGER IF EXISTS \(db.quote(trig))")
            }
        case .postgres:
            // Triggers first (by the names of this version and of older ones), then the
            // functions they ran: only this table's, so no other table's trigger depends on them.
            let f = statementFunctions(table)
            let legacy = legacyNames(table)
            let triggers = [n.insert, n.update, n.updateRows, n.delete, n.truncate] + legacy.dropFirst()
            let functions =
                [n.function, f.insert, f.update, f.delete, n.truncate] + [legacy[0], legacy[5]] + legacyFunctions(table)
            var script = triggers.map { "DROP TRIGGER IF EXISTS \(db.quote(Self.pgName($0))) ON \(db.quote(table));" }
            // An old name cut at 63 bytes may be another table's function: dropped only when
            // nothing depends on it any more (no CASCADE), and only when it fits uncut.
            script += functions.filter { $0.utf8.count <= 63 }.map { "DROP FUNCTION IF EXISTS \(db.quote($0))();" }
            try db.executeScript(script.joined(separator: "\n"))
        }
    }

    // MARK: - SQLite

    /// Tags a value with its storage class so the exporter reads it back exactly:
    /// i42, r0.5 (17 significant digits round-trip a double), tabc, b00ff; NULL stays NULL.
    static func sqliteTagged(_ expr: String) -> String {
        "CASE typeof(\(expr)) WHEN 'integer' THEN 'i' || \(expr) WHEN 'real' THEN 'r' || printf('%!.17g', \(expr)) "
            + "WHEN 'text' THEN 't' || \(expr) WHEN 'blob' THEN 'b' || hex(\(expr)) ELSE NULL END"
    }

    static let sqliteColumns =
        "object_table, object_pk_attribute, object_id, object_operation, object_attribute, object_value, object_value_old, captured_ms"
    static let sqliteNowMs = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"

    static func sqliteKey(_ db: Database, _ t: TableInfo, _ rec: String) -> String {
        "json_array(" + t.keyColumns.map { sqliteTagged("\(rec).\(db.quote($0.name))") }.joined(separator: ", ") + ")"
    }

    static func sqliteRow(_ db: Database, _ t: TableInfo, _ rec: String) -> String {
        let pairs = t.columns.map { literal($0.name) + ", " + sqliteTagged("\(rec).\(db.quote($0.name))") }
        // A SQLite function takes at most 127 arguments: a wider row is built as objects of
        // 60 columns whose texts are joined into one (their values are strings or null, so
        // each text has exactly one brace at each end).
        let split = Tuning.current.sqliteCaptureSplit
        if pairs.count <= split { return "json_object(" + pairs.joined(separator: ", ") + ")" }
        let chunks = stride(from: 0, to: pairs.count, by: split).map {
            "json_object(" + pairs[$0..<min($0 + split, pairs.count)].joined(separator: ", ") + ")"
        }
        return chunks.enumerated().map { i, c in
            i == 0 ? "rtrim(\(c), '}')" : i == chunks.count - 1 ? "ltrim(\(c), '{')" : "ltrim(rtrim(\(c), '}'), '{')"
        }.joined(separator: " || ',' || ")
    }

    static func sqlite(_ db: Database, _ t: TableInfo) -> [String] {
        let n = names(t.name)
        let table = db.quote(t.name)
        let lit = literal(t.name)
        let pkNames = literal(KeyNames.encode(t.keyColumns.map(\.name)))
        let ms = sqliteNowMs
        let notApplying = "(SELECT applying FROM ds_apply_state WHERE id = 1) = 0"
        func key(_ rec: String) -> String { sqliteKey(db, t, rec) }
        func row(_ rec: String) -> String { sqliteRow(db, t, rec) }
        let cols = sqliteColumns
        let keyChanged = t.keyColumns.map { "NEW.\(db.quote($0.name)) IS NOT OLD.\(db.quote($0.name))" }.joined(
            separator: " OR ")
        let keyList = t.keyColumns.map { db.quote($0.name) }.joined(separator: ", ")
        // Updates: one trigger per column, `AFTER UPDATE OF` that column, so an UPDATE runs only
        // the triggers of the columns it sets (SQLite picks them when it prepares the statement)
        // instead of testing every column of every row.
        var triggers = [
            """
            CREATE TRIGGER \(db.quote(n.insert)) AFTER INSERT ON \(table) WHEN \(notApplying) BEGIN
            INSERT INTO ds_change_outbox (\(cols)) VALUES (\(lit), \(pkNames), \(key("NEW")), 'I', NULL, \(row("NEW")), NULL, \(ms));
            END
            """,
            """
            CREATE TRIGGER \(db.quote(n.delete)) AFTER DELETE ON \(table) WHEN \(notApplying) BEGIN
            INSERT INTO ds_change_outbox (\(cols)) VALUES (\(lit), \(pkNames), \(key("OLD")), 'D', NULL, NULL, NULL, \(ms));
            END
            """,
            """
            CREATE TRIGGER \(db.quote(n.update)) AFTER UPDATE OF \(keyList) ON \(table) WHEN (\(keyChanged)) AND \(notApplying) BEGIN
            INSERT INTO ds_change_outbox (\(cols)) VALUES (\(lit), \(pkNames), \(key("OLD")), 'D', NULL, NULL, NULL, \(ms));
            INSERT INTO ds_change_outbox (\(cols)) VALUES (\(lit), \(pkNames), \(key("NEW")), 'I', NULL, \(row("NEW")), NULL, \(ms));
            END
            """,
        ]
        for (i, c) in t.valueColumns.enumerated() {
            let q = db.quote(c.name)
            triggers.append(
                """
                CREATE TRIGGER \(db.quote(n.update + "_c\(i + 1)")) AFTER UPDATE OF \(q) ON \(table)
                WHEN NEW.\(q) IS NOT OLD.\(q) AND NOT (\(keyChanged)) AND \(notApplying) BEGIN
                INSERT INTO ds_change_outbox (\(cols)) VALUES (\(lit), \(pkNames), \(key("NEW")), 'U', \(literal(c.name)), \(sqliteTagged("NEW.\(q)")), \(sqliteTagged("OLD.\(q)")), \(ms));
                END
                """)
        }
        return triggers
    }

    // MARK: - PostgreSQL

    static let postgresColumns =
        "object_table, object_pk_attribute, object_id, object_operation, object_attribute, object_value, object_value_old, captured_ms, updated_by_user_id, source_id"
    static let postgresCommon = "(extract(epoch from clock_timestamp()) * 1000)::bigint, current_user, txid_current()"

    static func postgresKey(_ db: Database, _ t: TableInfo, _ rec: String) -> String {
        "json_build_array(" + t.keyColumns.map { "\(rec).\(db.quote($0.name))::text" }.joined(separator: ", ")
            + ")::text"
    }

    /// An inserted row: its values as a JSON array in column order, the column names once in
    /// `object_attribute` (a constant of the trigger). An object with the names in every row
    /// cost a tracked bulk insert ~15 % more (docs/performance.md); the names stay in the row,
    /// so a backlog still decodes after the table is tracked again with other columns.
    /// json_build_array writes text directly; a function takes at most 100 arguments, so wider
    /// tables are built in chunks and joined as jsonb.
    static func postgresRow(_ db: Database, _ t: TableInfo, _ rec: String) -> String {
        let values = t.columns.map { "\(rec).\(db.quote($0.name))::text" }
        let split = Tuning.current.postgresCaptureSplit
        if values.count <= split { return "json_build_array(" + values.joined(separator: ", ") + ")::text" }
        let chunks = stride(from: 0, to: values.count, by: split).map { start in
            "jsonb_build_array(" + values[start..<min(start + split, values.count)].joined(separator: ", ") + ")"
        }
        return "(" + chunks.joined(separator: " || ") + ")::text"
    }

    static func postgresRowNames(_ t: TableInfo) -> String {
        literal("[" + t.columns.map { JSON.quote($0.name) }.joined(separator: ",") + "]")
    }

    /// `track --backfill`: every row the table holds now, captured as an insert in the form the
    /// insert trigger writes, so peers receive rows that were there before tracking (docs/capture.md).
    static func backfill(_ db: Database, _ t: TableInfo) throws -> Int {
        let table = db.quote(t.name), lit = literal(t.name),
            pkNames = literal(KeyNames.encode(t.keyColumns.map(\.name)))
        switch db.brand {
        case .sqlite:
            return try db.execute(
                """
                INSERT INTO ds_change_outbox (\(sqliteColumns))
                SELECT \(lit), \(pkNames), \(sqliteKey(db, t, "ds_n")), 'I', NULL, \(sqliteRow(db, t, "ds_n")), NULL, \(sqliteNowMs) FROM \(table) AS ds_n
                """)
        case .postgres:
            return try db.execute(
                """
                INSERT INTO ds_change_outbox (\(postgresColumns))
                SELECT \(lit), \(pkNames), \(postgresKey(db, t, "ds_n")), 'I', \(postgresRowNames(t)), \(postgresRow(db, t, "ds_n")), NULL, \(postgresCommon) FROM \(table) AS ds_n
                """)
        }
    }

    static func postgres(_ db: Database, _ t: TableInfo) -> String {
        // Dollar-quote tags that no table or column name contains, so no name can end a
        // function body early.
        let allNames = ([t.name] + t.columns.map(\.name)).joined(separator: "\u{0}")
        var k = 0
        while allNames.contains("$ds\(k)") { k += 1 }
        let tag = "$ds\(k)$", sqlTag = "$ds\(k)sql$"
        let n = names(t.name)
        let table = db.quote(t.name)
        let lit = literal(t.name)
        let pkNames = literal(KeyNames.encode(t.keyColumns.map(\.name)))
        func key(_ rec: String) -> String { postgresKey(db, t, rec) }
        func row(_ rec: String) -> String { postgresRow(db, t, rec) }
        let rowNames = postgresRowNames(t)
        let cols = postgresColumns
        let common = postgresCommon
        let keyNew = t.keyColumns.map { "NEW.\(db.quote($0.name))" }.joined(separator: ", ")
        let keyOld = t.keyColumns.map { "OLD.\(db.quote($0.name))" }.joined(separator: ", ")
        let f = statementFunctions(t.name)
        let skip = "IF current_setting('datajoin.applying', true) = 'on' THEN RETURN NULL; END IF;"
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
        func insertSelect(_ select: String) -> String {
            """
            BEGIN
              \(skip)
              INSERT INTO ds_change_outbox (\(cols)) SELECT \(lit), \(pkNames), \(select);
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
        let changedColumns = t.valueColumns.map { c in
            "(\(literal(c.name)), ds_n.\(db.quote(c.name))::text, ds_o.\(db.quote(c.name))::text)"
        }.joined(separator: ", ")
        let thisStatementsInserts = { (from: String) in
            """
            ds_x.id >= \(from) AND ds_x.seq IS NULL AND ds_x.source_id = txid_current()
                    AND ds_x.object_table = \(lit) AND ds_x.object_operation = 'I'
            """
        }
        let updateSelect = { (from: String) in
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
                \(updateSelect("ds_moved_from"));
              ELSE
                ds_jit := current_setting('jit');
                PERFORM set_config('jit', 'off', true);
                EXECUTE \(sqlTag)\(updateSelect("$1"))\(sqlTag) USING ds_moved_from;
                PERFORM set_config('jit', ds_jit, true);
              END IF;
            """
        let updateBody = """
            DECLARE
              ds_moved_from bigint := nullif(current_setting(\(moved), true), '')::bigint;
              ds_jit text;
            BEGIN
              \(skip)
            \(updateValues)
              IF ds_moved_from IS NOT NULL THEN
                PERFORM set_config(\(moved), '', true);
                UPDATE ds_change_outbox AS ds_x SET id = nextval('ds_change_outbox_id_seq'::regclass) WHERE \(thisStatementsInserts("ds_moved_from"));
              END IF;
              RETURN NULL;
            END
            """
        return """
            \(statementTrigger(f.insert, n.insert, event: "INSERT", transition: "NEW TABLE AS ds_new_rows",
                               body: insertSelect("\(key("ds_n")), 'I', \(rowNames), \(row("ds_n")), NULL, \(common) FROM ds_new_rows AS ds_n")))
            \(statementTrigger(f.delete, n.delete, event: "DELETE", transition: "OLD TABLE AS ds_old_rows",
                               body: insertSelect("\(key("ds_o")), 'D', NULL, NULL, NULL, \(common) FROM ds_old_rows AS ds_o")))
            \(statementTrigger(f.update, n.updateRows, event: "UPDATE",
                               transition: "OLD TABLE AS ds_old_rows NEW TABLE AS ds_new_rows", body: updateBody))
            CREATE FUNCTION \(db.quote(n.function))() RETURNS trigger LANGUAGE plpgsql AS \(tag)
            DECLARE
              ds_id bigint;
            BEGIN
              \(skip)
              INSERT INTO ds_change_outbox (\(cols)) VALUES (\(lit), \(pkNames), \(key("OLD")), 'D', NULL, NULL, NULL, \(common));
              INSERT INTO ds_change_outbox (\(cols)) VALUES (\(lit), \(pkNames), \(key("NEW")), 'I', \(rowNames), \(row("NEW")), NULL, \(common))
                RETURNING id INTO ds_id;
              IF nullif(current_setting(\(moved), true), '') IS NULL THEN
                PERFORM set_config(\(moved), ds_id::text, true);
              END IF;
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
