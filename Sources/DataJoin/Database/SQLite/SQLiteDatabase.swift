import CSQLite
import Foundation

/// One sqlite3 connection, closed in deinit. Statements are prepared once and cached.
public final class SQLiteDatabase: Database, TransactionDriver {
    /// The first column of a row read since this was last cleared whose TEXT was not valid
    /// UTF-8 (SQLite stores any bytes an application gives it); the value read was repaired.
    var invalidTextColumn: Int?

    public func takeInvalidTextColumn() -> Int? {
        defer { invalidTextColumn = nil }
        return invalidTextColumn
    }

    var transactionDepth = 0
    var applying = ApplyingState.unknown
    public let dialect: Dialect = SQLiteDialect()
    public let path: String
    let handle: OpaquePointer
    private var cache: [String: SQLiteStatement] = [:]
    /// Virtual machine steps of every statement run so far: what a test measures to see that
    /// work grows with the rows, not their square (a bound SQLite ignores costs steps, not errors).
    var vmSteps: Int64 = 0

    /// SQLite's defensive mode (writable_schema ignored, among others), as some builds start in.
    func setDefensive(_ on: Bool) { _ = datajoin_sqlite_set_defensive(handle, on ? 1 : 0) }
    var isDefensive: Bool { datajoin_sqlite_is_defensive(handle) != 0 }
    /// The busy handler's state; lives as long as the connection that points at it.
    private let busyWait: BusyWait

    public var displayName: String { "sqlite:" + path }

