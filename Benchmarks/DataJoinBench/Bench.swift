import ArgumentParser
import DataJoin
import Foundation

/// Measures capture, export, ingest and import against the databases' own bulk-write speed and
/// gzip, in the same run (docs/performance.md). Steps that DataJoin runs go through the real
/// `datajoin` executable, one process per step, so time and peak memory are the user's.
@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datajoin-bench", abstract: "DataJoin benchmark (Scripts/bench.sh builds and runs it).")

    @Option(help: "Changes per step.") var changes = 1_000_000
    @Option(help: "The datajoin executable to measure.") var datajoin: String
    @Option(help: "Base URL of a PostgreSQL server to create databases on (none: SQLite only).") var pg: String?
    @Option(help: "Folder for databases and bundles.") var work: String
    @Option(help: "Write results as JSON here.") var json: String?
    @Option(help: "Seconds per pgbench run (0 skips pgbench).") var pgbenchSeconds = 10
    @Option(help: "New changes for the history check (0 skips it).") var historyChanges = 10_000
    @Option(help: "Base URL of a MariaDB server to create databases on (none: no MariaDB figures).")
    var mariadb: String?
    @Option(help: "Run one part only: sqlite, postgres, mariadb or hub.") var only: String?
    @Option(help: "Laptops in the hub simulation (0 skips it; the hub is PostgreSQL with --pg).")
    var hubLaptops = 100
    @Option(help: "Cycles of the hub simulation.") var hubCycles = 3
    @Option(help: "One-change bundles the hub ingests at the end of its simulation (its cost per bundle).")
    var hubSmallBundles = 200
    @Option(help: "Run the encryption step only up to this many changes (it ingests 4 × that many).")
    var encryptionUpTo = 1_000_000

    func validate() throws {
        guard only == nil || ["sqlite", "postgres", "mariadb", "hub"].contains(only!) else {
            throw ValidationError("--only takes sqlite, postgres, mariadb or hub")
        }
        guard hubLaptops >= 0, hubCycles >= 2 else {
            throw ValidationError(
                "--hub-laptops takes 0 or more, --hub-cycles 2 or more (the first cycle has no updates)")
        }
    }

    func run() throws {
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        var results: [Measurement] = []
        if only == nil || only == "sqlite" { results += try SQLiteBench(self).run() }
        if let pg, only == nil || only == "postgres" { results += try PostgresBench(self, base: pg).run() }
        if let mariadb, only == nil || only == "mariadb" { results += try MariaDBBench(self, base: mariadb).run() }
        if hubLaptops > 0, only == nil || only == "hub" {
            results += try HubSimulation(b: self, laptops: hubLaptops, cycles: hubCycles, smallBundles: hubSmallBundles)
                .run()
        }
        Report.print(results, changes: changes)
        if let json {
            try Report.json(results, changes: changes).write(toFile: json, atomically: true, encoding: .utf8)
        }
    }
}

struct Measurement {
    var brand: String
    var step: String
    var rate: Double?  // changes (or rows, or transactions) per second
    var unit: String = "changes/s"
    var baseline: String?
    var baselineRate: Double?
    var peakRSSMiB: Double?
    var extra: [String: Double] = [:]
    var ratio: Double? {
        guard let r = rate, let b = baselineRate, b > 0 else { return nil }
        return r / b
    }
}

/// One run of a command: seconds, peak resident memory (GNU time's %M) and its output.
struct StepRun {
    var seconds: Double
    var peakRSSMiB: Double
    var output: String
}

