import CSQLite
import Foundation

/// SQLite: one writer at a time, values typed by affinity, capture by row triggers that tag
/// each value with its storage class.
public struct SQLiteDialect: Dialect {
    public var brand: Brand { .sqlite }

    // MARK: - DataJoin's own tables

    public var autoIdColumn: SQL { "INTEGER PRIMARY KEY AUTOINCREMENT" }
    public var bytesType: SQL { "BLOB" }
    public var keyBytesType: SQL { "BLOB" }
    /// No type: a captured value keeps its own storage class.
    public var capturedValueType: SQL { "" }
    public var extraSchema: SQL { "" }
    /// Steps one row at a time.
    public var streamsByCount: Bool { false }

    public func isInstalled(_ db: Database) throws -> Bool {
        try db.scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'ds_node'").asInt64 ?? 0 > 0
    }

    public func isTable(_ db: Database, _ name: String) throws -> Bool? {
        try db.firstRow(
            "SELECT type FROM sqlite_master WHERE name = ? COLLATE NOCASE AND type IN ('table', 'view')", [.text(name)]
        ).map { $0.string(0) == "table" }
    }

    public func holderOfIndexName(_ db: Database, _ name: String) throws -> String? {
        try db.firstRow("SELECT tbl_name FROM sqlite_master WHERE name = ? COLLATE NOCASE", [.text(name)])?.string(0)
    }

    public func hasColumn(_ db: Database, table: String, column: String) throws -> Bool {
        try db.scalar("SELECT count(*) FROM pragma_table_info(?) WHERE name = ?", [.text(table), .text(column)])
            .asInt64 ?? 0 > 0
    }

    public func upgradeSteps(_ db: Database, from version: Int64) throws {
        if version < 5 {
            // Stamping finds the backlog above a stored id instead of through an index
            // (stampedThroughSetting): the id below the first unstamped row.
            try db.execute(
                """
                INSERT INTO ds_setting (name, value) SELECT ?, coalesce((SELECT min(id) - 1 FROM ds_change_outbox WHERE seq IS NULL),
                  (SELECT max(id) FROM ds_change_outbox), 0) WHERE true ON CONFLICT (name) DO UPDATE SET value = excluded.value
                """, [.text(Self.stampedThroughSetting)])
            try db.executeScript("DROP INDEX IF EXISTS ds_change_outbox_unstamped_order")
        }
        if version < 6 {
            // Versions before 6 could move the stamping cursor over rows they never stamped (a
            // backlog over one export step): such rows go back into the backlog.
            _ = try repairStranded(db)
        }
        if version < 7 { try movePayloadLast(db) }
        if version < 15 { try rewriteOperationCheck(db) }
    }

    /// Versions before 15 checked the outbox's operation with an IN list, which SQLite evaluates
    /// by building a lookup table for every row a capture trigger writes. The check is replaced
    /// by its equivalent in place, as SQLite's documentation describes for changing a CHECK
    /// constraint (lang_altertable.html, "Making Other Kinds Of Table Schema Changes"): the rows
    /// on disk do not change, so the table is not copied (an outbox may hold millions).
    func rewriteOperationCheck(_ db: Database) throws {
        let old: SQL = "CHECK (object_operation IN ('I','U','D'))"
        guard
            let sql = try db.scalar("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'ds_change_outbox'")
                .asString, sql.contains(old.text)
        else { return }
        // A connection in SQLite's defensive mode may not write sqlite_master: the check stays as
        // it is (correct, only slower), rather than failing the upgrade and every command after
        // it (found in review).
        if Self.connection(db)?.isDefensive ?? false { return }
        let schemaVersion = try db.scalar("PRAGMA schema_version").asInt64 ?? 0
        try db.execute("PRAGMA writable_schema = ON")
        defer { _ = try? db.execute("PRAGMA writable_schema = OFF") }
        try db.execute(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'ds_change_outbox'",
            [.text(sql.replacingOccurrences(of: old.text, with: "CHECK (\(SyncSchema.operationCheck.text))"))])
        try db.execute(SQL(raw: "PRAGMA schema_version = \(schemaVersion + 1)"))
        try db.execute("PRAGMA writable_schema = OFF")
        // The schema is read again here: text it cannot parse fails this step, and the upgrade's
        // transaction puts the old text back.
        _ = try db.scalar("SELECT count(*) FROM ds_change_outbox WHERE 0")
    }

