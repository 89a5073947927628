import Foundation
import XCTest

@testable import DataJoin

/// Issue 13: rows created apart never collide. Each node draws generated ids from its own
/// block, set up in the database itself; the application's INSERTs without an id are unchanged.
final class KeyBlockTests: ScenarioTestCase {
    var folder: URL!
    override func setUpWithError() throws {
        try super.setUpWithError()
        folder = try TestDatabases.tempFolder("keys")
    }

    static let orders = "CREATE TABLE orders (id serial PRIMARY KEY, note TEXT NOT NULL, qty INTEGER)"

    /// Through the hub: laptops export to it, it relays to them.
    func syncStar(hub: TestNode, laptops: [TestNode]) throws {
        for l in laptops {
            let out = try TestDatabases.subfolder(folder, "\(l.name)-\(UUID().uuidString.prefix(6))")
            try l.export(to: out)
            try hub.ingest([out.path])
        }
        let relay = try TestDatabases.subfolder(folder, "hub-\(UUID().uuidString.prefix(6))")
        _ = try Exporter.export(hub.db, ExportOptions(folder: relay.path, relay: true))
        for l in laptops { try l.ingest([relay.path]) }
    }

    static func orders(_ brand: Brand) -> String {
        switch brand {
        case .postgres: return orders
        case .mariadb:
            return "CREATE TABLE orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(100) NOT NULL, qty INT)"
        case .sqlite: return "CREATE TABLE orders (id INTEGER PRIMARY KEY, note TEXT NOT NULL, qty INTEGER)"
        }
    }

    /// Two laptops and a hub each insert 1,000 orders offline, none giving an id: all 3,000 are
    /// everywhere afterwards, none merged, each id from its node's block; a SQLite node that
    /// only reads receives them all. Every pairing of the brands that can hand out blocks.
    func testThreeNodesInsertingOfflineNeverCollide() throws {
        let brands = TestDatabases.availableBrands.filter { $0 != .sqlite }
        guard !brands.isEmpty else { throw XCTSkip("needs PostgreSQL or MariaDB") }
        var run = 0
        for hubBrand in brands {
            for lapBrand in brands {
                run += 1
                TestNode.created.removeAll()
                try threeNodes(hub: hubBrand, laptops: lapBrand, run: run)
            }
        }
    }

    func threeNodes(hub hubBrand: Brand, laptops lapBrand: Brand, run: Int) throws {
        let hub = try TestNode("hub\(run)", hubBrand, folder: folder, table: Self.orders(hubBrand), track: [])
        XCTAssertEqual(try KeyBlocks.becomeAuthority(hub.db), hub.name)
        let laptops = try ["lap\(run)-1", "lap\(run)-2"].map { name -> TestNode in
            let node = try TestNode(name, lapBrand, folder: folder, table: Self.orders(lapBrand), track: [])
            let block = try CLI.ok(["key-blocks", "grant", "--db", hub.url, "--node", name]).stdout
            try CLI.ok(["key-blocks", "add", "--db", node.url, block.trimmingCharacters(in: .whitespacesAndNewlines)])
            return node
        }
        let reader = try TestNode("reader\(run)", .sqlite, folder: folder, table: Self.orders(.sqlite), track: [])
        _ = try Tracker.track(reader.db, tables: ["orders"])
        let writers = [hub] + laptops
        for n in writers {
            let tracked = try Tracker.track(n.db, tables: ["orders"])
            XCTAssertTrue(tracked[0].notes.contains { $0.contains("from this node's key block") }, "\(tracked)")
        }
        try trustAll(writers + [reader])
        for n in writers {
            for i in 0..<1_000 {
                try n.exec(
                    "INSERT INTO orders (note, qty) VALUES (?, ?)", [.text("\(n.name) order \(i)"), .integer(Int64(i))])
            }
        }
        try syncStar(hub: hub, laptops: laptops + [reader])
        for (i, n) in (writers + [reader]).enumerated() {
            XCTAssertEqual(try n.db.scalar("SELECT count(*) FROM orders"), .integer(3_000), "\(n.name) \(n.brand)")
            XCTAssertEqual(try n.db.scalar("SELECT count(DISTINCT note) FROM orders"), .integer(3_000), n.name)
            XCTAssertEqual(try n.db.scalar("SELECT count(*) FROM ds_conflict"), .integer(0), n.name)
            guard i < writers.count else { continue }
            // Each node's orders carry ids of its own block (hub 1, laptops 2 and 3).
            let r = KeyBlocks.range(Int64(i + 1))
            XCTAssertEqual(
                try n.db.scalar(
                    "SELECT count(*) FROM orders WHERE note LIKE ? AND id BETWEEN ? AND ?",
                    [.text("\(n.name) order %"), .integer(r.lowerBound), .integer(r.upperBound)]), .integer(1_000),
                "\(n.name) \(n.brand)")
        }
        for n in laptops + [reader] { XCTAssertEqual(try hub.rows("orders"), try n.rows("orders"), n.name) }
        try ScenarioTestCase.assertChecked(writers + [reader])
    }

