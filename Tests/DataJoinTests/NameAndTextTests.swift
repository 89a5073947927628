import Foundation
import XCTest

@testable import DataJoin

/// Names DataJoin generates and SQL text it assembles (issue 10): trigger and function names
/// that never collide, placeholders that skip what is not SQL, key names that hold commas,
/// settings that are not numbers.
final class NameAndTextTests: ScenarioTestCase {
    var folder: URL!
    override func setUpWithError() throws {
        try super.setUpWithError()
        folder = try TestDatabases.tempFolder("names")
    }

    static let awkwardNames = [
        "order_lines_for_the_northern_region_warehouse_a1",  // 48 characters, sharing a prefix
        "order_lines_for_the_northern_region_warehouse_b2",
        "Ünïcødé_tåble_ñame_of_sixty_three_bytes_in_utf8_xxxx_🙂",  // 63 bytes, PostgreSQL's limit
        "MixedCase Table",
        "with, comma",
        "with \"quotes\" and 'apostrophes'",
        "dollar$ds0$quote",
    ]

    /// JSON output stays JSON through the terminal filter: what it would rewrite (`\u{202b}`, a
    /// C1 control, DEL) is escaped as JSON escapes it (found in review: `conflicts --json` with
    /// Arabic or Hebrew text failed `jq`).
    func testJSONTextEscapesWhatTheTerminalFilterWouldRewrite() throws {
        for (scalar, escaped) in [
            ("\u{202B}", "\\u202b"), ("\u{85}", "\\u0085"), ("\u{7F}", "\\u007f"), ("\u{2066}", "\\u2066"),
        ] {
            let quoted = JSON.quote("a" + scalar + "b")
            XCTAssertEqual(quoted, "\"a" + escaped + "b\"")
            XCTAssertEqual(TerminalText.safe(quoted, keepNewlines: true), quoted)
            let back = try JSONSerialization.jsonObject(with: Data("[\(quoted)]".utf8)) as? [String]
            XCTAssertEqual(back, ["a" + scalar + "b"])
        }
    }

    /// A name the brand would cut, or no bundle could carry, is refused by `track` before
    /// anything is written: size-1, size, size+1 and 3x size of each limit. (PostgreSQL cut
    /// three 64-byte names to one table and sent each insert three times; a 200-byte name
    /// stopped every export of its node; both found from outside.)
    func testTrackRefusesNamesTheBrandWouldCutOrNoBundleCanCarry() throws {
        func table(_ name: String) -> String {
            "CREATE TABLE \"\(name)\" (id BIGINT PRIMARY KEY, v TEXT);"
        }
        func refused(_ node: TestNode, _ name: String, _ expected: String, line: UInt = #line) {
            XCTAssertThrowsError(try Tracker.track(node.db, tables: [name]), line: line) { error in
                XCTAssertEqual((error as? DataJoinError)?.code, .usage, line: line)
                XCTAssertTrue("\(error)".contains(expected), "\(error)", line: line)
            }
        }
        let lite = try TestNode(
            "lite", .sqlite, folder: folder,
            table: [127, 128].map { table(String(repeating: "s", count: $0)) }.joined()
                + "CREATE TABLE cols (id BIGINT PRIMARY KEY, \"\(String(repeating: "c", count: 129))\" TEXT);"
                + "CREATE TABLE \"new\nline\" (id BIGINT PRIMARY KEY);"
                + [129, 384].map { table(String(repeating: "s", count: $0)) }.joined(), track: [])
        XCTAssertEqual(
            try Tracker.track(lite.db, tables: [127, 128].map { String(repeating: "s", count: $0) }).count, 2)
        for n in [129, 384] { refused(lite, String(repeating: "s", count: n), "1 to 128 bytes") }
        refused(lite, "cols", "column '\(String(repeating: "c", count: 80))…' of table 'cols'")
        refused(lite, "new\nline", "'new?line'")
        XCTAssertEqual(try lite.db.scalar("SELECT count(*) FROM ds_tracked_table"), .integer(2))
        if TestDatabases.availableBrands.contains(.postgres) {
            let pg = try TestNode(
                "pg", .postgres, folder: folder,
                table: [62, 63].map { table(String(repeating: "p", count: $0)) }.joined(), track: [])
            XCTAssertEqual(
                try Tracker.track(pg.db, tables: [62, 63].map { String(repeating: "p", count: $0) }).count, 2)
            // PostgreSQL finds the 63-byte table under any longer name: refused, not tracked twice.
            for n in [64, 189] { refused(pg, String(repeating: "p", count: n), "PostgreSQL keeps 63") }
            refused(pg, String(repeating: "é", count: 32), "has 64 bytes")
        }
        if TestDatabases.availableBrands.contains(.mariadb) {
            let maria = try TestNode(
                "maria", .mariadb, folder: folder,
                table: [63, 64].map { table(String(repeating: "é", count: $0)) }.joined(), track: [])
            XCTAssertEqual(
                try Tracker.track(maria.db, tables: [63, 64].map { String(repeating: "é", count: $0) }).count, 2)
            for n in [65, 192] { refused(maria, String(repeating: "m", count: n), "MariaDB names hold at most 64") }
        }
    }