    /// Nodes of versions before 6 have the payload in the middle of the inbox's row: the table
    /// is rebuilt with it last, ids and the AUTOINCREMENT counter kept (the import pointer is an
    /// id; no id may ever be handed out twice).
    func movePayloadLast(_ db: Database) throws {
        guard
            try db.scalar("SELECT name FROM pragma_table_info('ds_change_inbox') ORDER BY cid DESC LIMIT 1").asString
                != "object_value"
        else { return }
        let counter = try db.scalar("SELECT seq FROM sqlite_sequence WHERE name = 'ds_change_inbox'").asInt64 ?? 0
        try db.executeScript(SyncSchema.inboxTable(self, name: "ds_change_inbox_v6"))
        let columns = SyncSchema.inboxColumnList
        try db.executeScript("INSERT INTO ds_change_inbox_v6 (\(columns)) SELECT \(columns) FROM ds_change_inbox")
        try db.executeScript("DROP TABLE ds_change_inbox")
        try db.executeScript("ALTER TABLE ds_change_inbox_v6 RENAME TO ds_change_inbox")
        // An inbox emptied by pruning has no counter row after the copy: write it back either way.
        let top = max(counter, try db.scalar("SELECT coalesce(max(id), 0) FROM ds_change_inbox").asInt64 ?? 0)
        try db.execute("DELETE FROM sqlite_sequence WHERE name = 'ds_change_inbox'")
        try db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('ds_change_inbox', ?)", [.integer(top)])
    }

    /// A file has no other users than those who can read the file.
    public func protectPrivateKey(_ db: Database) throws {}

    // MARK: - Application tables

    public func columns(_ db: Database, of table: String) throws -> [ColumnInfo] {
        var cols: [ColumnInfo] = []
        try db.query("SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid", [.text(table)]) { r in
            let type = r.string(1) ?? ""
            cols.append(
                ColumnInfo(
                    name: r.string(0) ?? "", dataType: type, kind: valueKind(declaredType: type),
                    pkPosition: Int(r.int(2) ?? 0)))
        }
        return cols
    }

    /// SQLite's affinity rules (https://www.sqlite.org/datatype3.html §3.1).
    /// By the column's affinity, read as SQLite reads it: a type `ﬂoat` (a ligature) or
    /// `ınteger` (a dotless i) is NUMERIC to SQLite, and typing its values as a double or an
    /// integer rounded a 16-digit integer (found from outside; Swift's upper-casing turned the
    /// names into FLOAT and INTEGER).
    public func valueKind(declaredType: String) -> ValueKind {
        switch Self.affinity(declaredType) {
        case .integer: return .integer
        case .text: return .text
        case .blob: return declaredType.isEmpty ? .any : .blob
        case .real: return .real
        case .numeric: return .any
        }
    }

    /// The SQLite connection behind `db`, a dry run's too.
    static func connection(_ db: Database) -> SQLiteDatabase? {
        (db as? DryRunDatabase)?.inner as? SQLiteDatabase ?? db as? SQLiteDatabase
    }

    /// Upper case of ASCII letters only, as SQLite compares type names and keywords.
    static func asciiUppercased(_ s: String) -> String {
        String(decoding: s.utf8.map { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 }, as: UTF8.self)
    }

    public func foreignKeys(_ db: Database, among tables: Set<String>) throws -> [ForeignKeyColumn] {
        var out: [ForeignKeyColumn] = []
        for t in tables.sorted() {
            // `to` is NULL when the key names no columns: the parent's primary key, in order.
            try db.query(
                """
                SELECT f."table", f."from", coalesce(f."to", (SELECT k.name FROM pragma_table_info(f."table") AS k
                  WHERE k.pk = f.seq + 1)), f.id, f.on_delete, f.on_update
                FROM pragma_foreign_key_list(?) AS f ORDER BY f.id, f.seq
                """, [.text(t)]
            ) { r in
                if let p = r.string(0), let c = r.string(1), tables.contains(p) {
                    out.append(
                        .init(
                            child: t, parent: p, column: c, parentColumn: r.string(2) ?? "",
                            constraint: "\(r.int(3) ?? 0)", onDelete: ForeignKeyAction(sql: r.string(4)),
                            onUpdate: ForeignKeyAction(sql: r.string(5))))
                }
            }
        }
        return out
    }

