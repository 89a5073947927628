import Foundation

/// Everything the core needs to know about one database brand: the text of the statements that
/// differ, how its catalog is read, how capture is installed, in which order captured rows are
/// stamped. One implementation per brand, in `Database/<Brand>/`; the core (capture, export,
/// ingest, import, snapshot, prune, status, watch) asks its connection's dialect and never
/// looks at the brand itself (docs/architecture.md).
///
/// Methods that read or write take the connection: a dialect is a value without state.
public protocol Dialect: Sendable {
    var brand: Brand { get }
    /// Why the brand cannot keep `name` whole (too long); nil when it can.
    func nameLimitProblem(_ name: String) -> String?

    // MARK: - DataJoin's own tables

    /// An id column: integer primary key the database hands out, never twice.
    var autoIdColumn: SQL { get }
    /// A column of bytes (payloads).
    var bytesType: SQL { get }
    /// Bytes in a key or an index (row keys).
    var keyBytesType: SQL { get }
    /// Text of any length.
    var textType: SQL { get }
    /// Text in a key or an index, of up to `chars` characters where the brand bounds it.
    func keyTextType(_ chars: Int) -> SQL
    /// What follows `CREATE TABLE name (…)` for DataJoin's own tables.
    var tableOptions: SQL { get }
    /// ` WHERE condition` for a partial index, or nothing where the brand has none (the index
    /// then covers every row, and must still be right).
    func partialIndex(_ condition: SQL) -> SQL
    func dropIndex(_ name: SQL, on table: SQL) -> SQL
    /// A bytes column in an index: the brand indexes a prefix of it where it must (a held
    /// change's key may be longer than a key the brand stores).
    func indexed(_ bytesColumn: SQL) -> SQL
    /// A column that keeps a captured value as the trigger wrote it.
    var capturedValueType: SQL { get }
    /// Statements only this brand needs after the common tables (each ending in `;`).
    var extraSchema: SQL { get }
    /// True when `Database.stream` reads through a cursor whose rows per fetch are counted
    /// before their sizes are known (MariaDB's prefetch): a stream's rows then leave their
    /// large values apart.
    var streamsByCount: Bool { get }
    /// True when DataJoin's tables exist in this database.
    func isInstalled(_ db: Database) throws -> Bool
    func hasColumn(_ db: Database, table: String, column: String) throws -> Bool
    /// Whether the relation of this name is a table (nil: there is none), for `init`, which must
    /// not take another program's view for one of its tables.
    func isTable(_ db: Database, _ name: String) throws -> Bool?
    /// What holds this index name where it would clash with `CREATE INDEX IF NOT EXISTS`: the
    /// table of an index of that name, or the relation of that name (nil: nothing, or a brand
    /// whose index names belong to one table).
    func holderOfIndexName(_ db: Database, _ name: String) throws -> String?
    /// Brings a node's tables from `version` towards the current one, where this brand needs a
    /// step the others do not (called inside the upgrade's transaction, before the common DDL).
    func upgradeSteps(_ db: Database, from version: Int64) throws
    /// Keeps the node's private key from other users of the database, where it has users.
    func protectPrivateKey(_ db: Database) throws

    // MARK: - Application tables