    /// A change held on PostgreSQL because its key holds a NUL byte can be dropped: the
    /// conflict log writes the NUL as `\u0000` (dropping it failed on the log's own insert, and
    /// every later import of the node stopped at it; found from outside).
    func testAHeldKeyWithANulByteCanBeDroppedOnPostgres() throws {
        provokesRefusals = true  // PostgreSQL refuses a NUL byte in text; held
        _ = try TestDatabases.requirePostgres()
        let s = try TestNode("nul-src", .sqlite, folder: folder)
        let p = try TestNode("nul-pg", .postgres, folder: folder)
        try trustAll([s, p])
        try s.exec("INSERT INTO sales_order (order_id, description) VALUES (?, 'x')", [.text("nul\u{0}key")])
        let out = try TestDatabases.subfolder(folder, "nul")
        try s.export(to: out)
        try p.ingest([out.path])
        XCTAssertEqual(try p.db.scalar("SELECT count(*) FROM ds_change_held"), .integer(1))
        let r = try CLI.run(["import", "--db", p.url, "--drop-held", "nul-src#1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try p.db.scalar("SELECT count(*) FROM ds_change_held"), .integer(0))
        let logged = try p.db.scalar("SELECT object_id FROM ds_conflict ORDER BY id DESC LIMIT 1").asString ?? ""
        XCTAssertTrue(logged.contains("nul\\u{0}key"), logged)
        XCTAssertEqual(try CLI.run(["import", "--db", p.url]).status, 0)
    }

    /// A key of other columns than the table's key here is held, never applied by position;
    /// a table named in another case on SQLite is the same table, tracked once.
    func testKeysAreMatchedByColumnNameAndTablesBySQLiteSpelling() throws {
        let a = try TestNode(
            "keys-a", .sqlite, folder: folder, table: "CREATE TABLE w (b TEXT PRIMARY KEY NOT NULL, a TEXT, v TEXT)",
            track: ["W"])
        let b = try TestNode(
            "keys-b", .sqlite, folder: folder, table: "CREATE TABLE w (a TEXT PRIMARY KEY NOT NULL, b TEXT, v TEXT)",
            track: ["w"])
        XCTAssertEqual(try a.db.scalar("SELECT table_name FROM ds_tracked_table"), .text("w"))
        XCTAssertThrowsError(try Tracker.track(a.db, tables: ["w"])) { error in
            XCTAssertEqual((error as? DataJoinError)?.code, .alreadyTracked)
        }
        XCTAssertEqual(try Tracker.track(b.db, tables: ["W"], backfill: true).count, 1)
        try trustAll([a, b])
        try b.exec("INSERT INTO w VALUES ('k', 'b-side', 'b-row')")
        try a.exec("INSERT INTO w VALUES ('k', 'zzz', 'a-row')")
        let out = try TestDatabases.subfolder(folder, "keys")
        try a.export(to: out)
        try b.ingest([out.path])
        XCTAssertEqual(try b.rows("w"), [["k", "b-side", "b-row"]])
        let reason = try b.db.scalar("SELECT reason FROM ds_change_held").asString ?? ""
        XCTAssertTrue(reason.contains("the key is (b) on keys-a but (a) here"), reason)
        uncheckedNodes.insert(b.name)
    }

    /// A table name in a command the operator is told to run stays one word of the shell
    /// (found from outside: `run 'datajoin track Mixed Tbl'` named a table `Mixed`).
    func testNamesInSuggestedCommandsAreOneShellWord() throws {
        XCTAssertEqual(TerminalText.argument("sales_order"), "sales_order")
        XCTAssertEqual(TerminalText.argument("main.t-1"), "main.t-1")
        XCTAssertEqual(TerminalText.argument("Mixed Tbl"), "\"Mixed Tbl\"")
        XCTAssertEqual(TerminalText.argument("a\"b$c`d\\e"), "\"a\\\"b\\$c\\`d\\\\e\"")
        XCTAssertEqual(TerminalText.argument(""), "\"\"")
        XCTAssertEqual(TerminalText.argument("é"), "\"é\"")
        for name in ["Mixed Tbl", "a\"b$c`d\\e", "x'y", "é ü"] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "printf %s " + TerminalText.argument(name)]
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            p.waitUntilExit()
            XCTAssertEqual(String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self), name)
        }
    }

    func testGeneratedNamesAreUniqueAndFitPostgres() {
        var all = Set<String>()
        for t in Self.awkwardNames + [String(repeating: "x", count: 300)] {
            let n = CaptureTriggers.names(t)
            let f = CaptureTriggers.statementFunctions(t)
            for name in [
                n.function, n.insert, n.update, n.updateRows, n.delete, n.truncate, f.insert, f.update, f.delete,
            ] {
                XCTAssertLessThanOrEqual(name.utf8.count, 63, name)
                for dialect in [PostgresDialect(), MariaDBDialect()] as [Dialect] {
                    XCTAssertNoThrow(try dialect.identifier(name), "\(dialect.brand): \(name)")
                }
                XCTAssertTrue(all.insert(name).inserted, "\(name) generated twice")
            }
        }
    }

    /// Every awkward name tracked at once on each brand, a row in each synced both ways.
    func testAwkwardTableAndColumnNamesTrackAndSync() throws {
        for (b1, b2) in [(Brand.postgres, Brand.sqlite), (.sqlite, .postgres)] {
            TestNode.created.removeAll()
            let ddl = Self.awkwardNames.map { name -> String in
                let q = "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
                return
                    "CREATE TABLE \(q) (\"key, part\" TEXT NOT NULL, \"k2\" TEXT NOT NULL, \"value \"\"v\"\"\" TEXT, PRIMARY KEY (\"key, part\", \"k2\"));"
            }.joined(separator: "\n")
            let a = try TestNode("a\(b1)", b1, folder: folder, table: ddl, track: Self.awkwardNames)
            let b = try TestNode("b\(b1)", b2, folder: folder, table: ddl, track: Self.awkwardNames)
            try trustAll([a, b])
            for (i, name) in Self.awkwardNames.enumerated() {
                try a.exec(
                    "INSERT INTO \(a.db.quote(name)) VALUES (?, ?, ?)", [.text("k,\(i)"), .text("x"), .text("v\(i)")])
                try b.exec(
                    "INSERT INTO \(b.db.quote(name)) VALUES (?, ?, ?)", [.text("from b"), .text("y"), .text("w\(i)")])
            }
            for (from, to) in [(a, b), (b, a)] {
                let out = try TestDatabases.subfolder(folder, "\(from.name)-\(UUID().uuidString.prefix(6))")
                try from.export(to: out)
                try to.ingest([out.path])
            }
            for name in Self.awkwardNames {
                XCTAssertEqual(try a.rows(name).count, 2, name)
                XCTAssertEqual(try a.rows(name), try b.rows(name), name)
            }
            // Untracking one of the two long names leaves the other's capture in place.
            _ = try Tracker.untrack(a.db, tables: [Self.awkwardNames[0]])
            try a.exec("INSERT INTO \(a.db.quote(Self.awkwardNames[1])) VALUES ('after', 'z', 'still captured')")
            XCTAssertEqual(
                try a.db.scalar(
                    "SELECT count(*) FROM ds_change_outbox WHERE object_table = ? AND seq IS NULL",
                    [.text(Self.awkwardNames[1])]), .integer(1))
            try ScenarioTestCase.assertChecked([a, b])
        }
    }

    func testATableOfAnotherSchemaIsRefusedWithTheWayToTrackIt() throws {
        let n = try TestNode(
            "p", .postgres, folder: folder,
            table: "CREATE SCHEMA inventory; CREATE TABLE inventory.item (id TEXT PRIMARY KEY, v TEXT)", track: [],
            viaCLI: true)
        let r = try CLI.run(["track", "--db", n.url, "inventory.item"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("DataJoin tracks the tables of one schema"), r.stderr)
        XCTAssertTrue(r.stderr.contains("search_path%3Dinventory"), r.stderr)
        // As the message says: the schema first in the search path, the table named without it.
        let url = n.url + "?options=-csearch_path%3Dinventory,public"
        let tracked = try CLI.run(["track", "--db", url, "item"])
        XCTAssertEqual(tracked.status, 0, tracked.stderr)
        // Without that search path the tracked table is not there, and check says so.
        let checked = try CLI.run(["check", "--db", n.url])
        XCTAssertNotEqual(checked.status, 0)
        XCTAssertTrue(checked.stderr.contains("outside this connection's search path"), checked.stderr)
        try CLI.ok(["check", "--db", url])
        try CLI.ok(["untrack", "--db", url, "item"])
        // A schema whose name needs quotes: the cure quotes it, as the server reads the URL
        // (found from outside: unquoted, it tracked the table of another schema).
        try n.db.executeScript("CREATE SCHEMA \"Inv\"; CREATE TABLE \"Inv\".item (id TEXT PRIMARY KEY, v TEXT)")
        let quoted = try CLI.run(["track", "--db", n.url, "\"Inv\".item"])
        XCTAssertEqual(quoted.status, 1, quoted.stderr)
        XCTAssertTrue(quoted.stderr.contains("search_path%3D%22Inv%22,public) and track item"), quoted.stderr)
        let inv = n.url + "?options=-csearch_path%3D%22Inv%22,public"
        try CLI.ok(["track", "--db", inv, "item"])
        try n.exec("INSERT INTO \"Inv\".item VALUES ('q', 'x')")
        XCTAssertEqual(try n.db.scalar("SELECT count(*) FROM ds_change_outbox WHERE seq IS NULL"), .integer(1))
        try CLI.ok(["untrack", "--db", inv, "item"])
    }

    /// A table named with another schema: each brand is told its own way (found from outside:
    /// SQLite and MariaDB were pointed at a search path). Named with its own, it is found.
    func testATableNamedWithItsSchemaIsToldTheWayOfItsBrand() throws {
        for (brand, own, cure) in [
            (Brand.sqlite, "SELECT 'main'", "track item (an attached database"),
            (.mariadb, "SELECT DATABASE()", "use mariadb://…/other and track item"),
            (.postgres, "SELECT current_schema()", "search_path%3Dother,public) and track item"),
        ] where TestDatabases.availableBrands.contains(brand) {
            let n = try TestNode(
                "s", brand, folder: folder, table: "CREATE TABLE item (id VARCHAR(20) PRIMARY KEY, v TEXT)", track: [],
                viaCLI: true)
            let r = try CLI.run(["track", "--db", n.url, "other.item"])
            XCTAssertEqual(r.status, 1, "\(brand)")
            XCTAssertTrue(r.stderr.contains(cure), r.stderr)
            XCTAssertEqual(r.stderr.contains("search_path"), brand == .postgres, r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertEqual(try n.db.scalar("SELECT count(*) FROM ds_tracked_table").asInt64, 0)
            // Named with the connection's own schema, it is the table named without it (found
            // from outside: refused, with a cure that was already true), for untrack too.
            guard let schema = try n.db.scalar(own).asString else { return XCTFail("\(brand): no schema") }
            try CLI.ok(["track", "--db", n.url, "\(schema).item"])
            XCTAssertEqual(try n.db.scalar("SELECT table_name FROM ds_tracked_table"), .text("item"), "\(brand)")
            try CLI.ok(["untrack", "--db", n.url, "\(schema).item"])
            XCTAssertEqual(try n.db.scalar("SELECT count(*) FROM ds_tracked_table").asInt64, 0, "\(brand)")
            // As SQL quotes it, and SQLite's schema in any case (found from outside: refused).
            let q = brand == .mariadb ? "`" : "\""
            var quotedForms = ["\(q)\(schema)\(q).\(q)item\(q)", "\(schema).\(q)item\(q)", "\(q)item\(q)"]
            if brand == .sqlite { quotedForms.append("MAIN.item") }
            for form in quotedForms {
                try CLI.ok(["track", "--db", n.url, form])
                XCTAssertEqual(try n.db.scalar("SELECT table_name FROM ds_tracked_table"), .text("item"), form)
                try CLI.ok(["untrack", "--db", n.url, form])
            }
            if brand == .postgres {
                // Unquoted, as PostgreSQL's SQL reads it: `ITEM` is item (found from outside:
                // refused); quoted, another name. A name with capitals is found as spelled first.
                for form in ["ITEM", "PUBLIC.Item", "Public.\"item\"", "public.ITEM", "\"public\".Item"] {
                    XCTAssertTrue(try CLI.ok(["track", "--db", n.url, form]).stdout.hasPrefix("tracking item ("), form)
                    XCTAssertEqual(try n.db.scalar("SELECT table_name FROM ds_tracked_table"), .text("item"), form)
                    XCTAssertEqual(
                        try CLI.ok(["untrack", "--db", n.url, form]).stdout, "no longer tracking item\n", form)
                }
                let capitals = try CLI.run(["track", "--db", n.url, "\"ITEM\""])
                XCTAssertEqual(capitals.status, 1, capitals.stderr)
                XCTAssertTrue(capitals.stderr.contains("table \"ITEM\" does not exist"), capitals.stderr)
                try n.exec("CREATE TABLE \"Item\" (id VARCHAR(20) PRIMARY KEY, v TEXT)")
                try CLI.ok(["track", "--db", n.url, "Item"])
                XCTAssertEqual(try n.db.scalar("SELECT table_name FROM ds_tracked_table"), .text("Item"))
                try CLI.ok(["untrack", "--db", n.url, "Item"])
            }
            let quoted = try CLI.run(["track", "--db", n.url, "\(q)other\(q).\(q)item\(q)"])
            XCTAssertEqual(quoted.status, 1, quoted.stderr)
            XCTAssertTrue(quoted.stderr.contains(cure), quoted.stderr)
            XCTAssertEqual(try n.db.scalar("SELECT count(*) FROM ds_tracked_table").asInt64, 0, "\(brand)")
            try CLI.ok(["track", "--db", n.url, "item"])
            try n.exec("INSERT INTO item (id, v) VALUES ('r1', 'x')")
            XCTAssertEqual(try n.db.scalar("SELECT count(*) FROM ds_change_outbox").asInt64, 1, "\(brand)")
            try CLI.ok(["check", "--db", n.url])
        }
    }

    /// A dot inside quotes is part of a name (found from outside: `"a.b"` was split, and its
    /// cure named `b"`).
    func testAQualifiedNameIsSplitOutsideQuotesOnly() {
        XCTAssertNil(Tracker.qualified("\"a.b\""))
        XCTAssertNil(Tracker.qualified("plain"))
        for (given, schema, table) in [
            ("main.\"a.b\"", "main", "a.b"), ("\"my.schema\".t", "my.schema", "t"), ("`shop`.`t`", "shop", "t"),
            ("a.b", "a", "b"), ("\"q\"\"x\".y", "q\"x", "y"), ("\u{301}\"s\".t", "\u{301}\"s\"", "t"),
        ] {
            let split = Tracker.qualified(given)
            XCTAssertEqual(split?.schema, schema, given)
            XCTAssertEqual(split?.table, table, given)
        }
    }

    func testPlaceholdersSkipLiteralsCommentsAndDollarQuotes() {
        let cases: [(String, String, Int)] = [
            ("SELECT ? , '?', \"?\"", "SELECT $1 , '?', \"?\"", 1),
            ("SELECT 1 -- why?\n, ?", "SELECT 1 -- why?\n, $1", 1),
            ("SELECT /* ? */ ?", "SELECT /* ? */ $1", 1),
            ("DO $x$ SELECT '?' ? $x$; SELECT ?", "DO $x$ SELECT '?' ? $x$; SELECT $1", 1),
            ("SELECT $$?$$, ?", "SELECT $$?$$, $1", 1),
            ("SELECT E'it\\'s ?', ?", "SELECT E'it\\'s ?', $1", 1),
            ("SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1", 1),
            ("SELECT data ?? 'k' FROM t WHERE id = ?", "SELECT data ? 'k' FROM t WHERE id = $1", 1),
            ("SELECT $1::text", "SELECT $1::text", 0),
            ("SELECT ?, ?, ?", "SELECT $1, $2, $3", 3),
            ("SELECT 'unterminated ?", "SELECT 'unterminated ?", 0),
        ]
        for (sql, expected, n) in cases {
            let (text, count) = PostgresDatabase.numberPlaceholders(sql)
            XCTAssertEqual(text, expected, sql)
            XCTAssertEqual(count, n, sql)
        }
    }

    func testJsonbQuestionMarkOperatorRunsOnPostgres() throws {
        let n = try TestNode("p", .postgres, folder: folder, track: [])
        XCTAssertEqual(
            try n.db.scalar("SELECT CASE WHEN CAST(? AS jsonb) ?? 'k' THEN 'yes' ELSE 'no' END", [.text("{\"k\": 1}")]),
            .text("yes"))
        XCTAssertEqual(
            try n.db.scalar("SELECT CASE WHEN CAST(? AS jsonb) ?? 'k' THEN 'yes' ELSE 'no' END", [.text("{\"j\": 1}")]),
            .text("no"))
    }

    /// Settings and environment values that are not numbers, or would overflow a stamp, give a
    /// clear error or are bounded; none traps.
    func testBadSettingsAreClearErrorsNotTraps() throws {
        let a = try TestNode("a", .sqlite, folder: folder, viaCLI: true)
        try a.exec("INSERT INTO ds_setting (name, value) VALUES ('max_clock_ahead_ms', 'soon')")
        var r = try CLI.run(["import", "--db", a.url])
        XCTAssertEqual(r.status, 64, r.stderr)
        XCTAssertTrue(
            r.stderr.contains("setting max_clock_ahead_ms in ds_setting is 'soon', not a whole number"), r.stderr)
        try a.exec("UPDATE ds_setting SET value = ? WHERE name = 'max_clock_ahead_ms'", [.text(String(Int64.max))])
        r = try CLI.run(["import", "--db", a.url])
        XCTAssertEqual(r.status, 64, r.stderr)
        try a.exec("UPDATE ds_setting SET value = ? WHERE name = 'max_clock_ahead_ms'", [.text(String(Int64(1) << 40))])
        try CLI.ok(["import", "--db", a.url])
        r = try CLI.run(
            ["export", "--db", a.url, "--to", folder.path], env: ["DATAJOIN_TEST_CLOCK_OFFSET_MS": "later"])
        XCTAssertEqual(r.status, 64, r.stderr)
        r = try CLI.run(["status", "--db", a.url], env: ["DATAJOIN_TEST_SIZES": "exportStep=0"])
        XCTAssertEqual(r.status, 64, r.stderr)
        XCTAssertTrue(r.stderr.contains("exportStep must be a whole number from 1"), r.stderr)
        r = try CLI.run(["status", "--db", a.url], env: ["DATAJOIN_TEST_SIZES": "nosuch=3"])
        XCTAssertEqual(r.status, 64, r.stderr)
        // A captured time far in the future or the past is bounded, not shifted out of range.
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('t1'), ('t2')")
        try a.exec("UPDATE ds_change_outbox SET captured_ms = ? WHERE object_id = '[\"tt1\"]'", [.integer(Int64.max)])
        try a.exec("UPDATE ds_change_outbox SET captured_ms = ? WHERE object_id = '[\"tt2\"]'", [.integer(Int64.min)])
        try CLI.ok(["export", "--db", a.url, "--to", folder.path])
        XCTAssertEqual(try a.db.scalar("SELECT count(*) FROM ds_change_outbox WHERE seq IS NULL"), .integer(0))
        XCTAssertEqual(HybridLogicalClock.tick(after: Int64.max, physicalMs: Int64.max), Int64.max)
    }

    /// Times written by hand (a formatter cost a hub a fifth of its time per small bundle) are
    /// the text ISO8601DateFormatter writes, at the edges and at seeded random instants.
    func testTimesAsTextMatchTheFormatter() {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var rng = SeededRandom(seed: 1403)
        var instants: [Int64] = [0, 1, 999, 1000, 1001, -1, -999, -1000, -1001, 951_782_400_000, 253_402_300_799_999]
        for _ in 0..<2_000 { instants.append(Int64.random(in: -2_208_988_800_000...253_402_300_799_999, using: &rng)) }
        for ms in instants {
            XCTAssertEqual(
                UTCText.iso8601(ms: ms), f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000)),
                "\(ms) ms (seed 1403)")
        }
    }
}
