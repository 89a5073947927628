import Foundation

/// A path behind a folder this user may not search is there, not missing: `stat` says so with
/// EACCES, where `fileExists` says only "no" (found from outside: "does not exist", exit 66).
enum FileAccess {
    static func denied(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) != 0 && errno == EACCES
    }

    /// The permission error for such a path, in one line.
    static func deniedError(_ what: String, _ path: String) -> DataJoinError {
        DataJoinError(.permission, "\(what) \(path): this user may not reach it (permission denied)")
    }
}
