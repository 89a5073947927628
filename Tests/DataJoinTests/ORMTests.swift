import Foundation
import XCTest

@testable import DataJoin

/// Issue 13: a real ORM (SQLAlchemy, Tests/ORM/orders_app.py) is the application. It creates
/// customers and their orders the way such an app does (ids from the database, children linked
/// to the parent's new id) on PostgreSQL and MariaDB nodes offline; DataJoin is driven through
/// its CLI alone. Everything syncs, through a hub, with no row merged and every order still
/// under its customer. On SQLite, which cannot draw ids from a block, `track` refuses the ORM's
/// tables until told, and the collision that then comes is reported by `check`.
final class ORMTests: XCTestCase {
    struct Node {
        var name: String
        var url: String
        var ormURL: String
    }

    static func python() throws -> String {
        if let p = ProcessInfo.processInfo.environment["DATAJOIN_TEST_PYTHON"], !p.isEmpty { return p }
        if ProcessInfo.processInfo.environment["DATAJOIN_REQUIRE_ORM"] == "1" {
            XCTFail("DATAJOIN_TEST_PYTHON is not set but DATAJOIN_REQUIRE_ORM=1: the ORM test must run")
        }
        throw XCTSkip("no Python with SQLAlchemy: set DATAJOIN_TEST_PYTHON (Scripts/test.sh does)")
    }

    static let app = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ORM/orders_app.py").path

    @discardableResult
    func orm(_ n: Node, _ args: [String], line: UInt = #line) throws -> String {
        let r = try CLI.runProgram(URL(fileURLWithPath: try Self.python()), [Self.app, n.ormURL] + args)
        XCTAssertEqual(r.status, 0, "orders_app.py \(args) on \(n.name): \(r.output)", line: line)
        return r.output
    }

    func node(_ name: String, _ brand: Brand, in folder: URL) throws -> Node {
        let url = try TestDatabases.create(brand, name: name, in: folder)
        let ormURL: String
        switch brand {
        case .sqlite: ormURL = "sqlite:///" + url
        case .postgres: ormURL = url.replacingOccurrences(of: "postgresql://", with: "postgresql+psycopg2://")
        case .mariadb: ormURL = url.replacingOccurrences(of: "mariadb://", with: "mariadb+pymysql://")
        }
        let n = Node(name: name, url: url, ormURL: ormURL)
        try orm(n, ["create"])
        try CLI.ok(["init", "--db", url, "--node", name])
        return n
    }

    func list(_ n: Node) throws -> [[String: Any]] {
        let out = try orm(n, ["list"])
        return try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]] ?? []
    }

    func testAnORMCreatesObjectsOnEveryNodeAndTheySyncWithoutCollisions() throws {
        _ = try Self.python()
        _ = try TestDatabases.requirePostgres()
        let folder = try TestDatabases.tempFolder("orm")
        let hub = try node("hub", .postgres, in: folder)
        var writers = [hub, try node("lap", .postgres, in: folder)]
        if TestDatabases.availableBrands.contains(.mariadb) { writers.append(try node("maria", .mariadb, in: folder)) }
        let field = try node("field", .sqlite, in: folder)
        let all = writers + [field]
        try CLI.ok(["key-blocks", "authority", "--db", hub.url])
        for n in writers.dropFirst() {
            let block = try CLI.ok(["key-blocks", "grant", "--db", hub.url, "--node", n.name]).stdout
            try CLI.ok(["key-blocks", "add", "--db", n.url, block.trimmingCharacters(in: .whitespacesAndNewlines)])
        }
        for n in writers {
            let r = try CLI.ok(["track", "--db", n.url, "customer", "purchase"])
            XCTAssertTrue(r.stdout.contains("key block") || r.stderr.contains("key block"), "\(n.name): \(r)")
        }
        // SQLite: the ORM's tables have ids SQLite fills in; refused until told.
        let refused = try CLI.run(["track", "--db", field.url, "customer", "purchase"])
        XCTAssertEqual(refused.status, 64, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("customer.id is an INTEGER PRIMARY KEY"), refused.stderr)
        try CLI.ok(["track", "--db", field.url, "--no-key-blocks", "customer", "purchase"])
        for a in all {
            let key = try CLI.ok(["key", "--db", a.url]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            for b in all where b.name != a.name { try CLI.ok(["trust", "--db", b.url, a.name, key]) }
        }
        // Offline: each writer's application creates 20 customers with two orders each.
        for n in writers { try orm(n, ["add", n.name, "20"]) }
        func sync() throws {
            let drop = try TestDatabases.subfolder(folder, "drop-\(UUID().uuidString.prefix(6))")
            for n in all where n.name != hub.name {
                try CLI.ok(["export", "--db", n.url, "--to", drop.path])
                try CLI.ok(["ingest", "--db", hub.url, drop.path])
            }
            let relay = try TestDatabases.subfolder(folder, "relay-\(UUID().uuidString.prefix(6))")
            try CLI.ok(["export", "--db", hub.url, "--to", relay.path, "--relay"])
            for n in all where n.name != hub.name { try CLI.ok(["ingest", "--db", n.url, relay.path]) }
        }
        try sync()
        // The field laptop's application works on every order through the ORM (updates).
        try orm(field, ["ship"])
        try sync()
        let expected = try list(hub)
        XCTAssertEqual(expected.count, 20 * writers.count)
        for n in all {
            let got = try list(n)
            XCTAssertEqual(
                try JSONSerialization.data(withJSONObject: got, options: .sortedKeys),
                try JSONSerialization.data(withJSONObject: expected, options: .sortedKeys), n.name)
            XCTAssertEqual(try CLI.run(["check", "--db", n.url]).status, 0, n.name)
            XCTAssertTrue(try CLI.ok(["status", "--db", n.url, "--json"]).stdout.contains("\"conflicts\":0,"), n.name)
        }
        // Every customer kept its two orders, all shipped, and its ids came from its node's block.
        for (i, w) in writers.enumerated() {
            let mine = expected.filter { ($0["name"] as? String)?.hasPrefix("\(w.name) ") ?? false }
            XCTAssertEqual(mine.count, 20, w.name)
            let block = KeyBlocks.range(Int64(i + 1))
            for c in mine {
                XCTAssertTrue(block.contains((c["id"] as? NSNumber)?.int64Value ?? -1), "\(w.name) \(c)")
                let orders = c["orders"] as? [[Any]] ?? []
                XCTAssertEqual(orders.count, 2, "\(c)")
                XCTAssertTrue(orders.allSatisfy { ($0[2] as? String) == "shipped" }, "\(c)")
                XCTAssertTrue(orders.allSatisfy { block.contains(($0[0] as? NSNumber)?.int64Value ?? -1) }, "\(c)")
            }
        }
        // What the refusal warned about: the SQLite laptop's next customer gets max(id) + 1, the
        // next id of the node with the highest block, which makes one too. Both sides report it.
        let last = writers[writers.count - 1]
        try orm(field, ["add", "field", "1"])
        try orm(last, ["add", "\(last.name)-again", "1"])
        try sync()
        try sync()
        for n in [hub, field, last] {
            let check = try CLI.run(["check", "--db", n.url])
            let status = try CLI.ok(["status", "--db", n.url]).stdout
            XCTAssertEqual(check.status, 1, "\(n.name): \(check.stderr) \(status)")
            XCTAssertTrue(check.stderr.contains("key-collision: customer "), "\(n.name): \(check.stderr)")
        }
    }
}
