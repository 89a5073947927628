import Foundation
import XCTest

@testable import DataJoin

/// MariaDB fires no trigger for the rows its foreign keys' cascades change, so a tracked
/// parent's own triggers capture them (`MariaDBCascadeCapture`, docs/capture.md). Before, a
/// parent's key change reached peers as a delete and an insert, and their own cascade deleted
/// the children (silent loss, found from outside).
final class MariaDBCascadeTests: ScenarioTestCase {
    var folder: URL!
    override func setUpWithError() throws {
        try super.setUpWithError()
        folder = try TestDatabases.tempFolder("mcascade")
    }

    func bundles(_ name: String) throws -> URL { try TestDatabases.subfolder(folder, name) }

    func pair(_ tag: String, _ target: Brand, schema: String, tables: [String]) throws -> (TestNode, TestNode) {
        let a = try TestNode("a\(tag)", .mariadb, folder: folder, table: schema, track: tables, keyBlocks: false)
        let b = try TestNode("b\(tag)", target, folder: folder, table: schema, track: tables, keyBlocks: false)
        try trustAll([a, b])
        return (a, b)
    }

    func sync(_ from: TestNode, _ to: TestNode) throws -> ImportReport? {
        let out = try bundles("\(from.name)-\(UUID().uuidString.prefix(6))")
        try from.export(to: out)
        return try to.ingest([out.path]).imported
    }

    static let schema = """
        CREATE TABLE gp (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(20));
        CREATE TABLE gc (pid INTEGER NOT NULL, n INTEGER NOT NULL, v VARCHAR(20), PRIMARY KEY (pid, n),
          FOREIGN KEY (pid) REFERENCES gp (id) ON UPDATE CASCADE ON DELETE CASCADE);
        CREATE TABLE gg (id INTEGER NOT NULL PRIMARY KEY, pid INTEGER, n INTEGER,
          FOREIGN KEY (pid, n) REFERENCES gc (pid, n) ON UPDATE CASCADE ON DELETE SET NULL);
        CREATE TABLE gs (id INTEGER NOT NULL PRIMARY KEY, pid INTEGER,
          FOREIGN KEY (pid) REFERENCES gp (id) ON UPDATE SET NULL ON DELETE SET NULL);
        CREATE TABLE gt (id INTEGER NOT NULL PRIMARY KEY, up INTEGER,
          FOREIGN KEY (up) REFERENCES gt (id) ON DELETE CASCADE);
        """
    static let tables = ["gp", "gc", "gg", "gs", "gt"]

    /// A key change cascades into a child whose key holds the parent's (a delete and an insert
    /// there), a grandchild referencing that key, and a `SET NULL` child; a delete cascades two
    /// levels and sets a grandchild's reference NULL; a self-referencing tree is deleted from its
    /// root. Every target ends with the origin's rows and nothing held.
    func testCascadesOfAMariaDBOriginReachEveryBrand() throws {
        provokesRefusals = true
        for target in [Brand.sqlite, .postgres, .mariadb] {
            let tag = "c\(target)"
            let (a, b) = try pair(tag, target, schema: Self.schema, tables: Self.tables)
            try a.exec("INSERT INTO gp VALUES (1, 'a'), (2, 'b')")
            try a.exec("INSERT INTO gc VALUES (1, 1, 'x'), (1, 2, 'y'), (2, 1, 'z')")
            try a.exec("INSERT INTO gg VALUES (10, 1, 1), (11, 1, 2), (12, 2, 1), (13, NULL, NULL)")
            try a.exec("INSERT INTO gs VALUES (20, 1), (21, 2)")
            try a.exec("INSERT INTO gt VALUES (1, NULL), (2, 1), (3, 2), (4, 2), (5, 3), (6, NULL)")
            _ = try sync(a, b)
            func same(_ step: String) throws {
                for t in Self.tables { XCTAssertEqual(try b.rows(t), try a.rows(t), "\(tag) \(step) \(t)") }
            }
            try same("inserts")
            try a.exec("UPDATE gp SET id = 5 WHERE id = 1")
            XCTAssertEqual(
                try a.rows("gg"), [["10", "5", "1"], ["11", "5", "2"], ["12", "2", "1"], ["13", "NULL", "NULL"]])
            var report = try sync(a, b)
            try same("key change")
            XCTAssertEqual(report?.stillHeld, 0, tag)
            try a.exec("DELETE FROM gp WHERE id = 5")
            try a.exec("DELETE FROM gt WHERE id = 1")
            XCTAssertEqual(try a.rows("gc"), [["2", "1", "z"]])
            XCTAssertEqual(try a.rows("gt"), [["6", "NULL"]])
            report = try sync(a, b)
            try same("deletes")
            XCTAssertEqual(report?.stillHeld, 0, tag)
        }
    }