    /// Rows a table held before stay as they are (block 0); the block starts above them; a
    /// table tracked before the node had a block moves onto it when the block is added; one
    /// tracked with --no-key-blocks does not, and says what that means.
    func testExistingRowsStayAndBlocksAreAddedLaterOrRefused() throws {
        _ = try TestDatabases.requirePostgres()
        let hub = try TestNode("hub", .postgres, folder: folder, table: Self.orders, track: [])
        try hub.exec("INSERT INTO orders (note) VALUES ('before 1'), ('before 2')")
        try hub.exec("CREATE TABLE plain (id serial PRIMARY KEY, v TEXT)")
        try hub.exec("CREATE TABLE small (id smallserial PRIMARY KEY, v TEXT)")
        let tracked = try Tracker.track(hub.db, tables: ["orders", "small"])
        XCTAssertTrue(tracked.allSatisfy { t in t.warnings.contains { $0.contains("has no key block yet") } })
        let off = try Tracker.track(hub.db, tables: ["plain"], keyBlocks: false)
        XCTAssertTrue(off[0].warnings.contains { $0.contains("merge, column by column") }, "\(off)")
        // A block that does not fit a smallint key is refused with what to do, and nothing changes.
        XCTAssertThrowsError(try KeyBlocks.becomeAuthority(hub.db)) { error in
            XCTAssertTrue("\(error)".contains("widen the column"), "\(error)")
        }
        try hub.exec("DROP TABLE small")
        _ = try Tracker.untrack(hub.db, tables: ["small"])
        XCTAssertEqual(try KeyBlocks.becomeAuthority(hub.db), "hub")
        try hub.exec("INSERT INTO orders (note) VALUES ('after')")
        try hub.exec("INSERT INTO plain (v) VALUES ('after')")
        XCTAssertEqual(
            try hub.rows("orders"),
            [["1", "before 1", "NULL"], ["2", "before 2", "NULL"], ["\(KeyBlocks.size)", "after", "NULL"]])
        XCTAssertEqual(try hub.db.scalar("SELECT id FROM plain"), .integer(1))
        // The authority hands out each number once; the same node asking again gets its own.
        XCTAssertEqual(try KeyBlocks.grant(hub.db, node: "lap"), 2)
        XCTAssertEqual(try KeyBlocks.grant(hub.db, node: "lap"), 2)
        XCTAssertEqual(try KeyBlocks.grant(hub.db, node: "lap", another: true), 3)
        XCTAssertEqual(try KeyBlocks.grant(hub.db, node: "other"), 4)
        // Block numbers at their limits: 0 and past the last are refused.
        let lap = try TestNode("lap", .postgres, folder: folder, table: Self.orders, track: ["orders"])
        for bad in [0, KeyBlocks.maxBlock + 1, 3 * KeyBlocks.maxBlock] {
            XCTAssertEqual(try CLI.run(["key-blocks", "add", "--db", lap.url, String(bad)]).status, 64)
        }
        XCTAssertEqual(try CLI.run(["key-blocks", "grant", "--db", lap.url, "--node", "x"]).status, 64)
        try CLI.ok(["key-blocks", "add", "--db", lap.url, "2"])
        try lap.exec("INSERT INTO orders (note) VALUES ('lap')")
        XCTAssertEqual(try lap.db.scalar("SELECT id FROM orders"), .integer(2 * KeyBlocks.size))
        XCTAssertTrue(try CLI.ok(["key-blocks", "--db", lap.url]).stdout.contains("block 2: ids 33554432…50331647"))
    }