    /// The table's name as the catalog spells it, where the brand finds tables by another
    /// spelling too (SQLite ignores case); nil where the name given is the name.
    func catalogName(_ db: Database, table: String) throws -> String?
    /// True where SQL reads an unquoted name in lower case (PostgreSQL: `Sales_Order` is
    /// sales_order), so a name given to `track` means what it means in the brand's own SQL.
    var foldsUnquotedNames: Bool { get }
    /// The columns of `table` in declaration order, or empty when there is no such table.
    func columns(_ db: Database, of table: String) throws -> [ColumnInfo]
    /// How values of a declared column type are typed.
    func valueKind(declaredType: String) -> ValueKind
    /// (child, parent) for every foreign key among `tables`.
    func foreignKeys(_ db: Database, among tables: Set<String>) throws -> [ForeignKeyColumn]
    /// The unique indexes of `tables` other than their primary keys (the importer's write order).
    func uniqueIndexes(_ db: Database, among tables: Set<String>) throws -> [UniqueIndex]
    /// The key column the database fills in and what it draws from; nil when the key is given
    /// by the application (or the brand cannot give a node its own ids, docs/keys.md).
    func generatedKey(_ db: Database, _ t: TableInfo) throws -> GeneratedKey?
    /// True where the brand can make new rows' ids come from a block (not SQLite).
    var keyBlocksPossible: Bool { get }
    /// The id `key`'s generator would hand out next, where it knows (nil: never used, or absent).
    func generatorNext(_ db: Database, _ key: GeneratedKey) throws -> Int64?
    /// Makes `key`'s generator hand out ids of `range` only, `next` first, never wrapping.
    func setUpKeyBlock(_ db: Database, _ t: TableInfo, _ key: GeneratedKey, range: ClosedRange<Int64>, next: Int64)
        throws
    /// Makes `key`'s generator hand out ids above `id` from now on, if it would not already.
    func raiseKeyBlock(_ db: Database, _ key: GeneratedKey, above id: Int64) throws
    /// True when `key`'s generator no longer hands out the ids of `range` that `setUpKeyBlock`
    /// set up: a sequence replaced or altered, MariaDB's key-block trigger dropped.
    func keyBlockLost(_ db: Database, _ t: TableInfo, _ key: GeneratedKey, range: ClosedRange<Int64>) throws -> Bool
    /// Warnings for `track`: a key the database generates, a key column that may hold NULL.
    func keyWarnings(_ db: Database, _ t: TableInfo) throws -> [String]
    /// A tracked table's key column that holds keys of more than one kind which other brands
    /// take for one (SQLite's 5 and '5'), for `check`; nil where the brand's keys have one type.
    func keysOfSeveralKinds(_ db: Database, _ t: TableInfo) throws -> String?
    /// The select list that reads these columns of an application row as the capture writes
    /// their values (a snapshot, the importer's look at a local row).
    func selected(_ columns: [ColumnInfo]) -> SQL

    // MARK: - Capture

