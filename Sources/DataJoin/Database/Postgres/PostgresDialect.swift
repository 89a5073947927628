import Foundation

/// PostgreSQL: many writers at once, capture by statement triggers over transition tables,
/// stamping in commit order of source transactions, planner statistics kept fresh.
public struct PostgresDialect: Dialect {
    public var brand: Brand { .postgres }

    /// PostgreSQL cuts a longer name to 63 bytes (NAMEDATALEN − 1) without a word.
    public func nameLimitProblem(_ name: String) -> String? {
        name.utf8.count > 63 ? "has \(name.utf8.count) bytes; PostgreSQL keeps 63 and cuts the rest" : nil
    }

    // MARK: - DataJoin's own tables

    public var autoIdColumn: SQL { "BIGSERIAL PRIMARY KEY" }
    public var bytesType: SQL { "BYTEA" }
    public var keyBytesType: SQL { "BYTEA" }
    public var capturedValueType: SQL { "TEXT" }
    /// Its cursor's fetches stop at their bytes (`PostgresDatabase.stream`).
    public var streamsByCount: Bool { false }
    /// Stamping reads unstamped rows in (source transaction, id) order without sorting them.
    public var extraSchema: SQL {
        "CREATE INDEX IF NOT EXISTS ds_change_outbox_unstamped_order ON ds_change_outbox (source_id, id) WHERE seq IS NULL;"
    }

    public func isInstalled(_ db: Database) throws -> Bool {
        try db.scalar("SELECT count(*) FROM (SELECT to_regclass('ds_node') AS t) AS ds_r WHERE t IS NOT NULL").asInt64
            ?? 0 > 0
    }

    public func isTable(_ db: Database, _ name: String) throws -> Bool? {
        try db.firstRow("SELECT relkind FROM pg_catalog.pg_class WHERE oid = to_regclass(?)", [.text(name)]).map {
            ["r", "p"].contains($0.string(0) ?? "")
        }
    }

    /// Index names share the schema's namespace with tables: any relation of the name clashes.
    public func holderOfIndexName(_ db: Database, _ name: String) throws -> String? {
        try db.firstRow(
            """
            SELECT coalesce(t.relname, c.relname) FROM pg_catalog.pg_class AS c
            LEFT JOIN pg_catalog.pg_index AS i ON i.indexrelid = c.oid LEFT JOIN pg_catalog.pg_class AS t ON t.oid = i.indrelid
            WHERE c.oid = to_regclass(?)
            """, [.text(name)]
        )?.string(0)
    }

    public func hasColumn(_ db: Database, table: String, column: String) throws -> Bool {
        try db.scalar(
            "SELECT count(*) FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass(?) AND attname = ? AND NOT attisdropped",
            [.text(table), .text(column)]
        ).asInt64 ?? 0 > 0
    }

    /// The private key is readable by the table owner only.
    public func protectPrivateKey(_ db: Database) throws {
        try db.executeScript("REVOKE ALL ON ds_node_key FROM PUBLIC; REVOKE ALL ON ds_encryption_key FROM PUBLIC")
    }

    // MARK: - Application tables

    /// A domain's column has its base type, with the domain's precision (`numeric(10,2)` for
    /// `CREATE DOMAIN price AS numeric(10,2)`), down a chain of domains: the values a column
    /// stores altered are the base type's (found from outside: a domain skipped every check).
    public func columns(_ db: Database, of table: String) throws -> [ColumnInfo] {
        var cols: [ColumnInfo] = []
        let sql: SQL = """
            SELECT a.attname,
              (WITH RECURSIVE d(oid, mod, depth) AS (
                 SELECT a.atttypid, a.atttypmod, 0
                 UNION ALL SELECT t.typbasetype, CASE WHEN d.mod >= 0 THEN d.mod ELSE t.typtypmod END, d.depth + 1
                 FROM pg_catalog.pg_type t JOIN d ON t.oid = d.oid WHERE t.typtype = 'd')
               SELECT format_type(d.oid, d.mod) FROM d ORDER BY d.depth DESC LIMIT 1),
              coalesce((SELECT k.ord FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) WHERE k.attnum = a.attnum), 0)
            FROM pg_catalog.pg_attribute a
            JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary
            WHERE c.relname = ? AND n.nspname = current_schema() AND c.relkind IN ('r', 'p')
              AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
            ORDER BY a.attnum
            """
        try db.query(sql, [.text(table)]) { r in
            let type = r.string(1) ?? ""
            cols.append(
                ColumnInfo(
                    name: r.string(0) ?? "", dataType: type, kind: valueKind(declaredType: type),
                    pkPosition: Int(r.int(2) ?? 0)))
        }
        return cols
    }

