import Foundation
import XCTest

@testable import DataJoin

/// Throwaway databases for tests: SQLite files in a temp folder, PostgreSQL and MariaDB
/// databases created on the servers named by DATAJOIN_TEST_PG and DATAJOIN_TEST_MARIADB
/// (Scripts/test.sh starts both). With DATAJOIN_REQUIRE_PG=1 and DATAJOIN_REQUIRE_MARIADB=1 (CI)
/// a missing server fails the test instead of skipping it.
enum TestDatabases {
    static var postgresBase: String? { ProcessInfo.processInfo.environment["DATAJOIN_TEST_PG"] }
    static var mariadbBase: String? { ProcessInfo.processInfo.environment["DATAJOIN_TEST_MARIADB"] }

    static func requireMariaDB() throws -> String {
        if let base = mariadbBase { return base }
        if ProcessInfo.processInfo.environment["DATAJOIN_REQUIRE_MARIADB"] == "1" {
            XCTFail("DATAJOIN_TEST_MARIADB is not set but DATAJOIN_REQUIRE_MARIADB=1: MariaDB tests must run")
        }
        throw XCTSkip("no MariaDB server: set DATAJOIN_TEST_MARIADB (Scripts/test.sh does)")
    }

    /// SQLite, and each server brand whose server is there (or required: then a missing one fails).
    static var availableBrands: [Brand] {
        let env = ProcessInfo.processInfo.environment
        var brands: [Brand] = [.sqlite]
        if postgresBase != nil || env["DATAJOIN_REQUIRE_PG"] == "1" { brands.append(.postgres) }
        if mariadbBase != nil || env["DATAJOIN_REQUIRE_MARIADB"] == "1" { brands.append(.mariadb) }
        return brands
    }

    /// A table's DDL in the words of `brand`: MariaDB indexes no TEXT column, so a text key is
    /// a VARCHAR there.
    static func ddl(_ sql: String, for brand: Brand) -> String {
        brand == .mariadb ? sql.replacingOccurrences(of: "TEXT PRIMARY KEY", with: "VARCHAR(191) PRIMARY KEY") : sql
    }

    static func requirePostgres() throws -> String {
        if let base = postgresBase { return base }
        if ProcessInfo.processInfo.environment["DATAJOIN_REQUIRE_PG"] == "1" {
            XCTFail("DATAJOIN_TEST_PG is not set but DATAJOIN_REQUIRE_PG=1: PostgreSQL tests must run")
        }
        throw XCTSkip("no PostgreSQL server: set DATAJOIN_TEST_PG (Scripts/test.sh does)")
    }

    /// A new, empty database of the brand; returns its URL.
    static func create(_ brand: Brand, name: String, in folder: URL) throws -> String {
        switch brand {
        case .sqlite:
            return folder.appendingPathComponent("\(name).db").path
        case .postgres:
            let base = try requirePostgres()
            let admin = try DatabaseOpener.open(base)
            let dbName =
                "dj_\(name.lowercased().filter { $0.isLetter || $0.isNumber })_\(UInt32.random(in: 0...UInt32.max))"
            try admin.executeScript("CREATE DATABASE \(dbName)")
            postgresDatabases.append(dbName)
            return replaceDatabase(in: base, with: dbName)
        case .mariadb:
            let base = try requireMariaDB()
            let admin = try DatabaseOpener.open(base)
            let dbName =
                "dj_\(name.lowercased().filter { $0.isLetter || $0.isNumber }.prefix(30))_\(UInt32.random(in: 0...UInt32.max))"
            try admin.executeScript("CREATE DATABASE \(dbName) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin")
            return replaceDatabase(in: base, with: dbName)
        }
    }

    static func replaceDatabase(in url: String, with name: String) -> String {
        guard
            let slash = url.range(of: "/", options: .backwards, range: url.range(of: "://")!.upperBound..<url.endIndex)
        else { return url + "/" + name }
        let rest = url[slash.upperBound...]
        let query = rest.firstIndex(of: "?").map { String(rest[$0...]) } ?? ""
        return String(url[..<slash.upperBound]) + name + query
    }

