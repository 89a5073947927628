import Foundation
import XCTest

@testable import DataJoin

/// A test that ends with `datajoin check` on every node it made: bookkeeping that drifts is
/// found in the test where it starts. Sizes set through `Tuning.current` are reset too.
class ScenarioTestCase: XCTestCase {
    /// Nodes a test breaks on purpose (and says so) are left out.
    var uncheckedNodes: Set<String> = []
    /// Tests that make the database refuse a change on purpose (a held UNIQUE or foreign key)
    /// say so; in every other test a bundle applied again change by change is a failure.
    var provokesRefusals = false

    override func setUpWithError() throws {
        try super.setUpWithError()
        TestNode.created.removeAll()
        TestDatabases.tempFolders.removeAll()
        TestDatabases.postgresDatabases.removeAll()
        Tuning.current = Tuning()
        Importer.retriedChangeByChange = 0
        Importer.lastRefusal = ""
    }

    override func tearDownWithError() throws {
        defer {
            TestNode.created.removeAll()
            Tuning.current = Tuning()
            if testRun?.failureCount == 0 && testRun?.unexpectedExceptionCount == 0 {
                for f in TestDatabases.tempFolders { try? FileManager.default.removeItem(at: f) }
                TestDatabases.dropPostgresDatabases()
            }
            TestDatabases.tempFolders.removeAll()
            TestDatabases.postgresDatabases.removeAll()
        }
        if !provokesRefusals {
            XCTAssertEqual(
                Importer.retriedChangeByChange, 0,
                "a bundle was refused on the fast path and applied again change by change; last: \(Importer.lastRefusal)"
            )
        }
        for node in TestNode.created where !uncheckedNodes.contains(node.name) {
            let report = try NodeCheck.run(node.db)
            XCTAssertEqual(
                report.violations.map { "\($0.rule): \($0.detail)" }, [],
                "datajoin check on node \(node.name) (\(node.brand))")
        }
        try super.tearDownWithError()
    }
}