    /// An expression or a partial index's condition can read any column: SQLite does not name them.
    public func uniqueIndexes(_ db: Database, among tables: Set<String>) throws -> [UniqueIndex] {
        var out: [UniqueIndex] = []
        for t in tables.sorted() {
            var indexes: [(name: String, partial: Bool)] = []
            try db.query(
                "SELECT name, \"partial\" FROM pragma_index_list(?) WHERE \"unique\" = 1 AND origin <> 'pk'", [.text(t)]
            ) { r in
                if let n = r.string(0) { indexes.append((n, r.int(1) == 1)) }
            }
            for (name, partial) in indexes {
                var columns: [String] = []
                var expression = false
                try db.query("SELECT name FROM pragma_index_info(?) ORDER BY seqno", [.text(name)]) { r in
                    if let c = r.string(0) { columns.append(c) } else { expression = true }
                }
                let any = expression || partial
                out.append(UniqueIndex(table: t, name: name, columns: any ? nil : columns, plain: !any))
            }
        }
        return out
    }

    /// A rowid alias (one `INTEGER PRIMARY KEY` column of a rowid table), which SQLite fills in
    /// with `max(rowid) + 1`: generated, and no block can be set up for it (docs/keys.md).
    public func generatedKey(_ db: Database, _ t: TableInfo) throws -> GeneratedKey? {
        guard t.keyColumns.count == 1, let k = t.keyColumns.first, Self.asciiUppercased(k.dataType) == "INTEGER" else {
            return nil
        }
        let sql =
            try db.scalar("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [.text(t.name)]).asString
            ?? ""
        if Self.asciiUppercased(sql).contains("WITHOUT ROWID") { return nil }
        return GeneratedKey(column: k.name, generator: "rowid", maxValue: Int64.max)
    }

    public func keyWarnings(_ db: Database, _ t: TableInfo) throws -> [String] {
        var warnings: [String] = []
        let rowid = try generatedKey(db, t) != nil
        // A key compared under NOCASE or RTRIM takes 'K' and 'k' (or 'k ' and 'k') for one row
        // that other nodes keep apart: an insert of one overwrote the other (found from outside),
        // as MariaDB's collations and PostgreSQL's citext would, which `track` refuses too.
        if !rowid {
            let collated = try db.rows(
                """
                SELECT x.name, x.coll FROM pragma_index_list(?) AS l, pragma_index_xinfo(l.name) AS x
                WHERE l.origin = 'pk' AND x.key = 1 AND x.name IS NOT NULL AND upper(x.coll) <> 'BINARY'
                """, [.text(t.name)])
            if let first = collated.first, let column = first.string(0), let coll = first.string(1) {
                throw DataJoinError(
                    .usage,
                    "\(t.name): its key column \(column) compares with COLLATE \(coll), under which keys that differ in case or trailing spaces are one key, so rows other nodes keep apart would merge here; declare the key without COLLATE (rebuild the table), then track again"
                )
            }
        }
        // A key column of BLOB affinity (no declared type, or BLOB) keeps 5 and '5' as two
        // keys, where a key column of one type on any other node takes them for one: an
        // insert of one overwrote the other there, and a delete of one removed both, while every
        // check passed (found from outside). A STRICT table's BLOB column holds blobs only; its
        // ANY column keeps every kind apart, as no type does.
        if !rowid, !Self.tracksMixedKindKeys, let column = try mixedKindKeys(db, t).first {
            let declared = column.dataType.isEmpty ? "has no declared type" : "is declared \(column.dataType)"
            // In a STRICT table only ANY is such a column; `INTEGER PRIMARY KEY` is a rowid,
            // a key the database generates, so it is offered only for a key of several columns.
            let integer = t.keyColumns.count > 1 ? ", INTEGER" : ""
            let cure =
                Self.asciiUppercased(column.dataType) == "ANY"
                ? "declare it TEXT, INT or BLOB"
                : "declare it TEXT\(integer) or NUMERIC, or make the table STRICT with a BLOB key"
            throw DataJoinError(
                .usage,
                "\(t.name): its key column \(column.name) \(declared), so SQLite keeps 5 and '5' as two keys that other nodes take for one (rows apart here would merge there); \(cure) (rebuild the table), then track again"
            )
        }
        // SQLite accepts NULL in a PRIMARY KEY column that is not an INTEGER rowid alias.
        let nullable = try db.rows(
            "SELECT name FROM pragma_table_info(?) WHERE pk > 0 AND \"notnull\" = 0 ORDER BY pk", [.text(t.name)]
        ).compactMap { $0.string(0) }
        if !rowid, !nullable.isEmpty {
            warnings.append(
                "\(t.name): its key column(s) \(nullable.joined(separator: ", ")) may hold NULL (SQLite allows it); "
                    + "a row whose key is NULL cannot be matched elsewhere and is held on every peer: declare them NOT NULL"
            )
        }
        return warnings
    }

    /// A table tracked before such keys were refused: its key column holding keys of several
    /// kinds now, each of which every other node takes for one row with another of them.
    public func keysOfSeveralKinds(_ db: Database, _ t: TableInfo) throws -> String? {
        guard try generatedKey(db, t) == nil else { return nil }
        for column in try mixedKindKeys(db, t) {
            let kinds = try db.rows(
                "SELECT DISTINCT typeof(\(Identifier(column.name))) FROM \(Identifier(t.name)) ORDER BY 1"
            ).compactMap { $0.string(0) }.filter { $0 != "null" }
            guard kinds.count > 1 else { continue }
            return
                "table \(t.name): its key column \(column.name) holds keys of \(kinds.count) kinds (\(kinds.joined(separator: ", "))), which SQLite keeps apart and other nodes take for one row (5 and '5'); give the column a type (rebuild the table, keeping one row of each such key), then track it again"
        }
        return nil
    }

    /// Tests only: a node that tracked such a key before it was refused, whose capture goes on
    /// (its changes still reach peers, which must hold what their keys cannot take).
    nonisolated(unsafe) static var tracksMixedKindKeys = false

    /// The key columns that can hold values of several kinds as keys apart. Whether the table
    /// is STRICT is read only for a key column typed BLOB, ANY or not at all, and only from a
    /// SQLite that has STRICT tables (3.37): an older one cannot open such a table.
    private func mixedKindKeys(_ db: Database, _ t: TableInfo) throws -> [ColumnInfo] {
        let candidates = t.keyColumns.filter {
            Self.affinity($0.dataType) == .blob || Self.asciiUppercased($0.dataType) == "ANY"
        }
        guard !candidates.isEmpty else { return [] }
        var strict = false
        if sqlite3_libversion_number() >= 3_037_000 {
            // The schema `pragma_table_info` reads too: temp before main.
            strict =
                try db.firstRow(
                    "SELECT strict FROM pragma_table_list(?) WHERE schema IN ('main', 'temp') ORDER BY schema = 'temp' DESC LIMIT 1",
                    [.text(t.name)])?.int(0) == 1
        }
        return candidates.filter { k in
            strict ? Self.asciiUppercased(k.dataType) == "ANY" : Self.affinity(k.dataType) == .blob
        }
    }

    // MARK: - Capture

    /// A value captured by the triggers as a tagged string: i42, r0.5, tabc, b00ff.
    public func capturedValue(_ text: String?, kind: ValueKind) -> Value {
        ValueConversion.normalize(Self.fromTagged(text), kind: kind)
    }

    static func fromTagged(_ tagged: String?) -> Value {
        guard let tagged, let tag = tagged.utf8.first else { return .null }
        // The tag's byte, not its Character: a combining mark after it belongs to its
        // grapheme, and text that began with one lost it (found from outside: two keys became one).
        let body = String(decoding: tagged.utf8.dropFirst(), as: UTF8.self)
        switch tag {
        case UInt8(ascii: "i"): return Int64(body).map(Value.integer) ?? .text(body)
        case UInt8(ascii: "r"): return ValueConversion.parseReal(body).map(Value.real) ?? .text(body)
        case UInt8(ascii: "b"): return .blob(Hex.decode(body) ?? [])
        default: return .text(body)
        }
    }

    /// A row of ds_apply_state that the triggers read: rolled back with the transaction.
    public func setApplying(_ db: Database, _ table: String?) throws {
        try db.execute(
            "UPDATE ds_apply_state SET applying = ?, writing = ? WHERE id = 1",
            [.integer(table == nil ? 0 : 1), .text(table ?? "")])
    }

    /// As SQLite's own `SET DEFAULT` does: the expression the table's definition gives, or NULL.
    public func columnDefault(_ db: Database, table: String, column: String) throws -> SQL {
        let text = try db.scalar(
            "SELECT dflt_value FROM pragma_table_info(?) WHERE name = ?", [.text(table), .text(column)]
        ).asString
        return text.map { SQL(raw: "(" + $0 + ")") } ?? "NULL"
    }

    /// Resets itself at commit; a violation makes COMMIT fail.
    public func deferForeignKeys(_ db: Database, _ on: Bool) throws {
        if on { try db.execute("PRAGMA defer_foreign_keys = ON") }
    }

    // MARK: - Stamping

    /// Every outbox row at or below this id is stamped. SQLite has one writer at a time and
    /// AUTOINCREMENT never reuses an id, so id order is commit order and the unstamped rows are
    /// always the ids above it: the backlog is a rowid range, and the outbox needs no index on
    /// `seq IS NULL` that every captured row would have to update (capture ~15% faster).
    static let stampedThroughSetting = "outbox_stamped_through_id"

    public func prepareStamping(_ db: Database) throws {}

    public func stampedThrough(_ db: Database) throws -> Int64 {
        try Settings.int(db, Self.stampedThroughSetting) ?? 0
    }

    public func setStampedThrough(_ db: Database, _ id: Int64) throws {
        try Settings.set(db, Self.stampedThroughSetting, id)
    }

    public func strandedCount(_ db: Database) throws -> Int64 {
        try db.scalar(
            "SELECT count(*) FROM ds_change_outbox WHERE seq IS NULL AND id <= ?", [.integer(try stampedThrough(db))]
        ).asInt64 ?? 0
    }

    public func repairStranded(_ db: Database) throws -> Int64 {
        let through = try stampedThrough(db)
        guard
            let first = try db.scalar(
                "SELECT min(id) FROM ds_change_outbox WHERE seq IS NULL AND id <= ?", [.integer(through)]
            ).asInt64
        else { return 0 }
        let count = try strandedCount(db)
        try Settings.set(db, Self.stampedThroughSetting, first - 1)
        return count
    }

    public func nextStampChunk(_ db: Database, _ cursor: inout StampCursor, select: SQL, size: Int) throws -> [Row] {
        let rows = try db.rows(select + " AND id > ? ORDER BY id LIMIT \(literal: size)", [.integer(cursor.throughId)])
        cursor.throughId = rows.last?.int(0) ?? cursor.throughId
        return rows
    }

    public func writeStamps(_ db: Database, _ stamps: [[Int64]], node: String, batch: Int) throws {
        for part in stride(from: 0, to: stamps.count, by: batch) {
            let slice = stamps[part..<min(part + batch, stamps.count)]
            let tuples = SQL(
                raw: Array(
                    repeating: "(CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT))",
                    count: slice.count
                ).joined(separator: ", "))
            try db.execute(
                """
                WITH v(id, seq, hlc, cl) AS (VALUES \(tuples))
                UPDATE ds_change_outbox SET seq = v.seq, hlc = v.hlc, cl = v.cl, updated_by_server_id = ? FROM v WHERE ds_change_outbox.id = v.id
                """, slice.flatMap { $0.map { Value.integer($0) } } + [.text(node)])
        }
    }

    /// A write transaction holds the only write lock: readers go on, writers wait.
    public var writeTransactionReadsWithoutBlocking: Bool { false }

    // MARK: - Statements that differ

    public func insertSkippingDuplicates(into table: SQL, columns: SQL, rows: SQL) -> SQL {
        "INSERT OR IGNORE INTO \(table) (\(columns)) VALUES \(rows)"
    }

    public func insertReturningId(_ db: Database, _ sql: SQL) throws -> Int64 {
        try db.execute(sql)
        return try db.scalar("SELECT last_insert_rowid()").asInt64 ?? 0
    }

    public var falseCondition: SQL { "0" }

    /// SQLite uses no index for a list of row values: `(k1, k2) IN ((?, ?), …)` scanned the
    /// whole table for every 256 keys of an import chunk (found from outside). A key of several
    /// columns is `(k1 = ? AND k2 = ?) OR …` here, one index lookup per key.
    public func keyIn(_ key: [SQL], count n: Int) -> SQL {
        guard key.count > 1 else {
            return "(\(key.joined(separator: ", "))) IN (\(SQL.placeholderRows(n, width: 1, bare: true)))"
        }
        let one: SQL = "(" + key.map { "\($0) = ?" as SQL }.joined(separator: " AND ") + ")"
        return Array(repeating: one, count: n).joined(separator: " OR ")
    }

    /// SQLite finds a table whatever the case of its name.
    public func catalogName(_ db: Database, table: String) throws -> String? {
        try db.scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE", [.text(table)]
        ).asString
    }

