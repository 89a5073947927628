import CMariaDB
import Foundation

/// One libmariadb connection, closed in deinit. Every statement with values is a server-side
/// prepared statement (values bound, never in the text), prepared once per connection.
public final class MariaDBDatabase: Database, TransactionDriver {
    var transactionDepth = 0
    var applying = ApplyingState.unknown
    public let dialect: Dialect
    public let displayName: String
    let handle: UnsafeMutablePointer<MYSQL>
    /// Holds the password: never printed (`displayName` is what is).
    private let address: Address
    private var cache: [String: MariaDBStatement] = [:]
    /// While `streamAlone` reads its rows: another statement would find the connection out of sync.
    private var streamingAlone = false
    /// `net_write_timeout` raised for `streamAlone`: the server gives up a result its client has
    /// not read for that long (60 s by default), and a slow output may hold the reader.
    private var longWriteTimeout = false
    private var holdsWriterLock = false
    /// Set when the server ended the open transaction itself (a deadlock; a write conflict
    /// under snapshot isolation), savepoints and all: every later statement of it fails with
    /// that error, and so does its COMMIT. Gone on, the session committed each later statement
    /// by itself, and an import applying change by change took the lost savepoint for a refused
    /// change: what came before was rolled back, the rest committed, the pointer past both
    /// (found from outside: rows differed for good, `check` OK).
    private var endedBy: MariaDBError?
    /// `GET_LOCK` names are server-wide: each is scoped to this database.
    private(set) var lockScope = ""

    public struct Address: Equatable, Sendable {
        public var host: String
        public var port: UInt32
        public var user: String
        public var password: String?
        public var database: String
        public var connectTimeout: UInt32
    }

    public init(_ address: Address, displayName: String) throws {
        self.displayName = displayName
        self.address = address
        guard let h = mysql_init(nil) else {
            throw DataJoinError(.connection, "cannot connect to \(displayName): out of memory")
        }
        var timeout = address.connectTimeout
        mysql_options(h, MYSQL_OPT_CONNECT_TIMEOUT, &timeout)
        mysql_options(h, MYSQL_SET_CHARSET_NAME, "utf8mb4")
        let connected = mysql_real_connect(
            h, address.host, address.user, address.password, address.database, address.port, nil,
            datajoin_maria_client_multi_statements())
        if connected == nil {
            let code = mysql_errno(h)
            let msg = String(cString: mysql_error(h))
            mysql_close(h)
            switch Int32(code) {
            case ER_ACCESS_DENIED_ERROR, ER_DBACCESS_DENIED_ERROR:
                throw DataJoinError(
                    .permission, "cannot connect to \(displayName): \(msg); check the user and password")
            case ER_BAD_DB_ERROR:
                throw DataJoinError(
                    .noInput,
                    "no database at \(displayName): \(msg) (CREATE DATABASE makes one, then 'datajoin init')")
            default:
                throw DataJoinError(
                    .connection,
                    "cannot connect to \(displayName): \(msg); check that the server runs and the URL is right")
            }
        }
        handle = h
        dialect = MariaDBDialect(serverVersion: UInt(mysql_get_server_version(h)))
        do {
            // Standard SQL where MariaDB has a switch for it: "name" quotes an identifier, ||
            // joins text, no backslash escapes; strict tables refuse a value instead of
            // altering it; UTC for TIMESTAMP; REPEATABLE READ (InnoDB's default) said aloud.
            // NO_AUTO_VALUE_ON_ZERO: a peer's row 0 stays row 0 (it became 1, found from outside).
            try executeScript(
                """
                SET SESSION sql_mode = 'ANSI_QUOTES,PIPES_AS_CONCAT,NO_BACKSLASH_ESCAPES,STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO';
                SET SESSION time_zone = '+00:00';
                SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ;
                SET SESSION group_concat_max_len = 1073741824;
                SET @datajoin_applying = NULL
                """)
            // InnoDB's snapshot isolation (MariaDB 10.6.18, 10.11.8, 11.4.2 and later; on by
            // default from 11.6): a write to a row changed since the transaction's snapshot fails
            // with "Record has changed since last read", and the step runs again, as PostgreSQL's
            // REPEATABLE READ has it. Without it an import waited for an application's row lock,
            // then wrote over the change the application committed, decided on the row as it was
            // before (found from outside: the nodes differed for good, `check` said OK).
            let snapshotIsolation = try !rows("SHOW VARIABLES LIKE 'innodb_snapshot_isolation'").isEmpty
            // A row lock an application holds is waited for --lock-timeout (InnoDB counts whole
            // seconds), as on PostgreSQL; so is a table's metadata lock (LOCK TABLES, DDL), which
            // was waited for a day (found from outside).
            let seconds = Int(max(1, min(86_400, LockWait.timeoutSeconds.rounded(.up))))
            try executeScript(
                SQL(
                    raw:
                        "SET SESSION innodb_lock_wait_timeout = \(seconds), lock_wait_timeout = \(seconds)"
                        + (snapshotIsolation ? "; SET SESSION innodb_snapshot_isolation = ON" : "")
                ))
            lockScope = try scalar("SELECT DATABASE()").asString ?? address.database
        } catch {
            // Not closed here: the handle is this object's now, and deinit runs for an
            // initializer that throws after every property is set (closed twice, the process
            // crashed when a setup statement failed; found from outside).
            // Exit 69 (try again) when the server went away or a per-hour limit ran out; a
            // refused setting stays refused.
            let later =
                DatabaseErrors.isConnectionLost(error) || (error as? MariaDBError)?.code == .resourceLimit
            throw DataJoinError(
                later ? .connection : .sql,
                "cannot set up a session on \(displayName): \(TerminalText.oneLine("\(error)"))")
        }
    }

