import CSQLite
import Foundation

/// What a caller without a connection (the CLI) may ask of any brand's error.
public enum DatabaseErrors {
    /// Another writer held a lock past the brand's own wait: worth trying again later.
    public static func isLocked(_ error: Error) -> Bool {
        switch TransactionError.unwrap(error) {
        case let e as SQLiteError: return e.isLocked
        case let e as MariaDBError: return e.code == .lockWaitTimeout
        case let e as PostgresError: return e.code == .lockNotAvailable
        default: return false
        }
    }

    /// The server went away mid-run (shut down, restarted, the connection cut): nothing of
    /// the step was kept, and it is worth running again once the server is back.
    public static func isConnectionLost(_ error: Error) -> Bool {
        switch TransactionError.unwrap(error) {
        case let e as MariaDBError: return e.isConnectionLost
        case let e as PostgresError:
            // Class 57 less 57014: a cancelled statement (statement_timeout, pg_cancel_backend)
            // leaves the connection up.
            return e.sqlState.isEmpty || e.code.errorClass == .connectionException
                || (e.code.errorClass == .operatorIntervention && e.sqlState != "57014")
        default: return false
        }
    }

    /// The database user may not do what the run needs (a role with SELECT only): the same
    /// for every file and every retry, so the run stops, as for a read-only SQLite file (found
    /// from outside: every bundle was refused as if it were bad, exit 2).
    /// The server takes no writes on this connection (a hot standby, a replica, a session set
    /// read-only): the same for every retry (found from outside: exit 1 with the server's words).
    public static func isReadOnly(_ error: Error) -> Bool {
        switch TransactionError.unwrap(error) {
        case let e as MariaDBError:
            // 1290 is also --skip-grant-tables and others: read-only only when it says so.
            return e.code == .readOnlyTransaction
                || (e.code == .optionPreventsStatement && e.message.lowercased().contains("read-only"))
        case let e as PostgresError: return e.code == .readOnlySQLTransaction
        default: return false
        }
    }

    /// The database has no room left for what the run writes (SQLITE_FULL, PostgreSQL's
    /// disk_full, MariaDB's disk or table full).
    public static func isDiskFull(_ error: Error) -> Bool {
        switch TransactionError.unwrap(error) {
        case let e as SQLiteError: return e.primary == SQLITE_FULL
        case let e as MariaDBError: return e.code == .diskFull || e.code == .tableFull
        case let e as PostgresError: return e.sqlState == "53100"
        default: return false
        }
    }

    public static func isPermissionDenied(_ error: Error) -> Bool {
        switch TransactionError.unwrap(error) {
        case let e as MariaDBError: return MariaDBError.Code.accessDenied.contains(e.code)
        case let e as PostgresError: return e.code == .insufficientPrivilege
        default: return false
        }
    }
}