    /// A table of one large text per key: MariaDB's TEXT holds 64 KiB, its LONGTEXT 4 GiB.
    static func docSchema(_ brand: Brand, key: String = "INTEGER") -> String {
        "CREATE TABLE doc (k \(key) PRIMARY KEY, body \(brand == .mariadb ? "LONGTEXT" : "TEXT"))"
    }

    /// Rows of `doc` with bodies of the digit `k % 10` repeated `bytes(k)` times, by multi-row
    /// statements of `perStatement` rows.
    static func insertDocs(
        _ node: TestNode, _ keys: [Int], perStatement: Int = 500, bytes: (Int) -> Int
    ) throws {
        for first in stride(from: 0, to: keys.count, by: perStatement) {
            let part = keys[first..<min(first + perStatement, keys.count)]
            try node.exec(
                "INSERT INTO doc VALUES " + part.map { _ in "(?, ?)" }.joined(separator: ", "),
                part.flatMap { k in [.integer(Int64(k)), .text(String(repeating: "\(k % 10)", count: bytes(k)))] })
        }
    }

    static let salesOrderSQL = """
        CREATE TABLE sales_order (
            order_id TEXT PRIMARY KEY NOT NULL, order_type TEXT, description TEXT, product_type_name TEXT,
            customer_id TEXT, quantity TEXT, order_date TEXT, update_datetime TEXT, updated_by_user TEXT, updated_by_server TEXT)
        """

    /// A subfolder of a test's folder, created.
    static func subfolder(_ base: URL, _ name: String) throws -> URL {
        let u = base.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }

    static func tempFolder(_ label: String = "t") throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "datajoin-test-\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        tempFolders.append(url)
        return url
    }

    /// PostgreSQL databases made since the last ones were dropped: `ScenarioTestCase` drops them
    /// when its test passed. Each is a copy of the template (about 7.5 MB, and as much WAL), and
    /// a full run made about 350 of them: a disk that filled failed a CI run.
    nonisolated(unsafe) static var postgresDatabases: [String] = []

    /// Drops `postgresDatabases`, the connections a test still holds to them included.
    static func dropPostgresDatabases() {
        defer { postgresDatabases.removeAll() }
        guard let base = postgresBase, !postgresDatabases.isEmpty, let admin = try? DatabaseOpener.open(base),
            (try? admin.scalar("SELECT current_setting('server_version_num')::int").asInt64 ?? 0) ?? 0 >= 130_000
        else { return }
        for name in postgresDatabases {
            try? admin.executeScript(SQL(raw: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"))
        }
    }

    /// Folders made since the current test began: `ScenarioTestCase` removes them when the test
    /// passed (a failed test's stay, to look at). Some hold gigabytes.
    nonisolated(unsafe) static var tempFolders: [URL] = []

    /// Every row of a table as strings, ordered by the first column: what a test compares.
    static func dump(_ db: Database, _ table: String) throws -> [[String]] {
        try db.rows("SELECT * FROM \(db.quote(table)) ORDER BY 1").map {
            $0.values.map { $0.isNull ? "NULL" : $0.description }
        }
    }
}

/// Runs the built `datajoin` executable as a process, as a user would.
struct CLI {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static var executable: URL {
        let candidates =
            Bundle.allBundles.map { $0.bundleURL.deletingLastPathComponent() } + [
                Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent(),
            ]
        for dir in candidates {
            let url = dir.appendingPathComponent("datajoin")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/datajoin")
    }

    @discardableResult
    static func run(_ args: [String], env: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line)
        throws -> Result
    {
        let p = Process()
        p.executableURL = executable
        p.arguments = args
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "DATAJOIN_DB")
        for (k, v) in env { environment[k] = v }
        p.environment = environment
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        // Read both pipes to the end before waiting, so a large output cannot block the child.
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let group = DispatchGroup()
        group.enter()
        let errHandle = err.fileHandleForReading
        DispatchQueue.global().async {
            errBox.data = errHandle.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        let errData = errBox.data
        p.waitUntilExit()
        return Result(
            status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Runs any program to the end; stdout and stderr come back together.
    static func runProgram(_ executable: URL, _ args: [String], in directory: URL? = nil) throws -> (
        status: Int32, output: String
    ) {
        let p = Process()
        p.executableURL = executable
        p.arguments = args
        if let directory { p.currentDirectoryURL = directory }
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, output)
    }

    /// Starts the command and SIGKILLs it after the delay; true when the kill landed (the process
    /// was still running).
    static func killed(_ args: [String], afterMicroseconds delay: UInt32) throws -> Bool {
        let p = Process()
        p.executableURL = executable
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        usleep(delay)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        return p.terminationReason == .uncaughtSignal
    }

    /// A long-running command whose output lines are collected as they come.
    final class Running: @unchecked Sendable {
        let process: Process
        private let lock = NSLock()
        private var collected: [String] = []
        private var partial = ""
        private let changed = DispatchSemaphore(value: 0)

        init(process: Process, output: Pipe) {
            self.process = process
            output.fileHandleForReading.readabilityHandler = { [weak self] h in
                guard let self else { return }
                let data = h.availableData
                self.lock.lock()
                self.partial += String(decoding: data, as: UTF8.self)
                while let nl = self.partial.firstIndex(of: "\n") {
                    self.collected.append(String(self.partial[..<nl]))
                    self.partial = String(self.partial[self.partial.index(after: nl)...])
                }
                self.lock.unlock()
                self.changed.signal()
                if data.isEmpty { h.readabilityHandler = nil }
            }
        }

        var lines: [String] {
            lock.lock()
            defer { lock.unlock() }
            return collected
        }
        func allOutput() -> String { lines.joined(separator: "\n") }

        /// The first line (after line number `after`) matching, waiting up to 30 s for it.
        func waitForLine(after: Int = 0, _ match: (String) -> Bool) -> String? {
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                if let l = lines.dropFirst(after).first(where: match) { return l }
                _ = changed.wait(timeout: .now() + 0.5)
            }
            return nil
        }

        deinit { if process.isRunning { process.terminate() } }
    }

    static func start(_ args: [String]) throws -> Running {
        let p = Process()
        p.executableURL = executable
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        p.standardInput = FileHandle.nullDevice
        let r = Running(process: p, output: out)
        try p.run()
        return r
    }

    /// Runs and fails the test unless the exit status is `expect`.
    @discardableResult
    static func ok(
        _ args: [String], expect: Int32 = 0, env: [String: String] = [:], file: StaticString = #filePath,
        line: UInt = #line
    ) throws -> Result {
        let r = try run(args, env: env)
        XCTAssertEqual(
            r.status, expect,
            "datajoin \(args.joined(separator: " ")) exited \(r.status)\nstdout: \(r.stdout)\nstderr: \(r.stderr)",
            file: file, line: line)
        return r
    }
}

/// A SQLite table whose key takes values of several kinds (no declared type), tracked as a node
/// tracked it before `track` refused such keys: its capture goes on, and peers hold what their
/// keys cannot take.
func trackedBeforeMixedKindKeysWereRefused<T>(_ body: () throws -> T) rethrows -> T {
    SQLiteDialect.tracksMixedKindKeys = true
    defer { SQLiteDialect.tracksMixedKindKeys = false }
    return try body()
}

/// One DataJoin node for a test: a database with the seed's sales_order, initialized.
final class TestNode {
    let name: String
    let url: String
    let db: Database
    let brand: Brand

    /// Every node a test made, for `ScenarioTestCase` to check when the test ends.
    nonisolated(unsafe) static var created: [TestNode] = []

    init(
        _ name: String, _ brand: Brand, folder: URL, table: String = TestDatabases.salesOrderSQL,
        track: [String] = ["sales_order"], viaCLI: Bool = false, keyBlocks: Bool = true
    ) throws {
        self.name = name
        self.brand = brand
        url = try TestDatabases.create(brand, name: name, in: folder)
        db = try DatabaseOpener.open(url)
        Self.created.append(self)
        try db.executeScript(TestDatabases.ddl(table, for: brand))
        if viaCLI {
            try CLI.ok(["init", "--db", url, "--node", name])
            if !track.isEmpty { try CLI.ok(["track", "--db", url] + (keyBlocks ? [] : ["--no-key-blocks"]) + track) }
        } else {
            _ = try NodeSetup.initialize(db, node: name)
            if !track.isEmpty { _ = try Tracker.track(db, tables: track, keyBlocks: keyBlocks) }
        }
    }

    func trust(_ other: TestNode) throws {
        try Trust.trust(db, node: other.name, publicKey: try Trust.publicKey(other.db).key)
    }

    func exec(_ sql: String, _ params: [Value] = []) throws { try db.execute(sql, params) }

    /// The first 8 characters of the node's epoch, as bundle file names carry it.
    func epoch8() throws -> String { String(try NodeIdentity.load(db).epoch.prefix(8)) }

    func rows(_ table: String = "sales_order") throws -> [[String]] { try TestDatabases.dump(db, table) }

    /// Exports into `folder`; returns the paths written.
    @discardableResult
    func export(to folder: URL, max: Int? = nil) throws -> [String] {
        try Exporter.export(db, ExportOptions(folder: folder.path, maxChanges: max)).map(\.path)
    }

    @discardableResult
    func ingest(_ paths: [String]) throws -> IngestReport {
        try Ingester.ingest(db, IngestOptions(paths: paths))
    }

    /// After a full exchange with no new edits nothing comes back to where it started: an export
    /// writes at most a receipts-only bundle (what the node took in since its last bundle). Once
    /// those reached every peer, receipts are not answered: every export writes nothing.
    static func assertQuiet(
        _ nodes: [TestNode], _ context: String, file: StaticString = #filePath, line: UInt = #line,
        export: (TestNode, _ round: Int) throws -> [ExportedBundle]
    ) throws {
        var first: [(TestNode, [ExportedBundle])] = []
        for n in nodes {
            let written = try export(n, 1)
            XCTAssertEqual(
                written.filter { !$0.receiptsOnly || $0.changes != 0 }.map(\.path), [],
                "\(context): \(n.name) exported changes after a quiet round", file: file, line: line)
            XCTAssertLessThanOrEqual(written.count, 1, "\(context): \(n.name)", file: file, line: line)
            first.append((n, written))
        }
        for (src, files) in first {
            for dst in nodes where dst !== src { for f in files { try dst.ingest([f.path]) } }
        }
        for n in nodes {
            XCTAssertEqual(
                try export(n, 2).map(\.path), [], "\(context): \(n.name) answered receipts with a bundle", file: file,
                line: line)
        }
    }
}

/// A node's changes exported one step at a time, each step its own bundle folder, to deliver
/// to a peer in any order.
final class BundleSteps {
    let node: TestNode
    let folder: URL
    let tag: String
    private(set) var folders: [URL] = []

    init(_ node: TestNode, in folder: URL, tag: String) {
        self.node = node
        self.folder = folder
        self.tag = tag
    }

    func step(_ sql: [String]) throws {
        for s in sql { try node.exec(s) }
        let out = try TestDatabases.subfolder(folder, "\(tag)-\(folders.count + 1)")
        try node.export(to: out)
        folders.append(out)
    }

    /// Ingests the steps' bundles in `order` (1-based step numbers).
    func deliver(_ order: [Int], to peer: TestNode) throws {
        for i in order { _ = try peer.ingest([folders[i - 1].path]) }
    }
}

func trustAll(_ nodes: [TestNode]) throws {
    for a in nodes { for b in nodes where a !== b { try a.trust(b) } }
}
