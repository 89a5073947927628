import Foundation
import XCTest

@testable import DataJoin

/// What operators see: exit codes, JSON fields, dry runs, progress on terminals, the tutorial.
final class OperatorTests: XCTestCase {
    var folder: URL!
    override func setUpWithError() throws { folder = try TestDatabases.tempFolder("ops") }

    func pair() throws -> (TestNode, TestNode) {
        let a = try TestNode("a", .sqlite, folder: folder), b = try TestNode("b", .postgres, folder: folder)
        try trustAll([a, b])
        return (a, b)
    }

    func dir(_ name: String) throws -> URL { try TestDatabases.subfolder(folder, name) }

    func testExitCodesAreTheSameAcrossCommands() throws {
        let (a, b) = try pair()
        let out = try dir("out")
        // 64: usage
        for args in [
            ["export", "--to", out.path], ["status", "--db", "x.txt"], ["ingest", "--db", a.url], ["nope"],
            ["import", "--db", a.url, "--what"],
        ] {
            XCTAssertEqual(try CLI.run(args).status, 64, "\(args)")
        }
        // 1: failure outside the classes; 65 data, 66 input missing, 69 unavailable, 77 permission
        let classes: [(Int32, [String])] = [
            (1, ["track", "--db", a.url, "missing"]),
            (65, ["verify", "/etc/hostname"]),
            (66, ["export", "--db", a.url, "--to", "/no/such"]),
            (66, ["status", "--db", "/no/such.db"]),
            (66, ["ingest", "--db", a.url, "/no/such/folder"]),
            (69, ["status", "--db", "postgresql://u:p@127.0.0.1:1/x"]),
        ]
        for (code, args) in classes {
            let r = try CLI.run(args)
            XCTAssertEqual(r.status, code, "\(args): \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "one line: \(r.stderr)")
        }
        // `datajoin help exit-codes` lists every class.
        let help = try CLI.ok(["help", "exit-codes"]).stdout
        for code in ["0", "1", "2", "64", "65", "66", "69", "75", "77"] {
            XCTAssertTrue(
                help.contains("\n" + String(repeating: " ", count: 3 - code.count) + code + "  "),
                "\(code) missing from: \(help)")
        }
        // 2: partial (a refused bundle; held changes)
        try Data("junk".utf8).write(to: out.appendingPathComponent("junk.djb"))
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('x')")
        try CLI.ok(["export", "--db", a.url, "--to", out.path])
        XCTAssertEqual(try CLI.run(["ingest", "--db", b.url, out.path]).status, 2)
        try b.exec("DELETE FROM ds_trusted_key WHERE node_id = 'a'")  // nothing else goes wrong
        // 0: success
        for args in [
            ["status", "--db", a.url], ["export", "--db", a.url, "--to", out.path], ["import", "--db", b.url],
            ["conflicts", "--db", b.url], ["key", "--db", a.url],
        ] {
            XCTAssertEqual(try CLI.run(args).status, 0, "\(args)")
        }
    }

    func testStatusJSONHasTheDocumentedFields() throws {
        let (a, b) = try pair()
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('x')")
        let out = try dir("out")
        try CLI.ok(["export", "--db", a.url, "--to", out.path])
        try Data("junk".utf8).write(to: out.appendingPathComponent("junk.djb"))
        _ = try CLI.run(["ingest", "--db", b.url, out.path])
        let json = try CLI.ok(["status", "--db", b.url, "--json"]).stdout
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        // Schema 1 (docs/status-json.md): related fields together, the clock as numbers too.
        XCTAssertEqual(object["schema"] as? Int, 1)
        let groups: [String: [String]] = [
            "node": ["id", "epoch", "database"],
            "export": [
                "waiting", "oldest_unexported", "oldest_unexported_age_seconds", "last_seq", "pointer", "last_export",
                "last_receipts", "held",
            ],
            "import": ["waiting", "pointer", "held_count", "held", "last_ingest", "bundles_ingested"],
            "clock": ["text", "wall_ms", "counter", "ahead_seconds"],
        ]
        for (group, fields) in groups {
            let g = try XCTUnwrap(object[group] as? [String: Any], "status --json lacks \(group)")
            for f in fields { XCTAssertTrue(g.keys.contains(f), "status --json lacks \(group).\(f)") }
            XCTAssertEqual(Set(g.keys), Set(fields), group)
        }
        for field in [
            "tracked_tables", "conflicts", "key_collisions", "forked_waiting", "origins", "peers", "quarantined",
        ] {
            XCTAssertNotNil(object[field], field)
        }
        let clock = object["clock"] as! [String: Any]
        let wall = try XCTUnwrap(clock["wall_ms"] as? Int64 ?? (clock["wall_ms"] as? Int).map(Int64.init))
        XCTAssertLessThan(abs(wall - Int64(Date().timeIntervalSince1970 * 1000)), 3_600_000)
        XCTAssertTrue((clock["text"] as? String)?.hasSuffix("+\(clock["counter"] as? Int ?? -1)") ?? false, "\(clock)")
        let origins = object["origins"] as! [[String: Any]]
        XCTAssertEqual(origins.first?["origin"] as? String, "a")
        XCTAssertEqual(origins.first?["high_water"] as? Int, 1)
        let quarantined = object["quarantined"] as! [[String: Any]]
        XCTAssertEqual(quarantined.count, 1)
        XCTAssertTrue((quarantined.first?["path"] as? String)?.hasSuffix("quarantine/junk.djb") ?? false)
        let peers = object["peers"] as! [[String: Any]]
        XCTAssertEqual(peers.first?["peer"] as? String, "a")
        let conflicts = try CLI.ok(["conflicts", "--db", b.url, "--json"]).stdout
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(conflicts.utf8)) as? [Any])
    }

    func testDryRunsReportAndChangeNothing() throws {
        let (a, b) = try pair()
        try a.exec("INSERT INTO sales_order (order_id, description) VALUES ('k1', 'a1'), ('k2', 'a2')")
        let out = try dir("out")
        try CLI.ok(["export", "--db", a.url, "--to", out.path])
        try CLI.ok(["ingest", "--db", b.url, out.path])
        // Concurrent edits of one column, and a delete, waiting in b's inbox.
        try b.exec("UPDATE sales_order SET description = 'older b' WHERE order_id = 'k1'")
        try CLI.ok(["export", "--db", b.url, "--to", try dir("b-out").path])
        try a.exec("INSERT INTO ds_setting (name, value) VALUES ('test_clock_offset_ms', '60000')")
        try a.exec("UPDATE sales_order SET description = 'newer a' WHERE order_id = 'k1'")
        try a.exec("DELETE FROM sales_order WHERE order_id = 'k2'")
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('k3')")
        try CLI.ok(["export", "--db", a.url, "--to", out.path])
        try Data("junk".utf8).write(to: out.appendingPathComponent("junk.djb"))
        func fingerprint() throws -> [[String]] {
            try b.rows() + TestDatabases.dump(b.db, "ds_change_inbox").map { $0.filter { !$0.contains("T") } }
                + TestDatabases.dump(b.db, "ds_bundle_seen")
                + TestDatabases.dump(b.db, "ds_conflict") + TestDatabases.dump(b.db, "ds_node")
                + TestDatabases.dump(b.db, "ds_program_parameter")
        }
        let before = try fingerprint()
        var r = try CLI.run(["ingest", "--db", b.url, "--dry-run", out.path])
        XCTAssertEqual(r.status, 2, r.stderr)  // the junk file is still refused
        XCTAssertTrue(r.stdout.contains("dry run: nothing was changed"), r.stdout)
        XCTAssertTrue(r.stdout.contains("would apply to sales_order: 1 insert, 1 update, 1 delete"), r.stdout)
        XCTAssertTrue(r.stdout.contains(": would load 3 change(s)") && !r.stdout.contains(": loaded"), r.stdout)
        XCTAssertTrue(r.stdout.contains("would log 1 conflict(s)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("would keep \"newer a\""), r.stdout)
        XCTAssertEqual(try fingerprint(), before)
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: out.appendingPathComponent("junk.djb").path),
            "a dry run moved a file")
        // Loaded but not imported: import --dry-run reports the same and changes nothing.
        try FileManager.default.removeItem(at: out.appendingPathComponent("junk.djb"))
        try CLI.ok(["ingest", "--db", b.url, "--no-import", out.path])
        let loaded = try fingerprint()
        r = try CLI.ok(["import", "--db", b.url, "--dry-run"])
        XCTAssertTrue(r.stdout.contains("would apply to sales_order: 1 insert, 1 update, 1 delete"), r.stdout)
        XCTAssertEqual(try fingerprint(), loaded)
        r = try CLI.ok(["import", "--db", b.url])
        XCTAssertEqual(try b.rows(), try a.rows())
    }

    func testProgressIsShownOnlyOnATerminal() throws {
        let (a, b) = try pair()
        try a.db.retryingWrite { _ in
            for i in 0..<3000 { try a.exec("INSERT INTO sales_order (order_id) VALUES (?)", [.text("k\(i)")]) }
        }
        let out = try dir("out")
        let exe = CLI.executable.path
        func underTerminal(_ args: String) throws -> String {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/script")
            p.arguments = ["-qec", "\(exe) \(args)", "/dev/null"]
            let pipe = Pipe()
            p.standardOutput = pipe
            p.standardInput = FileHandle.nullDevice
            try p.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0)
            return String(decoding: data, as: UTF8.self)
        }
        let onTerminal = try underTerminal("export --db \(a.url) --to \(out.path) --max-changes 500")
        XCTAssertTrue(onTerminal.contains("\rexport: 3000/3000 changes"), onTerminal)
        XCTAssertTrue(onTerminal.contains(" MB") && onTerminal.contains("changes/s"), onTerminal)
        let ingest = try underTerminal("ingest --db \(b.url) \(out.path)")
        XCTAssertTrue(ingest.contains("\ringest: 3000 changes") && ingest.contains("import: 3000/3000 changes"), ingest)
        // Not a terminal, or --quiet: no progress line.
        try a.exec("UPDATE sales_order SET description = 'x'")
        let piped = try CLI.ok(["export", "--db", a.url, "--to", out.path])
        XCTAssertFalse(piped.stderr.contains("export:"), piped.stderr)
        try a.exec("UPDATE sales_order SET description = 'y'")
        let quiet = try underTerminal("export --db \(a.url) --to \(out.path) --quiet")
        XCTAssertFalse(quiet.contains("export:"), quiet)
        // --verbose logs each bundle.
        try a.exec("UPDATE sales_order SET description = 'z'")
        let verbose = try CLI.ok(["export", "--db", a.url, "--to", out.path, "--verbose", "--max-changes", "1000"])
        XCTAssertEqual(verbose.stderr.components(separatedBy: "wrote ").count - 1, 3, verbose.stderr)
    }

    func testCompletionScripts() throws {
        for shell in ["bash", "zsh", "fish"] {
            let r = try CLI.ok(["--generate-completion-script", shell])
            XCTAssertTrue(r.stdout.contains("ingest"), shell)
        }
    }

    /// The README's tutorial, extracted from its ```sh tutorial blocks and run as written.
    func testTheReadmeTutorialRuns() throws {
        let base = try TestDatabases.requirePostgres()
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        var blocks: [String] = []
        var current: [String]?
        for line in readme.components(separatedBy: "\n") {
            if current == nil && line.trimmingCharacters(in: .whitespaces) == "```sh tutorial" {
                current = []
                continue
            }
            if current != nil && line.hasPrefix("```") {
                blocks.append(current!.joined(separator: "\n"))
                current = nil
                continue
            }
            current?.append(line)
        }
        XCTAssertGreaterThanOrEqual(blocks.count, 6)
        let url = URLComponents(string: base)!
        let work = try dir("tutorial")
        try FileManager.default.createSymbolicLink(
            at: work.appendingPathComponent("Scripts"), withDestinationURL: root.appendingPathComponent("Scripts"))
        let script = """
            set -euo pipefail
            export PATH="\(CLI.executable.deletingLastPathComponent().path):$PATH"
            export PGHOST=\(url.host ?? "127.0.0.1") PGPORT=\(url.port ?? 5432) PGUSER=\(url.user ?? "postgres") PGDATABASE=postgres
            dropdb --if-exists office
            """ + "\n" + blocks.joined(separator: "\n") + "\n"
        try script.write(to: work.appendingPathComponent("tutorial.sh"), atomically: true, encoding: .utf8)
        let (status, output) = try CLI.runProgram(URL(fileURLWithPath: "/bin/bash"), ["tutorial.sh"], in: work)
        XCTAssertEqual(status, 0, output)
        let office = TestDatabases.replaceDatabase(in: base, with: "office")
        for db in [
            work.appendingPathComponent("laptop1.db").path, work.appendingPathComponent("laptop2.db").path, office,
        ] {
            let rows = try DatabaseOpener.open(db).rows("SELECT order_id, description, quantity FROM sales_order").map(
                \.values)
            XCTAssertEqual(rows, [[.text("ord2"), .text("checked by laptop 1"), .text("5")]], "\(db)\n\(output)")
        }
        // Step 6 makes a real same-column conflict, and the office's log shows it as step 7 says.
        let conflicts = try CLI.ok(["conflicts", "--db", office]).stdout
        XCTAssertTrue(conflicts.contains("sales_order ord2.description: kept \"checked by laptop 1\""), conflicts)
        XCTAssertTrue(conflicts.contains("lost \"confirmed by laptop 2\""), conflicts)
        XCTAssertTrue(conflicts.contains("concurrent update; the incoming one is newer"), conflicts)
    }
}