    deinit {
        cache.removeAll()
        mysql_close(handle)
    }

    public func openReader() throws -> Database? { try MariaDBDatabase(address, displayName: displayName) }

    func lastError() -> MariaDBError {
        MariaDBError(
            number: mysql_errno(handle), sqlState: String(cString: mysql_sqlstate(handle)),
            message: String(cString: mysql_error(handle)))
    }

    private func statement(_ sql: String) throws -> MariaDBStatement {
        if let s = cache[sql] { return s }
        let s = try MariaDBStatement(self, sql)
        cache[sql] = s
        return s
    }

    /// Runs one of the open transaction's statements; a statement failing inside it is asked
    /// whether it ended the transaction (`endedBy`). Only a failing statement costs the question.
    private func inOpenTransaction<T>(_ body: () throws -> T) throws -> T {
        if streamingAlone {
            throw DataJoinError(.internalError, "a statement ran on a connection while a stream read its rows")
        }
        guard transactionDepth > 0 else { return try body() }
        if let e = endedBy { throw e }
        do {
            return try body()
        } catch let e as MariaDBError {
            if endedBy == nil, !stillInTransaction() { endedBy = e }
            throw e
        }
    }

    /// A question that fails (the connection lost) counts as ended: later statements then fail
    /// too, never commit by themselves.
    private func stillInTransaction() -> Bool {
        var open = false
        _ = try? statement("SELECT @@in_transaction").run([], cursor: false) { open = $0.int(0) == 1 }
        return open
    }

    @discardableResult
    public func execute(_ sql: SQL) throws -> Int {
        try inOpenTransaction { try statement(sql.text).run(sql.bindings, cursor: false) { _ in } }
    }

    /// The whole result is read before `body` runs, so `body` may run statements of its own.
    public func query(_ sql: SQL, _ body: (Row) throws -> Void) throws {
        var rows: [Row] = []
        try inOpenTransaction { _ = try statement(sql.text).run(sql.bindings, cursor: false) { rows.append($0) } }
        for r in rows { try body(r) }
    }

    /// A server-side cursor: rows come a batch at a time, and `body` may run other statements
    /// on this connection while the cursor is open.
    public func stream(_ sql: SQL, _ body: (Row) throws -> Void) throws {
        try inOpenTransaction {
            let s = try MariaDBStatement(self, sql.text)
            _ = try s.run(sql.bindings, cursor: true, body)
        }
    }

    /// No cursor: the rows are read from the connection as `body` takes them, one at a time.
    /// A throw from `body` leaves the rest to `mysql_stmt_free_result`, which reads them off.
    public func streamAlone(_ sql: SQL, _ body: (Row) throws -> Void) throws {
        if !longWriteTimeout {
            try executeScript("SET SESSION net_write_timeout = 3600")
            longWriteTimeout = true
        }
        try inOpenTransaction {
            let s = try MariaDBStatement(self, sql.text)
            streamingAlone = true
            defer { streamingAlone = false }
            _ = try s.run(sql.bindings, cursor: false, body)
        }
    }