    /// A MariaDB origin deletes a parent and inserts its key again; a target that applies the
    /// insert before the delete (bundles out of order) kept the children the origin's cascade
    /// had deleted or set NULL, with nothing held (found from outside). Those changes now travel.
    func testAParentDeletedAndInsertedAgainConvergesInAnyOrder() throws {
        provokesRefusals = true
        let schema = """
            CREATE TABLE rp (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(20));
            CREATE TABLE rc (id INTEGER NOT NULL PRIMARY KEY, pid INTEGER,
              FOREIGN KEY (pid) REFERENCES rp (id) ON DELETE CASCADE);
            CREATE TABLE rn (id INTEGER NOT NULL PRIMARY KEY, pid INTEGER,
              FOREIGN KEY (pid) REFERENCES rp (id) ON DELETE SET NULL);
            """
        let tables = ["rp", "rc", "rn"]
        for target in [Brand.sqlite, .postgres, .mariadb] {
            for order in [[1, 2, 3], [1, 3, 2], [3, 2, 1], [2, 3, 1]] {
                let tag = "r\(target)\(order.map(String.init).joined())"
                let (a, b) = try pair(tag, target, schema: schema, tables: tables)
                let steps = BundleSteps(a, in: folder, tag: tag)
                try steps.step([
                    "INSERT INTO rp VALUES (1, 'old')", "INSERT INTO rc VALUES (10, 1), (11, 1)",
                    "INSERT INTO rn VALUES (50, 1)",
                ])
                try steps.step(["DELETE FROM rp WHERE id = 1"])
                try steps.step(["INSERT INTO rp VALUES (1, 'new')"])
                try steps.deliver(order, to: b)
                _ = try Importer.run(b.db)
                for t in tables { XCTAssertEqual(try b.rows(t), try a.rows(t), "\(tag) \(t)") }
                XCTAssertEqual(try b.db.scalar("SELECT count(*) FROM ds_change_held"), .integer(0), tag)
            }
        }
    }

