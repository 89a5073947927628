import Foundation

/// MariaDB (10.5 and later, InnoDB): many writers at once, capture by row triggers that write
/// each value as its text (blobs as hex), stamping in outbox id order over committed rows.
/// Sessions run with ANSI_QUOTES and PIPES_AS_CONCAT, so the core's standard SQL is MariaDB's
/// too; what still differs is here.
public struct MariaDBDialect: Dialect {
    public var brand: Brand { .mariadb }

    /// The first moment past what a TIMESTAMP holds: MariaDB 11.5 on counts its seconds in 32
    /// bits unsigned (2106), earlier versions signed (2038; found in review: a fixed 2038 held
    /// what a newer server stores). `timestampLast` is the last it holds, as messages say it.
    let timestampEnd: String
    let timestampLast: String

    /// `serverVersion` as `mysql_get_server_version` gives it (110500 for 11.5.0); 0: unknown,
    /// the older range.
    public init(serverVersion: UInt = 0) {
        (timestampEnd, timestampLast) =
            serverVersion >= 110_500
            ? ("2106-02-07 06:28:16", "2106-02-07 06:28:15.999999")
            : ("2038-01-19 03:14:08", "2038-01-19 03:14:07.999999")
    }

    /// MariaDB refuses a name over 64 characters.
    public func nameLimitProblem(_ name: String) -> String? {
        name.count > 64 ? "has \(name.count) characters; MariaDB names hold at most 64" : nil
    }

    // MARK: - DataJoin's own tables

    public var autoIdColumn: SQL { "BIGINT PRIMARY KEY AUTO_INCREMENT" }
    public var bytesType: SQL { "LONGBLOB" }
    /// InnoDB indexes at most 3,072 bytes of a key: a table name (255 characters, 1,020 bytes),
    /// a row key and a column name (1,020) fit.
    public var keyBytesType: SQL { "VARBINARY(\(literal: Self.maxKeyBytes))" }
    static let maxKeyBytes = 1_024
    public var textType: SQL { "LONGTEXT" }
    public func keyTextType(_ chars: Int) -> SQL { "VARCHAR(\(literal: chars))" }
    public var capturedValueType: SQL { "LONGTEXT" }
    /// Binary collation without padding: DataJoin's names and keys compare byte for byte, as on
    /// the other brands ('b' and 'b ' are two keys; utf8mb4_bin would take them for one).
    public var tableOptions: SQL { " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin" }
    public func partialIndex(_ condition: SQL) -> SQL { "" }
    public func indexed(_ bytesColumn: SQL) -> SQL { "\(bytesColumn)(\(literal: Self.maxKeyBytes))" }
    public func dropIndex(_ name: SQL, on table: SQL) -> SQL { "DROP INDEX IF EXISTS \(name) ON \(table)" }
    public var extraSchema: SQL { "" }
    public var streamsByCount: Bool { true }