    public func parameterRows(_ n: Int, width: Int) -> SQL {
        "VALUES \(SQL.placeholderRows(n, width: width))"
    }

    /// SQLite plans without statistics DataJoin would need to refresh.
    public func refreshStatistics(_ db: Database, _ tables: [String], after changes: Int) throws {}

    // MARK: - Values

    public func valueProblem(_ value: Value, _ col: ColumnInfo) -> String? {
        // The declared type's affinity is read only where it matters: an import spent a fifth of
        // its time reading it for every NULL and number (found by `perf`). What SQLite's
        // affinity would change, not only spell otherwise, is held (found from outside).
        switch value {
        case .real(let d):
            if d.isNaN { return "NaN, which SQLite stores as NULL" }
            let aff = Self.affinity(col.dataType)
            if d == 0 && d.sign == .minus && aff != .blob {
                return
                    "-0.0, which SQLite stores as 0 in a column of type \(col.dataType) (declare the column without a type to keep the sign)"
            }
            // TEXT affinity stores a double as its text of 15 significant digits, Inf as 'Inf';
            // a text other than the one PostgreSQL and MariaDB store (`1.0e+300` for `1e+300`)
            // is another value between nodes (found from outside).
            if aff == .text, !d.isFinite || Self.fifteenDigits(d) != Value.realText(d) {
                return
                    "\(Value.realText(d)) would be stored as the text \(Self.fifteenDigits(d)) in a column of type \(col.dataType) (SQLite keeps 15 digits and spells exponents its own way; declare it REAL)"
            }
        case .text(let s) where col.kind != .text:
            let aff = Self.affinity(col.dataType)
            guard aff == .integer || aff == .real || aff == .numeric else { return nil }
            // SQLite turns numeric-looking text into a number here, keeping 15 significant digits
            // of a real; an integer that fits 64 bits is kept whole except under REAL affinity.
            // Read as a number, text is stored as that number: another spelling than the
            // number's own (`0123`, ` 5`, `+5`, `1e2`) was another text than other brands keep
            // (found from outside: `0123` became 123 in a column of type STRING).
            if aff != .real, ValueFit.isDecimal(s.trimmingCharacters(in: .whitespacesAndNewlines)),
                !ValueFit.isOwnSpelling(s)
            {
                return
                    "'\(s.clipped(40))' would be stored as a number in a column of type \(col.dataType) (SQLite's \(aff == .integer ? "INTEGER" : "NUMERIC") affinity), in another spelling than this text (declare it TEXT to keep text as it is)"
            }
            if aff != .real, Int64(s.trimmingCharacters(in: .whitespaces)) != nil { return nil }
            if let digits = ValueFit.significantDigits(s), digits > 15 {
                return
                    "the number \(s.clipped(40)) has \(digits) significant digits; a \(col.dataType) column in SQLite keeps 15 (declare it TEXT to keep exact decimals)"
            }
            // Out of a double's range: SQLite would store Inf or 0 (found by the second trial).
            if let d = ValueFit.outOfDoubleRange(s) {
                return
                    "the number \(s.clipped(40)) is out of a double's range; a \(col.dataType) column in SQLite would store \(d)"
            }
        default: break
        }
        return nil
    }

