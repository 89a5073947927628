import Foundation
import XCTest

@testable import DataJoin

/// Replays every input the fuzzer ever flagged (Tests/DataJoinTests/FuzzRegressions) through
/// the CLI's `verify` and `ingest`, as the fuzz target's layers 0 and 1 read them: each must be
/// refused or loaded, never crash the process.
final class FuzzRegressionTests: ScenarioTestCase {
    static var folder: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("FuzzRegressions")
    }

    func testEveryKeptFuzzInputIsHandled() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.folder.path).filter {
            !$0.hasSuffix(".md")
        }.sorted()
        let work = try TestDatabases.tempFolder("fuzzreg")
        let node = try TestNode("target", .sqlite, folder: work, viaCLI: true)
        for name in names {
            let input = Array(try Data(contentsOf: Self.folder.appendingPathComponent(name)))
            guard let layer = input.first else { continue }
            let rest = Array(input.dropFirst())
            let file: [UInt8] = layer & 3 == 0 ? rest : try Gzip.compress(rest)
            let path = work.appendingPathComponent("\(name).djb").path
            try Data(file).write(to: URL(fileURLWithPath: path))
            // Written long ago: a truncated input is refused, not left as a copy in progress.
            try FileManager.default.setAttributes(
                [.modificationDate: Date(timeIntervalSinceNow: -7200)], ofItemAtPath: path)
            let verify = try CLI.run(["verify", path])
            // Accepted, or refused as a data error (65), never a trap or another failure.
            XCTAssertTrue([0, 65].contains(verify.status), "\(name): verify exited \(verify.status)\n\(verify.stderr)")
            let ingest = try CLI.run(["ingest", "--db", node.url, path])
            // A file refused alone: its class (65 damaged or forged, 77 a sender not trusted).
            XCTAssertTrue(
                (verify.status == 65 ? [65, 77] : [0, 2, 65, 77]).contains(ingest.status),
                "\(name): ingest exited \(ingest.status)\n\(ingest.stderr)")
        }
    }
}
