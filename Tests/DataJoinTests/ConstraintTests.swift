import Foundation
import XCTest

@testable import DataJoin

/// Foreign keys between tracked tables, unique indexes, and keys from local sequences
/// (docs/conflict-rules.md, "Constraints").
final class ConstraintTests: ScenarioTestCase {
    var folder: URL!
    override func setUpWithError() throws {
        try super.setUpWithError()
        folder = try TestDatabases.tempFolder("fk")
    }
    func bundles(_ name: String) throws -> URL { try TestDatabases.subfolder(folder, name) }

    static func schema(_ brand: Brand, deferrable: Bool = true) -> String {
        let deferral = brand == .postgres && deferrable ? " DEFERRABLE INITIALLY IMMEDIATE" : ""
        return """
            CREATE TABLE customer (id TEXT PRIMARY KEY, name TEXT, email TEXT UNIQUE);
            CREATE TABLE purchase (id TEXT PRIMARY KEY, customer_id TEXT REFERENCES customer (id)\(deferral), item TEXT);
            CREATE TABLE staff (id TEXT PRIMARY KEY, name TEXT, reports_to TEXT REFERENCES staff (id)\(deferral));
            """
    }

    func nodes(_ b1: Brand, _ b2: Brand, deferrable: Bool = true) throws -> (TestNode, TestNode) {
        let tables = ["customer", "purchase", "staff"]
        let a = try TestNode("a", b1, folder: folder, table: Self.schema(b1, deferrable: deferrable), track: tables)
        let b = try TestNode("b", b2, folder: folder, table: Self.schema(b2, deferrable: deferrable), track: tables)
        try trustAll([a, b])
        return (a, b)
    }

    func sync(_ from: TestNode, _ to: TestNode) throws -> ImportReport? {
        let out = try bundles("\(from.name)-\(UUID().uuidString.prefix(6))")
        try from.export(to: out)
        return try to.ingest([out.path]).imported
    }

    func dump(_ n: TestNode) throws -> [[[String]]] {
        try ["customer", "purchase", "staff"].map { try n.rows($0) }
    }

    /// Children written before their parents (SQLite with deferred foreign keys, a self-reference
    /// pointing forward) apply in one bundle on a target that checks foreign keys.
    func testChildrenBeforeParentsInOneBundleSQLiteToPostgresDeferrable() throws { try childrenFirst(deferrable: true) }
    func testChildrenBeforeParentsInOneBundleSQLiteToPostgresNotDeferrable() throws {
        try childrenFirst(deferrable: false)
    }

    private func childrenFirst(deferrable: Bool) throws {
        let (a, b) = try nodes(.sqlite, .postgres, deferrable: deferrable)
        try a.db.retryingWrite { _ in
            try a.exec("PRAGMA defer_foreign_keys = ON")
            try a.exec("INSERT INTO purchase VALUES ('p1', 'c1', 'pen'), ('p2', 'c1', 'ink')")
            try a.exec("INSERT INTO staff VALUES ('s2', 'Bea', 's1'), ('s1', 'Ann', NULL)")
            try a.exec("INSERT INTO customer VALUES ('c1', 'Zoë', 'zoe@example.com')")
        }
        let report = try sync(a, b)
        XCTAssertEqual(report?.applied, 5)
        XCTAssertEqual(try b.db.scalar("SELECT count(*) FROM ds_change_held"), .integer(0))
        XCTAssertEqual(try dump(b), try dump(a))
        // Rows are written parents first (and a self-referencing table in one statement), so
        // even constraints that cannot be deferred hold nothing back.
        XCTAssertEqual(report?.held, 0)

        // Deleting parents with their children, children last at the origin.
        try a.db.retryingWrite { _ in
            try a.exec("PRAGMA defer_foreign_keys = ON")
            try a.exec("DELETE FROM customer WHERE id = 'c1'")
            try a.exec("DELETE FROM staff WHERE id = 's1'")
            try a.exec("DELETE FROM purchase")
            try a.exec("DELETE FROM staff")
        }
        _ = try sync(a, b)
        XCTAssertEqual(try b.db.scalar("SELECT count(*) FROM ds_change_held"), .integer(0))
        XCTAssertEqual(try dump(b), [[], [], []])
    }

    func testParentsAndChildrenPostgresToSQLite() throws {
        let (a, b) = try nodes(.postgres, .sqlite)
        try a.db.retryingWrite { _ in
            try a.exec("SET CONSTRAINTS ALL DEFERRED")
            try a.exec("INSERT INTO purchase VALUES ('p1', 'c1', 'pen')")
            try a.exec("INSERT INTO customer VALUES ('c1', 'Zoë', 'zoe@example.com')")
            try a.exec("INSERT INTO staff VALUES ('s2', 'Bea', 's1'), ('s1', 'Ann', NULL)")
        }
        XCTAssertEqual(try sync(a, b)?.applied, 4)
        XCTAssertEqual(try dump(b), try dump(a))
        XCTAssertEqual(try b.db.scalar("SELECT count(*) FROM pragma_foreign_key_check"), .integer(0))
    }

