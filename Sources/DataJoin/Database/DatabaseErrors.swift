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
}