    /// `create`: only `init` makes a new database file; every other command refuses a path
    /// where there is none, and changes nothing (issue 11).
    public init(path: String, create: Bool = true) throws {
        self.path = path
        // In rollback-journal mode a reader holds the lock a writer needs too (found from outside:
        // the message blamed a writer for an open read transaction).
        busyWait = BusyWait(
            LockWait.Wait(
                "sqlite:\(path), which another process has locked (writing, or reading in rollback-journal mode)"))
        // A database in memory has no file to look at (a folder this user may not search made
        // the look fail; found in review).
        let inMemory = path == ":memory:"
        let dir = inMemory ? "" : (path as NSString).deletingLastPathComponent
        if !dir.isEmpty && !FileManager.default.fileExists(atPath: dir) {
            if FileAccess.denied(dir) { throw FileAccess.deniedError("cannot open SQLite database: folder", dir) }
            throw DataJoinError(.noInput, "cannot open SQLite database \(path): folder \(dir) does not exist")
        }
        var dirIsDir: ObjCBool = true
        if !dir.isEmpty && FileManager.default.fileExists(atPath: dir, isDirectory: &dirIsDir) && !dirIsDir.boolValue {
            // Input of the wrong kind, not a server to try again (found from outside: exit 69).
            throw DataJoinError(.noInput, "cannot open SQLite database \(path): \(dir) is a file, not a folder")
        }
        var isDir: ObjCBool = false
        let exists = inMemory || FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
        if exists && isDir.boolValue {
            throw DataJoinError(.noInput, "cannot open SQLite database \(path): it is a folder, not a database file")
        }
        if !exists && FileAccess.denied(path) { throw FileAccess.deniedError("cannot open SQLite database", path) }
        if !exists && !create {
            throw DataJoinError(
                .noInput,
                "no SQLite database at \(path): the file does not exist (check the path; 'datajoin init' creates a node)"
            )
        }
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(
            path, &db, SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let db else {
            // sqlite3_open_v2 allocates a handle even on failure; it must still be closed.
            let msg = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            let denied = db.map { sqlite3_system_errno($0) == EACCES || sqlite3_system_errno($0) == EPERM } ?? false
            sqlite3_close(db)
            // A file this user may not read is a permission, not a server to try again (found
            // from outside: exit 69, "service unavailable").
            if exists && (denied || access(path, R_OK) != 0) {
                throw DataJoinError(
                    .permission, "cannot open SQLite database \(path): this user may not read it (permission denied)")
            }
            if !exists && (denied || access(dir.isEmpty ? "." : dir, W_OK) != 0) {
                throw DataJoinError(
                    .permission,
                    "cannot create SQLite database \(path): this user may not write in folder \(dir.isEmpty ? "." : dir) (permission denied)"
                )
            }
            throw DataJoinError(.connection, "cannot open SQLite database \(path): \(msg)")
        }
        if sqlite3_db_readonly(db, "main") == 1 {
            // Before any pragma: nothing is written, no -wal or -shm file is left behind.
            sqlite3_close_v2(db)
            throw DataJoinError(
                .permission,
                "cannot write to SQLite database \(path): the file (or its folder) is read-only for this user; DataJoin keeps its node's state in it, so it needs write access"
            )
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        // Waits for another writer as LockWait says: told after a second, bounded by --lock-timeout.
        sqlite3_busy_handler(
            db,
            { context, attempt in
                guard let context else { return 0 }
                let box = Unmanaged<BusyWait>.fromOpaque(context).takeUnretainedValue()
                return box.wait.keepWaiting(attempt: Int(attempt)) ? 1 : 0
            }, Unmanaged.passUnretained(busyWait).toOpaque())
        do {
            // WAL lets the application read while DataJoin writes, and the reverse. A database
            // that is no node yet is left as it is: every command on an application's own file
            // switched it to WAL before it said "not a node", and a file of 0 bytes became a
            // database (found from outside). Only `init` (`create`) makes it one.
            if try create || dialect.isInstalled(self) {
                try query("PRAGMA journal_mode=WAL", []) { _ in }
            }
            try execute("PRAGMA synchronous=NORMAL")
            try execute("PRAGMA foreign_keys=ON")
        } catch {
            cache.removeAll()
            sqlite3_close_v2(db)
            if let e = TransactionError.unwrap(error) as? SQLiteError, e.primary == SQLITE_NOTADB {
                throw DataJoinError(
                    .dataError, "\(path) is not an SQLite database (its first bytes say otherwise); check the path")
            }
            if let e = TransactionError.unwrap(error) as? SQLiteError, e.isLocked { throw e }
            // A writable file in a folder this user may not write to: SQLite cannot make its
            // write-ahead log there (found from outside: exit 69, "service unavailable").
            if let e = TransactionError.unwrap(error) as? SQLiteError,
                e.primary == SQLITE_READONLY || e.primary == SQLITE_CANTOPEN || e.primary == SQLITE_PERM
            {
                throw DataJoinError(
                    .permission,
                    "cannot write to SQLite database \(path): \(e.message); SQLite keeps its journal beside the file, so this user needs write access to its folder too"
                )
            }
            throw DataJoinError(.connection, "cannot open SQLite database \(path): \(error)")
        }
    }

    deinit {
        cache.removeAll()
        sqlite3_close_v2(handle)
    }

    /// Only in WAL mode (asked for on every open) does a reader see the last commit while this
    /// connection writes; in a rollback journal it would wait for this connection's lock.
    public func openReader() throws -> Database? {
        guard try scalar("PRAGMA journal_mode").asString?.lowercased() == "wal" else { return nil }
        return try SQLiteDatabase(path: path, create: false)
    }

    /// The reader's statements count as this connection's (`LinearCostTests` measure them).
    public func absorb(_ reader: Database) {
        if let r = reader as? SQLiteDatabase { vmSteps += r.vmSteps }
    }

    func errorMessage() -> String { String(cString: sqlite3_errmsg(handle)) }

    func prepare(_ sql: String) throws -> SQLiteStatement {
        if let s = cache[sql] { return s }
        let s = try SQLiteStatement(db: self, sql: sql)
        cache[sql] = s
        return s
    }

    @discardableResult
    public func execute(_ sql: SQL) throws -> Int {
        let stmt = try prepare(sql.text)
        try stmt.run(sql.bindings) { _ in }
        return Int(sqlite3_changes(handle))
    }

    public func query(_ sql: SQL, _ body: (Row) throws -> Void) throws {
        try prepare(sql.text).run(sql.bindings, body)
    }

    public func stream(_ sql: SQL, _ body: (Row) throws -> Void) throws {
        // A fresh statement: the body may run the same cached SQL again while this one steps.
        let stmt = try SQLiteStatement(db: self, sql: sql.text)
        try stmt.run(sql.bindings, body)
    }

    /// SQLite steps one row at a time either way.
    public func streamAlone(_ sql: SQL, _ body: (Row) throws -> Void) throws { try stream(sql, body) }

    public func executeScript(_ sql: SQL) throws {
        var err: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql.text, nil, nil, &err)
        if rc != SQLITE_OK {
            let msg = err.map { String(cString: $0) } ?? errorMessage()
            sqlite3_free(err)
            throw SQLiteError(code: rc, message: msg)
        }
    }

    /// Writes `bytes` into a blob column of an existing row, through SQLite's incremental blob
    /// I/O (the row was inserted with `zeroblob(n)`, the column last in the row), a megabyte at
    /// a time: SQLite never holds the whole value in memory.
    func writeBlob(table: String, column: String, rowid: Int64, _ bytes: [UInt8]) throws {
        var blob: OpaquePointer?
        var rc = sqlite3_blob_open(handle, "main", table, column, rowid, 1, &blob)
        guard rc == SQLITE_OK, let blob else { throw SQLiteError(code: rc, message: errorMessage()) }
        defer { sqlite3_blob_close(blob) }
        let piece = 1 << 20
        for start in stride(from: 0, to: bytes.count, by: piece) {
            let n = min(piece, bytes.count - start)
            rc = bytes.withUnsafeBytes { sqlite3_blob_write(blob, $0.baseAddress! + start, Int32(n), Int32(start)) }
            guard rc == SQLITE_OK else { throw SQLiteError(code: rc, message: errorMessage()) }
        }
    }

    /// Incremental blob I/O: straight from the pages into the array.
    public func readBlob(table: String, column: String, rowid: Int64, offset: Int, count: Int) throws -> [UInt8] {
        var blob: OpaquePointer?
        var rc = sqlite3_blob_open(handle, "main", table, column, rowid, 0, &blob)
        guard rc == SQLITE_OK, let blob else { throw SQLiteError(code: rc, message: errorMessage()) }
        defer { sqlite3_blob_close(blob) }
        let size = max(0, min(count, Int(sqlite3_blob_bytes(blob)) - offset))
        var out = [UInt8](repeating: 0, count: size)
        guard size > 0 else { return out }
        rc = out.withUnsafeMutableBytes { sqlite3_blob_read(blob, $0.baseAddress, Int32(size), Int32(offset)) }
        guard rc == SQLITE_OK else { throw SQLiteError(code: rc, message: errorMessage()) }
        return out
    }

    func beginWrite() throws {
        // IMMEDIATE takes the write lock up front, so a busy database waits (busy timeout)
        // instead of failing half way with SQLITE_BUSY on the first write.
        try execute("BEGIN IMMEDIATE")
    }
    func beginRead() throws { try execute("BEGIN DEFERRED") }
    func commitTransaction() throws { try execute("COMMIT") }
    func rollbackTransaction() throws {
        if sqlite3_get_autocommit(handle) == 0 { try execute("ROLLBACK") }
    }
    public func isRefusal(_ error: Error) -> Bool {
        TransactionError.unwrap(error) is SQLiteError && !isRetryable(error) && !isUnavailable(error)
    }

    public func isUniqueViolation(_ error: Error) -> Bool {
        guard let code = (TransactionError.unwrap(error) as? SQLiteError)?.code else { return false }
        return code == SQLiteError.constraintUnique || code == SQLiteError.constraintPrimaryKey
    }

    /// The row goes in with a zeroblob of the value's size (the value is the row's last
    /// column, so SQLite builds no record holding it), then the value is written into the
    /// row's pages.
    public func insertWithLargeValue(into table: SQL, columns: SQL, _ row: [Value], valueIndex: Int) throws
        -> Int?
    {
        guard case .blob(let value) = row[valueIndex], value.count >= SQLiteStatement.inPlaceBytes else { return nil }
        var placeholder = row
        placeholder[valueIndex] = .integer(Int64(value.count))
        let marks = SQL(raw: row.indices.map { $0 == valueIndex ? "zeroblob(?)" : "?" }.joined(separator: ", "))
        let inserted = try execute("INSERT OR IGNORE INTO \(table) (\(columns)) VALUES (\(marks))", placeholder)
        if inserted > 0 {
            let column = columns.text.split(separator: ",")[valueIndex].trimmingCharacters(in: .whitespaces)
            try writeBlob(table: table.text, column: column, rowid: sqlite3_last_insert_rowid(handle), value)
        }
        return inserted
    }

    /// Multi-row INSERT is SQLite's bulk path.
    public func bulkLoad(
        into table: SQL, columns: SQL, _ rows: (_ send: ([Value]) throws -> Void) throws -> Void
    ) throws -> Bool { false }

    public func isUnavailable(_ error: Error) -> Bool {
        guard let e = TransactionError.unwrap(error) as? SQLiteError else { return false }
        return [
            SQLITE_BUSY, SQLITE_LOCKED, SQLITE_FULL, SQLITE_IOERR, SQLITE_READONLY, SQLITE_CORRUPT, SQLITE_CANTOPEN,
            SQLITE_NOMEM,
        ].contains(e.primary)
    }

    /// Only a snapshot that went stale under a read transaction that wanted to write. A busy
    /// database is not retried: the busy handler waited up to --lock-timeout already, and
    /// running the transaction again waited that long twenty times over.
    public func isRetryable(_ error: Error) -> Bool {
        if let e = TransactionError.unwrap(error) as? SQLiteError { return e.code == SQLiteError.busySnapshot }
        return false
    }
}

/// An SQLite result code with its message; the SQL text and values are never included.
final class BusyWait {
    var wait: LockWait.Wait
    init(_ wait: LockWait.Wait) { self.wait = wait }
}

public struct SQLiteError: Error, CustomStringConvertible {
    public let code: Int32
    public let message: String
    var primary: Int32 { code & 0xFF }
    /// Extended result codes by name (sqlite3.h builds them from macros Swift cannot import).
    static let constraintUnique = SQLITE_CONSTRAINT | (8 << 8)
    static let constraintPrimaryKey = SQLITE_CONSTRAINT | (6 << 8)
    static let busySnapshot = SQLITE_BUSY | (2 << 8)
    /// Another connection holds the database (exit status 75: try again).
    public var isLocked: Bool { primary == SQLITE_BUSY || primary == SQLITE_LOCKED }
    public var description: String {
        if code == Self.busySnapshot {
            // Not a wait: another connection wrote while this transaction read (retried).
            return "another connection wrote the SQLite database while this step read it (\(message))"
        }
        if primary == SQLITE_BUSY || primary == SQLITE_LOCKED {
            return
                "the SQLite database is locked by another process (\(message)); gave up after \(LockWait.Wait.seconds(LockWait.timeoutSeconds)) s: try again when it is idle, or raise --lock-timeout"
        }
        return "SQLite error \(code): \(message)"
    }
}

final class SQLiteStatement {
    unowned let db: SQLiteDatabase
    let handle: OpaquePointer

