import Foundation

/// A session advisory lock, unlocked on release (and by the server when the session ends).
final class AdvisoryLock: HeldLock {
    private weak var db: Database?
    init(_ db: Database) { self.db = db }

    func release() {
        _ = try? db?.scalar("SELECT pg_advisory_unlock(4242000002)")
        db = nil
    }
}
