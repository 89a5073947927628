import Foundation
import XCTest

@testable import DataJoin

/// The benchmark keeps working: it runs at a tiny size on every brand and writes every figure.
/// Nothing here is timed; the figures come from Scripts/bench.sh in release mode.
final class BenchSmokeTests: XCTestCase {
    func testTheBenchmarkRunsAtATinySize() throws {
        let pg = try TestDatabases.requirePostgres()
        let mariadb = try TestDatabases.requireMariaDB()
        let bench = CLI.executable.deletingLastPathComponent().appendingPathComponent("datajoin-bench")
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: bench.path), "datajoin-bench is not built")
        let work = try TestDatabases.tempFolder("bench")
        let json = work.appendingPathComponent("bench.json")
        let (status, text) = try CLI.runProgram(
            bench,
            [
                "--changes", "300", "--datajoin", CLI.executable.path, "--pg", pg, "--mariadb", mariadb, "--work",
                work.path,
                "--json", json.path, "--pgbench-seconds", "1", "--history-changes", "50", "--hub-laptops", "3",
                "--hub-cycles", "2", "--hub-small-bundles", "6",
            ])
        XCTAssertEqual(status, 0, text)
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as! [String: Any]
        let results = object["results"] as! [[String: Any]]
        let steps = Set(results.map { "\($0["brand"]!) \($0["step"]!)" })
        for brand in ["sqlite", "postgres", "mariadb"] {
            for step in [
                "capture: bulk insert, tracked", "capture: bulk update, tracked", "export (inserts + updates)",
                "ingest + import into an empty target", "ingest + import of updates (rows exist)",
            ] {
                XCTAssertTrue(steps.contains("\(brand) \(step)"), "missing \(brand) \(step) in \(steps)")
            }
        }
        XCTAssertTrue(steps.contains("postgres pgbench, 3 tables tracked"))
        XCTAssertTrue(steps.contains("postgres pgbench, tracked, export every 5 s"), "\(steps)")
        for step in [
            "cycle 1: hub ingest of 3 bundles", "cycle 2: hub ingest of 3 bundles",
            "hub ingest of 6 one-change bundles",
        ] {
            XCTAssertTrue(steps.contains("hub-postgres \(step)"), "missing \(step) in \(steps)")
        }
        // Every step checked its rows: the run printed that every node converged.
        XCTAssertTrue(text.contains("all 4 nodes hold the same 1200 rows"), text)
        let naive = results.first {
            $0["step"] as? String == "export (inserts + updates)" && $0["brand"] as? String == "postgres"
        }!
        XCTAssertEqual(naive["baseline"] as? String, "naive dump | gzip -6")
        XCTAssertGreaterThan(naive["ratio"] as? Double ?? 0, 0)
        let export = results.first { $0["step"] as? String == "export (inserts + updates)" }!
        XCTAssertNotNil((export["extra"] as? [String: Any])?["bytes_per_update"])
        XCTAssertNotNil(export["peak_rss_mib"] as? Double)
        XCTAssertTrue(text.contains("DataJoin benchmark, 300 changes per step"), text)
    }
}