    init(db: SQLiteDatabase, sql: String) throws {
        self.db = db
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v2(db.handle, sql, -1, &stmt, nil)
        guard rc == SQLITE_OK, let stmt else {
            throw SQLiteError(code: rc, message: db.errorMessage())
        }
        handle = stmt
    }

    deinit { sqlite3_finalize(handle) }

    /// Values from this size on are bound in place (SQLITE_STATIC) for the time of the step,
    /// not copied by SQLite: with a 60 MiB value the copy was a third of a process's memory.
    static let inPlaceBytes = 1 << 20

    func run(_ params: [Value], _ body: (Row) throws -> Void) throws {
        defer {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
        }
        var large: [Int] = []
        for (i, p) in params.enumerated() {
            let idx = Int32(i + 1)
            let rc: Int32
            switch p {
            case .text(let s) where s.utf8.count >= Self.inPlaceBytes:
                large.append(i)
                continue
            case .blob(let b) where b.count >= Self.inPlaceBytes:
                large.append(i)
                continue
            case .null: rc = sqlite3_bind_null(handle, idx)
            case .integer(let v): rc = sqlite3_bind_int64(handle, idx, v)
            case .real(let v): rc = sqlite3_bind_double(handle, idx, v)
            case .text(let s):
                var s = s
                rc = s.withUTF8 { buf in
                    // SQLite copies the bytes (SQLITE_TRANSIENT), straight from the string's own
                    // storage; an empty string still needs a non-NULL pointer.
                    let p = UnsafeRawPointer(buf.baseAddress ?? UnsafePointer(bitPattern: 1)!).assumingMemoryBound(
                        to: CChar.self)
                    return sqlite3_bind_text64(
                        handle, idx, p, sqlite3_uint64(buf.count), datajoin_sqlite_transient(), UInt8(SQLITE_UTF8))
                }
            case .blob(let b):
                rc = b.withUnsafeBytes { buf in
                    sqlite3_bind_blob64(
                        handle, idx, buf.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, sqlite3_uint64(buf.count),
                        datajoin_sqlite_transient())
                }
            }
            if rc != SQLITE_OK { throw SQLiteError(code: rc, message: db.errorMessage()) }
        }
        try bindInPlace(params, large[...], body)
    }