    func installCapture(_ db: Database, _ t: TableInfo) throws
    func removeCapture(_ db: Database, table: String) throws
    /// The table has the insert and delete capture triggers of this version: a table rebuilt
    /// (created anew, rows copied, the old one dropped, the new one renamed) or replaced has none.
    func captureInstalled(_ db: Database, table: String) throws -> Bool
    /// The capture triggers `installCapture` makes for `t` that are not on it, or are disabled
    /// (PostgreSQL): one dropped by hand leaves some kinds of write uncaptured.
    func missingCaptureTriggers(_ db: Database, _ t: TableInfo) throws -> CaptureTriggerCheck
    /// This database user cannot see the table's triggers at all (MariaDB shows them only to a
    /// user with the TRIGGER privilege): none found says nothing of them.
    func triggersHidden(_ db: Database, table: String) throws -> Bool
    /// The capture triggers write column names fixed when they were installed, while the
    /// database rewrites their column references on a rename (SQLite): the same columns in
    /// another order mean renamed ones, and values going out under their old names.
    var captureNamesFixedAtInstall: Bool { get }
    /// An `ALTER TABLE` that changes a column's type rewrites the values it holds (not on
    /// SQLite, whose declared type holds any value): a narrowing is drift (`CaptureDrift`).
    var typeChangesRewriteValues: Bool { get }
    /// The capture records each change's source transaction (`source_id`), so an export cuts
    /// bundles only between transactions (PostgreSQL; SQLite and MariaDB have no such id).
    var recordsSourceTransactions: Bool { get }
    /// An `ALTER TABLE` to a smaller integer type may clamp values instead of refusing them
    /// (MariaDB without strict mode).
    var clampsIntegersOnAlter: Bool { get }
    /// Each DDL statement commits the transaction it runs in (MariaDB): a failed `track` must
    /// undo by hand what it wrote before the failure.
    var commitsEachDDL: Bool { get }
    /// How to track `table` of `schema`, named with it: a table is named as the connection sees
    /// it, one schema per node.
    func schemaCure(schema: Substring, table: Substring) -> String
    /// True when `schema` is the one whose tables the connection names without one (PostgreSQL's
    /// current schema, MariaDB's database, SQLite's `main` in any case, as SQLite reads it).
    func isCurrentSchema(_ db: Database, _ schema: String) throws -> Bool
    /// Why `table` is no table whose writes capture can see (a view, a PostgreSQL partitioned
    /// table), or nil.
    func notCapturable(_ db: Database, table: String) throws -> String?
    /// Brings the capture of foreign-key cascades in line with the tracked tables after `track`
    /// or `untrack` (MariaDB, whose cascades fire no trigger); warnings name what it cannot capture.
    func refreshCascadeCapture(_ db: Database) throws -> [(table: String, warning: String)]
    /// Tracked tables whose foreign keys changed since their cascade capture was written (MariaDB,
    /// where DataJoin's triggers capture what cascades change).
    func cascadeCaptureStale(_ db: Database, tracked: [String]) throws -> Set<String>
    /// The value `ON DELETE SET DEFAULT` gives `column`, in an `UPDATE`'s `SET` (`DEFAULT`;
    /// SQLite has no such word there: the column's default expression from its own schema).
    func columnDefault(_ db: Database, table: String, column: String) throws -> SQL
    /// Writes the capture triggers of tracked tables again when the schema version they were
    /// written under captured something wrong here (SQLite before 13: some reals).
    func upgradeCapture(_ db: Database, from version: Int) throws
    /// Before an upgrade's first statement: what its capture rewrite will lock, taken first,
    /// in the order an application's write takes it (its table, then the outbox).
    func lockForUpgrade(_ db: Database) throws
    /// Every row the table holds now, written to the outbox as the insert trigger would.
    func backfill(_ db: Database, _ t: TableInfo) throws -> Int
    /// A value as the capture triggers wrote it, typed by its column's kind.
    func capturedValue(_ text: String?, kind: ValueKind) -> Value
    /// The same, where the column's declared type says more than its kind (MariaDB's FLOAT).
    func capturedValue(_ text: String?, column: ColumnInfo?) -> Value
    /// Tells capture, for the rest of this transaction only, which writes are the importer's
    /// own: nil, none (not importing); "", none yet (importing); a table's name, the importer's
    /// statements on that table from now on. Capture skips exactly those. What the database
    /// does in consequence on other tables (a foreign key's `ON DELETE CASCADE` or `SET NULL`)
    /// is this node's own change, captured: the rows it reached may be ones the deleting node
    /// never saw (docs/conflict-rules.md, "Cascades at the target").
    func setApplying(_ db: Database, _ table: String?) throws
    /// Foreign keys checked at the end of the transaction (`on`), or at once again.
    func deferForeignKeys(_ db: Database, _ on: Bool) throws

    // MARK: - Stamping

    /// Settings for the rest of a stamping or import transaction.
    func prepareStamping(_ db: Database) throws
    /// The id at or below which every outbox row is stamped (0 where the brand keeps no cursor).
    func stampedThrough(_ db: Database) throws -> Int64
    func setStampedThrough(_ db: Database, _ id: Int64) throws
    /// Outbox rows at or below the cursor that have no seq (left by an older version).
    func strandedCount(_ db: Database) throws -> Int64
    /// Moves the cursor below any stranded row; returns how many there were.
    func repairStranded(_ db: Database) throws -> Int64
    /// The next `size` unstamped outbox rows (columns of `select`) in commit order, and the
    /// cursor moved past them.
    func nextStampChunk(_ db: Database, _ cursor: inout StampCursor, select: SQL, size: Int) throws -> [Row]
    /// Writes (id, seq, hlc, cl) of each stamped outbox row.
    func writeStamps(_ db: Database, _ stamps: [[Int64]], node: String, batch: Int) throws
    /// True when one write transaction can read a consistent snapshot without holding back the
    /// application's writers (a snapshot then stamps and reads in one transaction).
    var writeTransactionReadsWithoutBlocking: Bool { get }

