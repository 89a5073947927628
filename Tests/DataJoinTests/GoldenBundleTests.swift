import Foundation
import XCTest

@testable import DataJoin

/// The committed v1 bundles (bundles/v1) must stay readable by every later version.
final class GoldenBundleTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let v1 = root.appendingPathComponent("bundles/v1")

    func goldenFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: Self.v1.path).filter { $0.hasSuffix(".djb") }.sorted().map {
            Self.v1.appendingPathComponent($0).path
        }
    }

    func testV1FilesReadAsWritten() throws {
        let files = try goldenFiles()
        XCTAssertEqual(files.count, 3)
        let summaries = try files.map { try BundleInspector.read($0) }
        XCTAssertEqual(summaries.map { $0.header.sender }, ["testapp1", "testapp1", "testapp1"])
        XCTAssertEqual(summaries.map { $0.header.origins[0].first }, [1, 2, 3])
        XCTAssertEqual(summaries.map { $0.changes[0].op }, [.insert, .update, .delete])
        XCTAssertEqual(summaries[0].changes[0].columns.first { $0.name == "description" }?.value, .text("first order"))
        XCTAssertEqual(summaries[1].changes[0].columns[0].value, .text("changed description"))
        XCTAssertEqual(summaries[1].changes[0].oldValue, .text("first order"))
        XCTAssertEqual(summaries[2].changes[0].cl, 2)
    }

    func testV1FilesApplyOnBothBrands() throws {
        let keyLine = try String(contentsOf: Self.v1.appendingPathComponent("keys.txt"), encoding: .utf8).split(
            separator: " ")
        for brand in [Brand.sqlite, .postgres] {
            let folder = try TestDatabases.tempFolder("golden")
            let node = try TestNode("testapp2", brand, folder: folder)
            try Trust.trust(
                node.db, node: String(keyLine[0]),
                publicKey: String(keyLine[1]).trimmingCharacters(in: .whitespacesAndNewlines))
            let files = try goldenFiles()
            try node.ingest([files[0]])
            XCTAssertEqual(
                try node.rows(),
                [
                    [
                        "ord2", "online", "first order", "book", "cust1", "2", "2025-06-24", "2025-06-24 10:00:00",
                        "milan", "testapp1",
                    ]
                ])
            try node.ingest([files[1]])
            XCTAssertEqual(try node.db.scalar("SELECT description FROM sales_order"), .text("changed description"))
            try node.ingest([files[2]])
            XCTAssertEqual(try node.rows(), [])
        }
    }

    func testV1FilesPassGzipAndVerify() throws {
        for f in try goldenFiles() {
            let r = try CLI.ok(["verify", f])
            XCTAssertTrue(r.stdout.contains("OK"), r.stdout)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "gzip -t '\(f)'"]
            try p.run()
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, "gzip -t \(f)")
        }
    }
}
