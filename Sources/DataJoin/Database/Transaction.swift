import Foundation

/// A driver's side of a transaction. Only `write`, `read` and their savepoints call it: nothing
/// else begins, commits or rolls back, so no transaction is left open on a path that forgot.
protocol TransactionDriver: AnyObject {
    /// DataJoin's write transaction: one writer at a time per database (docs/architecture.md).
    func beginWrite() throws
    /// A consistent read-only snapshot; takes no write lock.
    func beginRead() throws
    func commitTransaction() throws
    func rollbackTransaction() throws
    /// How many `write`/`read` calls are open on this connection (savepoints above 1).
    var transactionDepth: Int { get set }
    /// What `setApplying` last told capture in this transaction, while known (a rollback to a
    /// savepoint may undo it).
    var applying: ApplyingState { get set }
}

enum ApplyingState: Equatable {
    case unknown
    case told(String?)
}

/// A transaction that failed after its body succeeded: the commit (or the rollback after a
/// failed commit). A body's own error is rethrown as it is.
public struct TransactionError: Error, CustomStringConvertible {
    public enum Step: String, Sendable {
        case commit, rollback
    }
    public let step: Step
    public let underlying: Error
    /// A savepoint's rollback or release, not the transaction's own end: the transaction
    /// cannot go on as if the body had not run.
    public var inSavepoint = false

    public var description: String { "the transaction's \(step.rawValue) failed: \(underlying)" }

    /// The error a failed step wraps, or `error` itself.
    public static func unwrap(_ error: Error) -> Error { (error as? TransactionError)?.underlying ?? error }
}

extension Database {
    private func driver() throws -> TransactionDriver {
        guard let d = self as? TransactionDriver else {
            throw DataJoinError(.internalError, "\(displayName): this connection cannot run transactions")
        }
        return d
    }

    /// Runs `body` in a write transaction: commits when it returns, rolls back when it throws and
    /// rethrows its error (a failed rollback never hides it). Inside another `write`, `body` runs
    /// in a savepoint: its failure undoes its own work only, and the outer transaction goes on.
    /// Never retried: wrap it in `retrying` where the body is safe to run twice.
    @discardableResult
    public func write<T>(_ body: (Database) throws -> T) throws -> T {
        let d = try driver()
        if d.transactionDepth > 0 { return try savepoint(d, body) }
        return try transaction(d, begin: d.beginWrite, body)
    }

    /// Runs `body` in a read-only snapshot (inside a `write`, in that transaction).
    @discardableResult
    public func read<T>(_ body: (Database) throws -> T) throws -> T {
        let d = try driver()
        if d.transactionDepth > 0 { return try body(self) }
        return try transaction(d, begin: d.beginRead, body)
    }

    /// Begins, runs `body`, commits; rolls back when the body or the commit fails (a commit that
    /// failed may leave the transaction open: SQLite, a deferred foreign key).
    private func transaction<T>(_ d: TransactionDriver, begin: () throws -> Void, _ body: (Database) throws -> T)
        throws -> T
    {
        try begin()
        d.transactionDepth = 1
        d.applying = .unknown
        defer {
            d.transactionDepth = 0
            d.applying = .unknown
        }
        let result: T
        do {
            result = try body(self)
        } catch {
            try? d.rollbackTransaction()
            throw error
        }
        do {
            try d.commitTransaction()
        } catch {
            try? d.rollbackTransaction()
            throw TransactionError(step: .commit, underlying: error)
        }
        return result
    }

    private func savepoint<T>(_ d: TransactionDriver, _ body: (Database) throws -> T) throws -> T {
        let name: SQL = "dj_sp_\(literal: d.transactionDepth)"
        try executeScript("SAVEPOINT \(name)")
        d.transactionDepth += 1
        defer { d.transactionDepth -= 1 }
        let result: T
        do {
            result = try body(self)
        } catch {
            d.applying = .unknown
            // Not undone here when the whole transaction runs again for it: MariaDB has already
            // ended the transaction, savepoints and all, and the step's message is this error,
            // not the failed rollback's (found from outside: "the transaction's rollback failed").
            if isRetryable(error) { throw error }
            do {
                try executeScript("ROLLBACK TO SAVEPOINT \(name)")
                try executeScript("RELEASE SAVEPOINT \(name)")
            } catch let rollback {
                // The outer transaction cannot go on as if the body had not run.
                throw TransactionError(step: .rollback, underlying: rollback, inSavepoint: true)
            }
            throw error
        }
        do {
            try executeScript("RELEASE SAVEPOINT \(name)")
        } catch {
            throw TransactionError(step: .commit, underlying: error, inSavepoint: true)
        }
        return result
    }

    /// `Dialect.setApplying`, told again only when it changes (once per table a batch writes,
    /// not per row).
    func setApplying(_ table: String?) throws {
        guard let d = self as? TransactionDriver else { return try dialect.setApplying(self, table) }
        if d.applying == .told(table) { return }
        try dialect.setApplying(self, table)
        d.applying = .told(table)
    }

    /// Runs `body` again when it fails with an error the database says is worth retrying (a
    /// serialization failure, a deadlock), up to `attempts` more times. `body` must be safe to
    /// run twice: what it reads it reads again, and the state it builds it builds inside. Inside
    /// a transaction nothing is retried (the outer transaction failed as a whole).
    public func retrying<T>(attempts: Int = 20, _ body: () throws -> T) throws -> T {
        let inside = ((self as? TransactionDriver)?.transactionDepth ?? 0) > 0
        var attempt = 0
        while true {
            do {
                return try body()
            } catch  where !inside && isRetryable(error) {
                guard attempt < attempts else {
                    // Typed as temporary (exit 75), not the database's raw failure (found from
                    // outside: exit 1 after the retries ran back to back in a few milliseconds).
                    throw DataJoinError(
                        .busy,
                        "gave up after \(attempt + 1) attempts (\(error)): other sessions kept writing the rows this step writes; "
                            + "nothing of the step was kept: run it again")
                }
                attempt += 1
                // Apart, growing: writers that collide once collide again at once.
                Thread.sleep(forTimeInterval: Self.backoff(attempt))
            }
        }
    }
}

extension Database {
    /// The wait before retry `attempt` (1, 2, …): 5 ms doubling up to half a second, each between
    /// half and all of it, so two writers that collided do not meet again in step.
    static func backoff(_ attempt: Int) -> TimeInterval {
        min(0.005 * Double(1 << min(attempt - 1, 16)), 0.5) * Double.random(in: 0.5...1)
    }

    /// `write`, run again while it fails with a retryable error (see `retrying`): `body` must be
    /// safe to run twice.
    @discardableResult
    public func retryingWrite<T>(attempts: Int = 20, _ body: (Database) throws -> T) throws -> T {
        try retrying(attempts: attempts) { try write(body) }
    }
}
