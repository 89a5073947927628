import Foundation

/// One `datajoin watch` per database at a time. SQLite: an exclusive flock on
/// `<database>.datajoin-lock` (the file's real path, symlinks resolved) and on a lock named
/// after the file's device and inode in the temporary folder (so a hard link meets it too);
/// PostgreSQL: a session advisory lock held by the watcher's connection. All vanish with the
/// process, however it ends; a clean stop also removes the lock files.
public final class InstanceLock {
    private var held: [(fd: Int32, path: String)] = []
    private weak var db: Database?

    public init(_ db: Database) throws {
        switch db.brand {
        case .sqlite:
            guard let sqlite = db as? SQLiteDatabase else {
                throw DataJoinError(.internalError, "not an SQLite connection")
            }
            let real = URL(fileURLWithPath: sqlite.path).resolvingSymlinksInPath().path
            var file = stat()
            guard stat(real, &file) == 0 else {
                throw DataJoinError.io("cannot read \(real): \(String(cString: strerror(errno)))")
            }
            let byInode = (NSTemporaryDirectory() as NSString).appendingPathComponent(
                "datajoin-watch-\(file.st_dev)-\(file.st_ino).lock")
            for path in [real + ".datajoin-lock", byInode] {
                do {
                    held.append((try Self.take(path, db.displayName), path))
                } catch {
                    release()
                    throw error
                }
            }
        case .postgres:
            let got = try db.scalar("SELECT pg_try_advisory_lock(4242000002)")
            guard got == .integer(1) else {
                throw DataJoinError(
                    .locked, "another datajoin watch is already running on \(db.displayName); stop it first")
            }
            self.db = db
        }
    }

    /// An exclusive flock on `path`, with this process's id written in it.
    private static func take(_ path: String, _ name: String) throws -> Int32 {
        while true {
            let fd = open(path, O_RDWR | O_CREAT, 0o644)
            guard fd >= 0 else {
                throw DataJoinError.io("cannot create the lock file \(path): \(String(cString: strerror(errno)))")
            }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                var buf = [UInt8](repeating: 0, count: 32)
                let n = pread(fd, &buf, buf.count, 0)
                let holder =
                    n > 0
                    ? String(decoding: buf[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "?"
                close(fd)
                throw DataJoinError(
                    .locked, "another datajoin watch is already running on \(name) (pid \(holder)); stop it first")
            }
            // The holder before us removes the file as it stops: a lock on a file no longer
            // at the path locks nothing, so take the one that is there now.
            var mine = stat(), there = stat()
            if fstat(fd, &mine) == 0, stat(path, &there) == 0, mine.st_ino == there.st_ino, mine.st_dev == there.st_dev
            {
                ftruncate(fd, 0)
                let pid = Array("\(getpid())\n".utf8)
                _ = pwrite(fd, pid, pid.count, 0)
                return fd
            }
            close(fd)
        }
    }

    /// Removes the lock files (still holding them, so no other watch can have taken them) and
    /// unlocks. A watch that is killed leaves the files behind; the next one takes them over.
    public func release() {
        for (fd, path) in held {
            unlink(path)
            flock(fd, LOCK_UN)
            close(fd)
        }
        held = []
        if let db {
            _ = try? db.scalar("SELECT pg_advisory_unlock(4242000002)")
            self.db = nil
        }
    }

    deinit { release() }
}
