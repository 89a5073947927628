import ArgumentParser
import DataJoin
import Foundation

/// `--db URL`, shared by every command that opens a database.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Database URL: postgresql://user:pass@host:port/db, sqlite:PATH, or PATH.db (default: $DATAJOIN_DB).", valueName: "url"))
    var db: String?

    /// Opens the database; only `init` passes `create` (any other command given a path where
    /// there is no database says so and creates nothing).
    func open(create: Bool = false) throws -> Database {
        guard let text = db ?? ProcessInfo.processInfo.environment["DATAJOIN_DB"], !text.isEmpty else {
            throw DataJoinError(.usage, "no database given: pass --db URL or set DATAJOIN_DB")
        }
        return try DatabaseOpener.open(text, create: create)
    }
}

/// `--quiet` / `--verbose`, shared by the long-running commands.
struct OutputOptions: ParsableArguments {
    @Flag(name: .shortAndLong, help: "Print nothing but errors.")
    var quiet = false

    @Flag(name: .shortAndLong, help: "Log each bundle and step on stderr.")
    var verbose = false

    func reporter() -> Reporter { TerminalReporter(quiet: quiet, verbose: verbose) }
}

/// Exit codes, the same for every command (docs/cli.md).
enum Exit {
    static let partial = ExitCode(2)
    static let usage = ExitCode(64)
}

/// Runs a command body; library errors become one line on stderr and the documented exit code.
func run(_ body: () throws -> Void) throws {
    do {
        try Tuning.loadFromEnvironment()
        try body()
    } catch let e as DataJoinError {
        Console.error(e.message)
        throw e.code == .usage || e.code == .badURL ? Exit.usage : ExitCode.failure
    } catch let e as ExitCode {
        throw e
    } catch {
        Console.error("\(error)")
        throw ExitCode.failure
    }
}

enum Console {
    static func error(_ message: String) {
        FileHandle.standardError.write(Data(("datajoin: error: " + message + "\n").utf8))
    }
    static func warn(_ message: String) {
        FileHandle.standardError.write(Data(("datajoin: warning: " + message + "\n").utf8))
    }
    static func info(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
}

/// A progress line on stderr, drawn only when stderr is a terminal.
final class TerminalReporter: Reporter {
    let quiet: Bool
    let verbose: Bool
    let isTTY = isatty(2) == 1
    private var lastDraw = Date.distantPast
    private let start = Date()
    private var drew = false

    init(quiet: Bool, verbose: Bool) {
        self.quiet = quiet
        self.verbose = verbose
    }

    deinit { if drew { FileHandle.standardError.write(Data("\n".utf8)) } }

    func progress(_ p: WorkProgress) {
        guard isTTY, !quiet else { return }
        let now = Date()
        guard now.timeIntervalSince(lastDraw) > 0.2 || p.final else { return }
        lastDraw = now
        let elapsed = max(now.timeIntervalSince(start), 0.001)
        var line = "\r\(p.phase): \(p.changes)"
        if let t = p.totalChanges, t > 0 { line += "/\(t)" }
        line += " changes"
        if p.bytes > 0 || p.totalBytes != nil {
            line += String(format: ", %.1f", Double(p.bytes) / 1_048_576)
            if let tb = p.totalBytes { line += String(format: "/%.1f", Double(tb) / 1_048_576) }
            line += " MB"
        }
        line += ", \(Int(Double(p.changes) / elapsed)) changes/s"
        // ETA from whichever total is known.
        if let t = p.totalChanges, t > p.changes, p.changes > 0 {
            line += ", ETA \(Int(Double(t - p.changes) * elapsed / Double(p.changes))) s"
        } else if let tb = p.totalBytes, tb > p.bytes, p.bytes > 0 {
            line += ", ETA \(Int(Double(tb - p.bytes) * elapsed / Double(p.bytes))) s"
        }
        FileHandle.standardError.write(Data((line + "\u{1B}[K").utf8))
        drew = true
    }

    func verbose(_ message: String) {
        guard verbose, !quiet else { return }
        Console.info(message)
    }
}

/// Joins the lines of each paragraph, so ArgumentParser wraps prose to the terminal's width
/// itself instead of breaking our lines again; indented lines (examples) stay as written.
func helpText(_ text: String) -> String {
    var out: [String] = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
        if let last = out.last, !last.isEmpty, !line.isEmpty, !line.hasPrefix(" "), !last.hasPrefix(" "), !last.hasSuffix(":") {
            out[out.count - 1] = last + " " + line
        } else {
            out.append(line)
        }
    }
    return out.joined(separator: "\n")
}