    public func isInstalled(_ db: Database) throws -> Bool {
        try db.scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'ds_node'"
        ).asInt64 ?? 0 > 0
    }

    public func isTable(_ db: Database, _ name: String) throws -> Bool? {
        try db.firstRow(
            "SELECT table_type FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ? AND BINARY table_name = BINARY ?",
            [.text(name), .text(name)]
        ).map { $0.string(0) == "BASE TABLE" }
    }

    /// An index name belongs to its table here: no other table's index clashes.
    public func holderOfIndexName(_ db: Database, _ name: String) throws -> String? { nil }

    public func hasColumn(_ db: Database, table: String, column: String) throws -> Bool {
        try db.scalar(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? AND column_name = ?",
            [.text(table), .text(column)]
        ).asInt64 ?? 0 > 0
    }

    /// Privileges are granted per database or table to users: whoever may read this database's
    /// tables may read the key (docs/security.md says to keep DataJoin's database to itself).
    public func protectPrivateKey(_ db: Database) throws {}

    // MARK: - Application tables

    public func columns(_ db: Database, of table: String) throws -> [ColumnInfo] {
        var cols: [ColumnInfo] = []
        try db.query(
            """
            SELECT c.column_name, c.column_type, coalesce((SELECT k.ordinal_position FROM information_schema.key_column_usage AS k
              WHERE k.table_schema = DATABASE() AND k.table_name = ? AND BINARY k.table_name = BINARY ?
              AND BINARY k.column_name = BINARY c.column_name AND k.constraint_name = 'PRIMARY'), 0), c.character_set_name
            FROM information_schema.columns AS c
            WHERE c.table_schema = DATABASE() AND c.table_name = ? AND BINARY c.table_name = BINARY ?
              AND c.extra NOT LIKE '%GENERATED%'
            ORDER BY c.ordinal_position
            """, [.text(table), .text(table), .text(table), .text(table)]
        ) { r in
            let type = r.string(1) ?? ""
            var column = ColumnInfo(
                name: r.string(0) ?? "", dataType: type, kind: valueKind(declaredType: type),
                pkPosition: Int(r.int(2) ?? 0))
            // Every character fits utf8mb4 and the UTF-16 and UTF-32 sets (found from outside:
            // `track` warned about utf16).
            column.charset = r.string(3).flatMap { ["utf8mb4", "utf16", "utf16le", "utf32"].contains($0) ? nil : $0 }
            cols.append(column)
        }
        return cols
    }

    public func valueKind(declaredType: String) -> ValueKind {
        let t = declaredType.lowercased()
        // "float unsigned", "int(10) unsigned zerofill": the type is the first word.
        let base = String(t.prefix { $0.isLetter })
        if t.hasPrefix("tinyint(1)") { return .boolean }
        switch base {
        case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
            // BIGINT UNSIGNED reaches past a signed 64-bit integer: kept exact as text.
            return t.contains("unsigned") && base == "bigint" ? .text : .integer
        case "float", "double", "real": return .real
        case "bit": return .integer
        case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob": return .blob
        default: return .text
        }
    }

    public func foreignKeys(_ db: Database, among tables: Set<String>) throws -> [ForeignKeyColumn] {
        var out: [ForeignKeyColumn] = []
        try db.query(
            """
            SELECT table_name, referenced_table_name, column_name, referenced_column_name, constraint_name
            FROM information_schema.key_column_usage
            WHERE table_schema = DATABASE() AND referenced_table_name IS NOT NULL
            ORDER BY table_name, constraint_name, ordinal_position
            """, []
        ) { r in
            if let c = r.string(0), let p = r.string(1), let col = r.string(2), tables.contains(c), tables.contains(p) {
                out.append(
                    .init(
                        child: c, parent: p, column: col, parentColumn: r.string(3) ?? "",
                        constraint: c + "." + (r.string(4) ?? ""), onDelete: .noAction))
            }
        }
        // Each child table named: a query over the whole schema opens every table in it, and
        // opening a SEQUENCE drops its cached values (a key block's ids jumped by its cache).
        let children = Array(Set(out.map(\.child))).sorted()
        guard !children.isEmpty else { return out }
        var rules: [String: (delete: ForeignKeyAction, update: ForeignKeyAction)] = [:]
        try db.query(
            """
            SELECT table_name, constraint_name, delete_rule, update_rule FROM information_schema.referential_constraints
            WHERE constraint_schema = DATABASE() AND table_name IN (\(marks(children.count)))
            """, children.map { .text($0) }
        ) { r in
            rules[(r.string(0) ?? "") + "." + (r.string(1) ?? "")] = (
                ForeignKeyAction(sql: r.string(2)), ForeignKeyAction(sql: r.string(3))
            )
        }
        for i in out.indices {
            out[i].onDelete = rules[out[i].constraint]?.delete ?? .noAction
            out[i].onUpdate = rules[out[i].constraint]?.update ?? .noAction
        }
        return out
    }

    /// A prefix (`UNIQUE (code(10))`) or a generated column compares something other than the
    /// columns' values; a date, time, binary or other typed column equates texts that differ
    /// (`2024-1-5` and `2024-01-05`), so only text and number columns are compared by value.
    public func uniqueIndexes(_ db: Database, among tables: Set<String>) throws -> [UniqueIndex] {
        // Two queries joined here: joined in SQL, MariaDB filled the columns table again for
        // each index column (0.3 s per import with a few thousand tables on the server).
        var comparable = Set<String>()
        try db.query(
            """
            SELECT table_name, column_name FROM information_schema.columns
            WHERE table_schema = DATABASE() AND extra NOT LIKE '%GENERATED%'
              AND data_type IN ('char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'tinyint', 'smallint',
                'mediumint', 'int', 'bigint', 'decimal', 'float', 'double')
            """, []
        ) { r in
            if let t = r.string(0), tables.contains(t) { comparable.insert(t + "\u{0}" + (r.string(1) ?? "")) }
        }
        var out: [UniqueIndex] = []
        try db.query(
            """
            SELECT table_name, index_name, column_name, sub_part IS NULL
            FROM information_schema.statistics
            WHERE table_schema = DATABASE() AND non_unique = 0 AND index_name <> 'PRIMARY'
            ORDER BY table_name, index_name, seq_in_index
            """, []
        ) { r in
            guard let t = r.string(0), tables.contains(t), let name = r.string(1) else { return }
            let column = r.string(2) ?? ""
            let plain = r.int(3) == 1 && comparable.contains(t + "\u{0}" + column)
            if let last = out.last, last.table == t, last.name == name {
                out[out.count - 1].columns?.append(column)
                out[out.count - 1].plain = last.plain && plain
            } else {
                out.append(UniqueIndex(table: t, name: name, columns: [column], plain: plain))
            }
        }
        return out
    }

    /// Refuses a text key whose collation takes two keys for one (case, accents, trailing
    /// spaces): rows that other nodes keep apart would merge here. Warns about what MariaDB's
    /// triggers do not see.
    public func keyWarnings(_ db: Database, _ t: TableInfo) throws -> [String] {
        for k in t.keyColumns {
            let collation =
                try db.scalar(
                    "SELECT collation_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? AND BINARY table_name = BINARY ? AND BINARY column_name = BINARY ?",
                    [.text(t.name), .text(t.name), .text(k.name)]
                ).asString
            if let collation, !collation.hasSuffix("_nopad_bin") {
                throw DataJoinError(
                    .usage,
                    "\(t.name): its key column \(k.name) uses collation \(collation), under which keys that differ in case, accents or trailing spaces are one key, so rows other nodes keep apart would merge here; declare it COLLATE utf8mb4_nopad_bin (ALTER TABLE … MODIFY \(k.name) … COLLATE utf8mb4_nopad_bin) or as VARBINARY, then track again"
                )
            }
        }
        let prefixKey =
            try db.scalar(
                "SELECT count(*) FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ? AND BINARY table_name = BINARY ? AND index_name = 'PRIMARY' AND sub_part IS NOT NULL",
                [.text(t.name), .text(t.name)]
            ).asInt64 ?? 0
        if prefixKey > 0 {
            throw DataJoinError(
                .usage,
                "\(t.name): its primary key indexes only a prefix of a column, so two keys that share the prefix are one row here and two elsewhere; key it on whole columns (VARCHAR(n) COLLATE utf8mb4_nopad_bin), then track again"
            )
        }
        for k in t.keyColumns where k.dataType.lowercased().hasPrefix("char") {
            throw DataJoinError(
                .usage,
                "\(t.name): its key column \(k.name) is \(k.dataType), which drops trailing spaces, so 'c' and 'c ' are one key here and two elsewhere; declare it VARCHAR(n) COLLATE utf8mb4_nopad_bin, then track again"
            )
        }
        var warnings: [String] = []
        let onUpdate =
            try db.rows(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? AND BINARY table_name = BINARY ? AND lower(extra) LIKE '%on update%'",
                [.text(t.name), .text(t.name)]
            ).compactMap { $0.string(0) }
        if !onUpdate.isEmpty {
            warnings.append(
                "\(t.name): \(onUpdate.joined(separator: ", ")) change(s) by themselves (ON UPDATE CURRENT_TIMESTAMP) on every node that applies an update, so each node keeps its own value: drop ON UPDATE, or set the column in the application's updates"
            )
        }
        // A column (a key too: an application may keep ASCII codes as keys) in a character set
        // narrower than utf8mb4: text from other nodes outside it is held (found from outside:
        // tracked without a word, then held as "Illegal mix of collations"). `t` is the live
        // table, whose columns carry their character sets (`columns`).
        let narrow = t.columns.compactMap { c in c.charset.map { "\(c.name) (\($0))" } }
        if !narrow.isEmpty {
            warnings.append(
                "\(t.name): \(narrow.joined(separator: ", ")) cannot hold every character other nodes may send (an emoji, most scripts): a change with one is held here; CHARACTER SET utf8mb4 holds any"
            )
        }
        let advice = "two nodes will hand out the same ids; use UUIDs, or per-node prefixes or ranges"
        for k in t.keyColumns {
            let extra =
                try db.scalar(
                    "SELECT extra FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? AND BINARY table_name = BINARY ? AND BINARY column_name = BINARY ?",
                    [.text(t.name), .text(t.name), .text(k.name)]
                ).asString ?? ""
            if extra.lowercased().contains("auto_increment") {
                warnings.append("\(t.name): its key \(k.name) is AUTO_INCREMENT; \(advice)")
            }
        }
        return warnings
    }

    // MARK: - Capture

    /// Temporal text without trailing zeros in its fraction, as PostgreSQL prints it: a key
    /// `03:00:00.000` here and `03:00:00` there would be two rows (found from outside).
    static func trimFraction(_ s: String) -> String {
        guard let dot = s.lastIndex(of: "."), s[s.index(after: dot)...].allSatisfy({ $0.isNumber }) else { return s }
        var end = s.endIndex
        while end > s.index(after: dot), s[s.index(before: end)] == "0" { end = s.index(before: end) }
        if end == s.index(after: dot) { end = dot }
        return String(s[..<end])
    }

    static func isTemporal(_ type: String) -> Bool {
        let t = type.lowercased()
        return t.hasPrefix("datetime") || t.hasPrefix("timestamp") || t.hasPrefix("time")
    }

    /// A FLOAT arrives as the double it holds: it travels as its shortest text, as the driver
    /// reads it and as PostgreSQL's `real` does.
    public func capturedValue(_ text: String?, column: ColumnInfo?) -> Value {
        let value = capturedValue(text, kind: column?.kind ?? .any)
        if let column, Self.isTemporal(column.dataType), case .text(let s) = value {
            return .text(Self.trimFraction(s))
        }
        // A ZEROFILL decimal is captured with its padding (`00000012.50`): sent as the number's
        // own text, which other brands keep (found in review: a SQLite NUMERIC column held it).
        // The year 0 is the number 0 to other brands (`0000` was held by SQLite's INTEGER column;
        // found from outside); MariaDB takes it back as `0000` (`storedValue`).
        if let column, column.type.firstWord == "year", case .text("0000") = value { return .text("0") }
        if let column, column.type.zerofill, case .text(let s) = value, s.first == "0", s.count > 1 {
            let stripped = s.drop { $0 == "0" }
            return .text(stripped.isEmpty || stripped.first == "." ? "0" + stripped : String(stripped))
        }
        if let column, column.dataType.lowercased().hasPrefix("float"), case .real(let d) = value, d.isFinite {
            return .real(Double(String(describing: Float(d))) ?? d)
        }
        return value
    }

    /// A value captured as its text (blobs as hex), typed by the column's kind.
    public func capturedValue(_ text: String?, kind: ValueKind) -> Value {
        guard let text else { return .null }
        switch kind {
        case .integer: return Int64(text).map(Value.integer) ?? .text(text)
        case .real: return ValueConversion.parseReal(text).map(Value.real) ?? .text(text)
        case .boolean: return Int64(text).map(Value.integer) ?? .text(text)
        case .blob: return Hex.decode(Substring(text)).map(Value.blob) ?? .blob(Array(text.utf8))
        case .text, .any: return .text(text)
        }
    }

    /// A session variable the triggers read; commit and rollback clear it (MariaDBDatabase).
    public func setApplying(_ db: Database, _ table: String?) throws {
        if let table {
            try db.execute("SET @datajoin_applying = ?", [.text(table)])
        } else {
            try db.executeScript("SET @datajoin_applying = NULL")
        }
    }

    /// InnoDB checks a foreign key at each statement and cannot defer it: the importer writes
    /// parents before children (ForeignKeys.parentsFirst), and a bundle that still violates
    /// one applies change by change.
    public func deferForeignKeys(_ db: Database, _ on: Bool) throws {}

    // MARK: - Stamping

    public func prepareStamping(_ db: Database) throws {}

    /// Unstamped rows are found through the index on seq (NULL for them), not above a cursor.
    public func stampedThrough(_ db: Database) throws -> Int64 { 0 }
    public func setStampedThrough(_ db: Database, _ id: Int64) throws {}
    public func strandedCount(_ db: Database) throws -> Int64 { 0 }
    public func repairStranded(_ db: Database) throws -> Int64 { 0 }

    /// Committed unstamped rows in id order. Stamping sees only committed rows, so a
    /// transaction that commits later is stamped later, whatever its ids; two transactions that
    /// write the same row are serialized by its lock, so the later one's outbox row for it has
    /// the higher id (docs/capture.md).
    public func nextStampChunk(_ db: Database, _ cursor: inout StampCursor, select: SQL, size: Int) throws -> [Row] {
        let rows = try db.rows(
            select + " AND id > ? ORDER BY id LIMIT \(literal: size)", [.integer(cursor.lastNullId)])
        cursor.lastNullId = rows.last?.int(0) ?? cursor.lastNullId
        return rows
    }

    /// The listed rows first, then each outbox row by its id: a join that read the outbox
    /// first took a lock on every row it passed, and waited for an application's uncommitted
    /// capture (found by `testIdsCommittingOutOfOrderAreNeverSkipped`).
    public func writeStamps(_ db: Database, _ stamps: [[Int64]], node: String, batch: Int) throws {
        for part in stride(from: 0, to: stamps.count, by: batch) {
            let slice = stamps[part..<min(part + batch, stamps.count)]
            let rows: [SQL] =
                ["SELECT ? AS id, ? AS seq, ? AS hlc, ? AS cl"]
                + Array(repeating: "SELECT ?, ?, ?, ?", count: slice.count - 1)
            try db.execute(
                """
                UPDATE (\(rows.joined(separator: " UNION ALL "))) AS v STRAIGHT_JOIN ds_change_outbox AS o ON o.id = v.id
                SET o.seq = v.seq, o.hlc = v.hlc, o.cl = v.cl, o.updated_by_server_id = ?
                """, slice.flatMap { $0.map { Value.integer($0) } } + [.text(node)])
        }
    }

    /// InnoDB's consistent read: one snapshot, and application writers are never blocked.
    public var writeTransactionReadsWithoutBlocking: Bool { true }

    // MARK: - Statements that differ

    public func upsert(key: [SQL], set: [(column: SQL, expression: SQL)]) -> SQL {
        "ON DUPLICATE KEY UPDATE " + set.map { "\($0.column) = \($0.expression)" as SQL }.joined(separator: ", ")
    }

    public func incoming(_ column: SQL) -> SQL { "VALUES(\(column))" }

    /// Not INSERT IGNORE, which would also turn a value the column cannot hold into a warning.
    public func skipDuplicate(key: [SQL]) -> SQL {
        "ON DUPLICATE KEY UPDATE \(key[0]) = \(key[0])"
    }

    /// The row list first, then each target row by its key (see writeStamps).
    public func updateFrom(
        _ table: SQL, alias: SQL, set: [(column: SQL, expression: SQL)], rows: SQL, rowsAlias: SQL, match: SQL
    ) -> SQL {
        let assignments = set.map { "\(alias).\($0.column) = \($0.expression)" as SQL }.joined(separator: ", ")
        return "UPDATE (\(rows)) AS \(rowsAlias) STRAIGHT_JOIN \(table) AS \(alias) ON \(match) SET \(assignments)"
    }

    public func insertSkippingDuplicates(into table: SQL, columns: SQL, rows: SQL) -> SQL {
        "INSERT INTO \(table) (\(columns)) VALUES \(rows) ON DUPLICATE KEY UPDATE id = id"
    }

    public func insertReturningId(_ db: Database, _ sql: SQL) throws -> Int64 {
        try db.scalar(sql + " RETURNING id").asInt64 ?? 0
    }

    public var falseCondition: SQL { "FALSE" }

    /// InnoDB recalculates persistent statistics itself after a tenth of a table changed.
    public func refreshStatistics(_ db: Database, _ tables: [String], after changes: Int) throws {}

    // MARK: - Values

    public func valueProblem(_ value: Value, _ col: ColumnInfo) -> String? {
        let type = col.type.lowered
        // Bytes (a SQLite BLOB) for a column of another type: MariaDB converts them (`X'31'`
        // became the integer 1), and the value changed its type between nodes (found from outside).
        if case .blob(let b) = value, col.kind != .blob {
            return
                "\(b.count) byte(s) of binary data, which a column of type \(col.dataType) would convert to another value"
        }
        if case .real(let d) = value, !d.isFinite {
            return "\(Value.realText(d)), which MariaDB cannot store"
        }
        // A number column keeps no sign on zero (found from outside: PostgreSQL's -0 arrived as
        // 0, nothing held, `check` OK on both). A text column gets the text `-0.0` and keeps it
        // (a key's value comes here as it is, not as that text).
        if case .real(let d) = value, d == 0, d.sign == .minus, col.kind != .text {
            return "-0.0, which MariaDB stores as 0 in a column of type \(col.dataType) (it keeps no sign on zero)"
        }
        if type.hasPrefix("float"), case .real(let d) = value, Double(String(describing: Float(d))) != d {
            return "\(Value.realText(d)) needs DOUBLE; a FLOAT column would round it (declare it DOUBLE)"
        }
        if col.kind == .boolean, case .text(let s) = value { return ValueFit.booleanText(s) }
        if let problem = Self.readsAsAnother(value, col) { return problem }
        if let problem = Self.capacityProblem(value, col) { return problem }
        // A SET stores its members in the column's order, each once: `b,a` is `a,b` here and
        // stays `b,a` where it came from (found from outside). Another case is another matter
        // (docs/types.md): it is stored in the column's case.
        if col.type.firstWord == "set", case .text(let t) = value, !t.isEmpty {
            let members = Self.members(col.dataType)
            let named = t.split(separator: ",", omittingEmptySubsequences: false)
            let at = named.compactMap { n in members.firstIndex { $0 == n } }
            if at.count == named.count, at != at.sorted() || Set(at).count != at.count {
                let stored = Set(at).sorted().map { members[$0] }.joined(separator: ",")
                return "'\(t.clipped(40))' names members of \(col.dataType) out of its order or more than once, "
                    + "which MariaDB would store as '\(stored.clipped(40))': write it so where it is written"
            }
        }
        // MariaDB 10's TIMESTAMP counts seconds in 32 bits; outside, it refuses the value with a
        // word about its format, not its range (found from outside). Its zero stays its zero.
        if col.type.firstWord == "timestamp", case .text(let s) = value, ValueFit.timestamp(Array(s.utf8)),
            !s.hasPrefix("0000-00-00 00:00:00"), s < "1970-01-01 00:00:01" || s >= timestampEnd
        {
            return "'\(s.clipped(40))' is outside what a MariaDB \(col.dataType) holds here (1970-01-01 00:00:01 up to "
                + "\(timestampLast) UTC): declare it DATETIME(6)"
        }
        if let problem = Self.strictModeLets(value, col.type) { return problem }
        // `DOUBLE(10,2)` and `FLOAT(6,2)` round to their scale as `DECIMAL(10,2)` does, without
        // an error (found from outside: 1.2345 arrived as 1.23).
        if type.hasPrefix("decimal(") || type.hasPrefix("double(") || type.hasPrefix("float(")
            || type.hasPrefix("real("),
            let problem = ValueFit.scaleProblem(value, col.dataType)
        {
            return problem
        }
        // ZEROFILL prints its own padding (`00000012.50`): that is the column's spelling.
        if case .text(let s) = value, !col.type.zerofill, let kind = Self.spelled(col.type),
            let problem = ValueFit.spellingProblem(s, kind, typeName: col.dataType, brand: "MariaDB")
        {
            return problem
        }
        return nil
    }

    /// A double for a text column goes as its shortest round-trip text, as PostgreSQL stores
    /// it (its parameters are text): MariaDB's own text of a double is another one (`1e300`,
    /// `0.0000001` and `100` where PostgreSQL stores `1e+300`, `1e-07` and `100.0`), and two
    /// nodes kept two texts of one value for good (found from outside).
    public func storedValue(_ value: Value, _ column: ColumnInfo) -> Value {
        // The number 0 (its text: a YEAR's kind is text) is the year 0, which MariaDB writes
        // `0000`; `0` alone it reads as 2000 (found in review: held, its own 0000 came back so).
        if case .text("0") = value, column.type.firstWord == "year" { return .text("0000") }
        // A whole double that is a year here (2024.0 from a column of doubles) is that year;
        // a fraction or a two-digit one is held (`readsAsAnother`; found in review).
        if case .real(let d) = value, column.type.firstWord == "year", d == d.rounded(),
            d == 0 || (1901...2155).contains(d)
        {
            return .text(String(format: "%04d", Int(d)))
        }
        // A moment with its offset (PostgreSQL's `timestamptz` prints `+00`) is a moment for a
        // TIMESTAMP, which this session reads in UTC: written in UTC without the offset MariaDB
        // cannot read (found from outside: every row of the natural pairing was held).
        if case .text(let s) = value, column.type.firstWord == "timestamp", let utc = Self.inUTC(s) {
            return .text(utc)
        }
        // The largest floats travel as their shortest text (3.4028235e+38), which is above
        // FLT_MAX as a number: MariaDB refuses it as out of range for a FLOAT (found from
        // outside: held for good, even from another MariaDB node). Its own text of the float it
        // takes. Only that text: the exact double of FLT_MAX is no float's text, held below.
        if case .real(let d) = value, column.type.lowered.hasPrefix("float"),
            d.magnitude == Double(String(describing: Float.greatestFiniteMagnitude))
        {
            return .text(d < 0 ? "-3.402823466e+38" : "3.402823466e+38")
        }
        guard case .real(let d) = value, Self.characterTypes.contains(column.type.firstWord) else { return value }
        return .text(Value.realText(d))
    }

    /// Text with a character its column's character set lacks, or longer in that set's bytes
    /// than a TEXT or BLOB type holds: MariaDB refuses it ("Incorrect string value", "Data too
    /// long"), a server error per change that named no cure (found from outside).
    static func capacityProblem(_ value: Value, _ col: ColumnInfo) -> String? {
        let type = col.type.firstWord
        if case .blob(let b) = value, let limit = byteLimits[type], b.count > limit {
            return
                "\(b.count) bytes; a \(type.uppercased()) column holds \(limit) (declare it \(type == "mediumblob" ? "LONGBLOB" : "a larger BLOB type"))"
        }
        guard case .text(let s) = value else { return nil }
        let charset = col.charset ?? "utf8mb4"
        let holds: (Unicode.Scalar) -> Bool
        switch charset {
        case "latin1": holds = { $0.value < 0x80 || (0xA0...0xFF).contains($0.value) || latin1High.contains($0.value) }
        case "ascii": holds = { $0.value < 0x80 }
        case "utf8mb3", "utf8", "ucs2": holds = { $0.value <= 0xFFFF }
        default: holds = { _ in true }
        }
        if col.charset != nil, let lacking = s.unicodeScalars.first(where: { !holds($0) }) {
            return
                "U+\(String(lacking.value, radix: 16, uppercase: true)) is not in the column's character set \(charset) "
                + "(MariaDB would refuse it); declare it CHARACTER SET utf8mb4"
        }
        // Only where a character's width is known; other character sets are left to the server.
        let singleByte = charset == "latin1" || charset == "ascii"
        guard let limit = byteLimits[type], singleByte || ["utf8mb4", "utf8mb3", "utf8"].contains(charset) else {
            return nil
        }
        let bytes = singleByte ? s.unicodeScalars.count : s.utf8.count
        let larger = type == "mediumtext" ? "LONGTEXT" : type == "text" ? "MEDIUMTEXT or LONGTEXT" : "TEXT or larger"
        return bytes > limit
            ? "\(bytes) bytes in \(charset); a \(type.uppercased()) column holds \(limit) (declare it \(larger))" : nil
    }

    static let byteLimits = [
        "tinytext": 255, "text": 65_535, "mediumtext": 16_777_215, "tinyblob": 255, "blob": 65_535,
        "mediumblob": 16_777_215,
    ]

    /// What MariaDB's `latin1` (Windows-1252) holds between 0x80 and 0x9F: its own letters and
    /// signs, and the five code points it passes through.
    static let latin1High: Set<UInt32> = [
        0x20AC, 0x81, 0x201A, 0x192, 0x201E, 0x2026, 0x2020, 0x2021, 0x2C6, 0x2030, 0x160, 0x2039, 0x152, 0x8D, 0x17D,
        0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x2DC, 0x2122, 0x161, 0x203A, 0x153, 0x9D,
        0x17E, 0x178,
    ]

    /// MariaDB's words for a value its column cannot hold name neither cause nor cure (found from
    /// outside: "Illegal mix of collations" for a key outside a latin1 key's character set,
    /// "Incorrect string value" for text longer than a TEXT column holds).
    public func refusalAdvice(_ error: Error) -> String? {
        guard let e = TransactionError.unwrap(error) as? MariaDBError else { return nil }
        switch e.code {
        case .illegalMixOfCollations:
            return "a key or value has characters its column's character set cannot hold: declare the column "
                + "CHARACTER SET utf8mb4 (a key COLLATE utf8mb4_nopad_bin)"
        case .incorrectStringValue where e.message.hasPrefix("Incorrect string value"):
            return "the text has characters its column's character set cannot hold: declare it CHARACTER SET utf8mb4"
        case .dataTooLong:
            return "the value is longer than its column's type holds (TINYTEXT 255 bytes, TEXT 65,535, MEDIUMTEXT "
                + "16 MiB): declare a larger type"
        case .outOfRange:
            return "the number is outside what its column's type holds: declare a wider type"
        default:
            return nil
        }
    }

    /// `2024-06-30 22:00:00.5+02` as `2024-06-30 20:00:00.5`: a timestamp with an offset
    /// (`±HH`, `±HH:MM`, `±HHMM`), in UTC; nil for anything else, which the spelling check judges.
    static func inUTC(_ s: String) -> String? {
        let b = Array(s.utf8)
        guard b.count >= 22, let sign = b.lastIndex(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "-") }),
            sign >= 19, b[4] == UInt8(ascii: "-"), ValueFit.timestamp(Array(b[..<sign]))
        else { return nil }
        let offset = b[(sign + 1)...].filter { $0 != UInt8(ascii: ":") }
        guard offset.count == 2 || offset.count == 4, offset.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        let digits = offset.map { Int($0) - 48 }
        let hours = digits[0] * 10 + digits[1], minutes = offset.count == 4 ? digits[2] * 10 + digits[3] : 0
        guard hours <= 15, minutes < 60 else { return nil }
        let local = String(decoding: b[..<sign], as: UTF8.self)
        let seconds = (hours * 60 + minutes) * 60 * (b[sign] == UInt8(ascii: "+") ? 1 : -1)
        if seconds == 0 { return local }
        // By the proleptic Gregorian calendar's arithmetic (no formatter per value: slow on
        // Linux, found in review); a day or time out of range is left to the spelling checks.
        func field(_ at: Int, _ n: Int) -> Int { b[at..<at + n].reduce(0) { $0 * 10 + Int($1) - 48 } }
        let (y, m, d) = (field(0, 4), field(5, 2), field(8, 2))
        let (hh, mi, ss) = (field(11, 2), field(14, 2), field(17, 2))
        let monthDays = [
            31, y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31,
        ]
        guard (1...12).contains(m), (1...monthDays[m - 1]).contains(d), hh < 24, mi < 60, ss < 60 else { return nil }
        let total = daysFromCivil(y, m, d) * 86_400 + hh * 3600 + mi * 60 + ss - seconds
        let days = Int((Double(total) / 86_400).rounded(.down)), rest = total - days * 86_400
        let (uy, um, ud) = civilFromDays(days)
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let year = String(repeating: "0", count: max(0, 4 - String(uy).count)) + String(uy)
        return "\(year)-\(two(um))-\(two(ud)) \(two(rest / 3600)):\(two(rest % 3600 / 60)):\(two(rest % 60))"
            + String(decoding: b[19..<sign], as: UTF8.self)
    }

    /// Days since 1970-01-01 (H. Hinnant's algorithm).
    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp + (mp < 10 ? 3 : -9)
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    static let characterTypes: Set = ["char", "varchar", "tinytext", "text", "mediumtext", "longtext"]

    /// A BIT column set from the union of a multi-row update: the union holds the number as a
    /// string, which MariaDB reads into a BIT as its bytes (`5` became 53; found from outside).
    public func assigned(_ expression: SQL, to column: ColumnInfo) -> SQL {
        column.type.firstWord == "bit" ? "CAST(\(expression) AS UNSIGNED)" : expression
    }

    /// Values MariaDB reads as another value of the column's type, without an error in strict
    /// mode (found from outside): a number for an ENUM or SET is a member's index (`1` became
    /// `x`), text for a BIT is its bytes (`'a'` became 97), a double for a DATE, TIME, DATETIME
    /// or YEAR is read as YYYYMMDD, seconds or a two-digit year (`20240101.0` became a date).
    static func readsAsAnother(_ value: Value, _ col: ColumnInfo) -> String? {
        let type = col.type.firstWord
        switch (type, value) {
        case ("enum", .real), ("set", .real):
            return "the number \(value) for a column of type \(col.dataType), which MariaDB reads as a member's index"
        case ("enum", .text(let t)), ("set", .text(let t)):
            let members = Self.members(col.dataType)
            let named =
                type == "enum" ? [t] : t.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            // MariaDB reads a number past spaces and a `+` (` 1`, `+1`, `1 `; found in review).
            func number(_ s: String) -> Bool {
                var core = Substring(s.trimmingCharacters(in: .whitespaces))
                if core.first == "+" { core = core.dropFirst() }
                return !core.isEmpty && core.utf8.allSatisfy { $0 >= 48 && $0 <= 57 }
            }
            guard named.contains(where: { !members.contains($0) && number($0) }) else { return nil }
            return "'\(t.clipped(40))' names no member of \(col.dataType); MariaDB would read its number as "
                + (type == "enum" ? "a member's index" : "a set of members by their bits")
        case ("bit", .text(let t)):
            return "'\(t.clipped(40))' is no number; a column of type \(col.dataType) would take its bytes as the bits"
        case ("bit", .real(let d)) where d != d.rounded() || !d.isFinite:
            return "\(Value.realText(d)) is not whole; \(col.dataType) would round it"
        case ("date", .real(let d)), ("time", .real(let d)), ("datetime", .real(let d)), ("timestamp", .real(let d)),
            ("year", .real(let d)):
            return
                "the number \(Value.realText(d)) for a column of type \(col.dataType), which MariaDB reads as \(type == "year" ? "a year (5.0 as 2005)" : "digits of a \(type) (20240101.0 as 2024-01-01)")"
        default:
            return nil
        }
    }

    /// An ENUM's or SET's members, as the column's type lists them (`enum('x','it''s')`).
    static func members(_ dataType: String) -> [String] {
        guard let open = dataType.firstIndex(of: "("), let close = dataType.lastIndex(of: ")"), open < close else {
            return []
        }
        var out: [String] = []
        var current = ""
        var inQuote = false
        // By scalars: a member that starts with a combining mark is no Character of its own.
        var chars = dataType[dataType.index(after: open)..<close].unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        while let c = pending ?? chars.next() {
            pending = nil
            if inQuote {
                if c == "'" {
                    if let next = chars.next() {
                        if next == "'" {
                            current.append("'")
                        } else {
                            inQuote = false
                            out.append(current)
                            current = ""
                            pending = next
                        }
                    } else {
                        out.append(current)
                        inQuote = false
                    }
                } else {
                    current.unicodeScalars.append(c)
                }
            } else if c == "'" {
                inQuote = true
            }
        }
        return out
    }

    /// A text key for a binary key column would be its bytes here: a text key and a key of
    /// bytes with the same bytes would be one row, two on a node that keeps text apart from
    /// bytes (found from outside: they merged).
    public func keySpellingProblem(_ value: Value, _ column: ColumnInfo) -> String? {
        // A number too: 12 is the bytes `12` there (found from outside: it merged with X'3132').
        switch value {
        case .blob, .null: return nil
        default: break
        }
        if column.kind == .blob {
            return
                "text or a number for a binary key column (\(column.dataType)), which would hold its text as bytes and match a key of the same bytes"
        }
        return nil
    }

    /// MariaDB's typed columns whose own text of a value is one spelling of it.

    static func spelled(_ type: TypeName) -> ValueFit.Spelled? {
        switch type.firstWord {
        case "date": return .date
        case "time": return .time
        case "datetime", "timestamp": return .timestamp
        case "tinyint", "smallint", "mediumint", "int", "integer", "bigint": return .integer
        case "decimal", "numeric": return .decimal
        case "uuid": return .uuid
        default: return nil
        }
    }

    /// What MariaDB alters without an error even in strict mode (found from outside): it
    /// cuts fractional seconds beyond a column's precision, drops a time from a DATE, rounds a
    /// fraction into an integer, reads a two-digit year as 19xx or 20xx, trims trailing spaces
    /// past a VARCHAR's length and pads a short BINARY(n).
    static func strictModeLets(_ value: Value, _ typeName: TypeName) -> String? {
        let type = typeName.lowered, size = typeName.size
        switch (typeName.beforeParenthesis, value) {
        case ("datetime", .text(let s)), ("timestamp", .text(let s)), ("time", .text(let s)):
            let significant = ValueFit.significantFractionDigits(s)
            return significant > size
                ? "\(s.clipped(40)) has \(significant) fractional second digit(s); \(type) would cut them to \(size)"
                : nil
        // A year BC is no time of day: the calendar check says MariaDB holds none.
        case ("date", .text(let s)) where s.count > 10 && !s.hasSuffix(" BC"):
            let time = s.dropFirst(11)
            return time.allSatisfy({ $0 == "0" || $0 == ":" || $0 == "." })
                ? nil : "\(s.clipped(40)) has a time of day; a DATE column would drop it"
        case ("tinyint", .real(let d)), ("smallint", .real(let d)), ("mediumint", .real(let d)), ("int", .real(let d)),
            ("integer", .real(let d)), ("bigint", .real(let d)):
            return d.isFinite && d != d.rounded() ? "\(Value.realText(d)) is not whole; \(type) would round it" : nil
        case ("tinyint", .text(let s)), ("smallint", .text(let s)), ("mediumint", .text(let s)), ("int", .text(let s)),
            ("integer", .text(let s)), ("bigint", .text(let s)):
            guard let d = Double(s), Int64(s) == nil, UInt64(s) == nil else { return nil }
            return d != d.rounded() ? "\(s.clipped(40)) is not whole; \(type) would round it" : nil
        case ("year", .integer(let y)) where y > 0 && y < 100:
            return "\(y) is a two-digit year, which MariaDB reads as \(y < 70 ? 2000 + y : 1900 + y)"
        // A number for a YEAR column arrives as its text (the column's kind is text). The text of
        // zero in fewer than four digits is the year 2000 to MariaDB (found from outside: 0
        // became 2000); `0000` is the year 0.
        case ("year", .text(let t)) where t.utf8.count < 4 && Int(t) == 0:
            return "'\(t)' is a two-digit year, which MariaDB reads as 2000"
        case ("year", .text(let t)) where Int(t).map { $0 > 0 && $0 < 100 } ?? false:
            return strictModeLets(.integer(Int64(t)!), typeName)
        // Four digits are a YEAR's own spelling: `+2024` and `2024 ` were stored as 2024.
        case ("year", .text(let t)) where !(t.utf8.count == 4 && t.utf8.allSatisfy { $0 >= 48 && $0 <= 57 }):
            return "'\(t.clipped(40))' is not a year as MariaDB writes it (four digits); it would store another text"
        case ("char", .text(let s)) where s.utf8.last == 0x20:
            return "trailing spaces, which a \(type) column drops"
        case ("varchar", .text(let s)) where s.unicodeScalars.count > size,
            ("char", .text(let s)) where s.unicodeScalars.count > size:
            return "\(s.unicodeScalars.count) characters; \(type) would cut it to \(size)"
        case ("binary", .blob(let b)) where b.count < size:
            return "\(b.count) byte(s); BINARY(\(size)) would pad it with zero bytes to \(size)"
        // Text and numbers are their text's bytes there, padded alike (found from outside).
        case ("binary", .text(let s)) where s.utf8.count < size:
            return "\(s.utf8.count) byte(s); BINARY(\(size)) would pad it with zero bytes to \(size)"
        case ("binary", .integer(let i)) where String(i).utf8.count < size:
            return "\(String(i).utf8.count) byte(s); BINARY(\(size)) would pad it with zero bytes to \(size)"
        case ("binary", .real):
            return "a double for BINARY(\(size)), which would hold its text padded with zero bytes"
        default:
            return nil
        }
    }

    public func keyProblem(_ key: [Value]) -> String? {
        let bytes = KeyCodec.encode(key).count
        return bytes > Self.maxKeyBytes
            ? "the key is \(bytes) bytes; a MariaDB node keeps keys of up to \(Self.maxKeyBytes) bytes" : nil
    }

    // MARK: - Locks

    /// A named lock held by the connection (server-wide, so named after the database). A watch
    /// killed in mid-statement keeps its server session, and the lock, until the statement ends:
    /// "already running" sent operators after a process that was gone (found from outside:
    /// MariaDB, about 5 s).
    public func instanceLock(_ db: Database, for purpose: LockPurpose) throws -> HeldLock {
        let name = "datajoin_\(purpose.rawValue)." + (try db.scalar("SELECT DATABASE()").asString ?? "")
        guard try db.scalar("SELECT GET_LOCK(?, 0)", [.text(name)]) == .integer(1) else {
            throw DataJoinError(.locked, purpose.takenOnServer(db.displayName))
        }
        return NamedLock(db, name)
    }
}