enum Runner {
    /// Peak memory comes from GNU time, which forks the command from its own small process: a
    /// command spawned straight from the bench inherits the bench's own high-water mark (Linux
    /// records the old address space's peak at exec, and posix_spawn shares the bench's), so a
    /// 35 MiB ingest read as 261 MiB once the bench held 100 open databases.
    static func run(_ exe: String, _ args: [String]) throws -> StepRun {
        let outPath = NSTemporaryDirectory() + "bench-\(UUID().uuidString).out"
        let rssPath = outPath + ".rss"
        var actions: posix_spawn_file_actions_t = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let timeTool = "/usr/bin/time"
        let command = [timeTool, "-f", "%M", "-o", rssPath, exe] + args
        let argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let start = Date()
        let rc = posix_spawn(&pid, timeTool, &actions, nil, argv, environ)
        guard rc == 0 else {
            throw ValidationError(
                "cannot start \(timeTool) (GNU time, Debian package time): \(String(cString: strerror(rc)))")
        }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let seconds = Date().timeIntervalSince(start)
        let output = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let rss = (try? String(contentsOfFile: rssPath, encoding: .utf8)) ?? ""
        unlink(outPath)
        unlink(rssPath)
        guard status == 0 else {
            throw ValidationError("\(exe) \(args.joined(separator: " ")) failed (\(status)): \(output.suffix(500))")
        }
        // GNU time writes "Command exited with non-zero status" lines first when it failed.
        let kib = rss.split(separator: "\n").last.flatMap { Double($0.trimmingCharacters(in: .whitespaces)) } ?? 0
        return StepRun(seconds: seconds, peakRSSMiB: kib / 1024, output: output)
    }

    static func shell(_ command: String) throws -> StepRun { try run("/bin/sh", ["-c", command]) }

    /// A pipeline that fails when any of its commands fails.
    static func pipeline(_ command: String) throws -> StepRun {
        try run("/bin/bash", ["-o", "pipefail", "-c", command])
    }

    static func time(_ body: () throws -> Void) rethrows -> Double {
        let start = Date()
        try body()
        return Date().timeIntervalSince(start)
    }
}

/// The seed's sales_order rows, the same in every step.
enum Rows {
    static let columns = [
        "order_id", "order_type", "description", "product_type_name", "customer_id", "quantity", "order_date",
        "update_datetime", "updated_by_user", "updated_by_server",
    ]

    static func values(_ i: Int) -> [Value] {
        [
            .text(String(format: "ord%08d", i)), .text(i % 3 == 0 ? "online" : "store"),
            .text("order number \(i) for the field team"),
            .text(i % 2 == 0 ? "book" : "pen"), .text(String(format: "cust%05d", i % 50_000)), .text(String(i % 100)),
            .text("2025-06-24"),
            .text("2025-06-24 10:00:00"), .text("milan"), .text("testapp1"),
        ]
    }

    static func copyLine(_ i: Int) -> String { values(i).map { $0.description }.joined(separator: "\t") }

    static let insertSQL =
        "INSERT INTO sales_order (\(columns.joined(separator: ", "))) VALUES (\(columns.map { _ in "?" }.joined(separator: ", ")))"
    static let updateSQL = "UPDATE sales_order SET quantity = quantity || 'u'"
}

extension Bench {
    /// An ingest runs with `--verbose`, which names every bundle the database refused (on the
    /// importer's fast path or in a bundle's order): a figure measured on the slow path it fell back to is no figure
    /// (SQLite keeps no server log to read afterwards).
    func cli(_ args: String...) throws -> StepRun {
        guard args.first == "ingest" else { return try Runner.run(datajoin, args) }
        let run = try Runner.run(datajoin, args.map { $0 == "--quiet" ? "--verbose" : $0 })
        if let line = run.output.split(separator: "\n").first(where: { $0.contains("the database refused a change") }) {
            throw ValidationError("\(args.joined(separator: " ")): \(line)")
        }
        return run
    }

    func folder(_ name: String) throws -> String {
        let p = (work as NSString).appendingPathComponent(name)
        try? FileManager.default.removeItem(atPath: p)
        try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }

