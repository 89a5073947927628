import Foundation
import XCTest

@testable import DataJoin

/// The seed's scenario, driven through the real CLI: testapp1 inserts ord2, updates its
/// description, deletes it; each step is exported, the file copied, ingested on testapp2 and
/// checked there with a query. Then the same back the other way. Every brand pairing.
final class SeedScenarioTests: ScenarioTestCase {
    func testSQLiteToSQLite() throws { try scenario(.sqlite, .sqlite) }
    func testPostgresToPostgres() throws { try scenario(.postgres, .postgres) }
    func testSQLiteToPostgres() throws { try scenario(.sqlite, .postgres) }
    func testPostgresToSQLite() throws { try scenario(.postgres, .sqlite) }
    // MariaDB with every brand (each scenario runs both ways).
    func testMariaDBToMariaDB() throws { try scenario(.mariadb, .mariadb) }
    func testSQLiteToMariaDB() throws { try scenario(.sqlite, .mariadb) }
    func testMariaDBToSQLite() throws { try scenario(.mariadb, .sqlite) }
    func testPostgresToMariaDB() throws { try scenario(.postgres, .mariadb) }
    func testMariaDBToPostgres() throws { try scenario(.mariadb, .postgres) }

    private func scenario(_ brand1: Brand, _ brand2: Brand) throws {
        let folder = try TestDatabases.tempFolder("seed")
        let app1 = try TestNode("testapp1", brand1, folder: folder, viaCLI: true)
        let app2 = try TestNode("testapp2", brand2, folder: folder, viaCLI: true)
        for (a, b) in [(app1, app2), (app2, app1)] {
            let key = try CLI.ok(["key", "--db", b.url]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            try CLI.ok(["trust", "--db", a.url, b.name, key])
        }
        try runSteps(from: app1, to: app2, key: "ord2", folder: folder.appendingPathComponent("1to2"))
        try runSteps(from: app2, to: app1, key: "ord3", folder: folder.appendingPathComponent("2to1"))
        // A quiet round trip: nothing comes back to where it started. testapp1 confirms what it
        // took in from testapp2 (receipts only), once; testapp2 has nothing to say, and receipts
        // are not answered.
        for round in 1...2 {
            var written: [(TestNode, URL)] = []
            for n in [app1, app2] {
                let out = folder.appendingPathComponent("echo\(round)-\(n.name)")
                try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
                let r = try CLI.ok(["export", "--db", n.url, "--to", out.path])
                XCTAssertTrue(
                    r.stdout.hasPrefix("nothing new to export") || r.stdout.contains("\nnothing new to export"),
                    r.stdout)
                let files = try FileManager.default.contentsOfDirectory(atPath: out.path)
                XCTAssertEqual(
                    files,
                    round == 1 && n === app1
                        ? ["\(n.name)~~receipts_000000000001-000000000001_\(try n.epoch8()).djb"] : [],
                    "round \(round)")
                written.append((n, out))
            }
            for (n, out) in written { try CLI.ok(["ingest", "--db", (n === app1 ? app2 : app1).url, out.path]) }
        }
    }

    private func runSteps(from a: TestNode, to b: TestNode, key: String, folder: URL) throws {
        let outbox = folder.appendingPathComponent("out"), stick = folder.appendingPathComponent("usb")
        for f in [outbox, stick] { try FileManager.default.createDirectory(at: f, withIntermediateDirectories: true) }

        func step() throws {
            let r = try CLI.ok(["export", "--db", a.url, "--to", outbox.path])
            let written = r.stdout.split(separator: "\n").filter { $0.hasSuffix(".djb") }
            XCTAssertEqual(written.count, 1, r.stdout)
            for path in written {
                let dest = stick.appendingPathComponent((String(path) as NSString).lastPathComponent)
                try FileManager.default.copyItem(atPath: String(path), toPath: dest.path)
            }
            try CLI.ok(["ingest", "--db", b.url, stick.path])
        }

        try a.exec(
            "INSERT INTO sales_order (order_id, order_type, description, customer_id, quantity, order_date) VALUES (?, 'online', 'first order', 'cust1', '2', '2025-06-24')",
            [.text(key)])
        try step()
        XCTAssertEqual(
            try b.db.rows(
                "SELECT order_id, order_type, description, customer_id, quantity, order_date, product_type_name FROM sales_order WHERE order_id = ?",
                [.text(key)]
            )
            .map { $0.values },
            [
                [
                    .text(key), .text("online"), .text("first order"), .text("cust1"), .text("2"), .text("2025-06-24"),
                    .null,
                ]
            ])

        try a.exec("UPDATE sales_order SET description = 'changed description' WHERE order_id = ?", [.text(key)])
        try step()
        XCTAssertEqual(
            try b.db.scalar("SELECT description FROM sales_order WHERE order_id = ?", [.text(key)]),
            .text("changed description"))
        XCTAssertEqual(try a.rows(), try b.rows())

        try a.exec("DELETE FROM sales_order WHERE order_id = ?", [.text(key)])
        try step()
        XCTAssertEqual(
            try b.db.scalar("SELECT count(*) FROM sales_order WHERE order_id = ?", [.text(key)]), .integer(0))
        XCTAssertEqual(try a.rows(), try b.rows())
    }
}
