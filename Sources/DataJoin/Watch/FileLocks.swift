import Foundation

/// Exclusive flocks on files, each with the holder's process id written in it.
final class FileLocks: HeldLock {
    private var held: [(fd: Int32, path: String)] = []

    init(_ paths: [String], taken: String) throws {
        for path in paths {
            do {
                held.append((try Self.take(path, taken), path))
            } catch {
                release()
                throw error
            }
        }
    }

    /// An exclusive flock on `path`, with this process's id written in it.
    private static func take(_ path: String, _ taken: String) throws -> Int32 {
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
                throw DataJoinError(.locked, "\(taken) (pid \(holder))")
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
    func release() {
        for (fd, path) in held {
            unlink(path)
            flock(fd, LOCK_UN)
            close(fd)
        }
        held = []
    }

    deinit { release() }
}
