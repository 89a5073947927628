import Foundation

/// A session advisory lock, unlocked on release (and by the server when the session ends).
final class AdvisoryLock: HeldLock {
    private weak var db: Database?
    private let key: Int64
    init(_ db: Database, key: Int64) {
        self.db = db
        self.key = key
    }

    func release() {
        _ = try? db?.scalar("SELECT pg_advisory_unlock(?)", [.integer(key)])
        db = nil
    }
}