    // MARK: - Statements that differ

    /// The clause after `INSERT … VALUES …` that turns a duplicate of `key` into an update of
    /// `set` (column and expression; `incoming(column)` is the value the insert brought, a
    /// quoted column name alone the row's value before).
    func upsert(key: [SQL], set: [(column: SQL, expression: SQL)]) -> SQL
    /// The value an upsert's insert brought for `column` (quoted), inside `upsert`'s `set`.
    func incoming(_ column: SQL) -> SQL
    /// The clause after `INSERT … VALUES …` that skips a row whose `key` is there already.
    func skipDuplicate(key: [SQL]) -> SQL
    /// Runs `body`, whose statements have the same best plan whatever their parameters, with
    /// plans made once per statement instead of once per execution.
    func planOnce<T>(_ db: Database, _ body: () throws -> T) throws -> T
    /// A condition true for the rows whose `key` columns equal one of `n` keys, bound as the
    /// keys' values in order, that the brand answers with an index lookup per key.
    func keyIn(_ key: [SQL], count n: Int) -> SQL
    /// `UPDATE table AS d SET … FROM (rows) AS v WHERE match` in the brand's words.
    func updateFrom(
        _ table: SQL, alias: SQL, set: [(column: SQL, expression: SQL)], rows: SQL, rowsAlias: SQL, match: SQL
    ) -> SQL

    /// `INSERT … VALUES rows` that skips rows whose key is there already.
    func insertSkippingDuplicates(into table: SQL, columns: SQL, rows: SQL) -> SQL
    /// An INSERT's new id (`sql` has no RETURNING clause).
    func insertReturningId(_ db: Database, _ sql: SQL) throws -> Int64
    /// A constant false condition.
    var falseCondition: SQL { get }
    /// `n` rows of `width` parameters as a row source for `… UNION ALL <rows>`.
    func parameterRows(_ n: Int, width: Int) -> SQL
    /// `SELECT columns FROM versions WHERE object_table = ? AND object_id IN (keys)`, one index
    /// descent per key.
    func keyedVersions(_ columns: SQL, from versions: SQL, keys: Int) -> SQL
    /// Deletes the column versions of `keys` keys of one table (parameters: table, keys).
    func deleteColumnVersions(keys: Int) -> SQL
    /// Brings the planner's statistics up to date after `changes` rows were written.
    func refreshStatistics(_ db: Database, _ tables: [String], after changes: Int) throws

    // MARK: - Values

    /// Why `value` would be stored altered in `column`; nil when it fits.
    func valueProblem(_ value: Value, _ column: ColumnInfo) -> String?
    /// The value as it is bound for `column`, where the brand would store another text of it.
    func storedValue(_ value: Value, _ column: ColumnInfo) -> Value
    /// What to do about a change the database refused, where its own words do not say.
    func refusalAdvice(_ error: Error) -> String?
    /// The expression that sets `column` from a joined row's value (`v.c`) in a multi-row update.
    func assigned(_ expression: SQL, to column: ColumnInfo) -> SQL
    /// Why a key cannot be stored at all; nil when it can.
    func keyProblem(_ key: [Value]) -> String?
    /// Why a key value in this spelling could name another row than the change means (SQLite's
    /// NUMERIC affinity stores '05' and '5' as one number); nil when it cannot.
    func keySpellingProblem(_ value: Value, _ column: ColumnInfo) -> String?

    // MARK: - Locks

