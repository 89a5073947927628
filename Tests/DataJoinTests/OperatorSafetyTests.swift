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

    /// The CLI as an unprivileged user: as nobody when the tests run as root (root reads and
    /// writes anywhere), else as this user; its status and stderr.
    func runUnprivileged(_ args: [String]) throws -> (status: Int32, output: String) {
        if geteuid() == 0 {
            return try CLI.runProgram(
                URL(fileURLWithPath: "/usr/bin/setpriv"),
                ["--reuid=65534", "--regid=65534", "--clear-groups", CLI.executable.path] + args)
        }
        let run = try CLI.run(args)
        return (run.status, run.stderr)
    }

    /// A row held before tracking has only the zero version: a conflict it loses names it so,
    /// not as a stamp of 1970 and no node (found from outside: `(1970-01-01T00:00:00.000Z+0@)`).
    func testAConflictWithARowHeldBeforeTrackingSaysSo() throws {
        let a = try TestNode("zva", .sqlite, folder: folder, track: [])
        let b = try TestNode("zvb", .sqlite, folder: folder)
        try trustAll([a, b])
        try a.exec("INSERT INTO sales_order (order_id, description) VALUES ('k', 'mine')")
        _ = try Tracker.track(a.db, tables: ["sales_order"])
        try b.exec("INSERT INTO sales_order (order_id, description) VALUES ('k', 'theirs')")
        let out = try TestDatabases.subfolder(folder, "zero-version")
        try b.export(to: out)
        try a.ingest([out.path])
        let text = try CLI.ok(["conflicts", "--db", a.url]).stdout
        XCTAssertTrue(
            text.contains("lost \"mine\" (held before tracking): concurrent insert of the same key; this one is newer"),
            text)
        XCTAssertFalse(text.contains("1970"), text)
        XCTAssertEqual(try a.rows(), try b.rows())
        for n in [a, b] { try CLI.ok(["check", "--db", n.url, "-q"]) }
    }

    func testNoCommandButInitCreatesADatabase() throws {
        for args in [
            ["status", "--db", path("nosuch.db")], ["check", "--db", path("nosuch.db")],
            ["export", "--db", path("nosuch.db"), "--to", folder.path],
            ["verify", "--db", path("nosuch.db"), folder.path],
        ] {
            let r = try CLI.run(args)
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertTrue(
                r.stderr.contains("no SQLite database at \(path("nosuch.db")): the file does not exist"),
                "\(args): \(r.stderr)")
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
        XCTAssertEqual(r.status, 66)
        XCTAssertTrue(r.stderr.contains("it is a folder, not a database file"), r.stderr)
    }

    /// A writable database file in a folder this user may not write to: SQLite cannot make its
    /// journal there; a permission error (77) that says so, not "service unavailable" (69; found
    /// from outside). Run as nobody when the tests run as root (root writes anywhere).
    func testADatabaseInAFolderThisUserMayNotWriteIsAPermissionError() throws {
        let dir = path("ro-folder")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let db = dir + "/x.db"
        try CLI.ok(["init", "--db", db, "--node", "ro"])
        try FileManager.default.setAttributes([.posixPermissions: 0o666], ofItemAtPath: db)
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: dir)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir) }
        let args = ["status", "--db", db]
        let r = try runUnprivileged(args)
        XCTAssertEqual(r.status, 77, r.output)
        XCTAssertTrue(r.output.contains("this user needs write access to its folder too"), r.output)

        // A file this user may not read: a permission too, not a server to try again (69).
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir)
        try FileManager.default.setAttributes([.posixPermissions: geteuid() == 0 ? 0o600 : 0o000], ofItemAtPath: db)
        let unreadable = try runUnprivileged(args)
        XCTAssertEqual(unreadable.status, 77, unreadable.output)
        XCTAssertTrue(unreadable.output.contains("this user may not read it (permission denied)"), unreadable.output)

        // `init` of a new file there: a permission (77), and under a file: input of the wrong
        // kind (66), as every other command says them (found from outside: 69 for both).
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: dir)
        let create = try runUnprivileged(["init", "--db", dir + "/new.db", "--node", "nw"])
        XCTAssertEqual(create.status, 77, create.output)
        XCTAssertTrue(create.output.contains("this user may not write in folder \(dir)"), create.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/new.db"))
        for command in [["init", "--node", "nf"], ["status"]] {
            let under = try CLI.run([command[0], "--db", db + "/y.db"] + command.dropFirst())
            XCTAssertEqual(under.status, 66, under.stderr)
            XCTAssertTrue(under.stderr.contains("\(db) is a file, not a folder"), under.stderr)
        }
    }

    /// A folder to ingest that this user may not read: one line and the permission class, not
    /// Foundation's error text and exit 1; a database path ending `.DB` is a path as `.db` is
    /// (both found from outside).
    func testAnUnreadableFolderIsAPermissionAndAnUpperCaseExtensionIsAPath() throws {
        let db = path("UPPER.DB")
        try CLI.ok(["init", "--db", db, "--node", "up"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: db))
        try CLI.ok(["status", "--db", db])
        let drop = path("closed")
        try FileManager.default.createDirectory(atPath: drop, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: folder.path)
        try FileManager.default.setAttributes([.posixPermissions: 0o666], ofItemAtPath: db)
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: drop)
        let args = ["ingest", "--db", db, drop]
        if geteuid() != 0 { try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: drop) }
        let r = try runUnprivileged(args)
        XCTAssertEqual(r.status, 77, r.output)
        XCTAssertTrue(r.output.contains("folder \(drop): this user may not read it (permission denied)"), r.output)
        XCTAssertFalse(r.output.contains("NSCocoaErrorDomain"), r.output)
        // A file behind it is there, not missing (66): the same class.
        if geteuid() == 0 {
            let behind = drop + "/peer_000000000001-000000000001_00aa11bb.djb"
            try Data("x".utf8).write(to: URL(fileURLWithPath: behind))
            let b = try runUnprivileged(["ingest", "--db", db, behind])
            XCTAssertEqual(b.status, 77, b.output)
            XCTAssertTrue(b.output.contains("this user may not reach it (permission denied)"), b.output)
            // So for a database and an export folder behind it (they said "does not exist", 66).
            try CLI.ok(["init", "--db", drop + "/inner.db", "--node", "inner"])
            try FileManager.default.createDirectory(atPath: drop + "/out", withIntermediateDirectories: true)
            for args in [["status", "--db", drop + "/inner.db"], ["export", "--db", db, "--to", drop + "/out"]] {
                let r = try runUnprivileged(args)
                XCTAssertEqual(r.status, 77, "\(args): \(r.output)")
                XCTAssertTrue(r.output.contains("this user may not reach it (permission denied)"), r.output)
                XCTAssertFalse(r.output.contains("does not exist"), r.output)
            }
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: drop)
    }

    /// A bundle file this user may not read is the permission class (77) for `verify` and
    /// `inspect`, as a database file is; it exited 1 (found from outside).
    func testABundleFileThisUserMayNotReadIsAPermission() throws {
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: folder.path)
        let file = path("peer_000000000001-000000000001_00aa11bb.djb")
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        try FileManager.default.setAttributes([.posixPermissions: geteuid() == 0 ? 0o600 : 0o000], ofItemAtPath: file)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file) }
        for command in ["verify", "inspect"] {
            let r = try runUnprivileged([command, file])
            XCTAssertEqual(r.status, 77, "\(command): \(r.output)")
            XCTAssertEqual(
                r.output, "datajoin: error: cannot open \(file): this user may not read it (permission denied)\n"
            )
        }
    }

    /// A file the user names that is not a bundle is refused where it stands; an empty bundle
    /// file just written waits like a truncated one.
    func testANamedFileIsNeverMovedAndAnEmptyOneWaits() throws {
        try CLI.ok(["init", "--db", path("n.db"), "--node", "n"])
        let notes = path("notes.txt")
        try Data("my notes\n".utf8).write(to: URL(fileURLWithPath: notes))
        let r = try CLI.run(["ingest", "--db", path("n.db"), notes])
        XCTAssertEqual(r.status, 65, r.stdout + r.stderr)
        XCTAssertEqual(try String(contentsOfFile: notes, encoding: .utf8), "my notes\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("quarantine")))
        let drop = try TestDatabases.subfolder(folder, "drop")
        let empty = drop.appendingPathComponent("peer_000000000001-000000000001_00aa11bb.djb")
        FileManager.default.createFile(atPath: empty.path, contents: Data())
        let e = try CLI.run(["ingest", "--db", path("n.db"), drop.path])
        XCTAssertTrue(
            e.stdout.contains("may still be copying") || e.stderr.contains("may still be copying"), e.stdout + e.stderr)
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
        // The word carries the signing key (stored in public_key) and the encryption key.
        func signing(_ token: String) -> String { String(token.dropFirst("dj2-".count).prefix(64)) }
        XCTAssertEqual(
            try db.scalar("SELECT public_key FROM ds_trusted_key WHERE node_id = 'b'"), .text(signing(keyB)),
            "unchanged")
        try CLI.ok(["trust", "--db", path("a.db"), "--replace", "b", other])
        XCTAssertEqual(try db.scalar("SELECT public_key FROM ds_trusted_key WHERE node_id = 'b'"), .text(other))
        let own = try CLI.run(["trust", "--db", path("a.db"), "a", keyB])
        XCTAssertEqual(own.status, 64)
        XCTAssertTrue(own.stderr.contains("this node's own name"), own.stderr)
        let ownKey = try CLI.run(["trust", "--db", path("a.db"), "c", keyA])
        XCTAssertEqual(ownKey.status, 64)
        XCTAssertTrue(ownKey.stderr.contains("this node's own public key"), ownKey.stderr)
        XCTAssertEqual(try db.scalar("SELECT count(*) FROM ds_trusted_key WHERE node_id = 'c'"), .integer(0))
        // Its own name revoked, a node refused its own files for good (found from outside).
        let revokeOwn = try CLI.run(["trust", "--db", path("a.db"), "--revoke", "a"])
        XCTAssertEqual(revokeOwn.status, 64, revokeOwn.stderr)
        XCTAssertTrue(revokeOwn.stderr.contains("a node cannot revoke its own key"), revokeOwn.stderr)
        XCTAssertEqual(try db.scalar("SELECT count(*) FROM ds_trusted_key WHERE revoked_at IS NOT NULL"), .integer(0))
        XCTAssertEqual(
            try db.scalar("SELECT public_key FROM ds_trusted_key WHERE node_id = 'a'"), .text(signing(keyA)),
            "its own key, as init set it")
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
        XCTAssertEqual(r.status, 77)
        XCTAssertTrue(
            r.stderr.contains("intact, but ingest here would refuse it: sender stranger is not trusted here"), r.stderr)
    }

    /// A server that accepts a connection and never answers: the URL's timeout (and by default
    /// 10 s) ends the wait with a clear error.
    func testAServerThatNeverAnswersTimesOut() throws {
        XCTAssertTrue("\(try DatabaseURL.parse("postgresql://u@127.0.0.1:5/db"))".contains("127.0.0.1"))
        if case .postgres(let conninfo, _) = try DatabaseURL.parse("postgresql://u@127.0.0.1:5/db") {
            XCTAssertTrue(conninfo.hasSuffix("?connect_timeout=10"), conninfo)
        } else {
            XCTFail("not a PostgreSQL URL")
        }
        // A socket that listens and never accepts: the kernel completes the handshake, then
        // nothing answers.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        XCTAssertEqual(listen(fd, 4), 0)
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        let port = Int(UInt16(bigEndian: bound.sin_port))
        let started = Date()
        let r = try CLI.run(["status", "--db", "postgresql://nobody@127.0.0.1:\(port)/db?connect_timeout=2"])
        XCTAssertEqual(r.status, 69, r.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(started), 15)
        XCTAssertTrue(r.stderr.hasPrefix("datajoin: error:"), r.stderr)
    }

    /// `status` is true: a relay export counts as an export, held details sit under `held:`.
    func testStatusShowsRelayExportsAndHeldDetailsWhereTheyBelong() throws {
        let a = try TestNode(
            "a", .sqlite, folder: folder,
            table: TestDatabases.salesOrderSQL + "; CREATE TABLE extra (k TEXT PRIMARY KEY)",
            track: ["sales_order", "extra"])
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
        XCTAssertFalse(
            lines.contains { $0.hasPrefix("last export:") && $0.contains("never") }, lines.joined(separator: "\n"))
        let held = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("held:") })
        XCTAssertTrue(lines[held].contains("1 change(s)"), lines[held])
        // Which row, where the reason does not say (found from outside).
        XCTAssertTrue(lines[held + 1].hasPrefix("  held a#2 extra [not tracked at the hub]:"), lines[held + 1])
        let json = try CLI.ok(["status", "--db", hub.url, "--json"]).stdout
        XCTAssertTrue(json.contains(#""table":"extra","key":"not tracked at the hub","reason":"#), json)
    }

    /// `--quiet` prints nothing but errors and warnings; `conflicts` says how many it did not show.
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
        // Quiet is not silent about what needs the operator: a held change is said beside exit 2.
        try a.exec("CREATE TABLE extra (k TEXT PRIMARY KEY NOT NULL)")
        try CLI.ok(["track", "--db", a.url, "extra", "-q"])
        try a.exec("INSERT INTO extra VALUES ('not tracked at b')")
        let held = try TestDatabases.subfolder(folder, "q-held")
        XCTAssertEqual(try CLI.ok(["export", "--db", a.url, "--to", held.path, "-q"]).stderr, "")
        let r = try CLI.run(["ingest", "--db", b.url, held.path, "-q"])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertEqual(r.stdout, "")
        XCTAssertEqual(r.stderr, "datajoin: warning: 1 change(s) held (see 'datajoin status')\n")
        let again = try CLI.run(["import", "--db", b.url, "--quiet"])
        XCTAssertEqual(again.status, 2, again.stderr)
        XCTAssertEqual(again.stderr, "datajoin: warning: 1 change(s) held (see 'datajoin status')\n")
        // A dry run exits as the real run would.
        let dry = try CLI.run(["import", "--db", b.url, "--dry-run", "-q"])
        XCTAssertEqual(dry.status, 2, dry.stderr)
        XCTAssertEqual(dry.stderr, "datajoin: warning: 1 change(s) held (see 'datajoin status')\n")
        XCTAssertEqual(try CLI.run(["import", "--db", b.url, "--dry-run"]).status, 2)
    }

    /// One error prefix, also for the argument parser's errors; a misspelt command is answered
    /// with the nearest one.
    func testArgumentErrorsCarryTheSamePrefixAndSuggest() throws {
        for args in [["exprot"], ["exprot", "--db", path("x.db")]] {
            let typo = try CLI.run(args)
            XCTAssertEqual(typo.status, 64)
            XCTAssertEqual(typo.stderr, "datajoin: error: unknown command 'exprot' (did you mean 'export'?)\n")
        }
        XCTAssertEqual(
            try CLI.run(["frobnicate"]).stderr, "datajoin: error: unknown command 'frobnicate'; see 'datajoin --help'\n"
        )
        let missing = try CLI.run(["export", "--db", path("x.db")])
        XCTAssertEqual(missing.status, 64)
        XCTAssertTrue(
            missing.stderr.hasPrefix("datajoin: error: Missing expected argument '--to <dir>'"), missing.stderr)
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
        try FileManager.default.setAttributes(
            [.modificationDate: Date(timeIntervalSinceNow: -7200)], ofItemAtPath: bad.path)
        let r = try CLI.run(["ingest", "--db", path("n.db"), bad.path, drop.path])
        XCTAssertEqual(r.status, 65, r.stdout + r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: bad.path), "named: left where it is")
        XCTAssertEqual(
            (r.stdout + r.stderr).components(separatedBy: "bad.djb").count - 1, 1,
            "refused once: \(r.stdout) \(r.stderr)")
        let key = Hex.encode(Array(Curve25519.Signing.PrivateKey().publicKey.rawRepresentation))
        try CLI.ok(["trust", "--db", path("n.db"), "peer", key])
        let twice = try CLI.run(["trust", "--db", path("n.db"), "other", key])
        XCTAssertEqual(twice.status, 64)
        XCTAssertTrue(twice.stderr.contains("already trusted for peer"), twice.stderr)
    }

    /// A database another writer holds: after a second the command says what it waits for, and
    /// at --lock-timeout it gives up with exit 75 (temporary) and changes nothing; SQLite's
    /// write lock and PostgreSQL's writer lock alike.
    func testAWriterLockIsReportedAfterASecondAndBoundedByTheLockTimeout() throws {
        for brand in TestDatabases.availableBrands {
            let a = try TestNode("lock\(brand)", brand, folder: folder, viaCLI: true)
            try a.exec("INSERT INTO sales_order (order_id) VALUES ('k1')")
            let holder = try DatabaseOpener.open(a.url)
            switch brand {
            case .sqlite: try holder.executeScript("BEGIN IMMEDIATE")
            case .postgres: _ = try holder.scalar("SELECT pg_advisory_lock(4242000001)")
            case .mariadb: _ = try holder.scalar("SELECT GET_LOCK(concat('datajoin_writer.', DATABASE()), 0)")
            }
            let out = try TestDatabases.subfolder(folder, "lock-\(brand)")
            let started = Date()
            let r = try CLI.run(["export", "--db", a.url, "--to", out.path, "--lock-timeout", "2"])
            let took = Date().timeIntervalSince(started)
            XCTAssertEqual(r.status, 75, "\(brand): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("datajoin: waiting for "), "\(brand): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("(up to 2 s; --lock-timeout sets this)"), "\(brand): \(r.stderr)")
            XCTAssertTrue(
                r.stderr.split(separator: "\n").last?.hasPrefix("datajoin: error: ") ?? false, "\(brand): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("--lock-timeout"), r.stderr)
            // The advice once (found from outside: SQLite's was printed twice).
            let last = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
            XCTAssertEqual(last.components(separatedBy: "raise --lock-timeout").count, 2, "\(brand): \(last)")
            XCTAssertGreaterThanOrEqual(took, 2)
            XCTAssertLessThan(took, 15)
            XCTAssertEqual(
                try FileManager.default.contentsOfDirectory(atPath: out.path), [], "\(brand): nothing written")
            switch brand {
            case .sqlite: try holder.executeScript("ROLLBACK")
            case .postgres: _ = try holder.scalar("SELECT pg_advisory_unlock(4242000001)")
            case .mariadb: _ = try holder.scalar("SELECT RELEASE_LOCK(concat('datajoin_writer.', DATABASE()))")
            }
            // Free again: the same command works, and a wait that ends in time says nothing.
            let ok = try CLI.ok(["export", "--db", a.url, "--to", out.path, "--lock-timeout", "2"])
            XCTAssertFalse(ok.stderr.contains("waiting"), ok.stderr)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path).count, 1)
        }
        let bad = try CLI.run(["status", "--db", path("x.db"), "--lock-timeout", "0"])
        XCTAssertEqual(bad.status, 64)
        XCTAssertTrue(
            bad.stderr.hasPrefix("datajoin: error: --lock-timeout must be a number of seconds above 0"), bad.stderr)
    }

    /// `-q` on every command prints nothing but errors; `-v` says each thing once, never a
    /// Swift debug description.
    func testQuietOnEveryCommandAndVerboseSaysEachThingOnce() throws {
        let a = try TestNode("va", .sqlite, folder: folder, viaCLI: true)
        let b = try TestNode("vb", .sqlite, folder: folder, viaCLI: true)
        try trustAll([a, b])
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('k1')")
        let out = try TestDatabases.subfolder(folder, "v")
        try CLI.ok(["export", "--db", a.url, "--to", out.path])
        let bundle = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: out.path).first).description
        let file = out.appendingPathComponent(bundle).path
        // A warning is printed under -q too (the key may hold NULL): this table gives none.
        try a.exec("CREATE TABLE extra (k TEXT PRIMARY KEY NOT NULL)")
        let quiet: [[String]] = [
            ["init", "--db", a.url, "--node", "va"],
            ["track", "--db", a.url, "extra"], ["untrack", "--db", a.url, "extra"],
            [
                "trust", "--db", b.url, "--replace", "va",
                try CLI.ok(["key", "--db", a.url]).stdout.trimmingCharacters(in: .whitespacesAndNewlines),
            ],
            ["verify", file], ["inspect", file], ["conflicts", "--db", b.url], ["check", "--db", a.url],
            ["export", "--db", a.url, "--to", out.path],
            ["ingest", "--db", b.url, out.path], ["import", "--db", b.url], ["prune", "--db", b.url], ["exit-codes"],
            ["snapshot", "--db", a.url, "--to", try TestDatabases.subfolder(folder, "snap").path],
        ]
        for args in quiet {
            let r = try CLI.run(args + ["-q"])
            XCTAssertEqual(r.status, 0, "\(args): \(r.stderr)")
            XCTAssertEqual(r.stdout + r.stderr, "", "\(args.prefix(1)) -q printed")
        }
        // What a command is run to print is its result, printed under -q too (found from
        // outside: `trust … "$(datajoin key -q …)"` got nothing).
        for (args, result) in [
            (["status", "--db", a.url], "node:             va"), (["status", "--db", a.url, "--json"], "{\"schema\":"),
            (["key", "--db", a.url], "dj2-"),
        ] {
            let r = try CLI.run(args + ["-q"])
            XCTAssertEqual(r.status, 0, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stdout.hasPrefix(result), "\(args): \(r.stdout)")
            XCTAssertEqual(r.stderr, "", "\(args)")
        }
        // Verbose: the refused file is named once, with its reason, in DataJoin's words.
        let junk = out.appendingPathComponent("junk.djb")
        try Data("junk".utf8).write(to: junk)
        try FileManager.default.setAttributes(
            [.modificationDate: Date(timeIntervalSinceNow: -7200)], ofItemAtPath: junk.path)
        let v = try CLI.run(["ingest", "--db", b.url, out.path, "-v"])
        // Beside files already ingested, none loaded: the refusal's class.
        XCTAssertEqual(v.status, 65)
        let all = v.stdout + v.stderr
        XCTAssertEqual(all.components(separatedBy: "not a gzip file").count - 1, 1, all)
        XCTAssertFalse(all.contains("refused(") || all.contains("loaded(") || all.contains("alreadySeen"), all)
        XCTAssertTrue(v.stderr.contains("reading \(junk.path)"), v.stderr)
    }

    /// A negative number where a count belongs says what the option takes (the parser read
    /// it as a flag and said the value was missing).
    func testANegativeCountSaysWhatTheOptionTakes() throws {
        for (args, option, value) in [
            (["export", "--db", path("x.db"), "--to", folder.path, "--max-changes", "-5"], "--max-changes", "-5"),
            (["conflicts", "--db", path("x.db"), "--limit", "-1"], "--limit", "-1"),
            (["status", "--db", path("x.db"), "--lock-timeout", "-2.5"], "--lock-timeout", "-2.5"),
            (["prune", "--db", path("x.db"), "--keep", "-3d"], "--keep", "-3d"),
        ] {
            let r = try CLI.run(args)
            XCTAssertEqual(r.status, 64, "\(args)")
            // --keep in the words its own check says for 0 (found from outside).
            let takes = option == "--keep" ? "a duration above 0 and below 290 million years" : "a value above 0"
            XCTAssertEqual(
                r.stderr,
                "datajoin: error: \(option) takes \(takes), not \(value) (see 'datajoin \(args[0]) --help')\n")
        }
        // --every says its range whether the value is 0 or negative (found from outside).
        for value in ["0", "-1"] {
            let r = try CLI.run(["watch", "--db", path("x.db"), "--in", "i", "--out", "o", "--every", value])
            XCTAssertEqual(r.status, 64, value)
            XCTAssertTrue(
                r.stderr.hasPrefix("datajoin: error: --every takes a number of seconds from 0.1 to 86400, not "),
                r.stderr)
            XCTAssertTrue(r.stderr.hasSuffix(" (see 'datajoin watch --help')\n"), r.stderr)
        }
        // Every parser error is one line, pointing at the command's help.
        let missing = try CLI.run(["export", "--db", path("x.db")])
        XCTAssertEqual(missing.status, 64)
        XCTAssertEqual(
            missing.stderr, "datajoin: error: Missing expected argument '--to <dir>' (see 'datajoin export --help')\n")
        XCTAssertEqual(
            try CLI.run(["--bogus"]).stderr, "datajoin: error: Unknown option '--bogus' (see 'datajoin --help')\n")
    }

    /// Inputs that are not what they claim, or not there, get their class: a file that is no
    /// database (65), a PostgreSQL database that does not exist (66), a malformed connection
    /// option (64).
    func testWrongDatabasesGetTheirClass() throws {
        try Data("this is not a database, but it is long enough to have a header of sorts.....".utf8).write(
            to: URL(fileURLWithPath: path("garbage.db")))
        let garbage = try CLI.run(["status", "--db", path("garbage.db")])
        XCTAssertEqual(garbage.status, 65, garbage.stderr)
        XCTAssertTrue(garbage.stderr.contains("is not an SQLite database"), garbage.stderr)
        guard let base = TestDatabases.postgresBase else {
            if ProcessInfo.processInfo.environment["DATAJOIN_REQUIRE_PG"] == "1" { XCTFail("PostgreSQL required") }
            return
        }
        let nosuch = try CLI.run([
            "status", "--db", TestDatabases.replaceDatabase(in: base, with: "dj_no_such_database"),
        ])
        XCTAssertEqual(nosuch.status, 66, nosuch.stderr)
        XCTAssertTrue(nosuch.stderr.contains("does not exist"), nosuch.stderr)
        let badOption = try CLI.run(["status", "--db", base + (base.contains("?") ? "&" : "?") + "connect_timeout=abc"])
        XCTAssertEqual(badOption.status, 64, badOption.stderr)
        XCTAssertEqual(badOption.stderr.split(separator: "\n").count, 1, badOption.stderr)
    }

    /// `status` lists the latest 20 quarantined files and counts the rest: 3,000 junk files made
    /// a status of 3,016 lines (found from outside). At 19, 20, 21 and 60 files; --json has all.
    func testStatusListsTheLatestQuarantinedFilesAndCountsTheRest() throws {
        for n in [19, 20, 21, 60] {
            let db = path("q\(n).db")
            try CLI.ok(["init", "--db", db, "--node", "q\(n)"])
            let drop = try TestDatabases.subfolder(folder, "junk\(n)")
            for i in 0..<n { try Data("junk \(i)".utf8).write(to: drop.appendingPathComponent("j\(i).djb")) }
            XCTAssertEqual(try CLI.run(["ingest", "--db", db, drop.path]).status, 65)
            let text = try CLI.ok(["status", "--db", db]).stdout
            let listed = text.split(separator: "\n").filter { $0.hasPrefix("  ") && $0.contains("/quarantine/j") }
            XCTAssertEqual(listed.count, min(n, 20), "\(n): \(text)")
            XCTAssertEqual(text.contains("… \(n - 20) earlier (datajoin status --json"), n > 20, "\(n): \(text)")
            XCTAssertTrue(text.contains("quarantined:      \(n) file(s)"), text)
            let json = try CLI.ok(["status", "--db", db, "--json"]).stdout
            XCTAssertEqual(json.components(separatedBy: "/quarantine/j").count - 1, n, "\(n)")
        }
    }

    /// The quarantine list is what is there now, with absolute paths: a file moved back out,
    /// or ingested since from a copy, is not listed.
    func testQuarantineListsWhatIsThereNowWithAbsolutePaths() throws {
        let a = try TestNode("qa2", .sqlite, folder: folder, viaCLI: true)
        let b = try TestNode("qb2", .sqlite, folder: folder, viaCLI: true)
        try trustAll([a, b])
        let drop = try TestDatabases.subfolder(folder, "relative-drop")
        for name in ["bad1.djb", "bad2.djb"] {
            let f = drop.appendingPathComponent(name)
            try Data("not a bundle".utf8).write(to: f)
            try FileManager.default.setAttributes(
                [.modificationDate: Date(timeIntervalSinceNow: -7200)], ofItemAtPath: f.path)
        }
        // Run from the folder above, naming the drop folder relatively.
        let r = try CLI.runProgram(CLI.executable, ["ingest", "--db", b.url, "relative-drop"], in: folder)
        XCTAssertEqual(r.status, 65, r.output)
        func listed() throws -> [String] {
            let json = try CLI.ok(["status", "--db", b.url, "--json"]).stdout
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            return (object["quarantined"] as? [[String: Any]] ?? []).compactMap { $0["path"] as? String }.sorted()
        }
        let quarantine = drop.appendingPathComponent("quarantine").standardizedFileURL.path
        XCTAssertEqual(try listed(), [quarantine + "/bad1.djb", quarantine + "/bad2.djb"])
        // One moved back out: no longer listed.
        try FileManager.default.moveItem(
            atPath: quarantine + "/bad1.djb", toPath: folder.appendingPathComponent("bad1.djb").path)
        XCTAssertEqual(try listed(), [quarantine + "/bad2.djb"])
        // A genuine bundle recorded as quarantined (as an older version might have), then
        // ingested from a copy: no longer listed.
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('k')")
        let out = try TestDatabases.subfolder(folder, "genuine")
        let written = try a.export(to: out)
        let copy = quarantine + "/genuine.djb"
        try FileManager.default.copyItem(atPath: try XCTUnwrap(written.first), toPath: copy)
        try b.exec(
            "INSERT INTO ds_quarantine (path, reason, quarantined_at) VALUES (?, 'test', '2026-01-01T00:00:00Z')",
            [.text(copy)])
        XCTAssertEqual(try listed(), [quarantine + "/bad2.djb", copy])
        try CLI.ok(["ingest", "--db", b.url, out.path])
        XCTAssertEqual(try listed(), [quarantine + "/bad2.djb"])
        XCTAssertTrue(try CLI.ok(["status", "--db", b.url]).stdout.contains("  \(quarantine)/bad2.djb: "))
    }

    /// A drop folder this user may not write: the refused file stays, and the line says why in
    /// the system's words (found from outside: Foundation's "The operation could not be
    /// completed. You don't have permission.").
    func testAQuarantineThatCannotBeMadeSaysWhy() throws {
        let home = path("qro-home")
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: home)
        let db = home + "/n.db"
        try CLI.ok(["init", "--db", db, "--node", "qro"])
        try FileManager.default.setAttributes([.posixPermissions: 0o666], ofItemAtPath: db)
        let drop = path("qro-drop")
        try FileManager.default.createDirectory(atPath: drop, withIntermediateDirectories: true)
        let bad = drop + "/bad.djb"
        try Data("not a bundle".utf8).write(to: URL(fileURLWithPath: bad))
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -7200)], ofItemAtPath: bad)
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: drop)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: drop) }
        let r = try runUnprivileged(["ingest", "--db", db, drop])
        XCTAssertEqual(r.status, 65, r.output)
        XCTAssertTrue(
            r.output.contains(
                "could not move it to quarantine (cannot make \(drop)/quarantine: Permission denied), left in place"),
            r.output)
        XCTAssertFalse(r.output.contains("operation could not be completed"), r.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: bad))
    }

    /// A `quarantine` that is a link, or a `.reason` name taken by a link, is never followed:
    /// whoever can write to a shared drop folder could send refused files anywhere (found from
    /// outside). The file stays where it was, and the run says why.
    func testQuarantineNeverFollowsALink() throws {
        let b = try TestNode("qlink", .sqlite, folder: folder, viaCLI: true)
        let drop = try TestDatabases.subfolder(folder, "linked-drop")
        let elsewhere = try TestDatabases.subfolder(folder, "elsewhere")
        let bad = drop.appendingPathComponent("bad.djb")
        func plant() throws {
            try Data("not a bundle".utf8).write(to: bad)
            try FileManager.default.setAttributes(
                [.modificationDate: Date(timeIntervalSinceNow: -7200)], ofItemAtPath: bad.path)
        }
        try plant()
        try FileManager.default.createSymbolicLink(
            atPath: drop.appendingPathComponent("quarantine").path, withDestinationPath: elsewhere.path)
        let r = try CLI.run(["ingest", "--db", b.url, drop.path])
        XCTAssertEqual(r.status, 65, r.stderr)
        XCTAssertTrue(r.stderr.contains("is not a folder but a link or a file), left in place"), r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: bad.path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: elsewhere.path), [])
        // A real quarantine folder, with a link planted at the reason's name: another name is taken.
        try FileManager.default.removeItem(atPath: drop.appendingPathComponent("quarantine").path)
        let quarantine = try TestDatabases.subfolder(drop, "quarantine")
        let target = elsewhere.appendingPathComponent("victim")
        try Data("keep".utf8).write(to: target)
        try FileManager.default.createSymbolicLink(
            atPath: quarantine.appendingPathComponent("bad.djb.reason").path, withDestinationPath: target.path)
        XCTAssertEqual(try CLI.run(["ingest", "--db", b.url, drop.path]).status, 65)
        XCTAssertEqual(try String(contentsOf: target, encoding: .utf8), "keep")
        XCTAssertTrue(FileManager.default.fileExists(atPath: quarantine.appendingPathComponent("bad.1.djb").path))
        XCTAssertTrue(
            try String(contentsOf: quarantine.appendingPathComponent("bad.1.djb.reason"), encoding: .utf8).contains(
                "not"))
        // The quarantine folder ingested as a drop folder: refused where they stand.
        let again = try CLI.run(["ingest", "--db", b.url, quarantine.path])
        XCTAssertEqual(again.status, 65, again.stderr)
        XCTAssertEqual(try CLI.run(["ingest", "--db", b.url, quarantine.path + "/."]).status, 65)
        XCTAssertFalse(FileManager.default.fileExists(atPath: quarantine.appendingPathComponent("quarantine").path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: quarantine.appendingPathComponent("bad.1.djb").path))
    }

    /// A file quarantined under a taken name keeps its extension: moved back out after its
    /// cause is fixed, the retry ingests it (found from outside: `bad.djb.1` was never read).
    func testASecondQuarantinedCopyIsRetriedWhenMovedBackOut() throws {
        let a = try TestNode("q2-a", .sqlite, folder: folder)
        let b = try TestNode("q2-b", .sqlite, folder: folder)
        let drop = try TestDatabases.subfolder(folder, "q2-drop")
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('k')")
        let file = try XCTUnwrap(try a.export(to: try TestDatabases.subfolder(folder, "q2-out")).first)
        let name = (file as NSString).lastPathComponent
        // Untrusted at first, the good file is left in place; a damaged copy of that name is
        // quarantined twice.
        for _ in 0..<2 {
            try Data("not a bundle".utf8).write(to: drop.appendingPathComponent(name))
            try FileManager.default.setAttributes(
                [.modificationDate: Date(timeIntervalSinceNow: -7200)],
                ofItemAtPath: drop.appendingPathComponent(name).path)
            XCTAssertEqual(try CLI.run(["ingest", "--db", b.url, drop.path]).status, 65)
        }
        let stem = (name as NSString).deletingPathExtension
        let second = drop.appendingPathComponent("quarantine/\(stem).1.djb")
        XCTAssertTrue(FileManager.default.fileExists(atPath: second.path))
        // The cause fixed (the file copied again over the damaged one), then moved back out.
        try FileManager.default.removeItem(at: second)
        try FileManager.default.copyItem(atPath: file, toPath: second.path)
        try trustAll([a, b])
        try FileManager.default.moveItem(at: second, to: drop.appendingPathComponent("\(stem).1.djb"))
        XCTAssertEqual(try CLI.run(["ingest", "--db", b.url, drop.path]).status, 0)
        XCTAssertEqual(try b.rows(), try a.rows())
    }

    /// A bundle whose name is not UTF-8 (copied from a FAT or SMB stick) is refused with what to
    /// do, exit 2; it was skipped as "removed from the folder before it was read", exit 0.
    func testABundleNamedInAnotherEncodingIsRefusedWithTheCure() throws {
        let a = try TestNode("enc-a", .sqlite, folder: folder, viaCLI: true)
        let b = try TestNode("enc-b", .sqlite, folder: folder, viaCLI: true)
        try trustAll([a, b])
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('k')")
        let out = try TestDatabases.subfolder(folder, "latin1-out")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: try XCTUnwrap(try a.export(to: out).first)))
        let drop = try TestDatabases.subfolder(folder, "latin1-drop")
        // "café.djb" in Latin-1: 0xE9 alone is not UTF-8.
        let name = Array(drop.path.utf8) + Array("/caf".utf8) + [0xE9] + Array(".djb".utf8) + [0]
        let fd = name.withUnsafeBufferPointer { p in
            p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) { open($0, O_WRONLY | O_CREAT, 0o644) }
        }
        XCTAssertGreaterThanOrEqual(fd, 0)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        let r = try CLI.run(["ingest", "--db", b.url, drop.path])
        XCTAssertEqual(r.status, 65, r.stdout + r.stderr)
        XCTAssertTrue((r.stdout + r.stderr).contains("its name is not valid UTF-8"), r.stdout + r.stderr)
        XCTAssertEqual(try b.rows(), [])
    }

    /// Rows from before `track` are not exported, and track says so; `track --backfill` sends
    /// them, and nodes that already hold overlapping rows merge them by the usual rules.
    func testTrackSaysWhatItLeavesBehindAndBackfillSendsIt() throws {
        let peerBrand: Brand =
            TestDatabases.postgresBase == nil && ProcessInfo.processInfo.environment["DATAJOIN_REQUIRE_PG"] != "1"
            ? .sqlite : .postgres
        let a = try TestNode("fill-a", .sqlite, folder: folder, track: [], viaCLI: true)
        let b = try TestNode("fill-b", peerBrand, folder: folder, track: [], viaCLI: true)
        try trustAll([a, b])
        try a.exec(
            "INSERT INTO sales_order (order_id, description, quantity) VALUES ('k1', 'from a', '1'), ('k2', 'a only', '2'), ('k3', 'a only', '3')"
        )
        try b.exec(
            "INSERT INTO sales_order (order_id, description, quantity) VALUES ('k1', 'from b', '1'), ('k4', 'b only', '4')"
        )
        let tracked = try CLI.ok(["track", "--db", a.url, "sales_order"])
        XCTAssertTrue(
            tracked.stderr.contains("datajoin: warning: sales_order already holds 3 row(s); they are not exported"),
            tracked.stderr)
        XCTAssertTrue(tracked.stderr.contains("datajoin track --backfill sales_order"), tracked.stderr)
        let empty = try TestDatabases.subfolder(folder, "empty")
        XCTAssertTrue(
            try CLI.ok(["export", "--db", a.url, "--to", empty.path]).stdout.contains("nothing new to export"))
        // Backfill the table tracked already (a), and track with backfill at once (b).
        XCTAssertTrue(
            try CLI.ok(["track", "--db", a.url, "--backfill", "sales_order"]).stdout.contains(
                "captured 3 existing row(s) of sales_order as inserts"))
        let fillB = try CLI.ok(["track", "--db", b.url, "--backfill", "sales_order"])
        XCTAssertTrue(fillB.stdout.contains("captured 2 existing row(s)"), fillB.stdout)
        XCTAssertFalse(fillB.stderr.contains("already holds"), fillB.stderr)
        for (from, to, name) in [(a, b, "ab"), (b, a, "ba"), (a, b, "ab2")] {
            let out = try TestDatabases.subfolder(folder, name)
            try CLI.ok(["export", "--db", from.url, "--to", out.path])
            try CLI.ok(["ingest", "--db", to.url, out.path])
        }
        XCTAssertEqual(try a.rows(), try b.rows())
        XCTAssertEqual(try a.db.scalar("SELECT count(*) FROM sales_order"), .integer(4))
        // k1 was on both: one value won everywhere, and the other is in a conflict log.
        let k1 = try a.db.scalar("SELECT description FROM sales_order WHERE order_id = 'k1'")
        XCTAssertTrue(k1 == .text("from a") || k1 == .text("from b"), "\(k1)")
        let logged = try ConflictLog.list(a.db) + ConflictLog.list(b.db)
        XCTAssertTrue(logged.contains { $0.key.contains("k1") && $0.column == "description" }, "\(logged)")
    }

    /// On a terminal, export, ingest and import show progress from the first chunk on (stamping
    /// included), within a bundle too; piped, they print none.
    func testLongStepsShowProgressOnATerminalOnly() throws {
        let a = try TestNode("pa", .sqlite, folder: folder, viaCLI: true)
        let b = try TestNode("pb", .sqlite, folder: folder, viaCLI: true)
        try trustAll([a, b])
        try a.exec(
            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 12000) INSERT INTO sales_order (order_id) SELECT 'o' || i FROM c"
        )
        let out = try TestDatabases.subfolder(folder, "progress")
        func onTerminal(_ args: [String]) throws -> String {
            // script(1) gives the command a pseudo-terminal, as an operator's shell does.
            let command = ([CLI.executable.path] + args).joined(separator: " ")
            let r = try CLI.runProgram(URL(fileURLWithPath: "/usr/bin/script"), ["-qec", command, "/dev/null"])
            XCTAssertEqual(r.status, 0, r.output)
            return r.output
        }
        let exported = try onTerminal(["export", "--db", a.url, "--to", out.path])
        XCTAssertTrue(exported.contains("\rstamping: 2000 changes"), exported)
        XCTAssertTrue(exported.contains("\rexport: 5000/12000 changes"), exported)
        let ingested = try onTerminal(["ingest", "--no-import", "--db", b.url, out.path])
        XCTAssertTrue(ingested.contains("\ringest: 2000 changes"), ingested)
        XCTAssertTrue(ingested.contains(", ETA "), ingested)
        let imported = try onTerminal(["import", "--db", b.url])
        XCTAssertTrue(imported.contains("\rimport: 1000/12000 changes"), imported)
        XCTAssertEqual(try b.db.scalar("SELECT count(*) FROM sales_order"), .integer(12000))
        // Piped: no progress line.
        try a.exec("UPDATE sales_order SET description = 'x'")
        let piped = try CLI.ok(["export", "--db", a.url, "--to", out.path])
        XCTAssertFalse(piped.stderr.contains("\r"), piped.stderr)
    }

    /// Nothing stops silently at a limit: status and verify count every gap past the ones they
    /// list; a dry run counts every conflict past the 1,000 it lists.
    func testGapsAndDryRunConflictsAreCountedPastWhatIsListed() throws {
        let a = try TestNode("ga", .sqlite, folder: folder, viaCLI: true)
        let b = try TestNode("gb", .sqlite, folder: folder, viaCLI: true)
        try trustAll([a, b])
        for i in 1...121 { try a.exec("INSERT INTO sales_order (order_id) VALUES (?)", [.text("o\(i)")]) }
        let one = try TestDatabases.subfolder(folder, "one-each")
        let files = try Exporter.export(a.db, ExportOptions(folder: one.path, maxChanges: 1)).map(\.path)
        XCTAssertEqual(files.count, 121)
        // Every other bundle: 60 gaps.
        for (i, f) in files.enumerated() where i % 2 == 0 { try CLI.ok(["ingest", "--db", b.url, f]) }
        let json = try CLI.ok(["status", "--db", b.url, "--json"]).stdout
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let origin = try XCTUnwrap((object["origins"] as? [[String: Any]])?.first)
        XCTAssertEqual((origin["missing"] as? [Any])?.count, 50)
        XCTAssertEqual(origin["gap_count"] as? Int, 60)
        XCTAssertTrue(try CLI.ok(["status", "--db", b.url]).stdout.contains("and 10 more gap(s)"))
        let all = try TestDatabases.subfolder(folder, "all")
        try CLI.ok(["export", "--db", a.url, "--to", all.path, "--resend"])
        let verified = try CLI.ok(["verify", "--db", b.url, all.path]).stdout
        XCTAssertTrue(verified.contains("fills the gap 2–2, 4–4"), verified)
        XCTAssertTrue(verified.contains(" and 40 more"), verified)
        // 1,001 conflicting edits: the dry run lists 1,000 and counts all.
        try CLI.ok(["ingest", "--db", b.url, all.path])
        try b.exec(
            "WITH RECURSIVE c(i) AS (SELECT 122 UNION ALL SELECT i + 1 FROM c WHERE i < 1001) INSERT INTO sales_order (order_id) SELECT 'o' || i FROM c"
        )
        let fromB = try TestDatabases.subfolder(folder, "from-b")
        try CLI.ok(["export", "--db", b.url, "--to", fromB.path])
        try CLI.ok(["ingest", "--db", a.url, fromB.path])
        try a.exec("UPDATE sales_order SET description = 'a'")
        try CLI.ok(["export", "--db", a.url, "--to", try TestDatabases.subfolder(folder, "edits-a").path])
        try b.exec("UPDATE sales_order SET description = 'b'")
        let editsB = try TestDatabases.subfolder(folder, "edits-b")
        try CLI.ok(["export", "--db", b.url, "--to", editsB.path])
        let dry = try CLI.ok(["ingest", "--db", a.url, "--dry-run", editsB.path]).stdout
        XCTAssertTrue(dry.contains("would log 1001 conflict(s) (the first 1000 below)"), String(dry.prefix(2000)))
        XCTAssertEqual(dry.components(separatedBy: "\n  sales_order ").count - 1, 1000)
        XCTAssertEqual(try a.db.scalar("SELECT count(*) FROM ds_conflict"), .integer(0), "a dry run logs nothing")
    }

    /// SQLite lets a text PRIMARY KEY hold NULL: `track` warns, and such a row's changes are
    /// held on the peer with the reason (they were applied once and then waited for ever).
    func testANullKeyIsWarnedAboutAndHeldWithItsReason() throws {
        let schema = "CREATE TABLE t (id TEXT PRIMARY KEY, v TEXT, u TEXT UNIQUE)"
        let a = try TestNode("nk-a", .sqlite, folder: folder, table: schema, track: [], viaCLI: true)
        let b = try TestNode("nk-b", .sqlite, folder: folder, table: schema, track: [], viaCLI: true)
        try trustAll([a, b])
        let tracked = try CLI.ok(["track", "--db", a.url, "t"])
        XCTAssertTrue(tracked.stderr.contains("its key column(s) id may hold NULL"), tracked.stderr)
        try CLI.ok(["track", "--db", b.url, "t", "-q"])
        try a.exec("INSERT INTO t VALUES (NULL, 'nullkey', 'N1'), ('k', 'keyed', 'K1')")
        try a.exec("UPDATE t SET v = 'nullkey-upd' WHERE u = 'N1'")
        let out = try TestDatabases.subfolder(folder, "nullkey")
        try CLI.ok(["export", "--db", a.url, "--to", out.path])
        let r = try CLI.run(["ingest", "--db", b.url, out.path])
        XCTAssertEqual(r.status, 2, r.stdout + r.stderr)
        XCTAssertEqual(try b.db.scalar("SELECT group_concat(id || '=' || v) FROM t"), .text("k=keyed"))
        XCTAssertEqual(
            try b.db.scalar(
                "SELECT count(*) FROM ds_change_held WHERE reason LIKE '%the key (id) of this row is NULL on nk-a%'"),
            .integer(2))
        // The row gets a key on a and arrives; the changes of its keyless past can never apply:
        // the operator drops them, each logged, and the nodes agree.
        try a.exec("UPDATE t SET id = 'k1' WHERE id IS NULL")
        let out2 = try TestDatabases.subfolder(folder, "nullkey2")
        try CLI.ok(["export", "--db", a.url, "--to", out2.path])
        XCTAssertEqual(try CLI.run(["ingest", "--db", b.url, out2.path]).status, 2)
        let held = try b.db.rows(
            "SELECT i.origin || '#' || i.seq FROM ds_change_held AS h JOIN ds_change_inbox AS i ON i.id = h.id ORDER BY i.seq"
        ).compactMap { $0.string(0) }
        XCTAssertEqual(held.count, 3, "\(held)")
        XCTAssertEqual(try CLI.run(["import", "--db", b.url, "--drop-held", "nk-a#99"]).status, 64)
        XCTAssertEqual(try CLI.run(["import", "--db", b.url, "--drop-held", "nonsense"]).status, 64)
        let dropped = try CLI.ok(["import", "--db", b.url] + held.flatMap { ["--drop-held", $0] })
        XCTAssertEqual(dropped.stdout.components(separatedBy: "dropped held change nk-a#").count - 1, 3, dropped.stdout)
        XCTAssertEqual(try b.db.scalar("SELECT count(*) FROM ds_change_held"), .integer(0))
        XCTAssertEqual(
            try b.db.scalar("SELECT count(*) FROM ds_conflict WHERE reason LIKE '%dropped by the operator%'"),
            .integer(3))
        // `conflicts` shows them as dropped, with no winner (found from outside: "kept -
        // (1970-01-01T00:00:00.000Z+0@)" and a winner_hlc of 0).
        let lines = try CLI.ok(["conflicts", "--db", b.url]).stdout.split(separator: "\n")
        XCTAssertEqual(
            lines.filter { $0.contains(": dropped ") && $0.contains("dropped by the operator") }.count, 3, "\(lines)")
        XCTAssertFalse(lines.contains { $0.contains("1970-01-01") || $0.contains("kept -") }, "\(lines)")
        let json = try CLI.ok(["conflicts", "--db", b.url, "--json"]).stdout
        XCTAssertEqual(json.components(separatedBy: "\"winner_hlc\":null,\"winner_node\":null").count - 1, 3, json)
        XCTAssertFalse(json.contains("\"winner_hlc\":0"), json)
        // What was given up is kept: the dropped changes' values (found from outside: gone).
        XCTAssertTrue(json.contains("\"loser_value\":{\"id\":null,\"v\":\"nullkey\",\"u\":\"N1\"}"), json)
        XCTAssertTrue(json.contains("\"loser_value\":{\"v\":\"nullkey-upd\"}"), json)
        XCTAssertTrue(lines.contains { $0.contains(": dropped {\"v\":\"nullkey-upd\"} (") }, "\(lines)")
        XCTAssertEqual(try a.rows("t"), try b.rows("t"))
    }
}