    /// A double as SQLite writes it into a TEXT column (`%!.15g`).
    static func fifteenDigits(_ d: Double) -> String {
        var t = String(format: "%.15g", d)
        // SQLite's `%!.15g`: a point and a digit in the mantissa, before any exponent too.
        if d.isFinite, !t.contains(".") {
            if let e = t.firstIndex(of: "e") { t.insert(contentsOf: ".0", at: e) } else { t += ".0" }
        }
        return t
    }

    /// SQLite's affinity of a declared type (https://www.sqlite.org/datatype3.html §3.1).
    enum Affinity { case integer, text, blob, real, numeric }

    static func affinity(_ declared: String) -> Affinity {
        // ASCII letters compared without case, byte by byte, as SQLite does (sqlite3AffinityType).
        let t = Array(declared.utf8)
        func has(_ word: StaticString) -> Bool {
            let w = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
            guard t.count >= w.count else { return false }
            return (0...(t.count - w.count)).contains { i in
                w.indices.allSatisfy { j in
                    let c = t[i + j]
                    return (c >= 97 && c <= 122 ? c - 32 : c) == w[j]
                }
            }
        }
        if has("INT") { return .integer }
        if has("CHAR") || has("CLOB") || has("TEXT") { return .text }
        if has("BLOB") || t.isEmpty { return .blob }
        if has("REAL") || has("FLOA") || has("DOUB") { return .real }
        return .numeric
    }

