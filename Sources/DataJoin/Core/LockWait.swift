import Foundation

/// How long DataJoin waits for a database that another writer holds, and whom it tells that it
/// is waiting. A wait is never silent past `noticeAfter` seconds and never longer than
/// `timeoutSeconds` (`--lock-timeout`, docs/cli.md).
public enum LockWait {
    public static var timeoutSeconds: Double = 30
    /// Told once per wait (the CLI prints it on stderr).
    public static var onWaiting: ((String) -> Void)?
    public static let noticeAfter = 1.0
    /// The timeout as the messages say it ("30", "2.5").
    public static var timeoutText: String { Wait.seconds(timeoutSeconds) }

    /// Tries `tryLock` until it succeeds, told after a second and bounded by --lock-timeout:
    /// DataJoin's writer lock on a server brand (tried, never waited for in the server, where a
    /// blocked wait was silent for ever).
    static func writerLock(on displayName: String, _ tryLock: () throws -> Bool) throws {
        var wait = Wait("DataJoin's writer lock on \(displayName), which another datajoin process holds")
        var attempt = 0
        while try !tryLock() {
            guard wait.keepWaiting(attempt: attempt) else {
                throw DataJoinError(
                    .locked,
                    "another datajoin process is writing to \(displayName) and held its writer lock for \(Wait.seconds(timeoutSeconds)) s; try again when it is done, or raise --lock-timeout"
                )
            }
            attempt += 1
        }
    }

    /// One wait: call `keepWaiting()` each time the lock is found taken.
    struct Wait {
        let what: String
        private var start: Date?
        private var noticed = false

        init(_ what: String) { self.what = what }

        var waited: Double { start.map { Date().timeIntervalSince($0) } ?? 0 }

        /// False once the timeout has passed; otherwise sleeps a little (longer as the wait
        /// goes on, up to 50 ms) and says so once after a second.
        mutating func keepWaiting(attempt: Int) -> Bool {
            let now = Date()
            if start == nil || attempt == 0 {
                start = now
                noticed = false
            }
            let elapsed = now.timeIntervalSince(start!)
            if elapsed >= LockWait.timeoutSeconds { return false }
            if elapsed >= LockWait.noticeAfter && !noticed {
                noticed = true
                LockWait.onWaiting?(
                    "waiting for \(what) (up to \(Self.seconds(LockWait.timeoutSeconds)) s; --lock-timeout sets this)")
            }
            usleep(UInt32(min(50, 1 + attempt * 5)) * 1000)
            return true
        }

        static func seconds(_ s: Double) -> String { s == s.rounded() ? String(Int(s)) : String(format: "%.1f", s) }
    }
}
