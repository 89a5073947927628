import Crypto
import Foundation
import XCTest

@testable import DataJoin

/// Bad input changes nothing, and trust changes only when the operator says so (issue 11), each
/// through the real binary: the exit status, the message, and that nothing changed.
final class OperatorSafetyTests: XCTestCase {
    var folder: URL!
    override func setUpWithError() throws { folder = try TestDatabases.tempFolder("safety") }

    func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    func testNoCommandButInitCreatesADatabase() throws {
        for args in [["status", "--db", path("nosuch.db")], ["check", "--db", path("nosuch.db")], ["export", "--db", path("nosuch.db"), "--to", folder.path],
                     ["verify", "--db", path("nosuch.db"), folder.path]] {
            let r = try CLI.run(args)
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertTrue(r.stderr.contains("no SQLite database at \(path("nosuch.db")): the file does not exist"), "\(args): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: path("nosuch.db")), "\(args) created the file")
        }
        // init validates its arguments before it touches anything.
        let bad = try CLI.run(["init", "--db", path("new.db"), "--node", "bad name!"])
        XCTAssertEqual(bad.status, 64, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("invalid node name 'bad name!'"), bad.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("new.db")))
        try CLI.ok(["init", "--db", path("new.db"), "--node", "good"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: path("new.db")))
    }