    func bytes(in folder: String) -> Int64 {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".djb") }.reduce(0)
        { $0 + fileSize((folder as NSString).appendingPathComponent($1)) }
    }

    func fileSize(_ path: String) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
    }

    /// gzip -6 of the bundles' uncompressed content: the compression speed of this machine.
    func gzipBaseline(_ folders: [String]) throws -> (mbPerSecond: Double, uncompressedBytes: Int64) {
        let payload = (work as NSString).appendingPathComponent("payload.bin")
        _ = try Runner.shell("cat " + folders.map { "'\($0)'/*.djb" }.joined(separator: " ") + " | zcat > '\(payload)'")
        let size = ((try FileManager.default.attributesOfItem(atPath: payload))[.size] as! NSNumber).int64Value
        let r = try Runner.shell("gzip -6 -c '\(payload)' > /dev/null")
        unlink(payload)
        return (Double(size) / 1_048_576 / r.seconds, size)
    }

    /// One brand, end to end: baseline bulk write, capture overhead, export, ingest + import into
    /// an empty target, import of updates, and the cost of new changes after a long history.
    func runBrand(
        _ brand: String, newDatabase: (String) throws -> String, ddl: String,
        bulkLoad: (Database, Range<Int>) throws -> Void, baselineName: String,
        naiveDump: (_ url: String, _ file: String) -> String
    ) throws -> [Measurement] {
        let n = changes
        var out: [Measurement] = []
        func log(_ s: String) { FileHandle.standardError.write(Data("[\(brand)] \(s)\n".utf8)) }

        let base = try newDatabase("base")
        let baseDB = try DatabaseOpener.open(base)
        try baseDB.executeScript(ddl)
        let tBulk = try Runner.time { try bulkLoad(baseDB, 0..<n) }
        let bulkRate = Double(n) / tBulk
        let tPlainUpdate = try Runner.time { try baseDB.execute(Rows.updateSQL) }
        log("baseline \(baselineName): \(Int(bulkRate)) rows/s")

        let src = try newDatabase("src")
        let srcDB = try DatabaseOpener.open(src)
        try srcDB.executeScript(ddl)
        _ = try cli("init", "--db", src, "--node", "src")
        _ = try cli("track", "--db", src, "sales_order")
        let tTrackedInsert = try Runner.time { try bulkLoad(srcDB, 0..<n) }
        let afterInserts = try TableSum.of(srcDB)
        try TableSum.expect(afterInserts.rows, n, "rows in the source after \(n) inserts")
        let inserts = try folder("\(brand)-inserts")
        let e1 = try cli("export", "--db", src, "--to", inserts, "--quiet")
        try TableSum.expect(try changesIn(inserts), n, "changes exported of \(n) inserts captured")
        log("export of \(n) inserts: \(e1.seconds) s")
        let tTrackedUpdate = try Runner.time { try srcDB.execute(Rows.updateSQL) }
        let afterUpdates = try TableSum.of(srcDB)
        let updates = try folder("\(brand)-updates")
        let e2 = try cli("export", "--db", src, "--to", updates, "--quiet")
        try TableSum.expect(try changesIn(updates), n, "changes exported of \(n) updates captured")
        let gz = try gzipBaseline([inserts, updates])
        let exportMBs = Double(gz.uncompressedBytes) / 1_048_576 / (e1.seconds + e2.seconds)
        // The naive pipeline on the same outbox: its rows dumped as text and gzipped.
        let outboxRows = try srcDB.integer("SELECT count(*) FROM ds_change_outbox")
        try TableSum.expect(outboxRows, 2 * n, "outbox rows after \(n) inserts and \(n) updates")
        let naiveFile = (work as NSString).appendingPathComponent("naive.gz")
        let naive = try Runner.pipeline(naiveDump(src, naiveFile))
        unlink(naiveFile)
        log("naive pipeline: \(naive.seconds) s for \(outboxRows) outbox rows")

        out.append(
            Measurement(
                brand: brand, step: "capture: bulk insert, tracked", rate: Double(n) / tTrackedInsert, unit: "rows/s",
                baseline: "untracked", baselineRate: bulkRate))
        out.append(
            Measurement(
                brand: brand, step: "capture: bulk update, tracked", rate: Double(n) / tTrackedUpdate, unit: "rows/s",
                baseline: "untracked", baselineRate: Double(n) / tPlainUpdate))
        out.append(
            Measurement(
                brand: brand, step: "export (inserts + updates)", rate: Double(2 * n) / (e1.seconds + e2.seconds),
                baseline: "naive dump | gzip -6", baselineRate: Double(outboxRows) / naive.seconds,
                peakRSSMiB: max(e1.peakRSSMiB, e2.peakRSSMiB),
                extra: [
                    "export_MB_per_s": exportMBs, "gzip6_MB_per_s": gz.mbPerSecond,
                    "export_vs_gzip6": exportMBs / gz.mbPerSecond,
                    "bytes_per_insert": Double(bytes(in: inserts)) / Double(n),
                    "bytes_per_update": Double(bytes(in: updates)) / Double(n),
                    "uncompressed_bytes_per_change": Double(gz.uncompressedBytes) / Double(2 * n),
                ]))

        let dst = try newDatabase("dst")
        let dstDB = try DatabaseOpener.open(dst)
        try dstDB.executeScript(ddl)
        _ = try cli("init", "--db", dst, "--node", "dst")
        _ = try cli("track", "--db", dst, "sales_order")
        _ = try cli(
            "trust", "--db", dst, "src",
            try cli("key", "--db", src).output.trimmingCharacters(in: .whitespacesAndNewlines))
        let i1 = try cli("ingest", "--db", dst, inserts, "--quiet")
        try TableSum.expectSame(try TableSum.of(dstDB), afterInserts, "the target after ingesting the inserts")
        log("ingest + import of \(n) inserts: \(i1.seconds) s")
        out.append(
            Measurement(
                brand: brand, step: "ingest + import into an empty target", rate: Double(n) / i1.seconds,
                baseline: baselineName, baselineRate: bulkRate, peakRSSMiB: i1.peakRSSMiB))
        let i2 = try cli("ingest", "--db", dst, updates, "--quiet")
        try TableSum.expectSame(try TableSum.of(dstDB), afterUpdates, "the target after ingesting the updates")
        out.append(
            Measurement(
                brand: brand, step: "ingest + import of updates (rows exist)", rate: Double(n) / i2.seconds,
                baseline: baselineName, baselineRate: bulkRate, peakRSSMiB: i2.peakRSSMiB))

        if n <= encryptionUpTo {
            out += try encryptionStep(brand, n, src: src, ddl: ddl, newDatabase: newDatabase, expected: afterUpdates)
        } else {
            log("encryption step skipped: \(n) changes is above --encryption-up-to \(encryptionUpTo)")
        }
        if historyChanges > 0 {
            // The same number of new changes, after the history above and on a fresh pair.
            func newChanges(_ srcURL: String, _ srcDB: Database, _ dstURL: String, offset: Int, label: String) throws
                -> Double
            {
                try bulkLoad(srcDB, offset..<(offset + historyChanges))
                let f = try folder("\(brand)-history-\(label)")
                let e = try cli("export", "--db", srcURL, "--to", f, "--quiet")
                try TableSum.expect(try changesIn(f), historyChanges, "changes exported of \(historyChanges) new")
                let i = try cli("ingest", "--db", dstURL, f, "--quiet")
                try TableSum.expectSame(
                    try TableSum.of(try DatabaseOpener.open(dstURL)), try TableSum.of(srcDB),
                    "the \(label) target after \(historyChanges) new changes")
                return e.seconds + i.seconds
            }
            let afterHistory = try newChanges(src, srcDB, dst, offset: n, label: "after")
            let fsrc = try newDatabase("fsrc"), fdst = try newDatabase("fdst")
            let fsrcDB = try DatabaseOpener.open(fsrc), fdstDB = try DatabaseOpener.open(fdst)
            try fsrcDB.executeScript(ddl)
            try fdstDB.executeScript(ddl)
            _ = try cli("init", "--db", fsrc, "--node", "src")
            _ = try cli("track", "--db", fsrc, "sales_order")
            _ = try cli("init", "--db", fdst, "--node", "dst")
            _ = try cli("track", "--db", fdst, "sales_order")
            _ = try cli(
                "trust", "--db", fdst, "src",
                try cli("key", "--db", fsrc).output.trimmingCharacters(in: .whitespacesAndNewlines))
            let fresh = try newChanges(fsrc, fsrcDB, fdst, offset: n, label: "fresh")
            out.append(
                Measurement(
                    brand: brand, step: "\(historyChanges) new changes after \(2 * n) (export + ingest)",
                    rate: Double(historyChanges) / afterHistory,
                    baseline: "on a fresh pair", baselineRate: Double(historyChanges) / fresh))
        }
        return out
    }
    /// Encryption's cost (issue 15): the same 2n changes written again (--resend), plain and
    /// encrypted to a fresh node, then ingested into two fresh targets.
    func encryptionStep(
        _ brand: String, _ n: Int, src: String, ddl: String, newDatabase: (String) throws -> String,
        expected afterUpdates: TableSum
    ) throws -> [Measurement] {
        func log(_ s: String) { FileHandle.standardError.write(Data("[\(brand)] \(s)\n".utf8)) }
        var out: [Measurement] = []
        func target(_ name: String) throws -> String {
            let url = try newDatabase(name)
            try DatabaseOpener.open(url).executeScript(ddl)
            _ = try cli("init", "--db", url, "--node", name)
            _ = try cli("track", "--db", url, "sales_order")
            _ = try cli(
                "trust", "--db", url, "src",
                try cli("key", "--db", src).output.trimmingCharacters(in: .whitespacesAndNewlines))
            return url
        }
        let plainDst = try target("plaindst"), encDst = try target("encdst")
        _ = try cli(
            "trust", "--db", src, "encdst",
            try cli("key", "--db", encDst).output.trimmingCharacters(in: .whitespacesAndNewlines))
        let plainFolder = try folder("\(brand)-resend-plain"), encFolder = try folder("\(brand)-resend-encrypted")
        let ep = try cli("export", "--db", src, "--to", plainFolder, "--resend", "--quiet")
        let ee = try cli("export", "--db", src, "--to", encFolder, "--resend", "--recipient", "encdst", "--quiet")
        let ip = try cli("ingest", "--db", plainDst, plainFolder, "--quiet")
        let ie = try cli("ingest", "--db", encDst, encFolder, "--quiet")
        for (url, what) in [(plainDst, "plain"), (encDst, "encrypted")] {
            try TableSum.expectSame(
                try TableSum.of(try DatabaseOpener.open(url)), afterUpdates, "the target of the \(what) resend")
        }
        log(
            "encryption: export \(ep.seconds) s plain, \(ee.seconds) s encrypted; ingest \(ip.seconds) s, \(ie.seconds) s"
        )
        out.append(
            Measurement(
                brand: brand, step: "export \(2 * n) changes, encrypted", rate: Double(2 * n) / ee.seconds,
                unit: "changes/s", baseline: "plain", baselineRate: Double(2 * n) / ep.seconds,
                peakRSSMiB: ee.peakRSSMiB,
                extra: ["bytes_encrypted": Double(bytes(in: encFolder)), "bytes_plain": Double(bytes(in: plainFolder))])
        )
        out.append(
            Measurement(
                brand: brand, step: "ingest + import \(2 * n) changes, encrypted", rate: Double(2 * n) / ie.seconds,
                unit: "changes/s", baseline: "plain", baselineRate: Double(2 * n) / ip.seconds,
                peakRSSMiB: ie.peakRSSMiB))

        return out
    }
}

