import Crypto
import Foundation
import XCTest

@testable import DataJoin

/// One test per rule of docs/conflict-rules.md, on mixed brands.
final class MergeRuleTests: ScenarioTestCase {
    var folder: URL!
    var a: TestNode!
    var b: TestNode!

    override func setUpWithError() throws {
        try super.setUpWithError()
        folder = try TestDatabases.tempFolder("merge")
        a = try TestNode("node-a", .sqlite, folder: folder)
        b = try TestNode(
            "node-b",
            TestDatabases.postgresBase == nil && ProcessInfo.processInfo.environment["DATAJOIN_REQUIRE_PG"] != "1"
                ? .sqlite : .postgres, folder: folder)
        try trustAll([a, b])
    }

    /// Exports everything new on `from` and ingests it on `to`.
    @discardableResult
    func send(_ from: TestNode, _ to: TestNode) throws -> ImportReport? {
        let out = folder.appendingPathComponent("out-\(from.name)")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try from.export(to: out)
        // The whole folder, as a drop folder is used: bundles seen before are skipped.
        return try to.ingest([out.path]).imported
    }

    func exchange() throws {
        try send(a, b)
        try send(b, a)
    }

    func setOffset(_ n: TestNode, hours: Double) throws {
        try n.exec("DELETE FROM ds_setting WHERE name = 'test_clock_offset_ms'")
        try n.exec(
            "INSERT INTO ds_setting (name, value) VALUES ('test_clock_offset_ms', ?)",
            [.text(String(Int64(hours * 3_600_000)))])
    }

    func value(_ n: TestNode, _ column: String, key: String = "k") throws -> Value {
        try n.db.scalar("SELECT \(n.db.quote(column)) FROM sales_order WHERE order_id = ?", [.text(key)])
    }

    func seedRow() throws {
        try a.exec(
            "INSERT INTO sales_order (order_id, description, quantity, customer_id) VALUES ('k', 'start', '1', 'c0')")
        try send(a, b)
        XCTAssertEqual(try a.rows(), try b.rows())
    }

    func testDifferentColumnsEditedApartBothSurvive() throws {
        try seedRow()
        try a.exec("UPDATE sales_order SET description = 'edited on a' WHERE order_id = 'k'")
        try b.exec("UPDATE sales_order SET quantity = '99' WHERE order_id = 'k'")
        try exchange()
        for n in [a!, b!] {
            XCTAssertEqual(try value(n, "description"), .text("edited on a"))
            XCTAssertEqual(try value(n, "quantity"), .text("99"))
        }
        XCTAssertEqual(
            try ConflictLog.list(a.db).count + ConflictLog.list(b.db).count, 0, "different columns are no conflict")
    }

    func testSameColumnNewerStampWinsEverywhereAndTheLoserIsLogged() throws {
        try seedRow()
        try a.exec("UPDATE sales_order SET description = 'older, from a' WHERE order_id = 'k'")
        try send(a, a)  // stamps a's change now
        try setOffset(b, hours: 1.0 / 3600)  // b's clock a second ahead: its edit is the newer one
        try b.exec("UPDATE sales_order SET description = 'newer, from b' WHERE order_id = 'k'")
        try send(b, b)
        try exchange()
        XCTAssertEqual(try value(a, "description"), .text("newer, from b"))
        XCTAssertEqual(try value(b, "description"), .text("newer, from b"))
        // On a, its own value was replaced by a newer remote one; on b, the incoming one lost.
        let atA = try ConflictLog.list(a.db), atB = try ConflictLog.list(b.db)
        XCTAssertEqual(atA.map(\.loserValue), ["\"older, from a\""])
        XCTAssertEqual(atA.map(\.winnerValue), ["\"newer, from b\""])
        XCTAssertEqual(atA.first?.loser.node, "node-a")
        XCTAssertEqual(atB.map(\.loserValue), ["\"older, from a\""])
        XCTAssertEqual(atB.first?.winner.node, "node-b")
        XCTAssertGreaterThan(atB.first!.winner.hlc, atB.first!.loser.hlc)
        // The conflicts command shows it.
        let r = try CLI.ok(["conflicts", "--db", a.url, "--json"])
        XCTAssertTrue(r.stdout.contains("\"loser_value\":\"older, from a\""), r.stdout)
    }

