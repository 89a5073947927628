import Foundation

/// One `datajoin watch` per database at a time. SQLite: an exclusive flock on
/// `<database>.datajoin-lock`; PostgreSQL: a session advisory lock held by the watcher's
/// connection. Both vanish with the process, however it ends.
public final class InstanceLock {
    private var fd: Int32 = -1
    private var lockPath: String?
    private weak var db: Database?

    public init(_ db: Database) throws {
        switch db.brand {
        case .sqlite:
            guard let sqlite = db as? SQLiteDatabase else {
                throw DataJoinError(.internalError, "not an SQLite connection")
            }
            let path = sqlite.path + ".datajoin-lock"
            while true {
                fd = open(path, O_RDWR | O_CREAT, 0o644)
                guard fd >= 0 else {
                    throw DataJoinError.io("cannot create the lock file \(path): \(String(cString: strerror(errno)))")
                }
                if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                    var buf = [UInt8](repeating: 0, count: 32)
                    let n = pread(fd, &buf, buf.count, 0)
                    let holder =
                        n > 0
                        ? String(decoding: buf[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                        : "?"
                    close(fd)
                    fd = -1
                    throw DataJoinError(
                        .locked,
                        "another datajoin watch is already running on \(db.displayName) (pid \(holder)); stop it first")
                }
                // The holder before us removes the file as it stops: a lock on a file no longer
                // at the path locks nothing, so take the one that is there now.
                var mine = stat(), there = stat()
                if fstat(fd, &mine) == 0, stat(path, &there) == 0, mine.st_ino == there.st_ino,
                    mine.st_dev == there.st_dev
                {
                    break
                }
                close(fd)
                fd = -1
            }
            lockPath = path
            ftruncate(fd, 0)
            let pid = Array("\(getpid())\n".utf8)
            _ = pwrite(fd, pid, pid.count, 0)
        case .postgres:
            let got = try db.scalar("SELECT pg_try_advisory_lock(4242000002)")
            guard got == .integer(1) else {
                throw DataJoinError(
                    .locked, "another datajoin watch is already running on \(db.displayName); stop it first")
            }
            self.db = db
        }
    }

    /// Removes the lock file (still holding it, so no other watch can have taken it) and
    /// unlocks. A watch that is killed leaves the file behind; the next one takes it over.
    public func release() {
        if fd >= 0 {
            if let lockPath { unlink(lockPath) }
            flock(fd, LOCK_UN)
            close(fd)
            fd = -1
        }
        if let db {
            _ = try? db.scalar("SELECT pg_advisory_unlock(4242000002)")
            self.db = nil
        }
    }

    deinit { release() }
}
