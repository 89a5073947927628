import ArgumentParser
import DataJoin
import Foundation

/// `--db URL`, shared by every command that opens a database.
struct DatabaseOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Database URL: postgresql://user:pass@host:port/db, mariadb://user:pass@host:port/db, sqlite:PATH, or PATH.db (default: $DATAJOIN_DB).",
            valueName: "url"))
    var db: String?

    @Option(
        name: .customLong("lock-timeout"),
        help: ArgumentHelp(
            "Seconds to wait for a database another writer holds (default 30); the wait is reported after 1 s.",
            valueName: "seconds"))
    var lockTimeout: Seconds?

    func validate() throws {
        if let t = lockTimeout {
            guard t.value > 0, t.value <= 86_400 else {
                throw ValidationError("--lock-timeout must be a number of seconds above 0 and at most 86400, not \(t)")
            }
            LockWait.timeoutSeconds = t.value
        }
        LockWait.onWaiting = { message in if !Console.quiet { Console.info("datajoin: " + message) } }
    }

    /// Opens the database; only `init` passes `create` (any other command given a path where
    /// there is no database says so and creates nothing). Every other command needs a node.
    func open(create: Bool = false) throws -> Database {
        guard let text = db ?? ProcessInfo.processInfo.environment["DATAJOIN_DB"], !text.isEmpty else {
            throw DataJoinError(.usage, "no database given: pass --db URL or set DATAJOIN_DB")
        }
        return try Self.open(text, create: create)
    }

    /// `--db` of the commands that read a node's keys only when given one (`inspect`, `verify`).
    static func open(_ text: String, create: Bool = false) throws -> Database {
        let db = try DatabaseOpener.open(text, create: create)
        if !create { try NodeIdentity.require(db) }
        return db
    }
}

/// `--quiet` / `--verbose`, shared by the long-running commands.
struct OutputOptions: ParsableArguments {
    @Flag(
        name: .shortAndLong,
        help: "Print nothing but errors and warnings (what needs the operator), and what the command is run to print.")
    var quiet = false

    @Flag(name: .shortAndLong, help: "Log each bundle and step on stderr.")
    var verbose = false

    func validate() throws {
        // Opposites: the run would keep one and drop the other without a word (found from outside).
        if quiet && verbose { throw ValidationError("--quiet and --verbose ask for opposite things: give one") }
        Console.quiet = quiet
        Console.verbose = verbose && !quiet
    }

    func reporter() -> Reporter { TerminalReporter(quiet: quiet, verbose: verbose) }
}

/// Exit codes, the same for every command, by class as sysexits(3) has them (docs/cli.md,
/// `datajoin help exit-codes`).
enum Exit {
    static let partial = ExitCode(2)
    static let usage = ExitCode(64)
    static let dataError = ExitCode(65)
    static let noInput = ExitCode(66)
    static let unavailable = ExitCode(69)
    static let temporary = ExitCode(75)
    static let permission = ExitCode(77)

    /// The table `datajoin help exit-codes` prints.
    static let table = """
          0  success
          1  failure outside the classes below
          2  partial success: some bundles refused or changes held; the rest done
         64  usage: a bad flag, argument or URL
         65  data error: a damaged, forged, truncated or non-bundle file
         66  input missing: no such database, file or folder, or not a node yet
         69  service unavailable: the database server cannot be reached
         75  temporary: the database is locked by another writer; try again
         77  permission: sender not trusted, or the database unreadable or read-only
             for this user (a file, or a database user that may only read)
        130  interrupted by SIGINT (143: SIGTERM), as a shell reports it: what was
             committed stays, the open transaction is rolled back; run it again
        """

    static func code(for e: DataJoinError) -> ExitCode {
        switch e.code {
        // A table `track` cannot sync as declared is refused as its other key refusals are.
        case .usage, .badURL, .noPrimaryKey: return usage
        case .badBundle, .truncated, .dataError: return dataError
        case .noInput, .notInitialized: return noInput
        case .connection: return unavailable
        case .locked, .busy: return temporary
        case .untrusted, .permission, .notForThisNode, .forOtherNodes: return permission
        default: return .failure
        }
    }
}

