import Foundation
import XCTest

@testable import DataJoin

/// `prune --bundles FOLDER` removes the files this node wrote once every trusted peer has
/// confirmed them by its receipts, and nothing else: not a file some peer still needs, not
/// another node's file, not a file named like ours that we did not sign (issue 14).
final class DropFolderTests: ScenarioTestCase {
    var folder: URL!
    override func setUpWithError() throws {
        try super.setUpWithError()
        folder = try TestDatabases.tempFolder("drop")
    }

    func insert(_ n: TestNode, _ ids: ClosedRange<Int>) throws {
        for i in ids {
            try n.exec(
                "INSERT INTO sales_order (order_id, description, quantity) VALUES (?, ?, ?)",
                [.text("\(n.name)-\(i)"), .text("row \(i)"), .text("\(i)")])
        }
    }

    func files(_ f: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: f.path).filter { $0.hasSuffix(".djb") }.sorted()
    }

    @discardableResult
    func prune(_ n: TestNode, _ f: URL, removed: Int, kept: Int, file: StaticString = #filePath, line: UInt = #line)
        throws -> String
    {
        let r = try CLI.ok(["prune", "--db", n.url, "--bundles", f.path], file: file, line: line)
        XCTAssertTrue(
            r.stdout.contains("removed \(removed) bundle file(s)") && r.stdout.contains("kept \(kept) "),
            "\(n.name): \(r.stdout) \(r.stderr)", file: file, line: line)
        return r.stdout
    }

    func testAHubAndItsLaptopsRemoveOnlyConfirmedFiles() throws {
        let hub = try TestNode("hub", .postgres, folder: folder)
        let a = try TestNode("la", .sqlite, folder: folder)
        let b = try TestNode("lb", .sqlite, folder: folder)
        for l in [a, b] {
            try l.trust(hub)
            try hub.trust(l)
        }
        let up = try TestDatabases.subfolder(folder, "up"), down = try TestDatabases.subfolder(folder, "down")
        try insert(a, 1...3)
        try insert(b, 1...2)
        let a1 = try a.export(to: up).map { ($0 as NSString).lastPathComponent }
        let b1 = try b.export(to: up).map { ($0 as NSString).lastPathComponent }
        XCTAssertEqual(a1.count, 1)
        XCTAssertTrue(try prune(a, up, removed: 0, kept: 1).contains("waiting for: hub"))

        try hub.ingest([up.path])
        let r1 = try Exporter.export(hub.db, ExportOptions(folder: down.path, relay: true)).map {
            ($0.path as NSString).lastPathComponent
        }
        XCTAssertEqual(r1.count, 1)
        XCTAssertTrue(try prune(hub, down, removed: 0, kept: 1).contains("waiting for: la, lb"))

        // The hub's relay carries its receipts: la's file is confirmed, lb's is not la's to remove.
        try a.ingest([down.path])
        try prune(a, up, removed: 1, kept: 0)
        XCTAssertEqual(try files(up), b1)

        // A file named as la's that la did not sign stays, even where la's receipts cover it.
        let epoch8 = String(try NodeIdentity.load(a.db).epoch.prefix(8))
        let forged = "la_000000000001-000000000001_\(epoch8).djb"
        try FileManager.default.copyItem(at: up.appendingPathComponent(b1[0]), to: up.appendingPathComponent(forged))
        XCTAssertTrue(try prune(a, up, removed: 0, kept: 0).contains("left 1 named as this node's"))
        XCTAssertEqual(try files(up), (b1 + [forged]).sorted())
        try FileManager.default.removeItem(at: up.appendingPathComponent(forged))

        // la confirms lb's changes to the hub; lb has not yet: the relay file stays.
        try insert(a, 4...5)
        let a2 = try a.export(to: up).map { ($0 as NSString).lastPathComponent }
        // la's new file renamed to the name of its first, confirmed one: its signed header
        // names other changes, so it stays (found from outside: the name was trusted).
        let a1Name = up.appendingPathComponent(a1[0]), a2Name = up.appendingPathComponent(a2[0])
        try FileManager.default.moveItem(at: a2Name, to: a1Name)
        XCTAssertTrue(try prune(a, up, removed: 0, kept: 0).contains("left 1"))
        try FileManager.default.moveItem(at: a1Name, to: a2Name)
        try hub.ingest([up.path])
        XCTAssertTrue(try prune(hub, down, removed: 0, kept: 1).contains("waiting for: lb"))
        XCTAssertEqual(try files(down), r1)

        try b.ingest([down.path])
        try insert(b, 3...3)
        try CLI.ok(["export", "--db", b.url, "--to", up.path, "--encrypt"])
        try hub.ingest([up.path])
        try prune(hub, down, removed: 1, kept: 0)
        XCTAssertEqual(try files(down), [])
        // lb's first file was confirmed by the relay it just ingested; its encrypted one not yet.
        try prune(b, up, removed: 1, kept: 1)

        // The next relay confirms everything the laptops sent, the encrypted file included.
        _ = try Exporter.export(hub.db, ExportOptions(folder: down.path, relay: true))
        for l in [a, b] { try l.ingest([down.path]) }
        try prune(b, up, removed: 1, kept: 0)

        // la's second file: a receipt one short of its last change keeps it, the exact one removes it.
        let last = Int64(5)
        XCTAssertEqual(try files(up), a2)
        try a.exec("UPDATE ds_peer_receipt SET seq = ? WHERE peer = 'hub' AND origin = 'la'", [.integer(last - 1)])
        try prune(a, up, removed: 0, kept: 1)
        try a.exec("UPDATE ds_peer_receipt SET seq = ? WHERE peer = 'hub' AND origin = 'la'", [.integer(last)])
        try prune(a, up, removed: 1, kept: 0)
        XCTAssertEqual(try files(up), [])

        // Everything arrived everywhere; a rescan of the pruned folders loads nothing.
        _ = try Exporter.export(hub.db, ExportOptions(folder: down.path, relay: true))
        for l in [a, b] { try l.ingest([down.path]) }
        XCTAssertEqual(try a.rows(), try hub.rows())
        XCTAssertEqual(try b.rows(), try hub.rows())
        XCTAssertEqual(try hub.rows().count, 5 + 3)
    }

    func testAMissingFolderChangesNothing() throws {
        let a = try TestNode("la", .sqlite, folder: folder)
        let r = try CLI.ok(
            ["prune", "--db", a.url, "--bundles", folder.appendingPathComponent("nope").path], expect: 66)
        XCTAssertTrue(r.stderr.contains("no such folder"), r.stderr)
        XCTAssertFalse(r.stdout.contains("pruned"), r.stdout)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
    }

    func testAFileOrFilesOnlyWithoutAFolderIsRefused() throws {
        let a = try TestNode("la", .sqlite, folder: folder)
        let file = folder.appendingPathComponent("a-file")
        try Data("x".utf8).write(to: file)
        let f = try CLI.ok(["prune", "--db", a.url, "--bundles", file.path], expect: 66)
        XCTAssertTrue(f.stderr.contains("not a folder"), f.stderr)
        XCTAssertFalse(f.stdout.contains("pruned"), f.stdout)
        let o = try CLI.ok(["prune", "--db", a.url, "--files-only"], expect: 64)
        XCTAssertTrue(o.stderr.contains("--files-only goes with --bundles"), o.stderr)
    }

    /// --files-only leaves the database's history: nothing pruned there, confirmed files gone.
    func testFilesOnly() throws {
        let hub = try TestNode("hub", .sqlite, folder: folder)
        let a = try TestNode("la", .sqlite, folder: folder)
        try a.trust(hub)
        try hub.trust(a)
        let up = try TestDatabases.subfolder(folder, "up"), down = try TestDatabases.subfolder(folder, "down")
        try insert(a, 1...2)
        try a.export(to: up)
        try hub.ingest([up.path])
        try insert(hub, 1...1)
        try Exporter.export(hub.db, ExportOptions(folder: down.path, relay: true))
        try a.ingest([down.path])
        // A folder named twice (once with a trailing slash) is pruned and reported once.
        let r = try CLI.ok([
            "prune", "--db", a.url, "--bundles", up.path, "--bundles", up.path + "/", "--files-only",
        ])
        XCTAssertFalse(r.stdout.contains("pruned"), r.stdout)
        XCTAssertTrue(r.stdout.contains("removed 1 bundle file(s)"), r.stdout)
        XCTAssertEqual(r.stdout.components(separatedBy: "bundle file(s)").count, 2, r.stdout)
        XCTAssertEqual(try files(up), [])
        XCTAssertEqual(try a.db.scalar("SELECT count(*) FROM ds_change_outbox").asInt64, 2, "outbox kept")
    }

    /// A file found in a folder and removed before it was read is no refusal (the node that
    /// wrote it pruned it while this ingest listed the folder); a named file is.
    func testAFileGoneBeforeItIsReadIsSkipped() throws {
        let gone = folder.appendingPathComponent("x_000000000001-000000000001_ab12cd34.djb").path
        XCTAssertTrue(Ingester.vanished(BundleFiles.Entry(path: gone, problem: nil, inFolder: true)))
        XCTAssertFalse(Ingester.vanished(BundleFiles.Entry(path: gone, problem: nil, inFolder: false)))
        try Data("x".utf8).write(to: URL(fileURLWithPath: gone))
        XCTAssertFalse(Ingester.vanished(BundleFiles.Entry(path: gone, problem: nil, inFolder: true)))
        // Listed, then removed before its type was read (found from outside: refused as "a pipe
        // or another special file", exit 2): no problem at listing, so the ingest says "removed".
        XCTAssertNil(BundleFiles.folderEntryProblem(nil))
        XCTAssertNil(BundleFiles.folderEntryProblem(.typeRegular))
        XCTAssertEqual(
            BundleFiles.folderEntryProblem(.typeSocket), "not a regular file (a socket); not followed")
    }

    /// A laptop restored from a backup exports before it ingests; the hub detects the fork, and
    /// its re-send of the laptop's lost changes (under its old epoch) is not pruned before the
    /// laptop reads it, from the folder or from the inbox (found from outside: la lost a1, a2).
    func testAResendForARestoredNodeIsKeptUntilItConfirms() throws {
        let hub = try TestNode("hub", .sqlite, folder: folder)
        let b = try TestNode("lb", .sqlite, folder: folder)
        // la through the CLI and short-lived connections: its file is swapped for a backup.
        let la = folder.appendingPathComponent("la.db").path
        try DatabaseOpener.open(la).executeScript(TestDatabases.ddl(TestDatabases.salesOrderSQL, for: .sqlite))
        try CLI.ok(["init", "--db", la, "--node", "la"])
        try CLI.ok(["track", "--db", la, "sales_order"])
        try CLI.ok(["trust", "--db", la, "hub", try Trust.publicKey(hub.db).key])
        let laKey = try CLI.ok(["key", "--db", la]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try CLI.ok(["trust", "--db", hub.url, "la", laKey])
        try b.trust(hub)
        try hub.trust(b)
        let up = try TestDatabases.subfolder(folder, "up"), down = try TestDatabases.subfolder(folder, "down")
        func laInsert(_ ids: [String]) throws {
            let db = try DatabaseOpener.open(la)
            for id in ids {
                try db.execute("INSERT INTO sales_order (order_id, description) VALUES (?, 'la')", [.text(id)])
            }
        }
        func round() throws {
            try CLI.ok(["export", "--db", la, "--to", up.path])
            try b.export(to: up)
            try hub.ingest([up.path])
            try Exporter.export(hub.db, ExportOptions(folder: down.path, relay: true))
            try CLI.ok(["ingest", "--db", la, down.path])
            try b.ingest([down.path])
        }
        try laInsert(["a0"])
        try insert(b, 0...0)
        try round()
        try round()
        let backup = folder.appendingPathComponent("la-backup.db").path
        try DatabaseOpener.open(la).execute("VACUUM INTO '\(backup)'")
        try laInsert(["a1", "a2"])
        try round()
        try insert(b, 1...1)
        try round()
        for suffix in ["", "-wal", "-shm"] { unlink(la + suffix) }
        try FileManager.default.copyItem(atPath: backup, toPath: la)
        try laInsert(["a9", "a10"])
        try insert(b, 2...2)
        for _ in 0..<3 { try round() }
        try Exporter.export(hub.db, ExportOptions(folder: down.path, relay: true, resend: true, peer: "la"))
        try CLI.ok(["prune", "--db", hub.url, "--bundles", down.path])
        for _ in 0..<2 { try round() }
        let laRows = try TestDatabases.dump(try DatabaseOpener.open(la), "sales_order")
        XCTAssertEqual(laRows, try hub.rows(), "la holds every row after its restore")
        XCTAssertEqual(try b.rows(), try hub.rows())
        XCTAssertTrue(laRows.contains { $0.first == "a1" } && laRows.contains { $0.first == "a2" }, "\(laRows)")
        try CLI.ok(["check", "--db", la])
        // Its own changes of its old epoch, sent back to it, are nobody's to relay: la (one peer,
        // the hub, never relays) prunes them without keeping anything for a relay.
        let pruned = try CLI.ok(["prune", "--db", la])
        XCTAssertFalse(pruned.stderr.contains("kept"), pruned.stderr)
        XCTAssertEqual(
            try DatabaseOpener.open(la).scalar("SELECT count(*) FROM ds_change_inbox WHERE origin = 'la'"), .integer(0))
    }

    func testFileNamesThisNodeWrites() {
        typealias C = BundleFolderPruner.Content
        let cases: [(String, String, C?)] = [
            ("la", "la_000000000001-000000000003_ab12cd34.djb", .own(epoch8: "ab12cd34", first: 1, last: 3)),
            ("field_1", "field_1_000000000004-000000000009_ab12cd34.djb", .own(epoch8: "ab12cd34", first: 4, last: 9)),
            ("field", "field_1_000000000004-000000000009_ab12cd34.djb", nil),
            (
                "hub", "hub~relay_000000000010-000000000020_ab12cd34.djb",
                .relay(first: 10, last: 20, epoch8: "ab12cd34")
            ),
            (
                "hub", "hub~field_1_000000000002-000000000002_ee12cd34.djb",
                .resent(origin: "field_1", epoch8: "ee12cd34", first: 2, last: 2)
            ),
            ("hub", "hub~snapshot_20261203T101010_ab12cd34.djb", nil),
            ("hub", ".hub_000000000001-000000000001_ab12cd34.djb", nil),
            ("hub", "hub_000000000001-000000000001_ab12cd34.djb.tmp", nil),
            ("hub", "hub_000000000003-000000000001_ab12cd34.djb", nil),
            ("hub", "hub_000000000000-000000000001_ab12cd34.djb", nil),
            ("hub", "hub_x-1_ab12cd34.djb", nil),
            ("hub", "lb_000000000001-000000000001_ab12cd34.djb", nil),
        ]
        for (me, name, want) in cases {
            XCTAssertEqual(BundleFolderPruner.content(ofFileNamed: name, me: me), want, "\(me): \(name)")
        }
    }
}
