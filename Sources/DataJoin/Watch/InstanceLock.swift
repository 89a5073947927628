import Foundation

/// One `datajoin watch` per database at a time, held as the database's dialect says (SQLite:
/// file locks beside the database file; PostgreSQL: a session advisory lock). All vanish with
/// the process, however it ends; a clean stop also removes lock files.
public final class InstanceLock {
    private var held: HeldLock?

    public init(_ db: Database, for purpose: LockPurpose = .watch) throws {
        held = try db.dialect.instanceLock(db, for: purpose)
    }

    /// Waits for the lock as for any lock (told after a second, bounded by --lock-timeout).
    static func waiting(_ db: Database, for purpose: LockPurpose) throws -> InstanceLock {
        var wait = LockWait.Wait(
            "the \(purpose.rawValue) lock of \(db.displayName), which another datajoin \(purpose.rawValue) holds")
        var attempt = 0
        while true {
            do {
                return try InstanceLock(db, for: purpose)
            } catch let e as DataJoinError where e.code == .locked {
                guard wait.keepWaiting(attempt: attempt) else {
                    throw DataJoinError(
                        .locked,
                        e.message
                            + " and held its lock for \(LockWait.timeoutText) s; try again when it is done, or raise --lock-timeout"
                    )
                }
                attempt += 1
            }
        }
    }

    public func release() {
        held?.release()
        held = nil
    }

    deinit { release() }
}