/// Runs a command body; library errors become one line on stderr and the documented exit code.
func run(_ body: () throws -> Void) throws {
    do {
        try Tuning.loadFromEnvironment()
        try body()
    } catch let e as DataJoinError {
        Console.error(e.message)
        throw Exit.code(for: e)
    } catch  where DatabaseErrors.isLocked(error) {
        // SQLite's own description already says how long it waited and what to do (found
        // from outside: the advice was printed twice).
        let said = "\(error)"
        Console.error(
            said.contains("--lock-timeout")
                ? said
                : "\(said): another session held a lock this run needs for \(LockWait.timeoutText) s "
                    + "(an application's open transaction?); what it was doing was rolled back; try again when it is done, or raise --lock-timeout"
        )
        throw Exit.temporary
    } catch  where DatabaseErrors.isConnectionLost(error) {
        // One line, and the class of a failed connect (found from outside: exit 1, the
        // server's lines escaped).
        Console.error(
            TerminalText.oneLine("\(error)")
                + "; the connection to the server was lost, and what this run was doing was rolled back: run it again when the server is back"
        )
        throw Exit.unavailable
    } catch  where DatabaseErrors.isDiskFull(error) {
        // One line with the cure (found from outside: only SQLite's words, at the import's commit).
        Console.error(
            TerminalText.oneLine("\(error)")
                + "; the database has no room left, and what this step was doing was rolled back: free space for it (or raise its size limit), then run the command again"
        )
        throw ExitCode.failure
    } catch  where DatabaseErrors.isReadOnly(error) {
        Console.error(
            TerminalText.oneLine("\(error)")
                + "; this database takes no writes here (a hot standby or replica, or a session set read-only): point --db at the primary"
        )
        throw Exit.permission
    } catch  where DatabaseErrors.isPermissionDenied(error) {
        Console.error(
            TerminalText.oneLine("\(error)")
                + "; this database user may not write DataJoin's tables (ds_*) and the tracked ones: grant it that, or run as their owner"
        )
        throw Exit.permission
    } catch let e as TransactionError where e.underlying is DataJoinError {
        let inner = e.underlying as! DataJoinError
        Console.error(inner.message)
        throw Exit.code(for: inner)
    } catch let e as ExitCode {
        throw e
    } catch {
        Console.error("\(error)")
        throw ExitCode.failure
    }
}

enum Console {
    /// `--quiet`: nothing but errors and warnings. Set once the arguments are parsed (OutputOptions).
    static var quiet = false
    static var verbose = false

    /// A result line on stdout, unless --quiet.
    static func out(_ message: String) {
        guard !quiet else { return }
        print(message)
    }
    /// What the command was run to print (a key, a block number, a status, JSON): printed
    /// under --quiet too, which keeps only errors and warnings of the work a command does
    /// (found from outside: `trust … "$(datajoin key -q …)"` got nothing).
    static func result(_ message: String) {
        Swift.print(TerminalText.safe(message, keepNewlines: true))
    }
    static func error(_ message: String) {
        FileHandle.standardError.write(Data(("datajoin: error: " + TerminalText.safe(message) + "\n").utf8))
    }
    /// Printed under `--quiet` too: a warning asks the operator to act (a refused file, a peer
    /// that lacks changes), and a cron job run quiet exited 2 or 0 with it unsaid (found from
    /// outside).
    static func warn(_ message: String) {
        FileHandle.standardError.write(Data(("datajoin: warning: " + TerminalText.safe(message) + "\n").utf8))
    }
    static func info(_ message: String) {
        FileHandle.standardError.write(Data((TerminalText.safe(message, keepNewlines: true) + "\n").utf8))
    }
}

/// A progress line on stderr, drawn only when stderr is a terminal.
final class TerminalReporter: Reporter {
    let quiet: Bool
    let verbose: Bool
    let isTTY = isatty(2) == 1
    private var lastDraw = Date.distantPast
    private var phase = ""
    private var phaseStart = Date()
    private var drew = false

    init(quiet: Bool, verbose: Bool) {
        self.quiet = quiet
        self.verbose = verbose
    }

