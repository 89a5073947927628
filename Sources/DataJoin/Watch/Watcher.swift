import Foundation

public struct WatchOptions: Sendable {
    public var inFolder: String
    public var outFolder: String
    public var every: Double
    public var relay: Bool
    /// Stop after this many cycles (nil: until stopped).
    public var cycles: Int?
    /// Log cycles that did nothing too, and each bundle loaded and written (`watch -v`).
    public var logIdleCycles = false

    public init(
        inFolder: String, outFolder: String, every: Double, relay: Bool = false, cycles: Int? = nil,
        logIdleCycles: Bool = false
    ) {
        self.logIdleCycles = logIdleCycles
        self.inFolder = inFolder
        self.outFolder = outFolder
        self.every = every
        self.relay = relay
        self.cycles = cycles
    }
}

/// `datajoin watch`: the seed's programs that run at an interval. Each cycle ingests the in
/// folder, imports, and exports to the out folder. A failed cycle is logged and the next one
/// runs; a stop request is honoured between transactions.
public final class Watcher {
    let db: Database
    let options: WatchOptions
    let log: (String) -> Void
    /// What needs the operator: a failed cycle, a refused file, changes held, a warning. Said
    /// under `--quiet` too (found from outside: `watch -q` said nothing of any of them).
    let problem: (String) -> Void
    /// The drift said last: each message is logged when it appears, not every cycle.
    private var drift: [String] = []
    /// Cycles that refused a file or held changes: a run of N cycles exits 2 for them.
    public private(set) var cyclesWithProblems = 0
    /// The lasting gaps of the last cycle: each is logged when it first appears.
    private var saidGaps: Set<String> = []
    /// Files `-v` said were left (for other nodes, or still being copied): said once.
    private var saidLeft: Set<String> = []

    public init(
        db: Database, options: WatchOptions, log: @escaping (String) -> Void,
        problem: ((String) -> Void)? = nil
    ) {
        self.db = db
        self.options = options
        self.log = log
        self.problem = problem ?? log
    }

    /// Runs cycles until `stop` says so; `wait` sleeps up to the interval and returns early
    /// when a stop is requested. Returns the number of cycles that failed.
    @discardableResult
    public func run(stop: @escaping () -> Bool, wait: (Double) -> Void, started: () -> Void = {}) throws -> Int {
        guard options.every > 0 else { throw DataJoinError(.usage, "--every must be more than 0 seconds") }
        for f in [options.inFolder, options.outFolder] { try Exporter.requireFolder(f, "folder") }
        _ = try NodeIdentity.load(db)
        let lock = try InstanceLock(db)
        defer { lock.release() }
        // Only now: a second watch is refused before it says anything else.
        started()
        var cycle = 0
        var failed = 0
        while !stop() {
            cycle += 1
            do {
                let (line, idle) = try runCycle(cycle, stop: stop)
                if !idle || options.logIdleCycles { log("cycle \(cycle): " + line) }
            } catch let e as DataJoinError where e.code == .newerNode {
                // A newer DataJoin upgraded the node meanwhile: no later cycle can run.
                throw e
            } catch {
                failed += 1
                let last = options.cycles.map { cycle >= $0 } ?? false
                problem(
                    "cycle \(cycle) failed: \(error)" + (last ? "" : "; the next cycle runs in \(options.every) s"))
            }
            logDrift()
            if let n = options.cycles, cycle >= n { break }
            if stop() { break }
            wait(options.every)
        }
        return failed
    }

    /// Found from outside: a table whose capture drifted went unsaid under watch, which is all a
    /// node runs (export alone warned). Each message once, when it appears; a check that fails
    /// is logged, and fails no cycle.
    private func logDrift() {
        do {
            let now = try CaptureDrift.find(db).map(\.message)
            for message in now where !drift.contains(message) { problem("warning: " + message) }
            drift = now
        } catch {
            problem("warning: the capture drift check failed: \(error)")
        }
    }