    /// One source transaction moves a child to a new parent and deletes the old one. The fast
    /// path wrote the delete first, and the target's `ON DELETE CASCADE` removed the child for
    /// good, silently (found from outside); without a cascade, the foreign key refused the
    /// fast path. Such a bundle goes change by change, in the source's order, on every brand.
    func testAChildMovedToANewParentSurvivesTheOldParentsCascade() throws {
        for (b1, b2) in [(Brand.sqlite, Brand.sqlite), (.sqlite, .postgres), (.postgres, .sqlite), (.sqlite, .mariadb)]
        {
            for cascade in [true, false] {
                let schema = """
                    CREATE TABLE par (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(20));
                    CREATE TABLE chc (id INTEGER NOT NULL PRIMARY KEY, pid INTEGER NOT NULL, v VARCHAR(20),
                      FOREIGN KEY (pid) REFERENCES par (id)\(cascade ? " ON DELETE CASCADE" : ""));
                    """
                let tag = "\(b1)\(b2)\(cascade)"
                let a = try TestNode(
                    "a\(tag)", b1, folder: folder, table: schema, track: ["par", "chc"], keyBlocks: false)
                let b = try TestNode(
                    "b\(tag)", b2, folder: folder, table: schema, track: ["par", "chc"], keyBlocks: false)
                try trustAll([a, b])
                try a.db.retryingWrite { _ in
                    try a.exec("INSERT INTO par VALUES (1, 'old')")
                    for i in 0..<5 { try a.exec("INSERT INTO chc VALUES (?, 1, 'child')", [.integer(Int64(10 + i))]) }
                }
                _ = try sync(a, b)
                try a.db.retryingWrite { _ in
                    try a.exec("INSERT INTO par VALUES (2, 'new')")
                    try a.exec("UPDATE chc SET pid = 2 WHERE id >= 12")
                    try a.exec("DELETE FROM chc WHERE id < 12")
                    try a.exec("DELETE FROM par WHERE id = 1")
                }
                _ = try sync(a, b)
                for t in ["par", "chc"] { XCTAssertEqual(try b.rows(t), try a.rows(t), "\(tag) \(t)") }
                XCTAssertEqual(try b.db.scalar("SELECT count(*) FROM chc").asInt64, 3, tag)
                XCTAssertEqual(Importer.retriedChangeByChange, 0, "no refusal: \(Importer.lastRefusal)")
            }
        }
    }

    /// A child whose parent was deleted here meanwhile: held with the database's reason, and no
    /// row is deleted to make room.
    func testForeignKeyViolationIsHeldNotResolved() throws {
        provokesRefusals = true  // the target's constraint refuses the change; held
        let (a, b) = try nodes(.sqlite, .postgres)
        try a.exec("INSERT INTO customer VALUES ('c1', 'Ann', NULL)")
        _ = try sync(a, b)
        try b.exec("DELETE FROM customer WHERE id = 'c1'")
        try a.exec("INSERT INTO purchase VALUES ('p9', 'c1', 'late order')")
        let report = try sync(a, b)
        XCTAssertEqual(report?.held, 1)
        let reason = try b.db.scalar("SELECT reason FROM ds_change_held").asString ?? ""
        XCTAssertTrue(reason.contains("foreign key constraint"), reason)
        XCTAssertEqual(try b.rows("purchase"), [])
        XCTAssertEqual(try b.rows("customer"), [])
    }

    /// Two nodes insert different keys with the same unique email: the second is held at each
    /// node with the database's reason; both rows survive where they were written.
    func testUniqueViolationIsHeldNotResolved() throws {
        provokesRefusals = true  // the target's constraint refuses the change; held
        let (a, b) = try nodes(.postgres, .sqlite)
        try a.exec("INSERT INTO customer VALUES ('ca', 'Ann at a', 'ann@example.com')")
        try b.exec("INSERT INTO customer VALUES ('cb', 'Ann at b', 'ann@example.com')")
        let toB = try sync(a, b)
        let toA = try sync(b, a)
        XCTAssertEqual(toB?.held, 1)
        XCTAssertEqual(toA?.held, 1)
        XCTAssertEqual(try a.rows("customer").map { $0[0] }, ["ca"])
        XCTAssertEqual(try b.rows("customer").map { $0[0] }, ["cb"])
        let reasonA = try a.db.scalar("SELECT reason FROM ds_change_held").asString ?? ""
        let reasonB = try b.db.scalar("SELECT reason FROM ds_change_held").asString ?? ""
        XCTAssertTrue(reasonA.contains("duplicate key value violates unique constraint"), reasonA)
        XCTAssertTrue(reasonB.contains("UNIQUE constraint failed: customer.email"), reasonB)
        // The operator fixes one email; the held insert then applies everywhere.
        try b.exec("UPDATE customer SET email = 'ann.b@example.com' WHERE id = 'cb'")
        _ = try sync(b, a)
        _ = try Importer.run(b.db)
        XCTAssertEqual(try a.rows("customer").map { $0[0] }, ["ca", "cb"])
        XCTAssertEqual(try b.rows("customer").map { $0[0] }, ["ca", "cb"])
        XCTAssertEqual(try a.rows("customer"), try b.rows("customer"))
    }

    func testTrackWarnsAboutPostgresSequenceKeys() throws {
        let n = try TestNode(
            "p", .postgres, folder: folder,
            table:
                "CREATE TABLE auto (id serial PRIMARY KEY, v text); CREATE TABLE ident (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text)",
            track: [])
        let r = try CLI.ok(["track", "--db", n.url, "auto", "ident"])
        // One warning per key, with what to do (a key block from the hub; docs/keys.md).
        for t in ["auto", "ident"] {
            XCTAssertTrue(r.stderr.contains("\(t).id: this node has no key block yet"), r.stderr)
        }
        XCTAssertTrue(r.stderr.contains("datajoin key-blocks grant --node NAME"), r.stderr)
        XCTAssertFalse(r.stderr.contains("comes from a local sequence"), r.stderr)
    }
}