    /// Two edits of one node delivered in the other order: the later wins, and neither is
    /// logged as a conflict (the node replaced its own value; nobody else's was lost).
    func testOneNodesEditsArrivingOutOfOrderAreNoConflict() throws {
        try seedRow()
        /// Each statement on a, then its own bundle; b ingests them last first.
        func deliveredBackwards(_ label: String, _ statements: [String]) throws {
            var bundles: [URL] = []
            for (i, sql) in statements.enumerated() {
                try a.exec(sql)
                let out = folder.appendingPathComponent("\(label)-\(i)")
                try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
                try a.export(to: out)
                bundles.append(out)
            }
            for out in bundles.reversed() { try b.ingest([out.path]) }
            XCTAssertEqual(try a.rows(), try b.rows(), label)
        }
        func edit(_ text: String) -> String { "UPDATE sales_order SET description = '\(text)' WHERE order_id = 'k'" }
        try deliveredBackwards("edit", [edit("first edit"), edit("second edit")])
        XCTAssertEqual(try value(b, "description"), .text("second edit"))
        XCTAssertEqual(try ConflictLog.list(b.db).map(\.reason), [], "one node's own edits are no conflict")
        // Another node's edit that had not seen the value it replaced is still logged.
        try b.exec("UPDATE sales_order SET description = 'from b' WHERE order_id = 'k'")
        try send(b, b)
        try a.exec(edit("third edit"))
        try exchange()
        XCTAssertEqual(try a.rows(), try b.rows())
        XCTAssertEqual(try ConflictLog.list(a.db).count + ConflictLog.list(b.db).count, 2)
        // Its update and then its delete of a row, the delete first: no conflict either.
        try a.exec("INSERT INTO sales_order (order_id, description) VALUES ('k2', 'new')")
        try send(a, b)
        let logged = try ConflictLog.list(b.db).count
        try deliveredBackwards(
            "gone",
            [
                "UPDATE sales_order SET description = 'gone soon' WHERE order_id = 'k2'",
                "DELETE FROM sales_order WHERE order_id = 'k2'",
            ])
        XCTAssertEqual(try ConflictLog.list(b.db).count, logged, "its own update after its own delete")
        // A node known here in two epochs (restored from a backup) is not one history: its
        // later edit may not have seen the one it lost, so out of order they are logged.
        try b.exec(
            "INSERT INTO ds_origin_state (origin, origin_epoch, contiguous, max_seq) VALUES ('node-a', 'ffffffffffffffff', 0, 0)"
        )
        let before = try ConflictLog.list(b.db).count
        try deliveredBackwards("again", [edit("fourth edit"), edit("fifth edit")])
        XCTAssertEqual(try value(b, "description"), .text("fifth edit"))
        XCTAssertEqual(try ConflictLog.list(b.db).count, before + 2)
    }

    /// The log keeps values up to 64 KiB whole and a longer one by its length, SHA-256 and
    /// start (conflict-rules.md, "The conflict log"): at 64 KiB − 1, 64 KiB, 64 KiB + 1, 3 × 64 KiB.
    func testLongValuesAreLoggedByLengthDigestAndStart() throws {
        let limit = ConflictLog.wholeValueBytes
        for (i, n) in [limit - 1, limit, limit + 1, 3 * limit].enumerated() {
            let key = "long\(i)"
            try a.exec("INSERT INTO sales_order (order_id, description) VALUES (?, 'start')", [.text(key)])
            try send(a, b)
            let older = String(repeating: "o", count: n - 1) + "a", newer = String(repeating: "n", count: n - 1) + "b"
            try a.exec("UPDATE sales_order SET description = ? WHERE order_id = ?", [.text(older), .text(key)])
            try send(a, a)
            try setOffset(b, hours: Double(i + 1) / 3600)
            try b.exec("UPDATE sales_order SET description = ? WHERE order_id = ?", [.text(newer), .text(key)])
            try send(b, b)
            let before = try ConflictLog.lastId(b.db)
            try send(a, b)
            XCTAssertEqual(try value(b, "description", key: key), .text(newer))
            let logged = try ConflictLog.list(b.db, after: before)
            XCTAssertEqual(logged.count, 1, "\(n)")
            guard let e = logged.first else { continue }
            if n <= limit {
                XCTAssertEqual(e.loserValue, Value.text(older).json, "\(n)")
                XCTAssertEqual(e.winnerValue, Value.text(newer).json, "\(n)")
            } else {
                let sha = Hex.encode(Array(SHA256.hash(data: Array(older.utf8))))
                XCTAssertEqual(
                    e.loserValue,
                    "{\"type\":\"text\",\"bytes\":\(n),\"sha256\":\"\(sha)\",\"first\":\"\(String(repeating: "o", count: 1000))\",\"truncated\":true}"
                )
                XCTAssertTrue(
                    e.winnerValue?.hasPrefix("{\"type\":\"text\",\"bytes\":\(n),") ?? false, e.winnerValue ?? "nil")
            }
        }
    }

