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

    /// Steps of ingesting (and importing) one bundle of `n` inserts into a fresh SQLite node.
    private func ingestSteps(_ n: Int) throws -> Int64 {
        let a = try TestNode("a\(n)", .sqlite, folder: folder)
        let b = try TestNode("b\(n)", .sqlite, folder: folder)
        try trustAll([a, b])
        try a.exec(
            """
            WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < \(n))
            INSERT INTO sales_order (order_id, description, quantity) SELECT printf('o%07d', i), 'row ' || i, CAST(i AS TEXT) FROM g
            """)
        let dir = try TestDatabases.subfolder(folder, "out\(n)")
        XCTAssertEqual(try a.export(to: dir).count, 1, "one bundle")
        let sqlite = try XCTUnwrap(b.db as? SQLiteDatabase)
        let before = sqlite.vmSteps
        try b.ingest([dir.path])
        XCTAssertEqual(try b.rows(), try a.rows())
        return sqlite.vmSteps - before
    }

    /// A bundle of many import chunks: each chunk reads its own rows. Before the fix every
    /// chunk read the inbox to the bundle's end (SQLite took the bundle's bound for the range
    /// and filtered by the chunk's), and a 1M-change import read 50 GB of pages.
    func testImportingABundleCostsInProportionToItsChanges() throws {
        Tuning.current.importChunk = 10
        let small = try ingestSteps(200), large = try ingestSteps(600)
        let ratio = Double(large) / Double(small)
        XCTAssertLessThan(ratio, 3.4, "VM steps: \(small) for 200 changes, \(large) for 600 (linear: about 3)")
    }
}