    /// Holds "one `datajoin watch` (or one export) on this database" until the returned lock is
    /// released; `.locked` when another holds it.
    func instanceLock(_ db: Database, for purpose: LockPurpose) throws -> HeldLock
}

/// What an instance lock keeps to one process at a time.
public enum LockPurpose: String, Sendable {
    case watch
    /// One export of a node at a time: two at once wrote receipts that went back from one file
    /// to the next, which a peer reads as a node restored from a backup (found from outside).
    case export

    /// The message for a lock taken: what holds it.
    func taken(_ displayName: String) -> String {
        switch self {
        case .watch: return "another datajoin watch holds the watch lock of \(displayName): stop it first"
        case .export: return "another datajoin export of \(displayName) is running"
        }
    }

    /// The same on a server, where a process killed in mid-statement keeps its session, and the
    /// lock, until the statement ends.
    func takenOnServer(_ displayName: String) -> String {
        taken(displayName)
            + (self == .watch
                ? "; if none runs, the server has not yet ended the session of one that was killed: try again in a few seconds"
                : "")
    }
}

/// The standard SQL forms, which SQLite and PostgreSQL share: a dialect overrides what its brand
/// says otherwise (MariaDB: `ON DUPLICATE KEY UPDATE`, bounded key text, no partial index).
extension Dialect {
    public func keysOfSeveralKinds(_ db: Database, _ t: TableInfo) throws -> String? { nil }
    public func selected(_ columns: [ColumnInfo]) -> SQL { "\(columns.map(\.identifier))" }
    public var textType: SQL { "TEXT" }
    public func keyTextType(_ chars: Int) -> SQL { "TEXT" }
    public var tableOptions: SQL { "" }
    public func partialIndex(_ condition: SQL) -> SQL { " WHERE \(condition)" }
    public func indexed(_ bytesColumn: SQL) -> SQL { bytesColumn }
    public func dropIndex(_ name: SQL, on table: SQL) -> SQL { "DROP INDEX IF EXISTS \(name)" }

    public func upsert(key: [SQL], set: [(column: SQL, expression: SQL)]) -> SQL {
        "ON CONFLICT (\(key.joined(separator: ", "))) DO UPDATE SET "
            + set.map { "\($0.column) = \($0.expression)" }.joined(separator: ", ")
    }

    public func incoming(_ column: SQL) -> SQL { "excluded.\(column)" }

    public func skipDuplicate(key: [SQL]) -> SQL { "ON CONFLICT (\(key.joined(separator: ", "))) DO NOTHING" }

    public func planOnce<T>(_ db: Database, _ body: () throws -> T) throws -> T { try body() }

    /// SQLite's and PostgreSQL's cascades fire the children's own capture triggers.
    public func refreshCascadeCapture(_ db: Database) throws -> [(table: String, warning: String)] { [] }
    public func cascadeCaptureStale(_ db: Database, tracked: [String]) throws -> Set<String> { [] }
    /// SQLite's and PostgreSQL's catalogs show every trigger to a user who may read the table.
    public func triggersHidden(_ db: Database, table: String) throws -> Bool { false }
    public func columnDefault(_ db: Database, table: String, column: String) throws -> SQL { "DEFAULT" }

    public func upgradeCapture(_ db: Database, from version: Int) throws {}
    public func lockForUpgrade(_ db: Database) throws {}
    public func keySpellingProblem(_ value: Value, _ column: ColumnInfo) -> String? { nil }

    /// `(k) IN (?, …)` or `(k1, k2) IN ((?, ?), …)`.
    public func keyIn(_ key: [SQL], count n: Int) -> SQL {
        "(\(key.joined(separator: ", "))) IN (\(SQL.placeholderRows(n, width: key.count, bare: true)))"
    }