    /// A dropped change's row is logged whole up to the limit and by its digest past it, whatever
    /// its columns: at the limit less one, the limit, one more and three times it (each value
    /// below the limit on its own, so the row's own rule is the one that counts).
    func testAWideDroppedRowIsLoggedWholeUpToTheLimitAndByItsDigestPastIt() throws {
        let limit = ConflictLog.wholeValueBytes
        for n in [limit - 1, limit, limit + 1, 3 * limit] {
            // `{"c0":"…","c1":"…",…}`: 8 bytes per column around its text, less one comma, plus the braces.
            let columnCount = 4
            let frame = 2 + columnCount * 8 - 1
            let text = n - frame
            let columns = (0..<columnCount).map { i in
                Change.ColumnValue(
                    name: "c\(i)",
                    value: .text(String(repeating: "x", count: text / columnCount + (i < text % columnCount ? 1 : 0))))
            }
            let whole = "{" + columns.map { "\"\($0.name)\":\($0.value.json)" }.joined(separator: ",") + "}"
            XCTAssertEqual(whole.utf8.count, n, "the test builds a row of \(n) bytes")
            let logged = ConflictLog.loggedRow(columns)
            if n <= limit {
                XCTAssertEqual(logged, whole, "\(n)")
            } else {
                let sha = Hex.encode(Array(SHA256.hash(data: Array(whole.utf8))))
                let first = String(whole.prefix(1000)).replacingOccurrences(of: "\"", with: "\\\"")
                XCTAssertEqual(
                    logged,
                    "{\"type\":\"row\",\"bytes\":\(n),\"sha256\":\"\(sha)\",\"first\":\"\(first)\",\"truncated\":true}",
                    "\(n)")
            }
        }
    }

    func testStaleUpdateAfterDeleteDoesNotResurrect() throws {
        try seedRow()
        try b.exec("UPDATE sales_order SET description = 'edited before seeing the delete' WHERE order_id = 'k'")
        try send(b, b)
        try setOffset(a, hours: 1.0 / 3600)
        try a.exec("DELETE FROM sales_order WHERE order_id = 'k'")
        try exchange()
        XCTAssertEqual(try a.rows(), [])
        XCTAssertEqual(try b.rows(), [])
        XCTAssertTrue(try ConflictLog.list(a.db).contains { $0.reason.contains("delete wins") })
    }

    func testDeleteBeatsAConcurrentNewerUpdate() throws {
        try seedRow()
        try a.exec("DELETE FROM sales_order WHERE order_id = 'k'")
        try send(a, a)
        try setOffset(b, hours: 1.0 / 3600)
        // b edits later by the clock, but has not seen the delete: the delete still wins.
        try b.exec("UPDATE sales_order SET description = 'later edit' WHERE order_id = 'k'")
        try send(b, a)
        try send(a, b)
        XCTAssertEqual(try a.rows(), [])
        XCTAssertEqual(try b.rows(), [])
    }

    func testReinsertBringsTheRowBackAndOldChangesStayOut() throws {
        try seedRow()
        try b.exec("UPDATE sales_order SET quantity = '5' WHERE order_id = 'k'")
        let out = folder.appendingPathComponent("late")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let lateUpdate = try b.export(to: out)
        try a.exec("DELETE FROM sales_order WHERE order_id = 'k'")
        try send(a, b)
        try b.exec("INSERT INTO sales_order (order_id, description) VALUES ('k', 'reborn')")
        try send(b, a)
        try a.ingest(lateUpdate)  // an update of the first generation, arriving last
        for n in [a!, b!] {
            XCTAssertEqual(try value(n, "description"), .text("reborn"))
            XCTAssertEqual(try value(n, "quantity"), .null)
            XCTAssertEqual(try n.db.scalar("SELECT cl FROM ds_row_version"), .integer(3))
        }
        XCTAssertEqual(try a.rows(), try b.rows())
    }