    /// DataJoin's own DDL: several statements, no values.
    public func executeScript(_ sql: SQL) throws {
        try inOpenTransaction { try script(sql) }
    }

    private func script(_ sql: SQL) throws {
        guard mysql_real_query(handle, sql.text, UInt(sql.text.utf8.count)) == 0 else { throw lastError() }
        while true {
            if let r = mysql_store_result(handle) { mysql_free_result(r) }
            let next = mysql_next_result(handle)
            if next > 0 { throw lastError() }
            if next < 0 { return }
        }
    }

    public func readBlob(table: String, column: String, rowid: Int64, offset: Int, count: Int) throws -> [UInt8] {
        let v = try scalar(
            "SELECT SUBSTRING(\(Identifier(column)), ?, ?) FROM \(Identifier(table)) WHERE id = ?",
            [.integer(Int64(offset + 1)), .integer(Int64(count)), .integer(rowid)])
        if case .blob(let b) = v { return b }
        return []
    }

    // MARK: - Transactions

    /// DataJoin's write transactions run one at a time per database, as on PostgreSQL: the
    /// lock is taken before the transaction starts, so its snapshot follows the last writer's
    /// commit. Tried, not waited for in the server: the wait is told after a second and bounded
    /// by --lock-timeout.
    func beginWrite() throws {
        endedBy = nil
        if !holdsWriterLock {
            try LockWait.writerLock(on: displayName) {
                try scalar("SELECT GET_LOCK(?, 0)", [.text("datajoin_writer." + lockScope)]) == .integer(1)
            }
            holdsWriterLock = true
        }
        do {
            try executeScript("START TRANSACTION")
        } catch {
            releaseWriterLock()
            throw error
        }
    }

    private func releaseWriterLock() {
        guard holdsWriterLock else { return }
        holdsWriterLock = false
        // Not through `inOpenTransaction`: released also after the server ended the transaction.
        _ = try? statement("SELECT RELEASE_LOCK(?)").run([.text("datajoin_writer." + lockScope)], cursor: false) { _ in
        }
    }

    func beginRead() throws {
        endedBy = nil
        try executeScript("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
    }

    /// The importer's "capture off" switch is a session variable: it ends with the transaction.
    func commitTransaction() throws {
        defer { releaseWriterLock() }
        if let e = endedBy {
            endedBy = nil
            try? script("ROLLBACK; SET @datajoin_applying = NULL")
            throw e
        }
        try executeScript("COMMIT; SET @datajoin_applying = NULL")
    }

    func rollbackTransaction() throws {
        defer { releaseWriterLock() }
        endedBy = nil
        try script("ROLLBACK; SET @datajoin_applying = NULL")
    }

    public func isRetryable(_ error: Error) -> Bool {
        guard let e = TransactionError.unwrap(error) as? MariaDBError else { return false }
        // Not a lock wait timeout: InnoDB waited innodb_lock_wait_timeout for it already.
        return e.code == .deadlock || e.code == .recordChangedSinceStart
    }

    public func isUnavailable(_ error: Error) -> Bool {
        guard let e = TransactionError.unwrap(error) as? MariaDBError else { return false }
        return e.isConnectionLost || e.code == .diskFull || e.code == .outOfResources || e.code == .readOnlyTransaction
    }

    /// A statement the operator stopped (`KILL QUERY`) is no refusal of a change: the run stops
    /// (found from outside: the import went on change by change, as if the change were refused).
    public func isRefusal(_ error: Error) -> Bool {
        guard let e = TransactionError.unwrap(error) as? MariaDBError, e.code != .queryInterrupted,
            e.code != .statementTimeout
        else { return false }
        return !isRetryable(error) && !isUnavailable(error) && !DatabaseErrors.isLocked(error)
    }

    public func isUniqueViolation(_ error: Error) -> Bool {
        (TransactionError.unwrap(error) as? MariaDBError)?.code == .duplicateEntry
    }

    /// Values travel in the statement's binding, whatever their size.
    public func insertWithLargeValue(into table: SQL, columns: SQL, _ row: [Value], valueIndex: Int) throws
        -> Int?
    { nil }

    /// Multi-row INSERT is MariaDB's bulk path here (LOAD DATA needs a file or local-infile).
    public func bulkLoad(
        into table: SQL, columns: SQL, _ rows: (_ send: ([Value]) throws -> Void) throws -> Void
    ) throws -> Bool { false }
}