struct SQLiteBench {
    let b: Bench
    init(_ b: Bench) { self.b = b }

    func run() throws -> [Measurement] {
        try b.runBrand(
            "sqlite",
            newDatabase: { name in
                let p = (b.work as NSString).appendingPathComponent("\(name).db")
                for suffix in ["", "-wal", "-shm"] { unlink(p + suffix) }
                return p
            },
            ddl:
                "CREATE TABLE sales_order (order_id TEXT PRIMARY KEY NOT NULL, order_type TEXT, description TEXT, product_type_name TEXT, customer_id TEXT, quantity TEXT, order_date TEXT, update_datetime TEXT, updated_by_user TEXT, updated_by_server TEXT)",
            bulkLoad: { db, range in
                try db.retryingWrite { _ in for i in range { try db.execute(Rows.insertSQL, Rows.values(i)) } }
            }, baselineName: "one transaction, prepared insert",
            naiveDump: { url, file in "sqlite3 '\(url)' 'SELECT * FROM ds_change_outbox' | gzip -6 > '\(file)'" })
    }
}

/// MariaDB: the baseline is multi-row INSERT in one transaction (500 rows a statement), the
/// fastest bulk write a client has without a file for LOAD DATA.
struct MariaDBBench {
    let b: Bench
    let base: String
    init(_ b: Bench, base: String) {
        self.b = b
        self.base = base
    }