    func testConcurrentInsertsOfOneKeyConverge() throws {
        try a.exec("INSERT INTO sales_order (order_id, description, quantity) VALUES ('k', 'a', '1')")
        try send(a, a)
        try setOffset(b, hours: 1.0 / 3600)
        try b.exec("INSERT INTO sales_order (order_id, description) VALUES ('k', 'b')")
        try exchange()
        XCTAssertEqual(try a.rows(), try b.rows())
        XCTAssertEqual(try value(a, "description"), .text("b"))
        XCTAssertEqual(try value(a, "quantity"), .null)
    }

    func testClockHoursBehindStillWinsAfterSeeingTheOthers() throws {
        try setOffset(b, hours: -3)
        try seedRow()
        try a.exec("UPDATE sales_order SET description = 'from a, on time' WHERE order_id = 'k'")
        try send(a, b)
        // b's wall clock is 3 hours behind, but its edit comes after it saw a's.
        try b.exec("UPDATE sales_order SET description = 'from b, clock behind' WHERE order_id = 'k'")
        try send(b, a)
        XCTAssertEqual(try value(a, "description"), .text("from b, clock behind"))
        XCTAssertEqual(try value(b, "description"), .text("from b, clock behind"))
    }

    func testClockYearsBehindHoldsTheOthersUntilItsClockIsFixed() throws {
        try setOffset(a, hours: -24 * 365 * 5)
        try seedRow()  // a inserts with a stamp five years old; b applies it (old stamps are normal)
        try b.exec("UPDATE sales_order SET description = 'b, on time' WHERE order_id = 'k'")
        try a.exec("UPDATE sales_order SET customer_id = 'a, five years behind' WHERE order_id = 'k'")
        try a.exec("UPDATE sales_order SET quantity = 'a wins nothing' WHERE order_id = 'k'")
        try b.exec("UPDATE sales_order SET quantity = 'b concurrent' WHERE order_id = 'k'")
        // To a, b's stamps are five years in the future: held, and a's clock is not dragged.
        let r = try send(b, a)
        XCTAssertEqual(r?.held, 2)
        XCTAssertTrue(try NodeStatus.read(a.db).held.allSatisfy { $0.reason.contains("ahead of this node's clock") })
        try send(a, b)
        // On b, a's five-year-old stamps lose to b's concurrent edit of the same column.
        XCTAssertEqual(try value(b, "quantity"), .text("b concurrent"))
        XCTAssertEqual(try value(b, "customer_id"), .text("a, five years behind"))
        // Fix a's clock: the held changes apply, and both sides agree.
        try setOffset(a, hours: 0)
        XCTAssertEqual(try Importer.run(a.db).released, 2)
        XCTAssertEqual(try a.rows(), try b.rows())
    }

    func testClockAheadWithinTheWindowApplies() throws {
        try setOffset(a, hours: 0.05)  // three minutes ahead
        try seedRow()
        XCTAssertEqual(try b.rows().count, 1)
        XCTAssertEqual(try NodeStatus.read(b.db).heldCount, 0)
    }

    /// A clock past the last millisecond a stamp holds (the year 6429) saturates its stamps up
    /// to the largest 64-bit value, and every peer refused those bundles as damaged while the
    /// export said nothing (found from outside). Peers read them, and hold the changes as ahead
    /// of their clocks, as for any clock too far ahead.
    func testAClockPastTheLastStampWritesBundlesPeersReadAndHold() throws {
        try a.exec(
            "INSERT INTO ds_setting (name, value) VALUES ('test_clock_offset_ms', ?)",
            [.text(String(HybridLogicalClock.maxMs))])
        for i in 0..<3 {
            try a.exec("INSERT INTO sales_order (order_id, description) VALUES (?, 'far')", [.text("f\(i)")])
        }
        let out = folder.appendingPathComponent("far")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try a.export(to: out)
        XCTAssertGreaterThan(try NodeIdentity.load(a.db).hlc, HybridLogicalClock.stamp(ms: HybridLogicalClock.maxMs))
        let r = try b.ingest([out.path])
        XCTAssertEqual(r.refused, 0)
        XCTAssertEqual(r.imported?.held, 3)
        XCTAssertTrue(try NodeStatus.read(b.db).held.allSatisfy { $0.reason.contains("ahead of this node's clock") })
        XCTAssertEqual(try b.rows(), [])
    }

