import Foundation

/// Refused files are moved aside into a `quarantine/` folder next to them, with a `.reason`
/// file saying why, so a drop folder does not refuse the same file on every run.
enum Quarantine {
    /// Moves the file; returns the note for the message and where it went.
    static func move(_ path: String, reason: String) -> (String, String?) {
        let fm = FileManager.default
        let dir = ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("quarantine")
        let name = (path as NSString).lastPathComponent
        do {
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
            var dest = (dir as NSString).appendingPathComponent(name)
            var n = 1
            while fm.fileExists(atPath: dest) {
                dest = (dir as NSString).appendingPathComponent("\(name).\(n)")
                n += 1
            }
            try fm.moveItem(atPath: path, toPath: dest)
            try? Data((reason + "\n").utf8).write(to: URL(fileURLWithPath: dest + ".reason"))
            return ("; moved to \(dest)", dest)
        } catch {
            return ("; could not move it to quarantine (\(error.localizedDescription)), left in place", nil)
        }
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