    /// A `character(n)` without its padding, as its cast to text gives it, which the capture
    /// sends: a snapshot read it padded (`ab   `), so a node joined from one held other text
    /// than the nodes the capture fed (found in review). MariaDB's `CHAR` reads so too.
    public func selected(_ columns: [ColumnInfo]) -> SQL {
        SQL(
            raw: columns.map { c in
                Self.isPaddedCharacter(c.dataType) ? "\(c.identifier.quoted)::text" : c.identifier.quoted
            }.joined(separator: ", "))
    }

    /// A character type whose length `size` holds: a switch, not an array built per value.
    private static func hasLength(_ typeBeforeParenthesis: String) -> Bool {
        switch typeBeforeParenthesis {
        case "character varying", "character", "varchar", "char", "bpchar": return true
        default: return false
        }
    }

    /// `character(n)`, and `bpchar` (declared without a length: it keeps what it is given but
    /// compares, and casts to text, without trailing spaces), not an array of them.
    static func isPaddedCharacter(_ type: String) -> Bool {
        type == "bpchar" || (type.hasPrefix("character(") && type.hasSuffix(")"))
    }

    public func valueKind(declaredType: String) -> ValueKind {
        switch declaredType.components(separatedBy: "(").first ?? declaredType {
        case "smallint", "integer", "bigint": return .integer
        case "real", "double precision": return .real
        case "boolean": return .boolean
        case "bytea": return .blob
        default: return .text
        }
    }

    public func foreignKeys(_ db: Database, among tables: Set<String>) throws -> [ForeignKeyColumn] {
        var out: [ForeignKeyColumn] = []
        try db.query(
            """
            SELECT c.relname, p.relname, a.attname, b.attname, k.oid,
              CASE k.confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT'
                WHEN 'r' THEN 'RESTRICT' ELSE 'NO ACTION' END,
              CASE k.confupdtype WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT'
                WHEN 'r' THEN 'RESTRICT' ELSE 'NO ACTION' END
            FROM pg_catalog.pg_constraint k
            JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
            JOIN pg_catalog.pg_class p ON p.oid = k.confrelid
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            CROSS JOIN LATERAL unnest(k.conkey, k.confkey) WITH ORDINALITY AS u (child, parent, i)
            JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.child
            JOIN pg_catalog.pg_attribute b ON b.attrelid = k.confrelid AND b.attnum = u.parent
            WHERE k.contype = 'f' AND n.nspname = current_schema()
            ORDER BY k.oid, u.i
            """, []
        ) { r in
            if let c = r.string(0), let p = r.string(1), let col = r.string(2), tables.contains(c), tables.contains(p) {
                out.append(
                    .init(
                        child: c, parent: p, column: col, parentColumn: r.string(3) ?? "",
                        constraint: r.string(4) ?? "",
                        onDelete: ForeignKeyAction(sql: r.string(5)), onUpdate: ForeignKeyAction(sql: r.string(6))))
            }
        }
        return out
    }

