import Foundation

/// The database brands DataJoin speaks.
public enum Brand: String, Sendable {
    case sqlite
    case postgres
    case mariadb
}

/// One result row; values typed by the driver.
public struct Row {
    public var values: [Value]
    public subscript(_ i: Int) -> Value { values[i] }
    func int(_ i: Int) -> Int64? { values[i].asInt64 }
    func string(_ i: Int) -> String? { values[i].asString }
    /// The bytes of its text and blob values: what a batch of rows holds in memory.
    var payloadBytes: Int {
        values.reduce(0) { n, v in
            switch v {
            case .text(let s): return n + s.utf8.count
            case .blob(let b): return n + b.count
            default: return n + 8
            }
        }
    }
}

/// One open connection. Statements are `SQL` values: values are always bound, never spliced into
/// the text, and names are `Identifier`s, which come only from the tracked-table registry.
public protocol Database: AnyObject {
    /// What differs between brands in SQL and catalogs: the only way the core learns the brand.
    var dialect: Dialect { get }
    /// A description safe to print (no password).
    var displayName: String { get }
    @discardableResult
    func execute(_ sql: SQL) throws -> Int
    func query(_ sql: SQL, _ body: (Row) throws -> Void) throws
    /// Streams a large result without holding it in memory. Inside a transaction.
    func stream(_ sql: SQL, _ body: (Row) throws -> Void) throws
    /// Streams a result whose `body` runs no statement on this connection: rows come one at a
    /// time as the server sends them, so memory holds one row whatever the sizes of the rows
    /// before it (a cursor's fetch count is chosen before the rows' sizes are known).
    func streamAlone(_ sql: SQL, _ body: (Row) throws -> Void) throws
    /// Several statements of DataJoin's own DDL, no parameters.
    func executeScript(_ sql: SQL) throws
    /// The first column of a row read since the last call whose text was not valid UTF-8 (read
    /// repaired, with U+FFFD), and clears it; nil when there was none. Only SQLite stores such
    /// text; export holds a change that carries it (docs/reliability.md).
    func takeInvalidTextColumn() -> Int?
    /// True when an error means "try the whole transaction again" (serialization failure, deadlock).
    func isRetryable(_ error: Error) -> Bool
    /// True when the database itself is gone, full or locked: no later work could succeed
    /// either (ingest stops its run instead of refusing every file).
    func isUnavailable(_ error: Error) -> Bool
    /// `count` bytes from `offset` of a blob column of one row (`id`): a large value is read a
    /// piece at a time, never whole. `table` and `column` are DataJoin's own.
    func readBlob(table: String, column: String, rowid: Int64, offset: Int, count: Int) throws -> [UInt8]
    /// True when the database refused a statement (a constraint, a type), as opposed to a lost
    /// connection or a bug.
    func isRefusal(_ error: Error) -> Bool
    /// True when `error` is a duplicate key.
    func isUniqueViolation(_ error: Error) -> Bool
    /// A row with a large value written in place, where the brand can (the value never in a
    /// statement's memory as well): the rows inserted, or nil when the brand has no such path
    /// or `row[valueIndex]` is smaller than it is worth. Skips a duplicate key.
    func insertWithLargeValue(into table: SQL, columns: SQL, _ row: [Value], valueIndex: Int) throws -> Int?
    /// Streams rows into `table` by the brand's bulk path, where it has one that beats
    /// multi-row INSERT; false (nothing done) where it has none. A duplicate key fails it.
    func bulkLoad(into table: SQL, columns: SQL, _ rows: (_ send: ([Value]) throws -> Void) throws -> Void)
        throws -> Bool
    /// A second connection to the same database, for another thread to read what this one
    /// will need next (an import's next inbox chunks); it sees what is committed, never this
    /// connection's open transaction. Nil where this connection's reads need not be committed.
    func openReader() throws -> Database?
    /// Takes over what a reader opened by `openReader` counted, once its work is done.
    func absorb(_ reader: Database)
}

extension Database {
    public func absorb(_ reader: Database) {}

    /// Brands whose text is always valid UTF-8 have none to report.
    public func takeInvalidTextColumn() -> Int? { nil }

    /// A name quoted for text a brand builds itself (trigger bodies, DDL scripts), inside
    /// `Database/<Brand>/` only: the core writes names as `Identifier`s in `SQL`.
    func quote(_ name: String) -> String { Identifier(name).quoted }

    @discardableResult
    public func execute(_ sql: SQL, _ params: [Value]) throws -> Int { try execute(sql.binding(params)) }

    public func query(_ sql: SQL, _ params: [Value], _ body: (Row) throws -> Void) throws {
        try query(sql.binding(params), body)
    }

    public func stream(_ sql: SQL, _ params: [Value], _ body: (Row) throws -> Void) throws {
        try stream(sql.binding(params), body)
    }

    public func streamAlone(_ sql: SQL, _ params: [Value], _ body: (Row) throws -> Void) throws {
        try streamAlone(sql.binding(params), body)
    }

    public func rows(_ sql: SQL, _ params: [Value] = []) throws -> [Row] {
        var out: [Row] = []
        try query(sql.binding(params)) { out.append($0) }
        return out
    }

    public func firstRow(_ sql: SQL, _ params: [Value] = []) throws -> Row? {
        var first: Row?
        try query(sql.binding(params)) { row in if first == nil { first = row } }
        return first
    }

    public var brand: Brand { dialect.brand }

    /// Brings the planner's statistics up to date where the brand plans from them.
    func refreshStatistics(_ tables: [String], after changes: Int) throws {
        try dialect.refreshStatistics(self, tables, after: changes)
    }

    public func scalar(_ sql: SQL, _ params: [Value] = []) throws -> Value {
        try firstRow(sql, params)?.values.first ?? .null
    }
}

/// Opens a database from a connection URL.
public enum DatabaseOpener {
    /// `create`: make a new SQLite file where there is none (`init` only).
    public static func open(_ url: DatabaseURL, create: Bool = true) throws -> Database {
        switch url {
        case .sqlite(let path): return try SQLiteDatabase(path: path, create: create)
        case .postgres(let conninfo, let display): return try PostgresDatabase(conninfo: conninfo, displayName: display)
        case .mariadb(let address, let display): return try MariaDBDatabase(address, displayName: display)
        }
    }

    public static func open(_ text: String, create: Bool = true) throws -> Database {
        try open(DatabaseURL.parse(text), create: create)
    }

    /// The columns of each table whose name starts with `ds_` that `ddl` creates, and the table
    /// of each index it names, read from a database in memory where it ran
    /// (`SyncSchema.created`).
    static func schemaCreated(by ddl: (Dialect) -> SQL) throws -> (
        columns: [String: [String]], indexes: [String: String]
    ) {
        let memory = try SQLiteDatabase(path: ":memory:", create: true)
        try memory.executeScript(ddl(memory.dialect))
        var columns: [String: [String]] = [:]
        var indexes: [String: String] = [:]
        for row in try memory.rows(
            "SELECT type, name, tbl_name FROM sqlite_master WHERE name LIKE 'ds\\_%' ESCAPE '\\'")
        {
            let name = row.string(1) ?? ""
            switch row.string(0) {
            case "table": columns[name] = try memory.dialect.columns(memory, of: name).map(\.name)
            case "index": indexes[name] = row.string(2) ?? ""
            default: break
            }
        }
        return (columns, indexes)
    }
}