    /// A parent's triggers name its tracked children, so they follow `track` and `untrack`: a
    /// child tracked later is captured; once untracked, its table can be dropped and the
    /// parent's deletes still work. A child whose cascading parent is not tracked is warned of.
    func testCascadeCaptureFollowsTrackAndUntrack() throws {
        provokesRefusals = true
        let schema = """
            CREATE TABLE tp (id INTEGER NOT NULL PRIMARY KEY);
            CREATE TABLE tc (id INTEGER NOT NULL PRIMARY KEY, pid INTEGER,
              FOREIGN KEY (pid) REFERENCES tp (id) ON UPDATE CASCADE ON DELETE CASCADE);
            """
        let a = try TestNode("at", .mariadb, folder: folder, table: schema, track: [], keyBlocks: false)
        let b = try TestNode("bt", .sqlite, folder: folder, table: schema, track: ["tp", "tc"], keyBlocks: false)
        try trustAll([a, b])
        let child = try Tracker.track(a.db, tables: ["tc"], keyBlocks: false)
        XCTAssertTrue(
            child[0].warnings.contains { $0.contains("its foreign key to tp cascades") && $0.contains("track tp too") },
            "\(child[0].warnings)")
        let parent = try Tracker.track(a.db, tables: ["tp"], keyBlocks: false)
        XCTAssertFalse(parent[0].warnings.contains { $0.contains("cascade") }, "\(parent[0].warnings)")
        try a.exec("INSERT INTO tp VALUES (1), (2)")
        try a.exec("INSERT INTO tc VALUES (10, 1), (11, 2)")
        _ = try sync(a, b)
        try a.exec("UPDATE tp SET id = 3 WHERE id = 1")
        try a.exec("DELETE FROM tp WHERE id = 2")
        XCTAssertEqual(try sync(a, b)?.stillHeld, 0)
        XCTAssertEqual(try b.rows("tc"), [["10", "3"]])
        // A cascade trigger dropped by hand is drift (found from outside: the children its
        // cascade changed stayed on this node while check said OK); track installs it again.
        let cascades = MariaDBDialect.cascadeTriggerNames("tp")
        try a.exec("DROP TRIGGER \(cascades.update)")
        let checked = try CLI.run(["check", "--db", a.url])
        XCTAssertEqual(checked.status, 1)
        XCTAssertTrue(checked.stderr.contains("table tp lost capture trigger(s) \(cascades.update)"), checked.stderr)
        // Its cure names the tables the cascades reach (found from outside: backfilling the
        // parent alone left the children its key change deleted on the peer).
        XCTAssertTrue(
            checked.stderr.contains("and 'datajoin track --backfill' each table its foreign keys cascade to"),
            checked.stderr)
        try CLI.ok(["track", "--db", a.url, "--no-key-blocks", "tp"])
        try CLI.ok(["check", "--db", a.url])
        // A foreign key dropped or added since track: the cascade capture written for the keys
        // there were is out of date (found from outside: a dropped key's trigger went on
        // sending deletes, an added one's cascades were not captured, and check said OK).
        func casdCount() throws -> Value {
            try a.db.scalar(
                "SELECT count(*) FROM information_schema.triggers WHERE trigger_schema = DATABASE() AND trigger_name = ?",
                [.text(cascades.delete)])
        }
        XCTAssertEqual(try casdCount(), .integer(1))
        let changed = "table tp has foreign keys added, dropped or changed since 'datajoin track'"
        for (ddl, triggers) in [
            ("ALTER TABLE tc DROP FOREIGN KEY tc_ibfk_1", 0),
            ("ALTER TABLE tc ADD CONSTRAINT tc_again FOREIGN KEY (pid) REFERENCES tp (id) ON DELETE CASCADE", 1),
        ] {
            try a.exec(ddl)
            let stale = try CLI.run(["check", "--db", a.url])
            XCTAssertEqual(stale.status, 1, ddl)
            XCTAssertTrue(stale.stderr.contains(changed), "\(ddl): \(stale.stderr)")
            XCTAssertTrue(
                try CLI.ok(["track", "--db", a.url, "--no-key-blocks", "tp"]).stderr.contains(
                    "run 'datajoin track --backfill' for each table its foreign keys cascade to"), ddl)
            try CLI.ok(["check", "--db", a.url])
            XCTAssertEqual(try casdCount(), .integer(Int64(triggers)), ddl)
        }
        // A key that only refuses has no cascade to capture: no drift (found in review).
        try a.exec("CREATE TABLE tr (id INTEGER NOT NULL PRIMARY KEY, pid INTEGER)")
        try CLI.ok(["track", "--db", a.url, "--no-key-blocks", "tr"])
        try a.exec("ALTER TABLE tr ADD FOREIGN KEY (pid) REFERENCES tp (id)")
        try CLI.ok(["check", "--db", a.url])
        try CLI.ok(["untrack", "--db", a.url, "tr"])
        let untracked = try Tracker.untrack(a.db, tables: ["tp"])
        XCTAssertTrue(untracked.contains { $0.contains("its foreign key to tp cascades") }, "\(untracked)")
        _ = try Tracker.track(a.db, tables: ["tp"], keyBlocks: false)
        XCTAssertEqual(try Tracker.untrack(a.db, tables: ["tc"]), [])
        let triggers = try a.db.rows(
            "SELECT action_statement FROM information_schema.triggers WHERE trigger_schema = DATABASE() AND event_object_table = 'tp'",
            [])
        XCTAssertFalse(triggers.contains { ($0.string(0) ?? "").contains("`tc`") }, "tp's triggers still name tc")
        try a.exec("DROP TABLE tc")
        try a.exec("DELETE FROM tp WHERE id = 3")
        XCTAssertEqual(try a.rows("tp"), [])
    }