    /// The columns an expression or a partial index's condition reads come from `pg_depend`;
    /// `INCLUDE` columns are stored, not compared. An exclusion constraint compares with its own
    /// operators, and a uuid, date, time or other typed column equates texts that differ
    /// (`{…}` and `…`, `2024-1-5` and `2024-01-05`): any change to what they read counts.
    public func uniqueIndexes(_ db: Database, among tables: Set<String>) throws -> [UniqueIndex] {
        var out: [UniqueIndex] = []
        try db.query(
            """
            SELECT c.relname, x.relname, i.indexprs IS NULL AND NOT i.indisexclusion
              AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute k
                WHERE k.attrelid = i.indrelid AND k.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1])
                  AND k.atttypid NOT IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'int2'::regtype,
                    'int4'::regtype, 'int8'::regtype, 'float4'::regtype, 'float8'::regtype, 'numeric'::regtype)),
              array_to_string(ARRAY(
                SELECT a.attname FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = i.indrelid AND a.attnum > 0
                  AND (a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1])
                  OR ((i.indexprs IS NOT NULL OR i.indpred IS NOT NULL) AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = i.indexrelid
                      AND d.refobjid = i.indrelid AND d.refobjsubid = a.attnum)))
                ORDER BY a.attnum), E'\\x1f')
            FROM pg_catalog.pg_index i
            JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
            JOIN pg_catalog.pg_class x ON x.oid = i.indexrelid
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE (i.indisunique OR i.indisexclusion) AND NOT i.indisprimary AND n.nspname = current_schema()
            ORDER BY c.relname, x.relname
            """, []
        ) { r in
            guard let t = r.string(0), tables.contains(t) else { return }
            let columns = (r.string(3) ?? "").split(separator: "\u{1F}").map(String.init)
            out.append(
                UniqueIndex(
                    table: t, name: r.string(1) ?? "", columns: columns, plain: r.string(2) == "t" || r.int(2) == 1))
        }
        return out
    }

    /// serial, bigserial, identity and `DEFAULT nextval(…)` keys: the sequence the column draws
    /// from, as PostgreSQL names it (quoted and schema-qualified).
    public func generatedKey(_ db: Database, _ t: TableInfo) throws -> GeneratedKey? {
        guard t.keyColumns.count == 1, let k = t.keyColumns.first else { return nil }
        // A key column renamed since `track`: no generator to ask (pg_get_serial_sequence fails
        // on a column that is not there, and every import with it; found in review).
        guard
            try db.scalar(
                "SELECT count(*) FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass(?) AND attname = ? AND attnum > 0 AND NOT attisdropped",
                [.text(t.identifier.quoted), .text(k.name)]
            ).asInt64 ?? 0 > 0
        else { return nil }
        // The column as it is now, not as tracked: a table rebuilt with a SMALLINT key made every
        // import fail on a block's bounds (22003, found from outside).
        guard
            let r = try db.firstRow(
                """
                SELECT pg_get_serial_sequence(?, ?), (SELECT (CASE WHEN y.typtype = 'd' THEN y.typbasetype ELSE y.oid END)::regtype::text
                  FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type y ON y.oid = a.atttypid WHERE a.attrelid = to_regclass(?) AND a.attname = ? AND a.attnum > 0 AND NOT a.attisdropped)
                """, [.text(t.identifier.quoted), .text(k.name), .text(t.identifier.quoted), .text(k.name)]),
            let sequence = r.string(0)
        else { return nil }
        let max: Int64
        switch r.string(1) ?? k.dataType {
        case "smallint": max = Int64(Int16.max)
        case "integer": max = Int64(Int32.max)
        case "bigint": max = Int64.max
        default: return nil
        }
        return GeneratedKey(column: k.name, generator: sequence, maxValue: max)
    }

    /// `pg_sequence_last_value` is NULL before the first `nextval`.
    public func generatorNext(_ db: Database, _ key: GeneratedKey) throws -> Int64? {
        try db.scalar("SELECT pg_sequence_last_value(CAST(? AS regclass))", [.text(key.generator)]).asInt64.map {
            $0 + 1
        }
    }

    /// A sequence hands out what it is told, whatever rows the table holds: the block is its
    /// range, with no wrap-around.
    public func setUpKeyBlock(
        _ db: Database, _ t: TableInfo, _ key: GeneratedKey, range: ClosedRange<Int64>, next: Int64
    ) throws {
        // DDL takes no parameters: the numbers are written, the name is PostgreSQL's own quoting.
        try db.executeScript(
            """
            ALTER SEQUENCE \(raw: key.generator) MINVALUE \(literal: range.lowerBound) MAXVALUE \(literal: range.upperBound) \
            START WITH \(literal: range.lowerBound) RESTART WITH \(literal: next) NO CYCLE
            """)
    }