    func testStampBeyondTheWindowIsHeldAndDoesNotDragTheClock() throws {
        for hours: Double in [30.0, 24.0 * 365 * 3] {
            try setUpWithError()
            try setOffset(a, hours: hours)
            let clockBefore = try NodeIdentity.load(b.db).hlc
            try a.exec("INSERT INTO sales_order (order_id, description) VALUES ('k', 'from the future')")
            let r = try send(a, b)
            XCTAssertEqual(r?.held, 1)
            XCTAssertEqual(try b.rows(), [])
            XCTAssertEqual(try NodeIdentity.load(b.db).hlc, clockBefore, "a held change moved the clock")
            let held = try NodeStatus.read(b.db).held
            XCTAssertTrue(held.first?.reason.contains("ahead of this node's clock") ?? false, "\(held)")
            // Once b's clock catches up (here: its window is widened), it applies.
            try b.exec(
                "INSERT INTO ds_setting (name, value) VALUES ('max_clock_ahead_ms', ?)",
                [.text(String(Int64((hours + 1) * 3_600_000)))])
            let r2 = try Importer.run(b.db)
            XCTAssertEqual(r2.released, 1)
            XCTAssertEqual(try b.rows(), try a.rows())
        }
    }

    /// SQLite's triggers capture -0.0 as 0 (its text rendering has no negative zero). An update
    /// from there whose old value is that 0 is no concurrent edit of a -0.0 held elsewhere
    /// (found from outside: each such update logged a conflict).
    func testAnOldZeroFromSQLiteMatchesANegativeZeroHeldElsewhere() throws {
        let p = try TestNode(
            "zero-p", .postgres, folder: folder, table: "CREATE TABLE m (id TEXT PRIMARY KEY, x double precision)",
            track: ["m"])
        let s = try TestNode(
            "zero-s", .sqlite, folder: folder, table: "CREATE TABLE m (id TEXT PRIMARY KEY NOT NULL, x)", track: ["m"])
        try trustAll([p, s])
        func x(_ n: TestNode, _ id: String) throws -> Value {
            try n.db.scalar("SELECT x FROM m WHERE id = ?", [.text(id)])
        }
        try p.exec("INSERT INTO m (id, x) VALUES ('k', ?)", [.real(-0.0)])
        try send(p, s)
        XCTAssertEqual(try x(s, "k"), .real(-0.0), "an untyped SQLite column keeps the sign")
        try s.exec("UPDATE m SET x = 5 WHERE id = 'k'")
        try send(s, p)
        XCTAssertEqual(try x(p, "k"), .real(5))
        XCTAssertEqual(try ConflictLog.list(p.db).count + ConflictLog.list(s.db).count, 0)
        // What the capture cannot see, as docs/types.md says: -0.0 written on SQLite arrives as 0.
        try s.exec("INSERT INTO m (id, x) VALUES ('j', ?)", [.real(-0.0)])
        try send(s, p)
        XCTAssertEqual(try x(p, "j"), .real(0))
    }

    func testClockStateSurvivesRestart() throws {
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('x')")
        try send(a, a)
        let before = try NodeIdentity.load(a.db).hlc
        // A new connection (a new process) continues from the stored clock, even if the wall clock went back.
        let reopened = try DatabaseOpener.open(a.url)
        try reopened.execute("INSERT INTO ds_setting (name, value) VALUES ('test_clock_offset_ms', '-86400000')")
        try reopened.execute("UPDATE sales_order SET description = 'later' WHERE order_id = 'x'")
        var me = try NodeIdentity.load(reopened)
        try reopened.retryingWrite { _ in
            try Stamper.stampPending(reopened, me: &me, tables: try TableRegistry.load(reopened))
        }
        XCTAssertGreaterThan(try NodeIdentity.load(reopened).hlc, before)
    }
}