    /// The cycle's line, and whether it did nothing at all (such cycles are logged only with
    /// -v). What in it needs the operator (files refused, changes held) is said before its
    /// export, which may fail (found in review: it went unsaid then).
    func runCycle(_ cycle: Int, stop: @escaping () -> Bool) throws -> (String, Bool) {
        let ingest = try Ingester.ingest(
            db, IngestOptions(paths: [options.inFolder], importAfter: true, shouldStop: stop))
        var parts: [String] = []
        let loaded = ingest.files.reduce(Int64(0)) {
            if case .loaded(let n, _) = $1.status { return $0 + n } else { return $0 }
        }
        let bundles = ingest.files.filter { if case .loaded = $0.status { return true } else { return false } }.count
        parts.append("loaded \(loaded) change(s) from \(bundles) bundle(s)")
        // -v names each bundle, as it does on every other command (found from outside: nothing).
        if options.logIdleCycles {
            var left: Set<String> = []
            for f in ingest.files {
                switch f.status {
                case .loaded(let n, _): log("cycle \(cycle): loaded \(f.path) (\(n) change(s))")
                case .forOthers(let why), .incomplete(let why):
                    // Once per file: one left for other nodes is read again every cycle.
                    if !saidLeft.contains(f.path) { log("cycle \(cycle): left \(f.path): \(why)") }
                    left.insert(f.path)
                default: break
                }
            }
            saidLeft = left
        }
        // Each refused file by name and reason: the log is all a watch leaves to read.
        let refused = ingest.files.compactMap { f -> String? in
            if case .refused(let reason) = f.status { return "\((f.path as NSString).lastPathComponent): \(reason)" }
            return nil
        }
        if !refused.isEmpty { parts.append("\(refused.count) refused (" + refused.joined(separator: "; ") + ")") }
        if let i = ingest.imported { parts.append("applied \(i.applied)" + (i.held > 0 ? ", \(i.held) held" : "")) }
        for n in ingest.notices { parts.append(n) }
        // A gap that lasts is found by every cycle's ingest; said on stderr when it first appears
        // or changes, once being what a log needs.
        for g in ingest.gaps where !saidGaps.contains(g) { problem("warning: cycle \(cycle): " + g) }
        saidGaps = Set(ingest.gaps)
        let idle =
            ingest.files.allSatisfy {
                // Its own files and others' (a shared folder for --in and --out) are nothing to do
                // here: a line every cycle for them (found from outside).
                switch $0.status {
                case .alreadySeen, .removed, .ownBundle, .forOthers: return true
                default: return false
                }
            }
            && ingest.notices.isEmpty && (ingest.imported?.applied ?? 0) == 0 && (ingest.imported?.held ?? 0) == 0
        var trouble: [String] = []
        if !refused.isEmpty {
            trouble.append("\(refused.count) file(s) refused (" + refused.joined(separator: "; ") + ")")
        }
        if let held = ingest.imported?.held, held > 0 {
            trouble.append("\(held) change(s) held (see 'datajoin status')")
        }
        if !trouble.isEmpty {
            cyclesWithProblems += 1
            problem("warning: cycle \(cycle): " + trouble.joined(separator: ", "))
        }
        if stop() { return (parts.joined(separator: ", ") + "; stopping", false) }
        let notices = NoticeCollector()
        let written = try Exporter.export(
            db, ExportOptions(folder: options.outFolder, relay: options.relay), reporter: notices)
        for n in notices.notices { problem("warning: cycle \(cycle): " + n) }
        if options.logIdleCycles {
            for b in written { log("cycle \(cycle): wrote \(b.path) (\(b.changes) change(s))") }
        }
        parts.append("exported \(written.reduce(0) { $0 + $1.changes }) change(s) in \(written.count) bundle(s)")
        return (parts.joined(separator: ", "), idle && written.isEmpty)
    }
}