    /// `setval` only forward: `pg_sequence_last_value` is NULL before the first `nextval`.
    public var keyBlocksPossible: Bool { true }

    /// A table rebuilt has a sequence of its own again, and one altered by hand other bounds.
    public func keyBlockLost(_ db: Database, _ t: TableInfo, _ key: GeneratedKey, range: ClosedRange<Int64>) throws
        -> Bool
    {
        let r = try db.firstRow(
            "SELECT seqmin, seqmax FROM pg_catalog.pg_sequence WHERE seqrelid = to_regclass(?)", [.text(key.generator)])
        return r?.int(0) != range.lowerBound || r?.int(1) != range.upperBound
    }

    public func raiseKeyBlock(_ db: Database, _ key: GeneratedKey, above id: Int64) throws {
        try db.execute(
            """
            SELECT setval(CAST(? AS regclass), ?) WHERE coalesce(pg_sequence_last_value(CAST(? AS regclass)), 0) < ?
            """, [.text(key.generator), .integer(id), .text(key.generator), .integer(id)])
    }

    /// Refuses a key column under which two keys other brands keep apart are one here, as on
    /// MariaDB: `char(n)` (it pads, so 'ab' and 'ab ' are one key) and a nondeterministic
    /// (ICU, case- or accent-insensitive) collation. Rows merged silently (found from outside).
    public func keyWarnings(_ db: Database, _ t: TableInfo) throws -> [String] {
        for k in t.keyColumns {
            // The column's type, each domain's base down the chain, and their element types.
            let table = Value.text(Identifier(t.name).quoted), column = Value.text(k.name)
            guard
                let r = try db.firstRow(
                    """
                    WITH RECURSIVE chain(oid) AS (
                      SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = to_regclass(?) AND a.attname = ?
                      UNION ALL SELECT t.typbasetype FROM pg_type t JOIN chain c ON t.oid = c.oid WHERE t.typtype = 'd')
                    SELECT format_type(a.atttypid, a.atttypmod),
                      (SELECT string_agg(t.typname || ',' || coalesce(e.typname, ''), ',') FROM chain c JOIN pg_type t ON t.oid = c.oid LEFT JOIN pg_type e ON e.oid = t.typelem),
                      c.collname, (NOT coalesce(c.collisdeterministic, true))::int
                    FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation
                    WHERE a.attrelid = to_regclass(?) AND a.attname = ?
                    """, [table, column, table, column])
            else { continue }
            let types = Set((r.string(1) ?? "").split(separator: ",").map(String.init))
            let merging: [(type: String, why: String, cure: String)] = [
                (
                    "bpchar",
                    "pads with spaces, so 'ab' and 'ab ' are one key here and two elsewhere and rows other nodes keep apart would merge",
                    "declare it varchar or text (ALTER TABLE … ALTER COLUMN \(k.name) TYPE text)"
                ),
                (
                    "citext",
                    "compares without case, so 'Smith' and 'smith' are one key here and two elsewhere and rows other nodes keep apart would merge",
                    "declare it text"
                ),
                (
                    "name",
                    "cuts text at 63 bytes, so two longer keys that start alike are one key here and two elsewhere",
                    "declare it text"
                ),
            ]
            if let m = merging.first(where: { types.contains($0.type) }) {
                throw DataJoinError(
                    .usage,
                    "\(t.name): its key column \(k.name) is \(r.string(0) ?? m.type), which \(m.why); \(m.cure), then track again"
                )
            }
            if r.int(3) == 1 {
                throw DataJoinError(
                    .usage,
                    "\(t.name): its key column \(k.name) uses the nondeterministic collation \(r.string(2) ?? "?"), under which keys that differ in case or accents are one key, so rows other nodes keep apart would merge here; declare it with a deterministic collation (ALTER TABLE … ALTER COLUMN \(k.name) TYPE text COLLATE \"C\"), then track again"
                )
            }
        }
        let advice = "two nodes will hand out the same ids; use UUIDs, or per-node prefixes or ranges"
        for k in t.keyColumns {
            let d =
                try db.scalar(
                    """
                    SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
                    WHERE d.adrelid = to_regclass(?) AND a.attname = ?
                    """, [.text(Identifier(t.name).quoted), .text(k.name)]
                ).asString ?? ""
            let identity =
                try db.scalar(
                    "SELECT attidentity FROM pg_attribute WHERE attrelid = to_regclass(?) AND attname = ?",
                    [.text(Identifier(t.name).quoted), .text(k.name)]
                ).asString ?? ""
            if d.contains("nextval(") || identity == "a" || identity == "d" {
                return ["\(t.name): its key \(k.name) comes from a local sequence; \(advice)"]
            }
        }
        return []
    }

