import Foundation
import XCTest

@testable import DataJoin

/// Random edits on several nodes of both brands, made while apart, delivered as bundles in
/// random orders with duplicates and late arrivals: afterwards every node's table is equal row by
/// row, and equal to an in-memory reference model of docs/conflict-rules.md computed from the
/// set of all changes. Fixed seeds; a failure names its seed.
final class ConvergencePropertyTests: ScenarioTestCase {
    static let seeds: [UInt64] = [11, 23, 37]

    func testRandomEditsConvergeInAnyDeliveryOrder() throws {
        for seed in Self.seeds { try runScenario(seed: seed) }
    }

    /// A MariaDB node among SQLite and PostgreSQL nodes. MariaDB stores no infinity, so the
    /// edits here never write one (docs/types.md: such a value is held on a MariaDB node).
    func testRandomEditsConvergeWithAMariaDBNode() throws {
        for seed in Self.seeds { try runScenario(seed: seed, brands: [.sqlite, .postgres, .mariadb, .mariadb]) }
    }

    static func ddl(_ brand: Brand) -> String {
        switch brand {
        case .sqlite: return "CREATE TABLE item (id TEXT PRIMARY KEY NOT NULL, a TEXT, b INTEGER, c REAL)"
        case .postgres: return "CREATE TABLE item (id text PRIMARY KEY, a text, b bigint, c double precision)"
        case .mariadb: return "CREATE TABLE item (id VARCHAR(64) PRIMARY KEY, a TEXT, b BIGINT, c DOUBLE)"
        }
    }

    static let texts: [Value] = [
        .null, .text(""), .text("x"), .text("héllo wörld"), .text("O'Brien; DROP TABLE item;--"), .text("multi\nline"),
        .text("🚀 emoji"), .text("שלום"),
    ]
    static let ints: [Value] = [
        .null, .integer(0), .integer(-1), .integer(42), .integer(Int64.max), .integer(Int64.min),
    ]
    static let reals: [Value] = [
        .null, .real(0.1), .real(-2.5), .real(1e300), .real(5e-324), .real(3.0), .real(.infinity), .real(-1.0 / 3.0),
    ]

    static let finiteReals = reals.filter { if case .real(let d) = $0 { return d.isFinite } else { return true } }

    func runScenario(seed: UInt64, brands: [Brand] = [.sqlite, .postgres, .sqlite, .postgres]) throws {
        var rng = SeededRandom(seed: seed)
        let folder = try TestDatabases.tempFolder("prop\(seed)")
        let reals = brands.contains(.mariadb) ? Self.finiteReals : Self.reals
        var nodes: [TestNode] = []
        for (i, brand) in brands.enumerated() {
            nodes.append(try TestNode("p\(i)", brand, folder: folder, table: Self.ddl(brand), track: ["item"]))
        }
        try trustAll(nodes)
        let keys = (0..<24).map { String(format: "k%02d", $0) }
        var pool: [String] = []
        let context = "seed \(seed), brands \(brands)"

        for round in 0..<8 {
            for (i, n) in nodes.enumerated() {
                let ops = Int.random(in: 20...40, using: &rng)
                let grouped = Bool.random(using: &rng)
                let body = {
                    for _ in 0..<ops { try Self.randomEdit(n, keys: keys, reals: reals, rng: &rng) }
                }
                if grouped { try n.db.retryingWrite { _ in try body() } } else { try body() }
                let out = folder.appendingPathComponent("out\(i)")
                try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
                pool += try n.export(to: out, max: Int.random(in: 5...60, using: &rng))
            }
            // Partial, random deliveries: some bundles now, in any order, some twice.
            for n in nodes {
                var picked = pool.filter { _ in Int.random(in: 0..<3, using: &rng) == 0 }
                picked += picked.filter { _ in Bool.random(using: &rng) }
                picked.shuffle(using: &rng)
                for p in picked { try n.ingest([p]) }
            }
            _ = round
        }
        // Every bundle reaches every node at last, in a random order.
        for n in nodes {
            for p in pool.shuffled(using: &rng) { try n.ingest([p]) }
            XCTAssertEqual(try NodeStatus.read(n.db).heldCount, 0, "\(context): \(n.name) still holds changes")
        }
        let expected = try referenceModel(pool)
        for n in nodes {
            let actual = try n.db.rows("SELECT id, a, b, c FROM item").map(\.values).sorted {
                $0[0].description < $1[0].description
            }
            XCTAssertEqual(actual, expected, "\(context): \(n.name) (\(n.brand)) differs from the reference model")
        }
        try TestNode.assertQuiet(nodes, context) { n, round in
            let out = folder.appendingPathComponent("quiet\(round)-\(n.name)")
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            return try Exporter.export(n.db, ExportOptions(folder: out.path))
        }
        if expected.isEmpty { XCTFail("\(context): the scenario ended with no rows; it tests too little") }
    }

    static func randomEdit(_ n: TestNode, keys: [String], reals: [Value] = reals, rng: inout SeededRandom) throws {
        let key = keys.randomElement(using: &rng)!
        let exists = try n.db.scalar("SELECT count(*) FROM item WHERE id = ?", [.text(key)]).asInt64 == 1
        let a = Self.texts.randomElement(using: &rng)!, b = Self.ints.randomElement(using: &rng)!,
            c = reals.randomElement(using: &rng)!
        if !exists {
            try n.exec("INSERT INTO item (id, a, b, c) VALUES (?, ?, ?, ?)", [.text(key), a, b, c])
        } else if Int.random(in: 0..<5, using: &rng) == 0 {
            try n.exec("DELETE FROM item WHERE id = ?", [.text(key)])
        } else {
            var sets: [(String, Value)] = [("a", a), ("b", b), ("c", c)].filter { _ in Bool.random(using: &rng) }
            if sets.isEmpty { sets = [("a", a)] }
            try n.exec(
                "UPDATE item SET " + sets.map { "\($0.0) = ?" }.joined(separator: ", ") + " WHERE id = ?",
                sets.map(\.1) + [.text(key)])
        }
    }

    /// The rules, order-free: per key the highest generation decides existence; inside it each
    /// column holds the value of the highest (stamp, node) change that set it.
    func referenceModel(_ bundles: [String]) throws -> [[Value]] {
        var changes: [String: [Change]] = [:]
        var seen = Set<String>()
        for p in bundles {
            for c in try BundleInspector.read(p).changes where seen.insert("\(c.origin)#\(c.seq)").inserted {
                changes[c.key[0].description, default: []].append(c)
            }
        }
        var rows: [[Value]] = []
        for (key, list) in changes {
            let top = list.map(\.cl).max()!
            guard top % 2 == 1 else { continue }
            var best: [String: (Version, Value)] = [:]
            for c in list where c.cl == top {
                let v = Version(hlc: c.hlc, node: c.origin)
                for col in c.columns where best[col.name] == nil || best[col.name]!.0 < v {
                    best[col.name] = (v, col.value)
                }
            }
            rows.append([.text(key), best["a"]?.1 ?? .null, best["b"]?.1 ?? .null, best["c"]?.1 ?? .null])
        }
        return rows.sorted { $0[0].description < $1[0].description }
    }
}