    func newDatabase(_ name: String) throws -> String {
        let admin = try DatabaseOpener.open(base)
        let db = "bench_\(name)"
        try admin.executeScript("DROP DATABASE IF EXISTS \(db)")
        try admin.executeScript("CREATE DATABASE \(db) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin")
        let slash = base.range(of: "/", options: .backwards, range: base.range(of: "://")!.upperBound..<base.endIndex)!
        return String(base[..<slash.upperBound]) + db
    }

    func run() throws -> [Measurement] {
        try b.runBrand(
            "mariadb", newDatabase: newDatabase,
            ddl:
                "CREATE TABLE sales_order (order_id VARCHAR(64) PRIMARY KEY, order_type TEXT, description TEXT, product_type_name TEXT, customer_id TEXT, quantity TEXT, order_date TEXT, update_datetime TEXT, updated_by_user TEXT, updated_by_server TEXT)",
            bulkLoad: { db, range in
                let per = 500
                let tuple = "(" + Rows.columns.map { _ in "?" }.joined(separator: ", ") + ")"
                try db.write { tx in
                    for start in stride(from: range.lowerBound, to: range.upperBound, by: per) {
                        let end = min(start + per, range.upperBound)
                        try tx.execute(
                            "INSERT INTO sales_order (\(Rows.columns.joined(separator: ", "))) VALUES "
                                + Array(repeating: tuple, count: end - start).joined(separator: ", "),
                            (start..<end).flatMap { Rows.values($0) })
                    }
                }
            }, baselineName: "multi-row INSERT",
            naiveDump: { url, file in
                let u = URLComponents(string: url)!
                return
                    "mariadb -h \(u.host ?? "127.0.0.1") -P \(u.port ?? 3306) -u \(u.user ?? "root") -B -e 'SELECT * FROM ds_change_outbox' \(u.path.dropFirst()) | gzip -6 > '\(file)'"
            })
    }
}