    // MARK: - Capture

    /// A value captured as its text output, typed by the column's kind.
    public func capturedValue(_ text: String?, kind: ValueKind) -> Value {
        guard let text else { return .null }
        switch kind {
        case .integer: return Int64(text).map(Value.integer) ?? .text(text)
        case .real: return ValueConversion.parseReal(text).map(Value.real) ?? .text(text)
        case .boolean: return .integer(text == "t" || text == "true" ? 1 : 0)
        case .blob:
            if text.hasPrefix("\\x"), let b = Hex.decode(text.dropFirst(2)) { return .blob(b) }
            return .blob(Array(text.utf8))
        case .text, .any: return .text(text)
        }
    }

    /// A transaction-local setting the triggers read: gone at commit or rollback.
    public func setApplying(_ db: Database, _ table: String?) throws {
        // `writing` names the table (no table is named "", so the empty value matches no
        // trigger's own); `applying` is what the triggers of a version before 17 read, left
        // on a table the upgrade did not write again: they skip every write of an import.
        try db.execute(
            "SELECT set_config('datajoin.applying', ?, true), set_config('datajoin.writing', ?, true)",
            [.text(table == nil ? "off" : "on"), .text(table ?? "")])
    }

    /// Only DEFERRABLE constraints defer; IMMEDIATE at the end checks them here, not at COMMIT.
    public func deferForeignKeys(_ db: Database, _ on: Bool) throws {
        try db.execute(on ? "SET CONSTRAINTS ALL DEFERRED" : "SET CONSTRAINTS ALL IMMEDIATE")
    }

    // MARK: - Stamping

    /// For the rest of the transaction (the importer's too, which stamps first): the version
    /// tables may have grown by a million rows since their statistics were taken, and every
    /// statement of stamping and import has an index path (keys, ids). Bitmap scans too: on
    /// such statistics the planner bitmap-scanned the version table's whole `object_table`
    /// prefix and filtered 100,000 rows for 400 keys.
    public func prepareStamping(_ db: Database) throws {
        try db.execute("SET LOCAL enable_seqscan = off")
        try db.execute("SET LOCAL enable_bitmapscan = off")
    }

    /// DataJoin's sessions plan every execution (`force_custom_plan`: tables that grew inside a
    /// transaction mislead a plan made before). The importer's multi-row `UPDATE … FROM` of up
    /// to 256 typed rows has one plan whatever the values (a key lookup per row), and planning
    /// it was 81 % of its time (server log: 3.5 s of bind against 0.8 s of execution for
    /// 100,000 updates). `SET LOCAL` ends with the transaction or its savepoint if `body` throws.
    public func planOnce<T>(_ db: Database, _ body: () throws -> T) throws -> T {
        try db.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        let result = try body()
        try db.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        return result
    }

    /// Unstamped rows are found through a partial index, not above a cursor.
    public func stampedThrough(_ db: Database) throws -> Int64 { 0 }
    public func setStampedThrough(_ db: Database, _ id: Int64) throws {}
    public func strandedCount(_ db: Database) throws -> Int64 { 0 }
    public func repairStranded(_ db: Database) throws -> Int64 { 0 }

