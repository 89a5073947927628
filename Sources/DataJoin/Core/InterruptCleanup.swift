import Foundation

/// A file a signal must not leave behind: the plain spool of an encrypted snapshot, which an
/// interrupted `snapshot --encrypt` left in the temporary folder until the next snapshot (found
/// in review). The CLI's signal handler removes it; the path is kept as C bytes so that the
/// handler reads it without Swift's runtime.
public enum InterruptCleanup {
    nonisolated(unsafe) private static var path: UnsafeMutablePointer<CChar>? = nil

    /// Called before the handlers are installed, so that the handler finds `path` initialized.
    public static func prepare() { _ = path }

    static func set(_ newPath: String?) {
        let old = path
        path = newPath.map { strdup($0) }
        free(old)
    }

    /// Async-signal-safe: `unlink` only.
    public static func removeFiles() {
        if let path { unlink(path) }
    }
}
