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
        _ = try Tracker.track(reader.db, tables: ["orders"], keyBlocks: false)
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
        // The key block lost by hand (MariaDB's trigger dropped, PostgreSQL's sequence altered):
        // new ids came from the database's own counter again, the same on every node, while
        // check said OK; also for a table tracked with --no-triggers (found from outside).
        if hubBrand == lapBrand {
            let lap = laptops[0]
            try lap.exec(
                lapBrand == .mariadb
                    ? "CREATE TABLE own (id BIGINT AUTO_INCREMENT PRIMARY KEY, v TEXT)"
                    : "CREATE TABLE own (id bigserial PRIMARY KEY, v TEXT)")
            try CLI.ok(["track", "--db", lap.url, "--no-triggers", "own"])
            for table in ["orders", "own"] {
                try lap.exec(
                    lapBrand == .mariadb
                        ? "DROP TRIGGER \(MariaDBDialect.keyBlockTrigger(table))"
                        : "ALTER SEQUENCE \(table)_id_seq NO MINVALUE NO MAXVALUE")
                let checked = try CLI.run(["check", "--db", lap.url])
                XCTAssertEqual(checked.status, 1, "\(table) \(lapBrand)")
                XCTAssertTrue(
                    checked.stderr.contains(
                        "table \(table) no longer draws new ids from this node's key block (its key-block trigger or sequence dropped, replaced or changed since 'datajoin track'): its new ids came from the table's own counter"
                    ), "\(table) \(lapBrand): \(checked.stderr)")
                XCTAssertTrue(
                    checked.stderr.contains("run 'datajoin track \(table)' to put it back"),
                    "\(table): \(checked.stderr)")
                let tracked = try CLI.ok(["track", "--db", lap.url, table])
                XCTAssertTrue(
                    tracked.stdout.contains("\(table).id: new ids come from this node's key block again, 33554432…"),
                    "\(table) \(lapBrand): \(tracked.stdout)")
                try CLI.ok(["check", "--db", lap.url])
                let column = table == "own" ? "v" : "note"
                try lap.exec("INSERT INTO \(table) (\(column)) VALUES ('after the block came back')")
                let id =
                    try lap.db.scalar("SELECT id FROM \(table) WHERE \(column) = 'after the block came back'").asInt64
                    ?? 0
                XCTAssertTrue(KeyBlocks.range(2).contains(id), "\(table) \(lapBrand): \(id)")
            }
            XCTAssertEqual(
                try lap.db.scalar("SELECT count(*) FROM ds_change_outbox WHERE object_table = 'own'"), .integer(0),
                "\(lapBrand): no capture installed for a --no-triggers table")
        }
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
        // The authority takes only its own numbers: another node's, or one not handed out yet,
        // is refused and changes nothing.
        for taken in [Int64(2), 4, 5] {
            XCTAssertThrowsError(try KeyBlocks.add(hub.db, taken)) { error in
                XCTAssertTrue("\(error)".contains(taken == 5 ? "not granted yet" : "was granted to"), "\(error)")
            }
        }
        XCTAssertEqual(try KeyBlocks.blocks(hub.db), [1])
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
            let peer = try TestNode(
                "peer\(i)", .sqlite, folder: folder, table: Self.orders(.sqlite), track: ["orders"], keyBlocks: false)
            try trustAll([peer, n])
            try peer.exec("INSERT INTO orders (id, note) VALUES (0, 'zero'), (7, 'seven')")
            let out = try TestDatabases.subfolder(folder, "peer\(i)")
            try peer.export(to: out)
            try n.ingest([out.path])
            XCTAssertEqual(try n.rows("orders"), [["0", "zero", "NULL"], ["7", "seven", "NULL"]], "\(brand)")
            uncheckedNodes.insert(n.name)
        }
        let lite = try TestNode(
            "lite", .sqlite, folder: folder, table: Self.orders(.sqlite), track: ["orders"], keyBlocks: false)
        let r = try CLI.run(["key-blocks", "add", "--db", lite.url, "2"])
        XCTAssertEqual(r.status, 64, r.stderr)
        XCTAssertTrue(r.stderr.contains("SQLite cannot hand out"), r.stderr)
        XCTAssertEqual(try CLI.run(["key-blocks", "add", "--db", lite.url, "1"]).status, 64)
        // A SQLite hub still hands out numbers to the others.
        XCTAssertTrue(try CLI.ok(["key-blocks", "authority", "--db", lite.url]).stdout.contains("draws from none"))
        XCTAssertEqual(try CLI.ok(["key-blocks", "grant", "--db", lite.url, "--node", "x"]).stdout, "2\n")
    }

    /// A tracked table rebuilt with a key too small for the node's block: `track` refuses it
    /// before writing anything (MariaDB commits DDL), imports go on meanwhile (PostgreSQL failed
    /// every one with 22003 on the block's bounds), and the cure the refusal names,
    /// `track --no-key-blocks`, leaves `check` clean and the table captured (found from outside).
    func testATableRebuiltWithAKeyTooSmallForTheBlockIsRefusedAndCuredByNoKeyBlocks() throws {
        let brands = TestDatabases.availableBrands.filter { $0 != .sqlite }
        guard !brands.isEmpty else { throw XCTSkip("needs PostgreSQL or MariaDB") }
        for (i, brand) in brands.enumerated() {
            TestNode.created.removeAll()
            let n = try TestNode("small\(i)", brand, folder: folder, table: Self.orders(brand), track: [])
            try KeyBlocks.becomeAuthority(n.db)
            try CLI.ok(["track", "--db", n.url, "orders"])
            let peer = try TestNode(
                "spe\(i)", .sqlite, folder: folder, table: Self.orders(.sqlite), track: ["orders"], keyBlocks: false)
            try trustAll([peer, n])
            try n.exec("INSERT INTO orders (note) VALUES ('before')")
            try n.exec(
                brand == .postgres
                    ? "CREATE TABLE orders2 (id smallserial PRIMARY KEY, note TEXT NOT NULL, qty INTEGER)"
                    : "CREATE TABLE orders2 (id SMALLINT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(100) NOT NULL, qty INT)"
            )
            try n.exec("INSERT INTO orders2 (note, qty) SELECT note, qty FROM orders")
            try n.exec("DROP TABLE orders")
            try n.exec(brand == .mariadb ? "RENAME TABLE orders2 TO orders" : "ALTER TABLE orders2 RENAME TO orders")
            let refused = try CLI.run(["track", "--db", n.url, "orders"])
            XCTAssertEqual(refused.status, 64, "\(brand): \(refused.stderr)")
            XCTAssertTrue(
                refused.stderr.contains("holds ids up to 32767, below key block 1"), "\(brand): \(refused.stderr)")
            let checked = try CLI.run(["check", "--db", n.url])
            XCTAssertEqual(checked.status, 1, "\(brand)")
            XCTAssertTrue(checked.stderr.contains("lost its capture triggers"), "\(brand): \(checked.stderr)")
            try peer.exec("INSERT INTO orders (id, note) VALUES (7, 'from the peer')")
            let out = try TestDatabases.subfolder(folder, "small\(i)")
            try peer.export(to: out)
            let ingested = try CLI.run(["ingest", "--db", n.url, out.path])
            XCTAssertEqual(ingested.status, 0, "\(brand): \(ingested.stderr)")
            XCTAssertEqual(try n.db.scalar("SELECT note FROM orders WHERE id = 7"), .text("from the peer"), "\(brand)")
            let cured = try CLI.ok(["track", "--db", n.url, "--no-key-blocks", "orders"])
            XCTAssertTrue(
                cured.stderr.contains("orders.id: no key block from now on (--no-key-blocks)"),
                "\(brand): \(cured.stderr)")
            try CLI.ok(["check", "--db", n.url])
            try n.exec("INSERT INTO orders (note) VALUES ('after')")
            XCTAssertEqual(
                try n.db.scalar(
                    "SELECT count(*) FROM ds_change_outbox WHERE object_table = 'orders' AND object_operation = 'I'"),
                .integer(2), "\(brand)")
            XCTAssertEqual(try n.db.scalar("SELECT count(*) FROM orders"), .integer(3), "\(brand)")
        }
    }

    /// A node restored from a backup file of itself (pg_dump / mariadb-dump, then a restore into
    /// a new database) hands out again ids it gave after the backup (MariaDB from its sequence's
    /// cache boundary, PostgreSQL from the backup's own value). An order entered after the
    /// restore meets a lost order of the same id when the lost ones come back: reported as a key
    /// collision on both sides, never silent. From the first exchange on, the generator is past
    /// every id the node gave before, and no later order collides.
    func testNodeRestoredFromABackupFileNeverReusesIdsAfterTheFirstExchange() throws {
        let brands = TestDatabases.availableBrands.filter { $0 != .sqlite }
        guard !brands.isEmpty else { throw XCTSkip("needs PostgreSQL or MariaDB") }
        let lost = 120  // more than MariaDB's sequence cache (100)
        for (run, brand) in brands.enumerated() {
            TestNode.created.removeAll()
            let hub = try TestNode("rhub\(run)", brand, folder: folder, table: Self.orders(brand), track: [])
            try KeyBlocks.becomeAuthority(hub.db)
            _ = try Tracker.track(hub.db, tables: ["orders"])
            let lap = try TestNode("rlap\(run)", brand, folder: folder, table: Self.orders(brand), track: [])
            try KeyBlocks.add(lap.db, try KeyBlocks.grant(hub.db, node: lap.name))
            _ = try Tracker.track(lap.db, tables: ["orders"])
            try trustAll([hub, lap])
            let base = KeyBlocks.range(2).lowerBound
            for i in 0..<3 { try lap.exec("INSERT INTO orders (note) VALUES (?)", [.text("before backup \(i)")]) }
            try syncStar(hub: hub, laptops: [lap])
            let backup = folder.appendingPathComponent("rlap\(run).backup")
            try Self.backUp(lap.url, brand, to: backup)
            for i in 0..<lost { try lap.exec("INSERT INTO orders (note) VALUES (?)", [.text("lost \(i)")]) }
            try syncStar(hub: hub, laptops: [lap])
            let lostIds = (base + 3)...(base + 2 + Int64(lost))
            XCTAssertEqual(try hub.db.scalar("SELECT max(id) FROM orders"), .integer(lostIds.upperBound), "\(brand)")
            // The disk dies; the laptop is restored from the backup file into a new database.
            let restoredURL = try TestDatabases.create(brand, name: "rlap\(run)r", in: folder)
            try Self.restore(backup, brand, into: restoredURL)
            let restored = try DatabaseOpener.open(restoredURL)
            try restored.execute("INSERT INTO orders (note) VALUES ('entered after the restore')")
            let reused = try restored.scalar("SELECT id FROM orders WHERE note = 'entered after the restore'").asInt64
            XCTAssertTrue(lostIds.contains(reused ?? 0), "\(brand): \(String(describing: reused)) is not an id it lost")
            // The first exchange: the hub's next bundle brings the lost orders back, and the
            // generator moves past them.
            try hub.exec("INSERT INTO orders (note) VALUES ('the hub goes on')")
            let relay = try TestDatabases.subfolder(folder, "relay-r\(run)")
            _ = try Exporter.export(hub.db, ExportOptions(folder: relay.path, relay: true))
            let report = try Ingester.ingest(restored, IngestOptions(paths: [relay.path]))
            XCTAssertTrue(report.notices.contains { $0.contains("restored from an older backup") }, "\(report.notices)")
            // It knows it lost 120 changes: its generator moved 120 ids on at once.
            try restored.execute("INSERT INTO orders (note) VALUES ('entered after the exchange')")
            let after = try restored.scalar("SELECT id FROM orders WHERE note = 'entered after the exchange'")
            XCTAssertGreaterThan(after.asInt64 ?? 0, lostIds.upperBound, "\(brand)")
            let out = try TestDatabases.subfolder(folder, "restored-r\(run)")
            _ = try Exporter.export(restored, ExportOptions(folder: out.path))
            try hub.ingest([out.path])
            // The hub sends the lost orders again (export --relay --resend, docs/delivery.md).
            let resent = try TestDatabases.subfolder(folder, "resent-r\(run)")
            _ = try Exporter.export(
                hub.db, ExportOptions(folder: resent.path, relay: true, resend: true, peer: lap.name))
            try Ingester.ingest(restored, IngestOptions(paths: [resent.path]))
            try restored.execute("INSERT INTO orders (note) VALUES ('entered after the lost ones came back')")
            let last = try restored.scalar("SELECT max(id) FROM orders")
            XCTAssertGreaterThan(last.asInt64 ?? 0, after.asInt64 ?? 0, "\(brand)")
            _ = try Exporter.export(restored, ExportOptions(folder: out.path))
            try hub.ingest([out.path])
            XCTAssertEqual(try TestDatabases.dump(restored, "orders"), try hub.rows("orders"), "\(brand)")
            XCTAssertEqual(try hub.db.scalar("SELECT count(*) FROM orders"), .integer(Int64(3 + lost + 3)), "\(brand)")
            // The one order entered between the restore and the exchange met a lost one.
            for db in [restored, hub.db] {
                let found = try KeyCollisions.list(db)
                XCTAssertEqual(found.map(\.key), ["\(reused ?? 0)"], "\(brand)")
                XCTAssertEqual(found.map(\.table), ["orders"])
                XCTAssertEqual(try KeyCollisions.clear(db), 1)
            }
            XCTAssertEqual(try NodeCheck.run(restored).violations, [], "\(brand)")
            uncheckedNodes.insert(lap.name)  // the database the disk took
        }
    }

    static func backUp(_ url: String, _ brand: Brand, to file: URL) throws {
        try backupTool(url, brand, file, restore: false)
    }

    static func restore(_ file: URL, _ brand: Brand, into url: String) throws {
        try backupTool(url, brand, file, restore: true)
    }

    /// The brand's own backup tools: pg_dump / pg_restore, mariadb-dump / mariadb.
    private static func backupTool(_ url: String, _ brand: Brand, _ file: URL, restore: Bool) throws {
        let command: String
        switch brand {
        case .postgres:
            command =
                restore
                ? "pg_restore --exit-on-error --dbname='\(url)' '\(file.path)'"
                : "pg_dump --format=custom --file='\(file.path)' '\(url)'"
        case .mariadb:
            let c = URLComponents(string: url)!
            let connection = "--no-defaults -h \(c.host!) -P \(c.port!) -u \(c.user!) \(c.path.dropFirst())"
            command = restore ? "mariadb \(connection) < '\(file.path)'" : "mariadb-dump \(connection) > '\(file.path)'"
        case .sqlite:
            return XCTFail("SQLite is backed up by copying its file")
        }
        let r = try CLI.runProgram(URL(fileURLWithPath: "/bin/sh"), ["-c", command])
        XCTAssertEqual(r.status, 0, r.output)
    }

    /// Nodes added later get the next block and renumber nobody; a node bootstrapped from a
    /// snapshot gets no block from it (a snapshot carries rows, never its sender's blocks) and
    /// draws from its own once it is given one, above nothing it received.
    func testNodesAddedLaterAndBootstrappedBySnapshotGetTheirOwnBlocks() throws {
        let brands = TestDatabases.availableBrands.filter { $0 != .sqlite }
        guard !brands.isEmpty else { throw XCTSkip("needs PostgreSQL or MariaDB") }
        for (run, brand) in brands.enumerated() {
            TestNode.created.removeAll()
            let hub = try TestNode("shub\(run)", brand, folder: folder, table: Self.orders(brand), track: [])
            try KeyBlocks.becomeAuthority(hub.db)
            _ = try Tracker.track(hub.db, tables: ["orders"])
            let first = try TestNode("slap\(run)", brand, folder: folder, table: Self.orders(brand), track: [])
            try KeyBlocks.add(first.db, try KeyBlocks.grant(hub.db, node: first.name))
            _ = try Tracker.track(first.db, tables: ["orders"])
            try trustAll([hub, first])
            for n in [hub, first] {
                for i in 0..<50 { try n.exec("INSERT INTO orders (note) VALUES (?)", [.text("\(n.name) \(i)")]) }
            }
            try syncStar(hub: hub, laptops: [first])
            let before = try hub.rows("orders")
            // A new laptop joins months later, from a snapshot of the hub.
            let snaps = try TestDatabases.subfolder(folder, "snap\(run)")
            let snapshot = try Snapshotter.write(hub.db, folder: snaps.path).path
            let late = try TestNode("slate\(run)", brand, folder: folder, table: Self.orders(brand), track: [])
            _ = try Tracker.track(late.db, tables: ["orders"])
            try trustAll([hub, first, late])
            try late.ingest([snapshot])
            XCTAssertEqual(try late.rows("orders"), before, "\(brand)")
            XCTAssertEqual(try KeyBlocks.blocks(late.db), [], "\(brand): a snapshot carries no block")
            let granted = try KeyBlocks.grant(hub.db, node: late.name)
            XCTAssertEqual(granted, 3, "\(brand): the next number, nobody renumbered")
            try KeyBlocks.add(late.db, granted)
            for n in [hub, first, late] {
                for i in 50..<100 { try n.exec("INSERT INTO orders (note) VALUES (?)", [.text("\(n.name) \(i)")]) }
            }
            let late0 = try late.db.scalar("SELECT min(id) FROM orders WHERE note LIKE 'slate%'")
            XCTAssertEqual(late0, .integer(KeyBlocks.range(3).lowerBound), "\(brand)")
            try syncStar(hub: hub, laptops: [first, late])
            try syncStar(hub: hub, laptops: [first, late])
            for n in [hub, first, late] {
                XCTAssertEqual(try n.db.scalar("SELECT count(*) FROM orders"), .integer(250), "\(n.name) \(brand)")
                XCTAssertEqual(try n.db.scalar("SELECT count(*) FROM ds_conflict"), .integer(0), n.name)
                XCTAssertEqual(try KeyCollisions.count(n.db), 0, n.name)
                XCTAssertEqual(try n.rows("orders"), try hub.rows("orders"), n.name)
            }
            // The rows from before kept their ids everywhere.
            XCTAssertEqual(Array(try late.rows("orders").filter { before.contains($0) }), before, "\(brand)")
            try ScenarioTestCase.assertChecked([hub, first, late])
        }
    }

    /// A block's last id is handed out (size), the next insert fails with the database's own
    /// error and writes nothing (size + 1): never a wrap-around into block 0 or another node's
    /// block. Another block from the authority takes over without a collision. The last block
    /// ends just below 2^53.
    func testABlockThatRunsOutIsExtendedWithoutACollision() throws {
        XCTAssertEqual(KeyBlocks.range(KeyBlocks.maxBlock).upperBound, (1 << 53) - 1)
        XCTAssertEqual(KeyBlocks.range(1).count, 1 << 24)
        let brands = TestDatabases.availableBrands.filter { $0 != .sqlite }
        guard !brands.isEmpty else { throw XCTSkip("needs PostgreSQL or MariaDB") }
        for (run, brand) in brands.enumerated() {
            TestNode.created.removeAll()
            let n = try TestNode("full\(run)", brand, folder: folder, table: Self.orders(brand), track: ["orders"])
            try KeyBlocks.becomeAuthority(n.db)
            let r = KeyBlocks.range(1)
            // A row that came back with the block's last id but one (size − 1).
            try n.exec("INSERT INTO orders (id, note) VALUES (?, 'last but one')", [.integer(r.upperBound - 1)])
            try KeyBlocks.raise(n.db)
            try n.exec("INSERT INTO orders (note) VALUES ('last')")
            XCTAssertEqual(try n.db.scalar("SELECT id FROM orders WHERE note = 'last'"), .integer(r.upperBound))
            XCTAssertThrowsError(try n.exec("INSERT INTO orders (note) VALUES ('one too many')"), "\(brand)")
            XCTAssertEqual(try n.db.scalar("SELECT count(*) FROM orders"), .integer(2), "\(brand)")
            // Tracking it again says the block is used up, with what to do.
            try Tracker.untrack(n.db, tables: ["orders"])
            XCTAssertThrowsError(try Tracker.track(n.db, tables: ["orders"])) { error in
                XCTAssertTrue("\(error)".contains("is used up"), "\(error)")
            }
            XCTAssertEqual(try Tracker.trackedNames(n.db), [], "\(brand)")
            // Another block: the table moves on to it.
            let next = try KeyBlocks.grant(n.db, node: n.name, another: true)
            XCTAssertEqual(next, 2)
            try KeyBlocks.add(n.db, next)
            _ = try Tracker.track(n.db, tables: ["orders"])
            for i in 0..<3 { try n.exec("INSERT INTO orders (note) VALUES (?)", [.text("next block \(i)")]) }
            XCTAssertEqual(
                try n.db.rows("SELECT id FROM orders WHERE note LIKE 'next block%' ORDER BY id").map { $0.int(0) },
                [0, 1, 2].map { KeyBlocks.range(2).lowerBound + Int64($0) }, "\(brand)")
        }
    }
}
