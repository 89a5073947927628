import Foundation

/// Generates the capture triggers of one tracked table. Inserts and deletes become one row-level
/// outbox row; an update becomes one outbox row per changed column (old and new value); an update
/// of the key becomes a delete plus an insert. Writes made by DataJoin's importer are skipped
/// (docs/capture.md says how each brand knows).
enum CaptureTriggers {
    static func literal(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "''") + "'" }

    static func names(_ table: String) -> (function: String, insert: String, update: String, delete: String, truncate: String) {
        ("ds_capture_" + table, "ds_capture_ins_" + table, "ds_capture_upd_" + table, "ds_capture_del_" + table, "ds_capture_trunc_" + table)
    }

    /// PostgreSQL: the statement-level functions that capture inserts and deletes.
    static func statementFunctions(_ table: String) -> (insert: String, delete: String) {
        ("ds_capture_ins_rows_" + table, "ds_capture_del_rows_" + table)
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
            for trig in [n.insert, n.update, n.delete] { try db.executeScript("DROP TRIGGER IF EXISTS \(db.quote(trig))") }
        case .postgres:
            let f = statementFunctions(table)
            try db.executeScript("""
                DROP TRIGGER IF EXISTS \(db.quote(n.insert)) ON \(db.quote(table));
                DROP TRIGGER IF EXISTS \(db.quote(n.update)) ON \(db.quote(table));
                DROP TRIGGER IF EXISTS \(db.quote(n.delete)) ON \(db.quote(table));
                DROP TRIGGER IF EXISTS \(db.quote(n.truncate)) ON \(db.quote(table));
                DROP FUNCTION IF EXISTS \(db.quote(n.function))();
                DROP FUNCTION IF EXISTS \(db.quote(f.insert))();
                DROP FUNCTION IF EXISTS \(db.quote(f.delete))();
                DROP FUNCTION IF EXISTS \(db.quote(n.truncate))();
                """)
        }
    }

    // MARK: - SQLite

    /// Tags a value with its storage class so the exporter reads it back exactly:
    /// i42, r0.5 (17 significant digits round-trip a double), tabc, b00ff; NULL stays NULL.
    static func sqliteTagged(_ expr: String) -> String {
        "CASE typeof(\(expr)) WHEN 'integer' THEN 'i' || \(expr) WHEN 'real' THEN 'r' || printf('%!.17g', \(expr)) "
            + "WHEN 'text' THEN 't' || \(expr) WHEN 'blob' THEN 'b' || hex(\(expr)) ELSE NULL END"
    }

    static func sqlite(_ db: Database, _ t: TableInfo) -> [String] {
        let n = names(t.name)
        let table = db.quote(t.name)
        let lit = literal(t.name)
        let pkNames = literal(t.keyColumns.map(\.name).joined(separator: ","))
        let ms = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"
        let notApplying = "(SELECT applying FROM ds_apply_state WHERE id = 1) = 0"
        func key(_ rec: String) -> String {
            "json_array(" + t.keyColumns.map { sqliteTagged("\(rec).\(db.quote($0.name))") }.joined(separator: ", ") + ")"
        }
        func row(_ rec: String) -> String {
            "json_object(" + t.columns.map { literal($0.name) + ", " + sqliteTagged("\(rec).\(db.quote($0.name))") }.joined(separator: ", ") + ")"
        }
        let cols = "object_table, object_pk_attribute, object_id, object_operation, object_attribute, object_value, object_value_old, captured_ms"
        let keyChanged = t.keyColumns.map { "NEW.\(db.quote($0.name)) IS NOT OLD.\(db.quote($0.name))" }.joined(separator: " OR ")
        var updateBody = """
            INSERT INTO ds_change_outbox (\(cols)) SELECT \(lit), \(pkNames), \(key("OLD")), 'D', NULL, NULL, NULL, \(ms) WHERE \(keyChanged);
            INSERT INTO ds_change_outbox (\(cols)) SELECT \(lit), \(pkNames), \(key("NEW")), 'I', NULL, \(row("NEW")), NULL, \(ms) WHERE \(keyChanged);

            """
        for c in t.valueColumns {
            let q = db.quote(c.name)
            updateBody += "INSERT INTO ds_change_outbox (\(cols)) SELECT \(lit), \(pkNames), \(key("NEW")), 'U', \(literal(c.name)), "
                + "\(sqliteTagged("NEW.\(q)")), \(sqliteTagged("OLD.\(q)")), \(ms) WHERE NEW.\(q) IS NOT OLD.\(q) AND NOT (\(keyChanged));\n"
        }
        return [
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
            "CREATE TRIGGER \(db.quote(n.update)) AFTER UPDATE ON \(table) WHEN \(notApplying) BEGIN\n\(updateBody)END",
        ]
    }

    // MARK: - PostgreSQL

    static func postgres(_ db: Database, _ t: TableInfo) -> String {
        let n = names(t.name)
        let table = db.quote(t.name)
        let lit = literal(t.name)
        let pkNames = literal(t.keyColumns.map(\.name).joined(separator: ","))
        func key(_ rec: String) -> String {
            "json_build_array(" + t.keyColumns.map { "\(rec).\(db.quote($0.name))::text" }.joined(separator: ", ") + ")::text"
        }
        func row(_ rec: String) -> String {
            // jsonb_build_object takes at most 100 arguments: build it in chunks.
            let chunks = stride(from: 0, to: t.columns.count, by: 40).map { start in
                "jsonb_build_object(" + t.columns[start..<min(start + 40, t.columns.count)]
                    .map { literal($0.name) + ", " + "\(rec).\(db.quote($0.name))::text" }.joined(separator: ", ") + ")"
            }
            return "(" + chunks.joined(separator: " || ") + ")::text"
        }
        let cols = "object_table, object_pk_attribute, object_id, object_operation, object_attribute, object_value, object_value_old, captured_ms, updated_by_user_id, source_id"
        let common = "(extract(epoch from clock_timestamp()) * 1000)::bigint, current_user, txid_current()"
        let keyNew = t.keyColumns.map { "NEW.\(db.quote($0.name))" }.joined(separator: ", ")
        let keyOld = t.keyColumns.map { "OLD.\(db.quote($0.name))" }.joined(separator: ", ")
        var perColumn = ""
        for c in t.valueColumns {
            let q = db.quote(c.name)
            perColumn += """
                    IF NEW.\(q) IS DISTINCT FROM OLD.\(q) THEN
                      INSERT INTO ds_change_outbox (\(cols)) VALUES (\(lit), \(pkNames), \(key("NEW")), 'U', \(literal(c.name)), NEW.\(q)::text, OLD.\(q)::text, \(common));
                    END IF;

                """
        }
        let f = statementFunctions(t.name)
        let skip = "IF current_setting('datajoin.applying', true) = 'on' THEN RETURN NULL; END IF;"
        // Inserts and deletes: one statement per application statement, over its transition
        // table (no per-row plpgsql). Updates stay per row: each changed column is its own change.
        func statementTrigger(_ function: String, _ trigger: String, event: String, transition: String, select: String) -> String {
            """
            CREATE FUNCTION \(db.quote(function))() RETURNS trigger LANGUAGE plpgsql AS $ds$
            BEGIN
              \(skip)
              INSERT INTO ds_change_outbox (\(cols)) SELECT \(lit), \(pkNames), \(select);
              RETURN NULL;
            END
            $ds$;
            CREATE TRIGGER \(db.quote(trigger)) AFTER \(event) ON \(table)
              REFERENCING \(transition) FOR EACH STATEMENT EXECUTE FUNCTION \(db.quote(function))();
            """
        }
        return """
            \(statementTrigger(f.insert, n.insert, event: "INSERT", transition: "NEW TABLE AS ds_new_rows",
                               select: "\(key("ds_n")), 'I', NULL, \(row("ds_n")), NULL, \(common) FROM ds_new_rows AS ds_n"))
            \(statementTrigger(f.delete, n.delete, event: "DELETE", transition: "OLD TABLE AS ds_old_rows",
                               select: "\(key("ds_o")), 'D', NULL, NULL, NULL, \(common) FROM ds_old_rows AS ds_o"))
            CREATE FUNCTION \(db.quote(n.function))() RETURNS trigger LANGUAGE plpgsql AS $ds$
            BEGIN
              \(skip)
              IF ROW(\(keyNew)) IS DISTINCT FROM ROW(\(keyOld)) THEN
                INSERT INTO ds_change_outbox (\(cols)) VALUES (\(lit), \(pkNames), \(key("OLD")), 'D', NULL, NULL, NULL, \(common));
                INSERT INTO ds_change_outbox (\(cols)) VALUES (\(lit), \(pkNames), \(key("NEW")), 'I', NULL, \(row("NEW")), NULL, \(common));
              ELSE
            \(perColumn)  END IF;
              RETURN NULL;
            END
            $ds$;
            CREATE TRIGGER \(db.quote(n.update)) AFTER UPDATE ON \(table)
              FOR EACH ROW EXECUTE FUNCTION \(db.quote(n.function))();
            CREATE FUNCTION \(db.quote(n.truncate))() RETURNS trigger LANGUAGE plpgsql AS $ds$
            BEGIN
              \(skip)
              RAISE EXCEPTION 'TRUNCATE of DataJoin-tracked table % is refused: it would not be synced. Use DELETE, or run datajoin untrack first.', TG_TABLE_NAME;
            END
            $ds$;
            CREATE TRIGGER \(db.quote(n.truncate)) BEFORE TRUNCATE ON \(table)
              FOR EACH STATEMENT EXECUTE FUNCTION \(db.quote(n.truncate))();
            """
    }
}
