import ArgumentParser
import DataJoin
import Dispatch
import Foundation

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run ingest, import and export in a loop, every N seconds (the seed's recurring programs).",
        usage: usage(
            "datajoin watch [--db <url>] --in <dir> --out <dir> --every <seconds> [--relay] [--cycles <n>]"
        ),
        discussion: helpText(
            """
            Each cycle ingests the bundles in --in, imports them, and exports new changes to --out,
            printing one line stamped with the time (ISO 8601, UTC); a cycle that found nothing and
            sent nothing prints nothing unless -v is given (which also names each bundle loaded
            and written). A failed cycle, a refused file, changes
            held and warnings go to stderr, also with -q, and the next cycle runs. Only one watch runs
            per database: a second one exits with status 75 before it prints anything. SIGINT or
            SIGTERM stops it between transactions, with exit status 0, and removes its lock file
            (DB.datajoin-lock, SQLite). With --cycles N it exits 1 when every cycle failed, and 2
            when some did, a cycle refused a file, or changes are held at the end (also ones held
            before the run).

            Example:
              datajoin watch --db laptop.db --in /drop/office --out /drop/laptop --every 60
              datajoin watch --db $HUB --in /drop/in --out /drop/out --every 30 --relay
            """))

    @OptionGroup var database: DatabaseOptions

    @OptionGroup var output: OutputOptions

    @Option(name: .customLong("in"), help: ArgumentHelp("Folder to ingest bundles from.", valueName: "dir"))
    var inFolder: String

    @Option(name: .customLong("out"), help: ArgumentHelp("Folder to export bundles to.", valueName: "dir"))
    var outFolder: String

    @Option(help: ArgumentHelp("Seconds between cycles (0.1 to 86400; decimals allowed).", valueName: "seconds"))
    var every: Seconds

    @Flag(help: "Export with --relay (for a hub).")
    var relay = false

    @Option(help: ArgumentHelp("Stop after N cycles (default: run until stopped).", valueName: "n"))
    var cycles: Int?

    func validate() throws {
        // Below a tenth of a second the loop only burns a core.
        guard every.value >= 0.1, every.value <= 86_400 else {
            throw ValidationError("--every takes a number of seconds from 0.1 to 86400, not \(every)")
        }
        if let cycles, cycles < 1 { throw ValidationError("--cycles takes a value above 0, not \(cycles)") }
    }

    func run() throws {
        try DataJoin_run {
            // Before the database is opened (a connect or lock wait): stopped then, it exits 0 too.
            let stopper = StopSignal()
            let db = try database.open()
            if stopper.requested { return }
            let options = WatchOptions(
                inFolder: inFolder, outFolder: outFolder, every: every.value, relay: relay, cycles: cycles,
                logIdleCycles: output.verbose)
            let watcher = Watcher(db: db, options: options, log: { Self.log($0) }, problem: { Self.logProblem($0) })
            let failed = try watcher.run(
                stop: { stopper.requested }, wait: { stopper.wait(seconds: $0) },
                started: {
                    Self.log(
                        "watching \(inFolder) -> \(db.displayName) -> \(outFolder) every \(every) s (Ctrl-C stops)")
                })
            Self.log(stopper.requested ? "stopped" : "done")
            // A run of a given number of cycles (cron, a script) says whether they worked (found
            // from outside: a --cycles 1 whose cycle failed exited 0).
            if let cycles, failed > 0 {
                Console.error("\(failed) of \(cycles) cycle(s) failed; the log above says why")
                throw failed >= cycles ? ExitCode.failure : Exit.partial
            }
            // As `ingest` exits 2 for a refused file or changes held, also held before the run
            // (found from outside: 0, and nothing said).
            if cycles != nil {
                // A count that cannot be read (the server gone) does not change what the cycles did.
                let held = (try? NodeStatus.heldCount(db)) ?? 0
                if held > 0 { Console.warn("\(held) change(s) held (see 'datajoin status')") }
                if watcher.cyclesWithProblems > 0 || held > 0 { throw Exit.partial }
            }
        }
    }
}

extension Watch {
    /// One log line, stamped with the time in ISO 8601 (UTC, milliseconds).
    static func log(_ line: String) {
        // One line, as on stderr: a file name with a line break made two (found from outside).
        print(stamp() + " " + TerminalText.safe(line))
        fflush(stdout)
    }

    /// A line that needs the operator, on stderr and under --quiet too (a quiet watch run by
    /// cron or a service manager said nothing of a failed cycle; found from outside).
    static func logProblem(_ line: String) {
        FileHandle.standardError.write(Data((stamp() + " " + TerminalText.safe(line) + "\n").utf8))
    }

    /// The time now in ISO 8601 (UTC, milliseconds), as each log line starts.
    static func stamp() -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date())
    }
}

/// SIGINT and SIGTERM set a flag and wake the sleeping loop; the work in progress finishes its
/// transaction first.
final class StopSignal: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let queue = DispatchQueue(label: "datajoin.signals")
    private var sources: [DispatchSourceSignal] = []
    private let lock = NSLock()
    private var flag = false

    var requested: Bool {
        lock.lock()
        defer { lock.unlock() }
        return flag
    }

    init() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler { [weak self] in
                guard let self else { return }
                self.lock.lock()
                self.flag = true
                self.lock.unlock()
                self.semaphore.signal()
            }
            source.resume()
            sources.append(source)
        }
    }

    func wait(seconds: Double) {
        _ = semaphore.wait(timeout: .now() + seconds)
    }
}
