import Foundation
import XCTest

@testable import DataJoin

/// Work that must grow with the changes, not with their square. Measured in SQLite's virtual
/// machine steps, which do not depend on the machine's speed or load: a query whose bound
/// SQLite ignores still returns the right rows, so only its cost shows it.
final class LinearCostTests: ScenarioTestCase {
    var folder: URL!
    override func setUpWithError() throws {
        try super.setUpWithError()
        folder = try TestDatabases.tempFolder("linear")
    }

    /// VM steps of one sync of `n` inserts and then `n` updates between two fresh SQLite nodes:
    /// [export inserts, ingest inserts, export updates, ingest updates].
    private func syncSteps(_ n: Int) throws -> [Int64] {
        let a = try TestNode("a\(n)", .sqlite, folder: folder)
        let b = try TestNode("b\(n)", .sqlite, folder: folder)
        try trustAll([a, b])
        let sa = try XCTUnwrap(a.db as? SQLiteDatabase), sb = try XCTUnwrap(b.db as? SQLiteDatabase)
        var steps: [Int64] = []
        func measure(_ db: SQLiteDatabase, _ body: () throws -> Void) rethrows {
            let before = db.vmSteps
            try body()
            steps.append(db.vmSteps - before)
        }
        try a.exec(
            """
            WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < \(n))
            INSERT INTO sales_order (order_id, description, quantity) SELECT printf('o%07d', i), 'row ' || i, CAST(i AS TEXT) FROM g
            """)
        for step in ["inserts", "updates"] {
            if step == "updates" { try a.exec("UPDATE sales_order SET quantity = quantity || 'u'") }
            let dir = try TestDatabases.subfolder(folder, "\(step)\(n)")
            try measure(sa) { XCTAssertEqual(try a.export(to: dir).count, 1, "one bundle of \(step)") }
            try measure(sb) { try b.ingest([dir.path]) }
            XCTAssertEqual(try b.rows(), try a.rows())
        }
        return steps
    }

    /// Many chunks per bundle: each chunk reads its own rows. Before the fix every import chunk
    /// read the inbox to the bundle's end (SQLite took the bundle's bound for the range and
    /// filtered by the chunk's), and a 1M-change import read 50 GB of pages; its ratio was 4.0.
    func testASyncCostsInProportionToItsChanges() throws {
        Tuning.current.importChunk = 10
        Tuning.current.stampChunk = 10
        Tuning.current.stampBatch = 4
        Tuning.current.versionBatch = 4
        let small = try syncSteps(200), large = try syncSteps(600)
        for (i, what) in ["export of inserts", "ingest of inserts", "export of updates", "ingest of updates"]
            .enumerated()
        {
            let ratio = Double(large[i]) / Double(small[i])
            XCTAssertLessThan(
                ratio, 3.4, "\(what), VM steps: \(small[i]) for 200 changes, \(large[i]) for 600 (linear: about 3)")
        }
    }
}