    deinit { if drew { FileHandle.standardError.write(Data("\n".utf8)) } }

    func progress(_ p: WorkProgress) {
        guard isTTY, !quiet else { return }
        let now = Date()
        // A new phase shows at once, and its rate and ETA count from its own start.
        let newPhase = p.phase != phase
        if newPhase {
            phase = p.phase
            phaseStart = now
        }
        guard newPhase || now.timeIntervalSince(lastDraw) > 0.2 || p.final else { return }
        lastDraw = now
        let elapsed = max(now.timeIntervalSince(phaseStart), 0.001)
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

    func notice(_ message: String) {
        if drew {
            FileHandle.standardError.write(Data("\n".utf8))
            drew = false
        }
        Console.warn(message)
    }
}

/// Joins the lines of each paragraph, so ArgumentParser wraps prose to the terminal's width
/// itself instead of breaking our lines again; indented lines (examples) stay as written.
func helpText(_ text: String) -> String {
    var out: [String] = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
        if let last = out.last, !last.isEmpty, !line.isEmpty, !line.hasPrefix(" "), !last.hasPrefix(" "),
            !last.hasSuffix(":")
        {
            out[out.count - 1] = last + " " + line
        } else {
            out.append(line)
        }
    }
    return out.joined(separator: "\n")
}

/// Every command's output goes through here: with --quiet, nothing but errors and warnings
/// (stderr) is printed, whatever the command. Shadows Swift's print in this module. Text from bundles,
/// file names and servers reaches the terminal with its control characters shown, never acted
/// on; newlines and tabs of DataJoin's own layout stay.
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    guard !Console.quiet else { return }
    Swift.print(
        TerminalText.safe(items.map { "\($0)" }.joined(separator: separator), keepNewlines: true),
        terminator: terminator)
}

/// `--encrypt` and `--recipient`, for every command that writes bundles (docs/encryption.md).
struct EncryptionOptions: ParsableArguments {
    @Flag(
        help:
            "Encrypt to every trusted peer (format v2): a lost USB stick or a shared folder reveals no rows. 'datajoin config encrypt always' makes it the default."
    )
    var encrypt = false

    @Option(help: ArgumentHelp("Encrypt to this peer only (repeatable); implies --encrypt.", valueName: "node"))
    var recipient: [String] = []
}

/// A command's usage line, written as the parser would give it, broken into lines that end
/// before column 80 (the parser prints it on one line of up to 190 columns). Each further line
/// starts under the command's first argument; a bracketed group is never split. The options
/// every command that opens a database shares (`DatabaseOptions`, `--quiet`, `--verbose`)
/// come last, unless `shared` says a command has others.
func usage(_ own: String, shared: String = "[--lock-timeout <seconds>] [--quiet] [--verbose]") -> String {
    let line = own + " " + shared
    var groups: [String] = []
    var group = ""
    var depth = 0
    func close() {
        // A flag's value stays with its flag (`--to <dir>`).
        if group.hasPrefix("<"), let last = groups.last, last.hasPrefix("--") {
            groups[groups.count - 1] += " " + group
        } else if !group.isEmpty {
            groups.append(group)
        }
        group = ""
    }
    for c in line {
        if c == " ", depth == 0 {
            close()
            continue
        }
        if c == "[" || c == "<" { depth += 1 }
        if c == "]" || c == ">" { depth -= 1 }
        group.append(c)
    }
    close()
    // "datajoin", the command's words, then its arguments: the words stay on the first line.
    let words = groups.prefix { !$0.hasPrefix("[") && !$0.hasPrefix("-") && !$0.hasPrefix("<") }
    let indent = String(repeating: " ", count: words.joined(separator: " ").count + 1)
    let width = 79 - "USAGE: ".count
    var lines = [words.joined(separator: " ")]
    for g in groups.dropFirst(words.count) {
        if lines[lines.count - 1].count + 1 + g.count > width {
            lines.append(indent + g)
        } else {
            lines[lines.count - 1] += " " + g
        }
    }
    return lines.joined(separator: "\n")
}
