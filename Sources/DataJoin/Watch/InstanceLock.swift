import Foundation

/// One `datajoin watch` per database at a time, held as the database's dialect says (SQLite:
/// file locks beside the database file; PostgreSQL: a session advisory lock). All vanish with
/// the process, however it ends; a clean stop also removes lock files.
public final class InstanceLock {
    private var held: HeldLock?

    public init(_ db: Database) throws {
        held = try db.dialect.instanceLock(db)
    }

    public func release() {
        held?.release()
        held = nil
    }

    deinit { release() }
}