    /// Binds the large values one inside the other, each valid only inside its closure, and
    /// steps in the innermost; bindings are cleared before the closures end.
    private func bindInPlace(_ params: [Value], _ large: ArraySlice<Int>, _ body: (Row) throws -> Void) throws {
        guard let i = large.first else {
            defer {
                sqlite3_reset(handle)
                sqlite3_clear_bindings(handle)
            }
            return try step(body)
        }
        let idx = Int32(i + 1)
        let rest = large.dropFirst()
        switch params[i] {
        case .text(var s):
            try s.withUTF8 { buf in
                let p = UnsafeRawPointer(buf.baseAddress!).assumingMemoryBound(to: CChar.self)
                let rc = sqlite3_bind_text64(handle, idx, p, sqlite3_uint64(buf.count), nil, UInt8(SQLITE_UTF8))
                if rc != SQLITE_OK { throw SQLiteError(code: rc, message: db.errorMessage()) }
                try bindInPlace(params, rest, body)
            }
        case .blob(let b):
            try b.withUnsafeBytes { buf in
                let rc = sqlite3_bind_blob64(handle, idx, buf.baseAddress!, sqlite3_uint64(buf.count), nil)
                if rc != SQLITE_OK { throw SQLiteError(code: rc, message: db.errorMessage()) }
                try bindInPlace(params, rest, body)
            }
        default:
            try bindInPlace(params, rest, body)
        }
    }