struct PostgresBench {
    let b: Bench
    let base: String
    init(_ b: Bench, base: String) {
        self.b = b
        self.base = base
    }

    func url(_ name: String) -> String {
        let slash = base.range(of: "/", options: .backwards, range: base.range(of: "://")!.upperBound..<base.endIndex)!
        return String(base[..<slash.upperBound]) + name
    }

    func newDatabase(_ name: String) throws -> String {
        let admin = try DatabaseOpener.open(base)
        let db = "bench_\(name)"
        try admin.executeScript("DROP DATABASE IF EXISTS \(db)")
        try admin.executeScript("CREATE DATABASE \(db)")
        return url(db)
    }

    func run() throws -> [Measurement] {
        var out = try b.runBrand(
            "postgres", newDatabase: newDatabase,
            ddl:
                "CREATE TABLE sales_order (order_id text PRIMARY KEY, order_type text, description text, product_type_name text, customer_id text, quantity text, order_date text, update_datetime text, updated_by_user text, updated_by_server text)",
            bulkLoad: { db, range in
                guard let pg = db as? PostgresDatabase else { return }
                try pg.copyIn("COPY sales_order (\(Rows.columns.joined(separator: ", "))) FROM STDIN") { line in
                    for i in range { try line(Rows.copyLine(i)) }
                }
            }, baselineName: "COPY",
            naiveDump: { url, file in
                "psql '\(url)' -q -c 'COPY (SELECT * FROM ds_change_outbox) TO STDOUT' | gzip -6 > '\(file)'"
            })
        if b.pgbenchSeconds > 0 { out += try pgbench() }
        return out
    }

