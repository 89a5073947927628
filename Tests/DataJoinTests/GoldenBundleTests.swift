import Crypto
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

    static let v2 = root.appendingPathComponent("bundles/v2")
    static let v2File = v2.appendingPathComponent("testapp1_000000000001-000000000001_c6eebf14.djb")

    /// The committed v2 (encrypted) bundle, byte for byte: its outer header says who sent it to
    /// whom and nothing more, its recipient's committed test key opens it on both brands, and
    /// `verify` without a key checks its signature only.
    func testV2FileOpensWithItsRecipientsKeyOnBothBrands() throws {
        let bytes = try Data(contentsOf: Self.v2File)
        XCTAssertEqual(
            Hex.encode(Array(SHA256.hash(data: bytes))),
            "b4dcdb4cdafe3944de7d4691271cc394b5c67422ab27e1f512e8ce195461235c",
            "the golden file never changes")
        let outer = try EncryptedBundleFile(path: Self.v2File.path)
        try outer.checkSeal()
        try outer.verifyIntegrity()
        XCTAssertEqual(outer.header.sender, "testapp1")
        XCTAssertEqual(outer.header.recipients.map(\.node), ["testapp2"])
        XCTAssertEqual(outer.header.chunkSize, 65536)
        XCTAssertNil(bytes.range(of: Data("first order".utf8)))
        let lines = try String(contentsOf: Self.v2.appendingPathComponent("keys.txt"), encoding: .utf8)
            .split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        let sender = lines.first { $0[0] == "sender" }!, recipient = lines.first { $0[0] == "recipient" }!
        XCTAssertEqual(outer.header.recipients[0].recipientKey, Hex.decode(recipient[2]))
        let v = try CLI.ok(["verify", Self.v2File.path])
        XCTAssertTrue(
            v.stdout.contains("OK (encrypted to testapp2, signed as testapp1 by the key it carries"), v.stdout)
        for brand in TestDatabases.availableBrands {
            let folder = try TestDatabases.tempFolder("golden2")
            let node = try TestNode("testapp2", brand, folder: folder)
            try node.exec("DELETE FROM ds_encryption_key")
            try node.exec(
                "INSERT INTO ds_encryption_key (public_key, private_key, created_at) VALUES (?, ?, '2026-12-03T00:00:00Z')",
                [.text(recipient[2]), .text(recipient[3])])
            try Trust.trust(node.db, node: sender[1], publicKey: sender[2])
            try node.ingest([Self.v2File.path])
            XCTAssertEqual(
                try node.rows(),
                [
                    [
                        "ord2", "online", "first order", "book", "cust1", "2", "2025-06-24", "2025-06-24 10:00:00",
                        "milan", "testapp1",
                    ]
                ], "\(brand)")
            let shown = try CLI.ok(["inspect", "--db", node.url, Self.v2File.path]).stdout
            XCTAssertTrue(shown.contains("first order"), shown)
        }
    }
}