    public func keyProblem(_ key: [Value]) -> String? { nil }

    /// A NUMERIC column turns number-like text into a number: ' 5', '05', '+5' and '5' became one
    /// key, one row (found from outside). Only the number's own spelling is taken as a key, with
    /// trailing zeros of a fraction, which are a decimal column's precision ('8.00' of a
    /// numeric(10,2) key; holding those held every whole-number key, found from outside).
    public func keySpellingProblem(_ value: Value, _ col: ColumnInfo) -> String? {
        guard col.kind == .any, case .text(let s) = value, Self.affinity(col.dataType) == .numeric,
            ValueFit.significantDigits(s) != nil
        else { return nil }
        if ValueFit.isOwnSpelling(s) { return nil }
        return
            "'\(s.clipped(40))' is a number a \(col.dataType) column stores in its own form, where other spellings of it would be one key"
    }

    // MARK: - Locks

    /// An exclusive flock on `<database>.datajoin-lock` (the file's real path, symlinks
    /// resolved) and on a lock named after the file's device and inode in the temporary folder
    /// (so a hard link meets it too).
    public func instanceLock(_ db: Database, for purpose: LockPurpose) throws -> HeldLock {
        guard let sqlite = Self.connection(db) else {
            throw DataJoinError(.internalError, "not an SQLite connection")
        }
        let real = URL(fileURLWithPath: sqlite.path).resolvingSymlinksInPath().path
        var file = stat()
        guard stat(real, &file) == 0 else {
            throw DataJoinError.io("cannot read \(real): \(String(cString: strerror(errno)))")
        }
        let byInode = (NSTemporaryDirectory() as NSString).appendingPathComponent(
            "datajoin-\(purpose.rawValue)-\(file.st_dev)-\(file.st_ino).lock")
        let beside = real + (purpose == .watch ? ".datajoin-lock" : ".datajoin-\(purpose.rawValue)-lock")
        return try FileLocks([beside, byInode], taken: purpose.taken(db.displayName))
    }
}