    private func step(_ body: (Row) throws -> Void) throws {
        defer { db.vmSteps += Int64(sqlite3_stmt_status(handle, SQLITE_STMTSTATUS_VM_STEP, 1)) }
        // Read after the first step: SQLite prepares a cached statement again after a schema
        // change, and `SELECT *` then has the table's columns as they are now.
        var columnCount: Int32 = -1
        while true {
            let rc = sqlite3_step(handle)
            if rc == SQLITE_DONE { return }
            guard rc == SQLITE_ROW else { throw SQLiteError(code: rc, message: db.errorMessage()) }
            if columnCount < 0 { columnCount = sqlite3_column_count(handle) }
            var values: [Value] = []
            values.reserveCapacity(Int(columnCount))
            for c in 0..<columnCount { values.append(column(c)) }
            try body(Row(values: values))
        }
    }

    private func column(_ c: Int32) -> Value {
        switch sqlite3_column_type(handle, c) {
        case SQLITE_NULL: return .null
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(handle, c))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(handle, c))
        case SQLITE_TEXT:
            let n = Int(sqlite3_column_bytes(handle, c))
            guard let p = sqlite3_column_text(handle, c) else { return .text("") }
            let bytes = UnsafeBufferPointer(start: p, count: n)
            if let text = ByteReader<ArraySource>.text(bytes) { return .text(text) }
            // SQLite keeps whatever bytes it was given as TEXT: the repaired text is noted, so
            // that export holds such a change instead of sending it altered.
            if db.invalidTextColumn == nil { db.invalidTextColumn = Int(c) }
            return .text(String(decoding: bytes, as: UTF8.self))
        default:
            let n = Int(sqlite3_column_bytes(handle, c))
            guard n > 0, let p = sqlite3_column_blob(handle, c) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: p, count: n)))
        }
    }
}