    /// A row that one key or path deletes and another sets NULL ends deleted on every target,
    /// whichever key is declared first: a row referencing one parent twice, and a row below
    /// two children of it (written as an update after the delete, peers refused the bundle for
    /// an impossible stamp).
    func testARowThatOneKeyDeletesAndAnotherSetsNullEndsDeleted() throws {
        let two = "CREATE TABLE tt (id INTEGER NOT NULL PRIMARY KEY, a INTEGER, b INTEGER, "
        for (n, tables) in [
            two
                + "FOREIGN KEY (a) REFERENCES tp (id) ON DELETE CASCADE, FOREIGN KEY (b) REFERENCES tp (id) ON DELETE SET NULL);",
            two
                + "FOREIGN KEY (b) REFERENCES tp (id) ON DELETE SET NULL, FOREIGN KEY (a) REFERENCES tp (id) ON DELETE CASCADE);",
            """
            CREATE TABLE ta (id INTEGER NOT NULL PRIMARY KEY, pid INTEGER, FOREIGN KEY (pid) REFERENCES tp (id) ON DELETE CASCADE);
            CREATE TABLE tb (id INTEGER NOT NULL PRIMARY KEY, pid INTEGER, FOREIGN KEY (pid) REFERENCES tp (id) ON DELETE CASCADE);
            """ + two
                + "FOREIGN KEY (a) REFERENCES ta (id) ON DELETE CASCADE, FOREIGN KEY (b) REFERENCES tb (id) ON DELETE SET NULL);",
            """
            CREATE TABLE ta (id INTEGER NOT NULL PRIMARY KEY, pid INTEGER, FOREIGN KEY (pid) REFERENCES tp (id) ON DELETE CASCADE);
            CREATE TABLE tb (id INTEGER NOT NULL PRIMARY KEY, pid INTEGER, FOREIGN KEY (pid) REFERENCES tp (id) ON DELETE CASCADE);
            """ + two
                + "FOREIGN KEY (b) REFERENCES tb (id) ON DELETE SET NULL, FOREIGN KEY (a) REFERENCES ta (id) ON DELETE CASCADE);",
        ].enumerated() {
            let schema = "CREATE TABLE tp (id INTEGER NOT NULL PRIMARY KEY);\n" + tables
            let names = n < 2 ? ["tp", "tt"] : ["tp", "ta", "tb", "tt"]
            for target in [Brand.sqlite, .postgres] {
                let tag = "w\(n)\(target)"
                let (a, b) = try pair(tag, target, schema: schema, tables: names)
                try a.exec("INSERT INTO tp VALUES (1), (2)")
                if n >= 2 {
                    try a.exec("INSERT INTO ta VALUES (1, 1), (2, 2)")
                    try a.exec("INSERT INTO tb VALUES (1, 1), (2, 2)")
                }
                try a.exec("INSERT INTO tt VALUES (10, 1, 1), (11, 2, 1), (12, 1, 2)")
                _ = try sync(a, b)
                try a.exec("DELETE FROM tp WHERE id = 1")
                XCTAssertEqual(try a.rows("tt"), [["11", "2", "NULL"]], tag)
                XCTAssertEqual(try sync(a, b)?.stillHeld, 0, tag)
                for t in names { XCTAssertEqual(try b.rows(t), try a.rows(t), "\(tag) \(t)") }
            }
        }
    }