    /// pgbench's TPB-B-like load with its three keyed tables tracked, against untracked: with no
    /// export running, and with an export every 5 seconds (a hub under load keeps exporting).
    func pgbench() throws -> [Measurement] {
        let u = URLComponents(string: base)!
        let env = "PGHOST=\(u.host ?? "127.0.0.1") PGPORT=\(u.port ?? 5432) PGUSER=\(u.user ?? "postgres")"
        let bin = try Runner.shell("ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1").output.trimmingCharacters(
            in: .whitespacesAndNewlines)
        func tps(_ db: String) throws -> Double {
            let r = try Runner.shell("\(env) \(bin)/pgbench -n -T \(b.pgbenchSeconds) -c 2 -j 2 \(db) 2>&1")
            guard let line = r.output.split(separator: "\n").first(where: { $0.hasPrefix("tps = ") }),
                let v = Double(line.dropFirst(6).split(separator: " ")[0])
            else { throw ValidationError("pgbench printed no tps: \(r.output.suffix(300))") }
            return v
        }
        let dbURL = try newDatabase("pgbench")
        let db = "bench_pgbench"
        _ = try Runner.shell("\(env) \(bin)/pgbench -i -q -s 2 \(db) 2>&1")
        let plain = try tps(db)
        _ = try b.cli("init", "--db", dbURL, "--node", "pgbench")
        _ = try b.cli("track", "--db", dbURL, "pgbench_accounts", "pgbench_tellers", "pgbench_branches")
        let tracked = try tps(db)
        // The export loop: one export every 5 seconds for as long as pgbench runs.
        let drop = try b.folder("pgbench-exports")
        let running = Running()
        let loop = Thread {
            while running.value {
                let start = Date()
                do {
                    _ = try b.cli("export", "--db", dbURL, "--to", drop, "--quiet")
                    running.exports += 1
                } catch {
                    running.error = error
                    return
                }
                while running.value && Date().timeIntervalSince(start) < 5 { usleep(50_000) }
            }
        }
        loop.start()
        let exporting = try tps(db)
        running.value = false
        while !loop.isFinished { usleep(10_000) }
        if let e = running.error { throw e }
        // Every captured change went out: a final export drains the rest, then the bundles hold
        // exactly the outbox.
        _ = try b.cli("export", "--db", dbURL, "--to", drop, "--quiet")
        let captured = try DatabaseOpener.open(dbURL).integer("SELECT count(*) FROM ds_change_outbox")
        try TableSum.expect(try b.changesIn(drop), captured, "changes exported during pgbench")
        return [
            Measurement(
                brand: "postgres", step: "pgbench, 3 tables tracked", rate: tracked, unit: "TPS",
                baseline: "untracked", baselineRate: plain),
            Measurement(
                brand: "postgres", step: "pgbench, tracked, export every 5 s", rate: exporting, unit: "TPS",
                baseline: "untracked", baselineRate: plain, extra: ["exports": Double(running.exports)]),
        ]
    }
}

enum Report {
    static func fmt(_ v: Double?) -> String {
        guard let v else { return "-" }
        return v >= 100 ? String(Int(v.rounded())) : String(format: "%.2f", v)
    }

    static func print(_ ms: [Measurement], changes: Int) {
        Swift.print("DataJoin benchmark, \(changes) changes per step")
        Swift.print(String(repeating: "-", count: 118))
        Swift.print(
            "brand".padding(toLength: 9, withPad: " ", startingAt: 0)
                + "step".padding(toLength: 46, withPad: " ", startingAt: 0)
                + "rate".padding(toLength: 20, withPad: " ", startingAt: 0)
                + "baseline".padding(toLength: 30, withPad: " ", startingAt: 0) + "ratio  peak MiB")
        for m in ms {
            let rate = fmt(m.rate) + " " + m.unit
            let base = m.baselineRate.map { "\(fmt($0)) (\(m.baseline ?? ""))" } ?? (m.baseline ?? "")
            Swift.print(
                m.brand.padding(toLength: 9, withPad: " ", startingAt: 0)
                    + m.step.padding(toLength: 46, withPad: " ", startingAt: 0)
                    + rate.padding(toLength: 20, withPad: " ", startingAt: 0)
                    + String(base.prefix(29)).padding(toLength: 30, withPad: " ", startingAt: 0)
                    + fmt(m.ratio).padding(toLength: 7, withPad: " ", startingAt: 0) + fmt(m.peakRSSMiB))
            for (k, v) in m.extra.sorted(by: { $0.key < $1.key }) { Swift.print("         " + "  \(k) = \(fmt(v))") }
        }
    }

    static func json(_ ms: [Measurement], changes: Int) -> String {
        func num(_ v: Double?) -> String { v.map { $0.isFinite ? String(format: "%.4f", $0) : "null" } ?? "null" }
        let items = ms.map { m in
            "{\"brand\":\"\(m.brand)\",\"step\":\"\(m.step)\",\"rate\":\(num(m.rate)),\"unit\":\"\(m.unit)\",\"baseline\":\"\(m.baseline ?? "")\","
                + "\"baseline_rate\":\(num(m.baselineRate)),\"ratio\":\(num(m.ratio)),\"peak_rss_mib\":\(num(m.peakRSSMiB)),"
                + "\"extra\":{\(m.extra.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\(num($0.value))" }.joined(separator: ","))}}"
        }
        return "{\"changes\":\(changes),\"results\":[\(items.joined(separator: ","))]}\n"
    }
}
