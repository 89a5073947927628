import Foundation

/// Expands ingest arguments: files as given, folders to their bundle files in name order.
/// Hidden files (rsync's `.name.XXXXXX` temporaries, DataJoin's own `.tmp`) are skipped; an
/// entry of a folder that is not a regular file (a symlink, a device) is refused, not followed.
public enum BundleFiles {
    public struct Entry: Sendable {
        public var path: String
        public var problem: String?
        /// Found in a drop folder (not named by the user): only such files are ever moved.
        public var inFolder = false
        /// The class of `problem`: a path not there (66) or not to be reached (77) is not a
        /// damaged file (65); `verify good.djb missing.djb` exited 65 (found from outside).
        public var problemKind: DataJoinError.Code = .dataError
    }

    /// Why `path` (a symlink followed) is no bundle file to read: a pipe blocks for ever and a
    /// device never ends (`ingest /dev/urandom` hung, found from outside). Nil for a regular file.
    public static func regularFileProblem(_ path: String) -> String? {
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        let type = (try? FileManager.default.attributesOfItem(atPath: resolved)[.type] as? FileAttributeType) ?? nil
        return type == .typeRegular || type == nil ? nil : "not a regular file (\(describe(type))); a bundle is a file"
    }

    static func describe(_ type: FileAttributeType?) -> String {
        switch type {
        case .typeSymbolicLink?: return "a symbolic link"
        case .typeCharacterSpecial?, .typeBlockSpecial?: return "a device"
        case .typeSocket?: return "a socket"
        case .typeDirectory?: return "a folder"
        default: return "a pipe or another special file"
        }
    }

    /// A name a folder listed that is not a regular file. No type at all: it was removed after
    /// the listing (another node's ingest or prune), which the ingest then says as such; it
    /// was refused as "a pipe or another special file" (found from outside).
    static func folderEntryProblem(_ type: FileAttributeType?) -> String? {
        type == .typeRegular || type == nil ? nil : "not a regular file (\(describe(type))); not followed"
    }

    public static func expand(_ paths: [String]) throws -> [Entry] {
        var out: [Entry] = []
        // One missing path (a USB stick not mounted) does not stop the others; only when none
        // is there is it an error of the whole run (found from outside: exit 66, nothing loaded).
        let missing = paths.filter { !FileManager.default.fileExists(atPath: $0) }
        // Behind a folder this user may not search: there, but not to be reached (found from
        // outside: "no such file or folder", exit 66).
        let denied = missing.filter(FileAccess.denied)
        if !denied.isEmpty && denied.count == paths.count {
            throw DataJoinError(
                .permission, "\(denied.joined(separator: ", ")): this user may not reach it (permission denied)")
        }
        if !missing.isEmpty && missing.count == paths.count {
            throw DataJoinError(.noInput, "\(missing.joined(separator: ", ")): no such file or folder")
        }
        for p in paths {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
                let why =
                    denied.contains(p)
                    ? "this user may not reach it (permission denied)" : "no such file or folder (not mounted?)"
                out.append(
                    Entry(
                        path: p, problem: why + "; the other paths were read",
                        problemKind: denied.contains(p) ? .permission : .noInput))
                continue
            }
            if isDir.boolValue {
                let names: [String]
                do {
                    names = try FileManager.default.contentsOfDirectory(atPath: p)
                } catch {
                    // One plain line, the permission class (found from outside: Foundation's
                    // error text, exit 1).
                    let denied = access(p, R_OK | X_OK) != 0
                    let why = denied ? "this user may not read it (permission denied)" : "it cannot be read"
                    if paths.count == 1 { throw DataJoinError(denied ? .permission : .io, "folder \(p): \(why)") }
                    out.append(
                        Entry(
                            path: p, problem: "folder: \(why); the other paths were read",
                            problemKind: denied ? .permission : .io))
                    continue
                }
                // `.DJB` too: a copy by a tool that upper-cases names was skipped as "no bundle
                // files found", exit 0 (found from outside). Snapshots first: their marks cover
                // the sender's older files beside them, which a joiner then skips; loaded before
                // the snapshot, their changes older than its cut-off were held there with the
                // re-join advice (found in review).
                let marker = Snapshotter.fileMarker
                for n in names.sorted(by: { a, b in
                    let (sa, sb) = (a.contains(marker), b.contains(marker))
                    return sa != sb ? sa : a < b
                })
                where !n.hasPrefix(".") && n.lowercased().hasSuffix("." + BundleFormat.fileExtension) {
                    let full = (p as NSString).appendingPathComponent(n)
                    let type =
                        (try? FileManager.default.attributesOfItem(atPath: full)[.type] as? FileAttributeType) ?? nil
                    var st = stat()
                    if n.unicodeScalars.contains("\u{FFFD}"), lstat(full, &st) != 0 {
                        // A name in another encoding (a FAT or SMB stick): listed with its bytes
                        // replaced, so it cannot be opened by that name. It was skipped as
                        // "removed from the folder", exit 0 (found from outside).
                        out.append(
                            Entry(
                                path: full,
                                problem:
                                    "its name is not valid UTF-8 (shown with \u{FFFD}), so it cannot be opened; rename it (letters, digits, '-', '_') and run again",
                                inFolder: true))
                        continue
                    }
                    out.append(Entry(path: full, problem: folderEntryProblem(type), inFolder: true))
                }
            } else {
                out.append(Entry(path: p, problem: regularFileProblem(p)))
            }
        }
        // A file both named and found in a named folder counts once, as named: never moved.
        let named = Set(out.filter { !$0.inFolder }.map { URL(fileURLWithPath: $0.path).standardizedFileURL.path })
        var seen = Set<String>()
        return out.filter { e in
            let key = URL(fileURLWithPath: e.path).standardizedFileURL.path
            if e.inFolder && named.contains(key) { return false }
            return seen.insert(key).inserted
        }
    }
}