    /// A generator only moves forward: an own row that comes back with a higher id (a node
    /// restored from a backup gets its lost rows back from its peers) moves it past that id, and
    /// tracking the table again after untrack goes on after the ids it gave, on both brands.
    func testGeneratorsNeverGoBack() throws {
        let brands = TestDatabases.availableBrands.filter { $0 != .sqlite }
        guard !brands.isEmpty else { throw XCTSkip("needs PostgreSQL or MariaDB") }
        for (i, brand) in brands.enumerated() {
            TestNode.created.removeAll()
            let n = try TestNode("gen\(i)", brand, folder: folder, table: Self.orders(brand), track: ["orders"])
            try KeyBlocks.becomeAuthority(n.db)
            let base = KeyBlocks.range(1).lowerBound
            try n.exec("INSERT INTO orders (note) VALUES ('first')")
            try n.exec("INSERT INTO orders (id, note) VALUES (?, 'came back')", [.integer(base + 100)])
            try KeyBlocks.raise(n.db)
            try n.exec("INSERT INTO orders (note) VALUES ('after')")
            XCTAssertEqual(
                try n.db.scalar("SELECT id FROM orders WHERE note = 'after'"), .integer(base + 101), "\(brand)")
            try Tracker.untrack(n.db, tables: ["orders"])
            try n.exec("DELETE FROM orders WHERE id > ?", [.integer(base)])
            _ = try Tracker.track(n.db, tables: ["orders"])
            try n.exec("INSERT INTO orders (note) VALUES ('again')")
            let again = try n.db.scalar("SELECT id FROM orders WHERE note = 'again'").asInt64 ?? 0
            XCTAssertGreaterThan(again, base + 101, "\(brand)")
            uncheckedNodes.insert(n.name)
        }
    }

    /// Refusals change nothing, also on MariaDB, where every DDL statement commits: a block a
    /// table's key cannot hold refuses `track` and `key-blocks add` before anything is written.
    /// A peer's row with id 0 keeps it (only the application's inserts draw from the block).
    /// SQLite, which cannot draw ids from a block, refuses one.
    func testRefusalsChangeNothingAndPeersIdsAreKept() throws {
        let brands = TestDatabases.availableBrands.filter { $0 != .sqlite }
        guard !brands.isEmpty else { throw XCTSkip("needs PostgreSQL or MariaDB") }
        for (i, brand) in brands.enumerated() {
            TestNode.created.removeAll()
            let small =
                brand == .postgres
                ? "CREATE TABLE small (id smallserial PRIMARY KEY, v TEXT)"
                : "CREATE TABLE small (id SMALLINT AUTO_INCREMENT PRIMARY KEY, v TEXT)"
            let n = try TestNode("ref\(i)", brand, folder: folder, table: Self.orders(brand), track: ["orders"])
            try n.exec(small)
            _ = try Tracker.track(n.db, tables: ["small"])  // no block yet: tracked, with the warning
            XCTAssertThrowsError(try KeyBlocks.becomeAuthority(n.db))
            XCTAssertEqual(try KeyBlocks.blocks(n.db), [], "\(brand)")
            _ = try Tracker.untrack(n.db, tables: ["small"])
            try KeyBlocks.becomeAuthority(n.db)
            XCTAssertThrowsError(try Tracker.track(n.db, tables: ["small"]))
            XCTAssertFalse(try Tracker.trackedNames(n.db).contains("small"), "\(brand)")
            try n.exec("INSERT INTO small (v) VALUES ('untracked')")
            XCTAssertEqual(
                try n.db.scalar("SELECT count(*) FROM ds_change_outbox WHERE object_table = 'small'"), .integer(0))
            // A peer's row 0 arrives as row 0.
            let peer = try TestNode("peer\(i)", .sqlite, folder: folder, table: Self.orders(.sqlite), track: ["orders"])
            try trustAll([peer, n])
            try peer.exec("INSERT INTO orders (id, note) VALUES (0, 'zero'), (7, 'seven')")
            let out = try TestDatabases.subfolder(folder, "peer\(i)")
            try peer.export(to: out)
            try n.ingest([out.path])
            XCTAssertEqual(try n.rows("orders"), [["0", "zero", "NULL"], ["7", "seven", "NULL"]], "\(brand)")
            uncheckedNodes.insert(n.name)
        }
        let lite = try TestNode("lite", .sqlite, folder: folder, table: Self.orders(.sqlite), track: ["orders"])
        let r = try CLI.run(["key-blocks", "add", "--db", lite.url, "2"])
        XCTAssertEqual(r.status, 64, r.stderr)
        XCTAssertTrue(r.stderr.contains("SQLite cannot hand out"), r.stderr)
        XCTAssertEqual(try CLI.run(["key-blocks", "add", "--db", lite.url, "1"]).status, 64)
        // A SQLite hub still hands out numbers to the others.
        XCTAssertTrue(try CLI.ok(["key-blocks", "authority", "--db", lite.url]).stdout.contains("draws from none"))
        XCTAssertEqual(try CLI.ok(["key-blocks", "grant", "--db", lite.url, "--node", "x"]).stdout, "2\n")
    }
}