    /// MariaDB runs a row's BEFORE trigger, and its AFTER UPDATE trigger, also when `DELETE
    /// IGNORE` or `UPDATE IGNORE` then skips the row (a foreign key or unique index refused it):
    /// peers deleted children the origin kept, and received a key change that never happened
    /// (found from outside). Only what happened travels.
    func testRowsThatIgnoreSkipsSendNothing() throws {
        provokesRefusals = true
        let schema = """
            CREATE TABLE ip (id INTEGER NOT NULL PRIMARY KEY, code INTEGER UNIQUE, q INTEGER CHECK (q >= 0));
            CREATE TABLE ic (id INTEGER NOT NULL PRIMARY KEY, pid INTEGER,
              FOREIGN KEY (pid) REFERENCES ip (id) ON DELETE CASCADE ON UPDATE CASCADE);
            CREATE TABLE ir (id INTEGER NOT NULL PRIMARY KEY, pid INTEGER, FOREIGN KEY (pid) REFERENCES ip (id));
            """
        let tables = ["ip", "ic", "ir"]
        for target in [Brand.sqlite, .postgres] {
            let tag = "i\(target)"
            let (a, b) = try pair(tag, target, schema: schema, tables: tables)
            try a.exec("INSERT INTO ip VALUES (1, 1, 0), (2, 2, 0), (3, 3, 0)")
            try a.exec("INSERT INTO ic VALUES (10, 1), (11, 2), (12, 3)")
            try a.exec("INSERT INTO ir VALUES (20, 2)")
            _ = try sync(a, b)
            try a.exec("DELETE IGNORE FROM ip WHERE id IN (1, 2)")
            // The skipped row's pending cascade must not ride on another table's next rows.
            try a.exec("INSERT INTO ir VALUES (21, 2)")
            try a.exec("UPDATE ir SET pid = 2 WHERE id = 21")
            try a.exec("DELETE FROM ir WHERE id = 21")
            try a.exec("UPDATE IGNORE ip SET id = 5 WHERE id = 2")
            try a.exec("UPDATE IGNORE ip SET code = 3 WHERE id = 2")
            try a.exec("UPDATE IGNORE ip SET id = 6, code = 6 WHERE id = 3")
            // A CHECK constraint refuses before the AFTER trigger: a key change (whose BEFORE
            // trigger staged its children's moves) and a plain column.
            try a.exec("UPDATE IGNORE ip SET id = 7, q = -1 WHERE id = 2")
            try a.exec("UPDATE IGNORE ip SET q = q - 1")
            try a.exec("INSERT INTO ir VALUES (22, 6)")
            XCTAssertEqual(try a.rows("ip"), [["2", "2", "0"], ["6", "6", "0"]], tag)
            XCTAssertEqual(try a.rows("ic"), [["11", "2"], ["12", "6"]], tag)
            XCTAssertEqual(try sync(a, b)?.stillHeld, 0, tag)
            for t in tables { XCTAssertEqual(try b.rows(t), try a.rows(t), "\(tag) \(t)") }
        }
    }

    /// A MariaDB node that tracked its tables before (schema version 11) has no cascade
    /// triggers; its first command after the upgrade installs them.
    func testANodeUpgradedFromAnEarlierVersionCapturesItsCascades() throws {
        provokesRefusals = true
        let schema = """
            CREATE TABLE up (id INTEGER NOT NULL PRIMARY KEY);
            CREATE TABLE uc (id INTEGER NOT NULL PRIMARY KEY, pid INTEGER,
              FOREIGN KEY (pid) REFERENCES up (id) ON UPDATE CASCADE ON DELETE CASCADE);
            """
        let (a, b) = try pair("u", .sqlite, schema: schema, tables: ["up", "uc"])
        let names = MariaDBDialect.cascadeTriggerNames("up")
        func triggers() throws -> Int64? {
            try a.db.scalar(
                "SELECT count(*) FROM information_schema.triggers WHERE trigger_schema = DATABASE() AND trigger_name IN (?, ?)",
                [.text(names.delete), .text(names.update)]
            ).asInt64
        }
        XCTAssertEqual(try triggers(), 2)
        for name in [names.delete, names.update] { try a.exec("DROP TRIGGER `\(name)`") }
        try a.exec("UPDATE ds_node SET schema_version = 11")
        _ = try NodeIdentity.load(a.db)  // upgrades
        XCTAssertEqual(try triggers(), 2)
        XCTAssertEqual(try a.db.scalar("SELECT schema_version FROM ds_node"), .integer(Int64(SyncSchema.version)))
        try a.exec("INSERT INTO up VALUES (1)")
        try a.exec("INSERT INTO uc VALUES (10, 1)")
        _ = try sync(a, b)
        try a.exec("UPDATE up SET id = 2 WHERE id = 1")
        XCTAssertEqual(try sync(a, b)?.stillHeld, 0)
        XCTAssertEqual(try b.rows("uc"), [["10", "2"]])
    }

