import Foundation

/// Runs DataJoin's ordinary code against a database and keeps none of it: one outer transaction
/// holds everything, each inner transaction becomes a savepoint, and `finish()` rolls it all
/// back. `--dry-run` uses it, so a dry run takes exactly the paths a real run takes.
public final class DryRunDatabase: Database, TransactionDriver {
    var transactionDepth = 0
    var applying = ApplyingState.unknown
    let inner: Database
    private var depth = 0
    private var counter = 0

    public init(_ inner: Database) throws {
        self.inner = inner
        guard let driver = inner as? TransactionDriver else {
            throw DataJoinError(.internalError, "\(inner.displayName): this connection cannot run transactions")
        }
        try driver.beginWrite()
        driver.transactionDepth = 1
    }

    /// Rolls back everything the dry run did.
    public func finish() throws {
        guard let driver = inner as? TransactionDriver else { return }
        driver.transactionDepth = 0
        try driver.rollbackTransaction()
    }

    public var dialect: Dialect { inner.dialect }
    public func isRefusal(_ error: Error) -> Bool { inner.isRefusal(error) }
    public func takeInvalidTextColumn() -> Int? { inner.takeInvalidTextColumn() }
    public func isUniqueViolation(_ error: Error) -> Bool { inner.isUniqueViolation(error) }
    public func insertWithLargeValue(into table: SQL, columns: SQL, _ row: [Value], valueIndex: Int) throws
        -> Int?
    { try inner.insertWithLargeValue(into: table, columns: columns, row, valueIndex: valueIndex) }
    public func bulkLoad(
        into table: SQL, columns: SQL, _ rows: (_ send: ([Value]) throws -> Void) throws -> Void
    ) throws -> Bool { try inner.bulkLoad(into: table, columns: columns, rows) }
    public var displayName: String { inner.displayName }
    /// Nothing of a dry run is committed: a second connection would not see it.
    public func openReader() throws -> Database? { nil }
    public func execute(_ sql: SQL) throws -> Int { try inner.execute(sql) }
    public func query(_ sql: SQL, _ body: (Row) throws -> Void) throws { try inner.query(sql, body) }
    public func stream(_ sql: SQL, _ body: (Row) throws -> Void) throws { try inner.stream(sql, body) }
    public func streamAlone(_ sql: SQL, _ body: (Row) throws -> Void) throws { try inner.streamAlone(sql, body) }
    public func executeScript(_ sql: SQL) throws { try inner.executeScript(sql) }
    public func isRetryable(_ error: Error) -> Bool { false }
    public func isUnavailable(_ error: Error) -> Bool { inner.isUnavailable(error) }
    public func readBlob(table: String, column: String, rowid: Int64, offset: Int, count: Int) throws -> [UInt8] {
        try inner.readBlob(table: table, column: column, rowid: rowid, offset: offset, count: count)
    }

    func beginWrite() throws {
        counter += 1
        depth += 1
        try inner.executeScript("SAVEPOINT dj_dry_\(literal: depth)")
    }
    func beginRead() throws { try beginWrite() }
    func commitTransaction() throws {
        try inner.executeScript("RELEASE SAVEPOINT dj_dry_\(literal: depth)")
        depth -= 1
    }
    func rollbackTransaction() throws {
        guard depth > 0 else { return }
        try inner.executeScript(
            "ROLLBACK TO SAVEPOINT dj_dry_\(literal: depth); RELEASE SAVEPOINT dj_dry_\(literal: depth)")
        depth -= 1
    }
}