    /// Whole source transactions in the order of their last outbox id, which is commit order
    /// wherever order matters. Two transactions that write the same row are serialized by its
    /// lock: the later one's outbox row for it gets its id only after the earlier one
    /// committed, so the earlier one's last id is lower. Transaction id order is not commit
    /// order: a transaction that began first and committed last was stamped first, lost
    /// last-writer-wins on every peer, and an update of a row re-inserted by a newer
    /// transaction got a deleted generation and stopped export for good (both found from
    /// outside).
    public func nextStampChunk(_ db: Database, _ cursor: inout StampCursor, select: SQL, size: Int) throws -> [Row] {
        if let p = cursor.partial {
            let rows = try db.rows(
                select + " AND source_id = ? AND id > ? ORDER BY id LIMIT \(literal: size)",
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
                    GROUP BY source_id ORDER BY max(id) LIMIT \(literal: max(size, 1_000))
                    """
                ).map { (source: $0.int(0) ?? 0, rows: $0.int(2) ?? 0) }
                cursor.transactions = window[...]
                if window.isEmpty { cursor.nullPhase = true }
            }
            if let first = cursor.transactions.first, first.rows >= Int64(size) {
                // One transaction of a chunk or more: read in parts.
                cursor.transactions.removeFirst()
                cursor.partial = (first.source, Int64.min)
                return try nextStampChunk(db, &cursor, select: select, size: size)
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
            if !cursor.nullPhase { return try nextStampChunk(db, &cursor, select: select, size: size) }
        }
        // Rows an application wrote itself (no source transaction) come last, in id order.
        let rows = try db.rows(
            select + " AND source_id IS NULL AND id > ? ORDER BY id LIMIT \(literal: size)",
            [.integer(cursor.lastNullId)])
        cursor.lastNullId = rows.last?.int(0) ?? cursor.lastNullId
        return rows
    }

    /// One statement per chunk, four array parameters: the server parses and binds four values
    /// instead of 1,600 per 400 rows (the stamp writes were the largest statement of an export).
    public func writeStamps(_ db: Database, _ stamps: [[Int64]], node: String, batch: Int) throws {
        func array(_ i: Int) -> Value { .text("{" + stamps.map { String($0[i]) }.joined(separator: ",") + "}") }
        try db.execute(
            """
            UPDATE ds_change_outbox SET seq = v.seq, hlc = v.hlc, cl = v.cl, updated_by_server_id = ?
            FROM unnest(CAST(? AS bigint[]), CAST(? AS bigint[]), CAST(? AS bigint[]), CAST(? AS bigint[])) AS v(id, seq, hlc, cl)
            WHERE ds_change_outbox.id = v.id
            """, [.text(node), array(0), array(1), array(2), array(3)])
    }

    /// REPEATABLE READ: one snapshot, and application writers are never blocked.
    public var writeTransactionReadsWithoutBlocking: Bool { true }

    // MARK: - Statements that differ

    public func insertSkippingDuplicates(into table: SQL, columns: SQL, rows: SQL) -> SQL {
        "INSERT INTO \(table) (\(columns)) VALUES \(rows) ON CONFLICT DO NOTHING"
    }

    public func insertReturningId(_ db: Database, _ sql: SQL) throws -> Int64 {
        try db.scalar(sql + " RETURNING id").asInt64 ?? 0
    }

    public var falseCondition: SQL { "false" }

    /// On a version table that grew in this transaction (no statistics for `object_table`),
    /// PostgreSQL read the table's whole prefix and filtered it: 100,000 rows for every 400
    /// keys. A lateral subquery it cannot flatten (`OFFSET 0`) looks each key up on its own.
    public func keyedVersions(_ columns: SQL, from versions: SQL, keys: Int) -> SQL {
        let values = SQL(
            raw: (["(CAST(? AS bytea))"] + Array(repeating: "(?)", count: keys - 1)).joined(separator: ", "))
        return
            "SELECT \(columns) FROM (SELECT CAST(? AS text) AS t) AS ds_t CROSS JOIN (VALUES \(values)) AS ds_k (id) "
            + "CROSS JOIN LATERAL (SELECT \(columns) FROM \(versions) WHERE object_table = ds_t.t AND object_id = ds_k.id OFFSET 0) AS ds_v"
    }

    /// The rows found key by key (as in `keyedVersions`), then deleted by ctid.
    public func deleteColumnVersions(keys: Int) -> SQL {
        "DELETE FROM ds_column_version WHERE ctid = ANY (ARRAY(\(keyedVersions("ctid", from: "ds_column_version", keys: keys))))"
    }

    /// PostgreSQL plans from statistics; a table that just grew by thousands of rows would be
    /// planned as if it were still small. Analyzes each of `tables` after `changes` ≥ 5,000 that
    /// are also at least a tenth of its rows at the last ANALYZE (autovacuum's own rule): on a
    /// table of millions, 10,000 more rows change no plan, and analyzing it cost a 10,000-change
    /// step a third of its time.
    public func refreshStatistics(_ db: Database, _ tables: [String], after changes: Int) throws {
        guard changes >= 5_000 else { return }
        for t in tables {
            let rows =
                try db.scalar(
                    "SELECT reltuples::bigint FROM pg_catalog.pg_class WHERE oid = to_regclass(?)", [.text(t)]
                ).asInt64 ?? -1
            if rows <= 0 || Int64(changes) * 10 >= rows { try db.execute("ANALYZE \(Identifier(t))") }
        }
    }

    // MARK: - Values

    public func valueProblem(_ value: Value, _ col: ColumnInfo) -> String? {
        let type = col.dataType
        // A `text` column, the common case, can be wrong only by a NUL or bytes: decided first,
        // since the checks below compare the type's name a dozen times per value (a tenth of
        // the client's time in an import of text columns).
        if col.type.lowered == "text" {
            switch value {
            case .text(let s): return s.utf8.contains(0) ? "a NUL byte, which PostgreSQL text cannot hold" : nil
            case .blob(let b):
                return "\(b.count) byte(s) of binary data, which a column of type \(type) would read as another value"
            default: return nil
            }
        }
        // Bytes (a SQLite BLOB) for a column of another type: PostgreSQL read them as that
        // type's binary format (`X'01'` became true) or refused them only as a broken message;
        // text for a bytea column was read as bytea's escape syntax (`\x4142` became `AB`).
        // The value would change its type or its bytes here (found from outside).
        if case .blob(let b) = value, col.kind != .blob {
            return "\(b.count) byte(s) of binary data, which a column of type \(type) would read as another value"
        }
        // Reached by a key only: a value is bound as its bytes (`storedValue`).
        if case .text = value, col.kind == .blob {
            return "text for a bytea column, which would read it as bytea's escape syntax, not as this text"
        }
        // PostgreSQL's one-byte `"char"` keeps the first byte of a longer text (found from outside).
        // Its own text of a byte past 127 is `\ooo` (PostgreSQL 15 on), which it reads back.
        if type == "\"char\"", case .text(let s) = value, s.utf8.count > 1,
            !(s.utf8.count == 4 && s.utf8.first == 92 && s.utf8.dropFirst().allSatisfy { $0 >= 48 && $0 <= 55 })
        {
            return "\(s.utf8.count) bytes; a \"char\" column keeps only the first"
        }
        if case .text(let s) = value, s.utf8.contains(0) {
            return "a NUL byte, which PostgreSQL text cannot hold"
        }
        // PostgreSQL stores a float4 and prints its shortest text; what comes back must be this value.
        if type == "real", case .real(let d) = value, !d.isNaN, Double(String(describing: Float(d))) != d {
            return
                "\(Value.realText(d)) needs double precision; a real column would round it (declare it double precision)"
        }
        if type.hasPrefix("numeric("), let problem = ValueFit.scaleProblem(value, type) { return problem }
        // A `character(n)` pads its text and compares, prints by its cast and sends it without
        // trailing spaces: text that ends in spaces would be other text here than where it came
        // from, as in MariaDB's `CHAR` (found from outside).
        if case .text(let s) = value, Self.isPaddedCharacter(col.dataType), s.utf8.last == 0x20 {
            return "trailing spaces, which a \(type) column ignores (it compares and sends its text without them)"
        }
        // A text longer than a `varchar(n)` or `char(n)` fails on the server, one statement
        // error per change (a `char(n)` would drop trailing spaces past n): held here.
        let scalar = !col.type.lowered.hasSuffix("]")  // an array's text is checked by PostgreSQL, not here
        if scalar, let problem = Self.rangeProblem(value, col.type.lowered) { return problem }
        if case .text(let s) = value, scalar, col.type.size > 0,
            Self.hasLength(col.type.beforeParenthesis),
            s.unicodeScalars.count > col.type.size
        {
            return "\(s.unicodeScalars.count) characters, more than \(type) holds"
        }
        // `timestamp(0)`, `time(3) with time zone`: PostgreSQL rounds finer seconds to the
        // precision without an error (found from outside: `.678901` arrived as the next second).
        if case .text(let s) = value, scalar, col.type.firstWord == "timestamp" || col.type.firstWord == "time",
            col.type.lowered.contains("("), ValueFit.significantFractionDigits(s) > col.type.size
        {
            return
                "\(s.clipped(40)) has \(ValueFit.significantFractionDigits(s)) fractional second digit(s); \(type) would round them to \(col.type.size)"
        }
        if case .text(let s) = value, let problem = ValueFit.postgresReadsAsOther(s, type) { return problem }
        if case .text(let s) = value, let kind = ValueFit.postgresSpelled(col.type),
            let problem = ValueFit.spellingProblem(s, kind, typeName: type, brand: "PostgreSQL")
        {
            return problem
        }
        return nil
    }

    /// An integer a `boolean`, `smallint`, `integer` or `bigint` column cannot hold (a MariaDB
    /// `TINYINT(1)` of 2, a `BIGINT UNSIGNED` above 2^63 − 1): PostgreSQL refuses it, one server
    /// error per change that named no column (found from outside); held here with the reason.
    static func rangeProblem(_ value: Value, _ type: String) -> String? {
        let range: ClosedRange<Int64>
        switch type {
        case "boolean":
            if case .integer(let i) = value, i != 0 && i != 1 {
                return "the integer \(i) is neither true nor false (1 or 0), which a boolean column holds"
            }
            return nil
        case "smallint": range = Int64(Int16.min)...Int64(Int16.max)
        case "integer": range = Int64(Int32.min)...Int64(Int32.max)
        case "bigint": range = Int64.min...Int64.max
        default: return nil
        }
        switch value {
        case .integer(let i) where !range.contains(i):
            return "\(i) is outside what \(type) holds (\(range.lowerBound) to \(range.upperBound))"
        case .text(let s)
        where s.utf8.count <= 40 && Int64(s).map({ !range.contains($0) }) ?? ValueFit.isWholeNumber(s):
            return "\(s) is outside what \(type) holds (\(range.lowerBound) to \(range.upperBound))"
        default:
            return nil
        }
    }

    /// Text for a bytea column is bound as its bytes, as MariaDB stores text in a BLOB: bound as
    /// text, PostgreSQL read it as bytea's escape syntax (`\\x4142` became `AB`; found from
    /// outside, and holding it held every JSON text a SQLite BLOB column kept; found in review).
    public func storedValue(_ value: Value, _ column: ColumnInfo) -> Value {
        if case .text(let s) = value, column.kind == .blob { return .blob(Array(s.utf8)) }
        return value
    }

    /// A number for a bytea key is the bytes of its text there: 12 and X'3132' would be one row
    /// (found from outside: a delete of one removed the other).
    public func keySpellingProblem(_ value: Value, _ column: ColumnInfo) -> String? {
        switch value {
        case .integer, .real:
            return column.kind == .blob
                ? "a number for a bytea key column, which would hold its text as bytes and match a key of the same bytes"
                : nil
        default: return nil
        }
    }

    public func keyProblem(_ key: [Value]) -> String? {
        let nul = key.contains { if case .text(let s) = $0 { return s.utf8.contains(0) } else { return false } }
        return nul ? "the key holds a NUL byte, which PostgreSQL text cannot hold" : nil
    }

    // MARK: - Locks

    /// A session advisory lock held by the connection. A watch killed in mid-statement keeps its
    /// server session, and the lock, until the statement ends (found from outside on MariaDB,
    /// about 5 s; PostgreSQL ends it sooner).
    public func instanceLock(_ db: Database, for purpose: LockPurpose) throws -> HeldLock {
        let key: Int64 = purpose == .watch ? 4_242_000_002 : 4_242_000_003
        guard try db.scalar("SELECT pg_try_advisory_lock(?)", [.integer(key)]) == .integer(1) else {
            throw DataJoinError(.locked, purpose.takenOnServer(db.displayName))
        }
        return AdvisoryLock(db, key: key)
    }
}