    /// InnoDB cascades at most 14 levels below the row deleted and refuses the delete beyond
    /// that; the triggers capture each level it reaches. 13 and 14 levels below the root travel
    /// whole; at 15 the origin refuses the delete and nothing is captured.
    func testASelfReferencingChainDeletesAsDeepAsInnoDBCascades() throws {
        provokesRefusals = true
        let schema = """
            CREATE TABLE sc (id INTEGER NOT NULL PRIMARY KEY, up INTEGER,
              FOREIGN KEY (up) REFERENCES sc (id) ON DELETE CASCADE);
            """
        for depth in [13, 14, 15] {
            let (a, b) = try pair("d\(depth)", .sqlite, schema: schema, tables: ["sc"])
            try a.exec("INSERT INTO sc VALUES (0, NULL)")
            for i in 1...depth { try a.exec("INSERT INTO sc VALUES (\(i), \(i - 1))") }
            try a.exec("INSERT INTO sc VALUES (100, NULL)")
            _ = try sync(a, b)
            let before = try a.db.scalar("SELECT max(id) FROM ds_change_outbox").asInt64 ?? 0
            if depth > 14 {
                XCTAssertThrowsError(try a.exec("DELETE FROM sc WHERE id = 0"), "\(depth)")
            } else {
                try a.exec("DELETE FROM sc WHERE id = 0")
            }
            XCTAssertEqual(try a.rows("sc").count, depth > 14 ? depth + 2 : 1, "\(depth)")
            let deletes = try a.db.scalar(
                "SELECT count(*) FROM ds_change_outbox WHERE object_operation = 'D' AND id > ?", [.integer(before)])
            XCTAssertEqual(
                deletes.asInt64, Int64(depth > 14 ? 0 : depth + 1), "\(depth): every level's delete captured")
            XCTAssertEqual(try sync(a, b)?.stillHeld ?? 0, 0, "\(depth)")
            XCTAssertEqual(try b.rows("sc"), try a.rows("sc"), "\(depth)")
        }
    }

    /// Each parent's triggers run at most `maxStatements` statements; tables with more paths of
    /// cascading children are warned of at `track`, and the first paths are still captured.
    func testCascadePathsUpToTheLimitAreCapturedAndMoreAreWarnedOf() throws {
        provokesRefusals = true
        let limit = MariaDBCascadeCapture.maxStatements
        for children in [limit - 1, limit, limit + 1, 3 * limit] {
            let names = (1...children).map { "lc\($0)" }
            let schema =
                "CREATE TABLE lp (id INTEGER NOT NULL PRIMARY KEY);\n"
                + names.map {
                    "CREATE TABLE \($0) (id INTEGER NOT NULL PRIMARY KEY, pid INTEGER, FOREIGN KEY (pid) REFERENCES lp (id) ON DELETE CASCADE);"
                }.joined(separator: "\n")
            let a = try TestNode("al\(children)", .mariadb, folder: folder, table: schema, track: [], keyBlocks: false)
            let tracked = try Tracker.track(a.db, tables: ["lp"] + names, keyBlocks: false)
            let warned = tracked.flatMap(\.warnings).filter { $0.contains("only the first are captured") }
            XCTAssertEqual(warned.count, children > limit ? 1 : 0, "\(children): \(warned)")
            try a.exec("INSERT INTO lp VALUES (1)")
            for n in names { try a.exec("INSERT INTO \(n) VALUES (1, 1)") }
            let before = try a.db.scalar("SELECT count(*) FROM ds_change_outbox").asInt64 ?? 0
            try a.exec("DELETE FROM lp WHERE id = 1")
            let deletes = try a.db.scalar(
                "SELECT count(*) FROM ds_change_outbox WHERE object_operation = 'D' AND object_table LIKE 'lc%' AND id > ?",
                [.integer(before)]
            ).asInt64
            XCTAssertEqual(deletes, Int64(min(children, limit)), "\(children)")
        }
    }
}