    public func updateFrom(
        _ table: SQL, alias: SQL, set: [(column: SQL, expression: SQL)], rows: SQL, rowsAlias: SQL, match: SQL
    ) -> SQL {
        let assignments = set.map { "\($0.column) = \($0.expression)" as SQL }.joined(separator: ", ")
        return "UPDATE \(table) AS \(alias) SET \(assignments) FROM (\(rows)) AS \(rowsAlias) WHERE \(match)"
    }

    /// Each row its own `SELECT`, so a union with an empty select of the target table types every
    /// parameter as its column (PostgreSQL typed a `VALUES` list's parameters as text).
    public func parameterRows(_ n: Int, width: Int) -> SQL {
        let row = "SELECT " + Array(repeating: "?", count: width).joined(separator: ", ")
        return SQL(raw: Array(repeating: row, count: n).joined(separator: " UNION ALL "))
    }

    public func keyedVersions(_ columns: SQL, from versions: SQL, keys: Int) -> SQL {
        "SELECT \(columns) FROM \(versions) WHERE object_table = ? AND object_id IN (\(marks(keys)))"
    }

    public func deleteColumnVersions(keys: Int) -> SQL {
        "DELETE FROM ds_column_version WHERE object_table = ? AND object_id IN (\(marks(keys)))"
    }

    /// `n` placeholders, separated by commas.
    func marks(_ n: Int) -> SQL { SQL.placeholders(n) }

    public func capturedValue(_ text: String?, column: ColumnInfo?) -> Value {
        capturedValue(text, kind: column?.kind ?? .any)
    }

    public func storedValue(_ value: Value, _ column: ColumnInfo) -> Value { value }

    public func refusalAdvice(_ error: Error) -> String? { nil }

    public func assigned(_ expression: SQL, to column: ColumnInfo) -> SQL { expression }

    /// An upsert that overwrites `columns` with what the insert brought.
    public func upsert(key: [SQL], overwrite columns: [SQL]) -> SQL {
        upsert(key: key, set: columns.map { ($0, incoming($0)) })
    }

    /// No key blocks where the brand has no way to set them up.
    public var keyBlocksPossible: Bool { false }
    public func generatedKey(_ db: Database, _ t: TableInfo) throws -> GeneratedKey? { nil }
    public func setUpKeyBlock(
        _ db: Database, _ t: TableInfo, _ key: GeneratedKey, range: ClosedRange<Int64>, next: Int64
    ) throws {
        throw DataJoinError(.internalError, "\(brand) sets up no key blocks")
    }

    public func raiseKeyBlock(_ db: Database, _ key: GeneratedKey, above id: Int64) throws {}
    public func keyBlockLost(_ db: Database, _ t: TableInfo, _ key: GeneratedKey, range: ClosedRange<Int64>) throws
        -> Bool
    { false }
    public func generatorNext(_ db: Database, _ key: GeneratedKey) throws -> Int64? { nil }

    /// Names are found as they are spelled.
    public func catalogName(_ db: Database, table: String) throws -> String? { nil }
    public var foldsUnquotedNames: Bool { false }

    /// SQLite keeps a name of any length.
    public func nameLimitProblem(_ name: String) -> String? { nil }

    /// A dialect with nothing to add runs no extra step.
    public func upgradeSteps(_ db: Database, from version: Int64) throws {}

    /// `name` as a name in this brand's statements, after checking that the brand can hold it
    /// whole. For the names DataJoin makes (triggers, functions): one over the limit would be
    /// cut (PostgreSQL) or refused (MariaDB), and a cut name can be another table's. An
    /// application's own names need no check: the database made them, and cuts them the same
    /// way in every statement.
    public func identifier(_ name: String) throws -> Identifier {
        if name.isEmpty || name.utf8.contains(0) {
            throw DataJoinError(
                .usage, "'\(name.prefix(80))' cannot be a table or column name: it is empty or holds a NUL byte")
        }
        if let problem = nameLimitProblem(name) {
            throw DataJoinError(.usage, "the name \(problem)")
        }
        return Identifier(name)
    }
}
