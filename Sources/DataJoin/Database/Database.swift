import Foundation

/// The database brands DataJoin speaks.
public enum Brand: String, Sendable {
    case sqlite
    case postgres
}

/// One result row; values typed by the driver.
public struct Row {
    public var values: [Value]
    public subscript(_ i: Int) -> Value { values[i] }
    func int(_ i: Int) -> Int64? { values[i].asInt64 }
    func string(_ i: Int) -> String? { values[i].asString }
}

/// One open connection. Statements use `?` placeholders on every brand; values are always bound,
/// never spliced into SQL text. Identifiers come only from the tracked-table registry and are
/// quoted with `quote(_:)`.
public protocol Database: AnyObject {
    var brand: Brand { get }
    /// A description safe to print (no password).
    var displayName: String { get }
    @discardableResult
    func execute(_ sql: String, _ params: [Value]) throws -> Int
    func query(_ sql: String, _ params: [Value], _ body: (Row) throws -> Void) throws
    /// Streams a large result without holding it in memory. Inside a transaction.
    func stream(_ sql: String, _ params: [Value], _ body: (Row) throws -> Void) throws
    /// Several statements of DataJoin's own DDL, no parameters.
    func executeScript(_ sql: String) throws
    func beginTransaction() throws
    /// A consistent read-only snapshot; takes no write lock.
    func beginReadTransaction() throws
    func commit() throws
    func rollback() throws
    /// True when an error means "try the whole transaction again" (serialization failure, deadlock).
    func isRetryable(_ error: Error) -> Bool
    /// True when the database itself is gone, full or locked: no later work could succeed
    /// either (ingest stops its run instead of refusing every file).
    func isUnavailable(_ error: Error) -> Bool
    /// `count` bytes from `offset` of a blob column of one row (`id`): a large value is read a
    /// piece at a time, never whole. `table` and `column` are DataJoin's own.
    func readBlob(table: String, column: String, rowid: Int64, offset: Int, count: Int) throws -> [UInt8]
}

extension Database {
    public func quote(_ identifier: String) -> String {
        // Without Foundation: this runs for every identifier of every generated statement.
        if !identifier.utf8.contains(UInt8(ascii: "\"")) { return "\"" + identifier + "\"" }
        return "\"" + identifier.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"")
            + "\""
    }

    @discardableResult
    public func execute(_ sql: String) throws -> Int { try execute(sql, []) }

    public func rows(_ sql: String, _ params: [Value] = []) throws -> [Row] {
        var out: [Row] = []
        try query(sql, params) { out.append($0) }
        return out
    }

    public func firstRow(_ sql: String, _ params: [Value] = []) throws -> Row? {
        var first: Row?
        try query(sql, params) { row in if first == nil { first = row } }
        return first
    }

    /// PostgreSQL plans from statistics; a table that just grew by thousands of rows would be
    /// planned as if it were still small. Analyzes each of `tables` after `changes` ≥ 5,000 that
    /// are also at least a tenth of its rows at the last ANALYZE (autovacuum's own rule): on a
    /// table of millions, 10,000 more rows change no plan, and analyzing it cost a 10,000-change
    /// step a third of its time.
    func refreshStatistics(_ tables: [String], after changes: Int) throws {
        guard brand == .postgres, changes >= 5_000 else { return }
        for t in tables {
            let rows =
                try scalar("SELECT reltuples::bigint FROM pg_catalog.pg_class WHERE oid = to_regclass(?)", [.text(t)])
                .asInt64 ?? -1
            if rows <= 0 || Int64(changes) * 10 >= rows { try execute("ANALYZE \(quote(t))") }
        }
    }

    public func scalar(_ sql: String, _ params: [Value] = []) throws -> Value {
        try firstRow(sql, params)?.values.first ?? .null
    }

    public func inReadTransaction<T>(_ body: () throws -> T) throws -> T {
        try beginReadTransaction()
        do {
            let result = try body()
            try commit()
            return result
        } catch {
            try? rollback()
            throw error
        }
    }

    /// Runs `body` in one transaction: commits on return, rolls back on throw and rethrows the
    /// first error (a failed rollback never hides it). Retryable failures run `body` again.
    public func inTransaction<T>(retries: Int = 20, _ body: () throws -> T) throws -> T {
        var attempt = 0
        while true {
            try beginTransaction()
            do {
                let result = try body()
                try commit()
                return result
            } catch {
                try? rollback()
                attempt += 1
                if attempt <= retries && isRetryable(error) { continue }
                throw error
            }
        }
    }
}

/// Opens a database from a connection URL.
public enum DatabaseOpener {
    /// `create`: make a new SQLite file where there is none (`init` only).
    public static func open(_ url: DatabaseURL, create: Bool = true) throws -> Database {
        switch url {
        case .sqlite(let path): return try SQLiteDatabase(path: path, create: create)
        case .postgres(let conninfo, let display): return try PostgresDatabase(conninfo: conninfo, displayName: display)
        }
    }

    public static func open(_ text: String, create: Bool = true) throws -> Database {
        try open(DatabaseURL.parse(text), create: create)
    }
}
