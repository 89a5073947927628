import Foundation

/// Refused files are moved aside into a `quarantine/` folder next to them, with a `.reason`
/// file saying why, so a drop folder does not refuse the same file on every run.
enum Quarantine {
    /// Where a refused file went, and whether its `quarantine/` folder was made for it.
    struct Moved {
        var path: String
        var madeFolder: Bool
    }

    /// Moves the file; returns the note for the message and where it went.
    static func move(_ path: String, reason: String) -> (String, Moved?) {
        let dir = ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("quarantine")
        let name = (path as NSString).lastPathComponent
        // The system's words, not Foundation's sentence about an "operation" (found from outside).
        func failed(_ what: String) -> (String, Moved?) {
            ("; could not move it to quarantine (\(what): \(String(cString: strerror(errno)))), left in place", nil)
        }
        var st = stat()
        let madeFolder = lstat(dir, &st) != 0
        if madeFolder && mkdir(dir, 0o777) != 0 && errno != EEXIST { return failed("cannot make \(dir)") }
        // Never through a link: whoever can write to a shared drop folder could make one
        // named `quarantine` send refused files, and their reasons, anywhere (found from outside).
        guard lstat(dir, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
            return (
                "; could not move it to quarantine (\(dir) is not a folder but a link or a file), left in place",
                nil
            )
        }
        var dest = (dir as NSString).appendingPathComponent(name)
        // A second file of that name keeps its extension (`bad.1.djb`): moved back out to be
        // retried, it is ingested like any bundle (found from outside: `bad.djb.1` never was).
        let ext = (name as NSString).pathExtension
        let stem = ext.isEmpty ? name : (name as NSString).deletingPathExtension
        var n = 1
        while lstat(dest, &st) == 0 || lstat(dest + ".reason", &st) == 0 {
            dest = (dir as NSString).appendingPathComponent(ext.isEmpty ? "\(stem).\(n)" : "\(stem).\(n).\(ext)")
            n += 1
        }
        if rename(path, dest) != 0 { return failed("cannot move it into \(dir)") }
        // The reason is also in `status`; a `.reason` file the disk had no room for is said,
        // and none is left empty (found from outside: an empty one, no word).
        let fd = open(dest + ".reason", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644)
        var reasonNote = ""
        if fd < 0 {
            reasonNote =
                " (its .reason file could not be written: \(String(cString: strerror(errno))); 'datajoin status' lists the reason)"
        } else {
            let text = Array((reason + "\n").utf8)
            let written = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            let problem = written == text.count ? nil : String(cString: strerror(written < 0 ? errno : ENOSPC))
            if close(fd) != 0 || problem != nil {
                let why = problem ?? String(cString: strerror(errno))
                unlink(dest + ".reason")
                reasonNote = " (its .reason file could not be written: \(why); 'datajoin status' lists the reason)"
            }
        }
        return ("; moved to \(dest)" + reasonNote, Moved(path: dest, madeFolder: madeFolder))
    }

    /// A file in a folder named `quarantine` (a drop folder's): refused where it stands, not
    /// moved into a quarantine of the quarantine (found from outside).
    static func isQuarantined(_ path: String) -> Bool {
        // However the folder was spelled (`quarantine/.`, `.` inside it).
        URL(fileURLWithPath: path).standardizedFileURL.deletingLastPathComponent().lastPathComponent == "quarantine"
    }

    /// Undoes `move` (the database refused to record it): the file back where it was, never
    /// over a file of that name that came since (a link, then the unlink), its `.reason` gone,
    /// and the folder too if it was made for it and is empty. False when the file stays.
    static func putBack(_ moved: Moved, to path: String) -> Bool {
        guard link(moved.path, path) == 0 else { return false }
        unlink(moved.path)
        unlink(moved.path + ".reason")
        if moved.madeFolder { rmdir((moved.path as NSString).deletingLastPathComponent) }
        return true
    }

    /// Remembers a quarantined file for `datajoin status`.
    static func record(_ db: Database, path: String, reason: String) throws {
        // Absolute: `status` lists it wherever it is run from.
        let path = URL(fileURLWithPath: path).standardizedFileURL.path
        _ = try db.retryingWrite { _ in
            try db.execute(
                "INSERT INTO ds_quarantine (path, reason, quarantined_at) VALUES (?, ?, ?) "
                    + db.dialect.upsert(key: ["path"], overwrite: ["reason", "quarantined_at"]),
                [.text(path), .text(reason), .text(nowText())])
        }
    }

    static func modifiedWithin(_ path: String, seconds: Double) -> Bool {
        guard seconds > 0,
            let date = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
        else { return false }
        return Date().timeIntervalSince(date) < seconds
    }
}