    func testAFolderGivenAsADatabaseIsNamedAsAFolder() throws {
        try FileManager.default.createDirectory(atPath: path("dir.db"), withIntermediateDirectories: true)
        let r = try CLI.run(["status", "--db", path("dir.db")])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("it is a folder, not a database file"), r.stderr)
    }

    /// A file the user names that is not a bundle is refused where it stands; an empty bundle
    /// file just written waits like a truncated one.
    func testANamedFileIsNeverMovedAndAnEmptyOneWaits() throws {
        try CLI.ok(["init", "--db", path("n.db"), "--node", "n"])
        let notes = path("notes.txt")
        try Data("my notes\n".utf8).write(to: URL(fileURLWithPath: notes))
        let r = try CLI.run(["ingest", "--db", path("n.db"), notes])
        XCTAssertEqual(r.status, 2, r.stdout + r.stderr)
        XCTAssertEqual(try String(contentsOfFile: notes, encoding: .utf8), "my notes\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("quarantine")))
        let drop = try TestDatabases.subfolder(folder, "drop")
        let empty = drop.appendingPathComponent("peer_000000000001-000000000001_00aa11bb.djb")
        FileManager.default.createFile(atPath: empty.path, contents: Data())
        let e = try CLI.run(["ingest", "--db", path("n.db"), drop.path])
        XCTAssertTrue(e.stdout.contains("may still be copying") || e.stderr.contains("may still be copying"), e.stdout + e.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: empty.path), "an empty file just written stays")
    }

    func testTrustChangesOnlyWithReplaceAndNeverToItself() throws {
        try CLI.ok(["init", "--db", path("a.db"), "--node", "a"])
        try CLI.ok(["init", "--db", path("b.db"), "--node", "b"])
        let keyB = try CLI.ok(["key", "--db", path("b.db")]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let keyA = try CLI.ok(["key", "--db", path("a.db")]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try CLI.ok(["trust", "--db", path("a.db"), "b", keyB])
        try CLI.ok(["trust", "--db", path("a.db"), "b", keyB])  // the same key again: nothing to say
        let other = Hex.encode(Array(Curve25519.Signing.PrivateKey().publicKey.rawRepresentation))
        let swapped = try CLI.run(["trust", "--db", path("a.db"), "b", other])
        XCTAssertEqual(swapped.status, 64, swapped.stderr)
        XCTAssertTrue(swapped.stderr.contains("b is trusted with another key (SHA256:"), swapped.stderr)
        XCTAssertTrue(swapped.stderr.contains("--replace"), swapped.stderr)
        let db = try DatabaseOpener.open(path("a.db"))
        XCTAssertEqual(try db.scalar("SELECT public_key FROM ds_trusted_key WHERE node_id = 'b'"), .text(keyB), "unchanged")
        try CLI.ok(["trust", "--db", path("a.db"), "--replace", "b", other])
        XCTAssertEqual(try db.scalar("SELECT public_key FROM ds_trusted_key WHERE node_id = 'b'"), .text(other))
        let own = try CLI.run(["trust", "--db", path("a.db"), "a", keyB])
        XCTAssertEqual(own.status, 64)
        XCTAssertTrue(own.stderr.contains("this node's own name"), own.stderr)
        let ownKey = try CLI.run(["trust", "--db", path("a.db"), "c", keyA])
        XCTAssertEqual(ownKey.status, 64)
        XCTAssertTrue(ownKey.stderr.contains("this node's own public key"), ownKey.stderr)
        XCTAssertEqual(try db.scalar("SELECT count(*) FROM ds_trusted_key WHERE node_id = 'c'"), .integer(0))
        XCTAssertEqual(try db.scalar("SELECT public_key FROM ds_trusted_key WHERE node_id = 'a'"), .text(keyA), "its own key, as init set it")
    }

    /// `verify --db` says what ingest would do: an intact file from an untrusted sender fails.
    func testVerifyWithADatabaseAppliesTheTrustList() throws {
        let src = path("s.db")
        try Data().write(to: URL(fileURLWithPath: src))
        let s = try DatabaseOpener.open(src)
        try s.executeScript(TestDatabases.salesOrderSQL)
        try CLI.ok(["init", "--db", src, "--node", "stranger"])
        try CLI.ok(["track", "--db", src, "sales_order"])
        try s.execute("INSERT INTO sales_order (order_id) VALUES ('x')")
        let out = try TestDatabases.subfolder(folder, "out")
        try CLI.ok(["export", "--db", src, "--to", out.path])
        try CLI.ok(["init", "--db", path("t.db"), "--node", "t"])
        try CLI.ok(["verify", out.path])
        let r = try CLI.run(["verify", "--db", path("t.db"), out.path])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("intact, but ingest here would refuse it: sender stranger is not trusted here"), r.stderr)
    }

    /// A server that accepts a connection and never answers: the URL's timeout (and by default
    /// 10 s) ends the wait with a clear error.
    func testAServerThatNeverAnswersTimesOut() throws {
        XCTAssertTrue("\(try DatabaseURL.parse("postgresql://u@127.0.0.1:5/db"))".contains("127.0.0.1"))
        if case .postgres(let conninfo, _) = try DatabaseURL.parse("postgresql://u@127.0.0.1:5/db") {
            XCTAssertTrue(conninfo.hasSuffix("?connect_timeout=10"), conninfo)
        } else { XCTFail("not a PostgreSQL URL") }
        // A socket that listens and never accepts: the kernel completes the handshake, then
        // nothing answers.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        XCTAssertEqual(listen(fd, 4), 0)
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let port = Int(UInt16(bigEndian: bound.sin_port))
        let started = Date()
        let r = try CLI.run(["status", "--db", "postgresql://nobody@127.0.0.1:\(port)/db?connect_timeout=2"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(started), 15)
        XCTAssertTrue(r.stderr.hasPrefix("datajoin: error:"), r.stderr)
    }

    /// `status` is true: a relay export counts as an export, held details sit under `held:`.
    func testStatusShowsRelayExportsAndHeldDetailsWhereTheyBelong() throws {
        let a = try TestNode("a", .sqlite, folder: folder, table: TestDatabases.salesOrderSQL + "; CREATE TABLE extra (k TEXT PRIMARY KEY)", track: ["sales_order", "extra"])
        let hub = try TestNode("hub", .sqlite, folder: folder)
        try trustAll([a, hub])
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('x')")
        try a.exec("INSERT INTO extra VALUES ('not tracked at the hub')")
        let toHub = try TestDatabases.subfolder(folder, "to-hub")
        try a.export(to: toHub)
        try hub.ingest([toHub.path])
        let relay = try TestDatabases.subfolder(folder, "relay")
        try CLI.ok(["export", "--db", hub.url, "--to", relay.path, "--relay"])
        let lines = try CLI.ok(["status", "--db", hub.url]).stdout.split(separator: "\n").map(String.init)
        XCTAssertFalse(lines.contains { $0.hasPrefix("last export:") && $0.contains("never") }, lines.joined(separator: "\n"))
        let held = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("held:") })
        XCTAssertTrue(lines[held].contains("1 change(s)"), lines[held])
        XCTAssertTrue(lines[held + 1].hasPrefix("  held a#2 extra:"), lines[held + 1])
    }

    /// `--quiet` prints nothing but errors; `conflicts` says how many it did not show.
    func testQuietIsQuietAndConflictsNeverStopSilently() throws {
        let a = try TestNode("qa", .sqlite, folder: folder, viaCLI: true)
        let b = try TestNode("qb", .sqlite, folder: folder, viaCLI: true)
        try trustAll([a, b])
        try a.exec("INSERT INTO sales_order (order_id, description) VALUES ('k1', 'a'), ('k2', 'a'), ('k3', 'a')")
        try b.exec("INSERT INTO sales_order (order_id, description) VALUES ('k1', 'b'), ('k2', 'b'), ('k3', 'b')")
        let out = try TestDatabases.subfolder(folder, "q")
        let quiet = try CLI.ok(["export", "--db", a.url, "--to", out.path, "--quiet"])
        XCTAssertEqual(quiet.stdout + quiet.stderr, "")
        try CLI.ok(["ingest", "--db", b.url, out.path, "-q"])
        let total = try b.db.scalar("SELECT count(*) FROM ds_conflict").asInt64 ?? 0
        XCTAssertGreaterThanOrEqual(total, 3)
        let limited = try CLI.ok(["conflicts", "--db", b.url, "--limit", "2"])
        XCTAssertEqual(limited.stdout.split(separator: "\n").count, 2)
        XCTAssertTrue(limited.stderr.contains("showing the first 2 of \(total) conflicts"), limited.stderr)
        XCTAssertEqual(try CLI.ok(["conflicts", "--db", b.url]).stderr, "")
    }

    /// One error prefix, also for the argument parser's errors; a misspelt command is answered
    /// with the nearest one.
    func testArgumentErrorsCarryTheSamePrefixAndSuggest() throws {
        let typo = try CLI.run(["exprot"])
        XCTAssertEqual(typo.status, 64)
        XCTAssertTrue(typo.stderr.hasPrefix("datajoin: error: Unexpected argument 'exprot' (did you mean 'export'?)"), typo.stderr)
        let missing = try CLI.run(["export", "--db", path("x.db")])
        XCTAssertEqual(missing.status, 64)
        XCTAssertTrue(missing.stderr.hasPrefix("datajoin: error: Missing expected argument '--to <dir>'"), missing.stderr)
        XCTAssertEqual(try CLI.ok(["--version"]).stdout, "0.1.0\n")
        XCTAssertTrue(try CLI.ok(["check", "--help"]).stdout.contains("OVERVIEW: Check a node's bookkeeping"))
    }

    /// A file named on the command line is never moved, also when its folder is named too; one
    /// key is trusted for one node only.
    func testANamedFileInANamedFolderStaysAndOneKeyTrustsOneNode() throws {
        try CLI.ok(["init", "--db", path("n.db"), "--node", "n"])
        let drop = try TestDatabases.subfolder(folder, "drop2")
        let bad = drop.appendingPathComponent("bad.djb")
        try Data([0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x01, 0x02]).write(to: bad)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -7200)], ofItemAtPath: bad.path)
        let r = try CLI.run(["ingest", "--db", path("n.db"), bad.path, drop.path])
        XCTAssertEqual(r.status, 2, r.stdout + r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: bad.path), "named: left where it is")
        XCTAssertEqual((r.stdout + r.stderr).components(separatedBy: "bad.djb").count - 1, 1, "refused once: \(r.stdout) \(r.stderr)")
        let key = Hex.encode(Array(Curve25519.Signing.PrivateKey().publicKey.rawRepresentation))
        try CLI.ok(["trust", "--db", path("n.db"), "peer", key])
        let twice = try CLI.run(["trust", "--db", path("n.db"), "other", key])
        XCTAssertEqual(twice.status, 64)
        XCTAssertTrue(twice.stderr.contains("already trusted for peer"), twice.stderr)
    }
}
