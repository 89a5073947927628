import Foundation

/// A MariaDB named lock, released on release (and by the server when the session ends).
final class NamedLock: HeldLock {
    private weak var db: Database?
    private let name: String
    init(_ db: Database, _ name: String) {
        self.db = db
        self.name = name
    }

    func release() {
        _ = try? db?.scalar("SELECT RELEASE_LOCK(?)", [.text(name)])
        db = nil
    }
}
