import Foundation
import XCTest

@testable import DataJoin

/// A hub's bookkeeping grows with its peers, not peers squared: a laptop that trusts only its hub
/// confirms the spans of the hub's relay stream it holds instead of a mark for every origin, and
/// the hub confirms an origin's changes by either (issue 14, docs/delivery.md).
final class RelayReceiptTests: ScenarioTestCase {
    var folder: URL!
    var serial = 0

    override func setUpWithError() throws {
        try super.setUpWithError()
        folder = try TestDatabases.tempFolder("relay-receipts")
    }

    struct Fleet {
        let hub: TestNode
        var laptops: [TestNode]
        let up: URL
        let down: URL
    }

    /// A hub and laptops that trust only the hub (the hub trusts each of them).
    func fleet(_ n: Int, hub brand: Brand = .postgres) throws -> Fleet {
        let hub = try TestNode("hub", brand, folder: folder)
        var f = Fleet(
            hub: hub, laptops: [], up: try TestDatabases.subfolder(folder, "up"),
            down: try TestDatabases.subfolder(folder, "down"))
        for i in 0..<n { f.laptops.append(try join("l\(i)", f)) }
        return f
    }

    func join(_ name: String, _ f: Fleet) throws -> TestNode {
        let l = try TestNode(name, .sqlite, folder: folder)
        try l.trust(f.hub)
        try f.hub.trust(l)
        return l
    }

    /// A SQLite node driven only through the CLI (its file is swapped for a backup in the
    /// restore tests), trusting each of `peers` and trusted by them. Its path.
    func cliNode(_ name: String, trusting peers: [TestNode]) throws -> String {
        let path = folder.appendingPathComponent("\(name).db").path
        try DatabaseOpener.open(path).executeScript(TestDatabases.ddl(TestDatabases.salesOrderSQL, for: .sqlite))
        try CLI.ok(["init", "--db", path, "--node", name])
        try CLI.ok(["track", "--db", path, "sales_order"])
        let key = try CLI.ok(["key", "--db", path]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        for p in peers {
            try CLI.ok(["trust", "--db", path, p.name, try Trust.publicKey(p.db).key])
            try CLI.ok(["trust", "--db", p.url, name, key])
        }
        return path
    }

    /// A copy of a SQLite node's file, as a nightly backup takes it. Its path.
    func backUp(_ path: String) throws -> String {
        let backup = path + ".backup"
        try DatabaseOpener.open(path).execute("VACUUM INTO '\(backup)'")
        return backup
    }

    /// The node's file put back from `backup`, as an operator restores one.
    func restore(_ path: String, from backup: String) throws {
        for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
        try FileManager.default.copyItem(atPath: backup, toPath: path)
    }

    /// A hub driven only through the CLI (its file is put back from a backup), two laptops
    /// l1 and l2, and the folders they export into (up) and it relays into (down).
    func cliHub() throws -> (hub: String, laptops: [TestNode], up: URL, down: URL) {
        let laptops = try ["l1", "l2"].map { try TestNode($0, .sqlite, folder: folder) }
        return (
            try cliNode("hub", trusting: laptops), laptops, try TestDatabases.subfolder(folder, "up"),
            try TestDatabases.subfolder(folder, "down")
        )
    }

    /// One night of a one-laptop fleet and a laptop driven through the CLI (its file is put back
    /// from a backup): the other laptop edits, both export, the hub ingests and relays, both
    /// ingest, and the hub removes the relay files everyone confirmed (a restored laptop cannot
    /// read them again; the hub's inbox keeps their rows). What every command said on stderr.
    func night(_ f: Fleet, cliLaptop l: String) throws -> String {
        var said = try CLI.ok(["export", "--db", l, "--to", f.up.path]).stderr
        try insert(f.laptops[0], 1)
        try f.laptops[0].export(to: f.up)
        said += try CLI.ok(["ingest", "--db", f.hub.url, f.up.path]).stderr
        said += try CLI.ok(["export", "--db", f.hub.url, "--to", f.down.path, "--relay"]).stderr
        said += try CLI.ok(["ingest", "--db", l, f.down.path]).stderr
        try f.laptops[0].ingest([f.down.path])
        return said + (try CLI.ok(["prune", "--db", f.hub.url, "--bundles", f.down.path, "--files-only"]).stderr)
    }

    /// One night of a writing laptop (`f.laptops[0]`) and a reader driven through the CLI (its
    /// file is put back from a backup; its export runs with `env`): both export, the hub ingests,
    /// relays and runs `prune` if given, both ingest. What the hub's ingest said on stderr.
    func readerNight(_ f: Fleet, reader: String, prune: [String]? = nil, env: [String: String] = [:]) throws -> String {
        let writer = f.laptops[0]
        try insert(writer, 1)
        try writer.export(to: f.up)
        let r = try CLI.run(["export", "--db", reader, "--to", f.up.path], env: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        let said = try CLI.ok(["ingest", "--db", f.hub.url, f.up.path]).stderr
        try CLI.ok(["export", "--db", f.hub.url, "--to", f.down.path, "--relay"])
        if let prune { try CLI.ok(prune) }
        try writer.ingest([f.down.path])
        try CLI.ok(["ingest", "--db", reader, f.down.path])
        return said
    }

    /// Each laptop inserts `count` rows and exports them; the hub ingests them all.
    func hubTakesIn(_ f: Fleet, eachInserting count: Int) throws {
        for l in f.laptops {
            try insert(l, count)
            try l.export(to: f.up)
        }
        try f.hub.ingest([f.up.path])
    }

    /// `datajoin check` on every node given (a path or a URL): a scenario ends with each node's
    /// own bookkeeping consistent, not only its rows.
    func checkAll(_ nodes: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        for n in nodes {
            let r = try CLI.run(["check", "--db", n])
            XCTAssertEqual(r.status, 0, "check \(n): \(r.stdout)\(r.stderr)", file: file, line: line)
        }
    }

    func insert(_ n: TestNode, _ count: Int) throws {
        for _ in 0..<count {
            serial += 1
            try n.exec(
                "INSERT INTO sales_order (order_id, description) VALUES (?, ?)",
                [.text("\(n.name)-\(serial)"), .text("from \(n.name)")])
        }
    }

    func relay(_ f: Fleet, resendTo peer: String? = nil) throws -> [String] {
        try Exporter.export(
            f.hub.db,
            ExportOptions(folder: f.down.path, maxChanges: 4, relay: true, resend: peer != nil, peer: peer)
        ).map(\.path)
    }

    /// Laptops and the hub write, laptops export, the hub ingests and relays (in bundles of 4),
    /// and each laptop ingests what `deliver` gives it of the relay files.
    @discardableResult
    func cycle(_ f: Fleet, deliver: (TestNode, [String]) throws -> [String] = { $1 }) throws -> [String] {
        try insert(f.hub, 1)
        try hubTakesIn(f, eachInserting: 3)
        let relayed = try relay(f)
        for l in f.laptops {
            let given = try deliver(l, relayed)
            if !given.isEmpty { try l.ingest(given) }
        }
        return relayed
    }

    func count(_ n: TestNode, _ sql: String) throws -> Int64 { try n.db.scalar(sql).asInt64 ?? -1 }

    func files(_ f: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: f.path).filter { $0.hasSuffix(".djb") }.sorted()
    }

    func assertSameRows(_ f: Fleet, file: StaticString = #filePath, line: UInt = #line) throws {
        let hubRows = try f.hub.rows()
        XCTAssertFalse(hubRows.isEmpty, file: file, line: line)
        for l in f.laptops { XCTAssertEqual(try l.rows(), hubRows, "\(l.name) differs", file: file, line: line) }
    }

    /// Every laptop writes one row and exports, so its receipts reach the hub.
    func confirm(_ f: Fleet) throws {
        try hubTakesIn(f, eachInserting: 1)
    }

    func testReceiptsGrowWithPeersNotPeersSquared() throws {
        let n = 6
        let f = try fleet(n)
        for _ in 0..<3 { try cycle(f) }
        for l in f.laptops {
            try insert(l, 1)
            let h = try BundleInspector.read(try l.export(to: f.up)[0]).header
            // Its own mark and the hub's, one span of the hub's stream: not one mark per laptop.
            XCTAssertEqual(h.receipts.map(\.origin).sorted(), ["hub", l.name].sorted(), l.name)
            XCTAssertEqual(h.relayReceipts.map(\.relayer), ["hub"], l.name)
            XCTAssertEqual(h.relayReceipts.first?.span.after, 0, l.name)
        }
        try f.hub.ingest([f.up.path])
        // Per laptop: its mark for itself and for the hub, and one span (7 * 6 = 42 with a mark per origin).
        XCTAssertEqual(try count(f.hub, "SELECT count(*) FROM ds_peer_receipt"), Int64(2 * n))
        XCTAssertEqual(try count(f.hub, "SELECT count(*) FROM ds_peer_relay_receipt"), Int64(n))
        // The hub's own relay bundle still names each laptop (each reads its own mark in it).
        let last = try relay(f)
        XCTAssertEqual(try BundleInspector.read(last[0]).header.receipts.count, n + 1)
        for l in f.laptops { try l.ingest(last) }
        try assertSameRows(f)

        // Once every laptop confirmed the whole stream, the hub prunes it: inbox rows and files.
        try confirm(f)
        let pruned = try CLI.ok(["prune", "--db", f.hub.url, "--bundles", f.down.path]).stdout
        XCTAssertEqual(try files(f.down), [], pruned)
        // Left: the rows of the last confirmations, not relayed yet.
        XCTAssertEqual(try count(f.hub, "SELECT count(*) FROM ds_change_inbox"), Int64(n), pruned)
        try CLI.ok(["check", "--db", f.hub.url])
    }

    func testALostRelayBundleKeepsItsRowsAndFileUntilAResendFillsTheSpan() throws {
        let f = try fleet(2, hub: .sqlite)
        let (l0, l1) = (f.laptops[0], f.laptops[1])
        var lost: [String] = []
        for l in f.laptops { try insert(l, 10) }
        // l0 loses every other relay bundle of the first cycle; l1 gets them all, in reverse.
        try cycle(f) { l, files in
            guard l === l0 else { return files.reversed() }
            lost = files.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
            return files.filter { !lost.contains($0) }
        }
        XCTAssertGreaterThanOrEqual(lost.count, 3)
        XCTAssertTrue(lost[0].contains("relay_000000000001-"), "\(lost)")
        XCTAssertEqual(
            try count(l0, "SELECT count(*) FROM ds_relay_held"), Int64(lost.count - 1),
            "one span per stretch between lost bundles")
        XCTAssertEqual(try count(l1, "SELECT count(*) FROM ds_relay_held"), 1, "out of order, joined into one")
        try cycle(f)
        try confirm(f)
        let lostIds = try lost.map { try BundleInspector.read($0).header.relaySpan! }
        let needed = try lost.filter { try BundleInspector.read($0).header.origins.contains { $0.origin != "l0" } }
        XCTAssertFalse(needed.isEmpty)
        func lostRows() throws -> Int64 {
            try lostIds.reduce(Int64(0)) {
                $0
                    + (try f.hub.db.scalar(
                        "SELECT count(*) FROM ds_change_inbox WHERE id > ? AND id <= ? AND origin <> 'l0'",
                        [.integer($1.after), .integer($1.last)]
                    ).asInt64 ?? 0)
            }
        }
        let keptRows = try lostRows()
        XCTAssertGreaterThan(keptRows, 0)
        let out = try CLI.ok(["prune", "--db", f.hub.url, "--bundles", f.down.path]).stdout
        XCTAssertTrue(out.contains("waiting for: l0"), out)
        // Kept: the lost files, those with l1's changes and those with only l0's own, which l0
        // does not need but whose spans join its own (their rows left the inbox: l0 made them).
        XCTAssertEqual(try files(f.down), lost.map { ($0 as NSString).lastPathComponent }.sorted(), out)
        XCTAssertLessThan(needed.count, lost.count, "some lost files hold only l0's changes")
        // The lost rows stay in the hub's inbox (and, of their origins, those after them), with
        // the rows not relayed yet (one per laptop); the rest went.
        XCTAssertEqual(try lostRows(), keptRows, out)
        XCTAssertTrue(out.contains(" 0 inbox row(s)") == false, out)

        // A re-send fills exactly what l0 lacks; its spans join into one, and then all goes.
        let resent = try relay(f, resendTo: "l0")
        for p in resent {
            let s = try BundleInspector.read(p).header.relaySpan!
            XCTAssertTrue(
                lostIds.contains { $0.after <= s.after && s.last <= $0.last } || s.after >= lostIds.last!.last)
        }
        try l0.ingest(resent)
        XCTAssertEqual(try count(l0, "SELECT count(*) FROM ds_relay_held"), 1)
        try l1.ingest(try relay(f))
        try l0.ingest([f.down.path])
        try confirm(f)
        try CLI.ok(["prune", "--db", f.hub.url, "--bundles", f.down.path])
        XCTAssertEqual(try files(f.down), [])
        XCTAssertEqual(try count(f.hub, "SELECT count(*) FROM ds_change_inbox"), 2)
        try l0.ingest(try relay(f))
        try l1.ingest([f.down.path])
        try assertSameRows(f)
    }

    /// A hub whose nightly job runs `ingest; prune; export --relay` (found from outside): the
    /// first night's `export --relay` found nothing (prune had emptied the inbox), so the hub
    /// never counted as a relay, and every night's changes were pruned unsent, all exits 0.
    /// Now a node with two peers or more that has not relayed keeps its applied inbox rows and
    /// says why, any `export --relay` makes it a relay, and `--no-relay` prunes them. With one
    /// peer nothing waits; with one, two and three laptops.
    func testAHubThatPrunesBeforeItsFirstRelayStillRelaysEveryNight() throws {
        for n in [1, 2, 3] {
            folder = try TestDatabases.tempFolder("prune-first-\(n)")
            let f = try fleet(n, hub: .sqlite)
            for night in 1...3 {
                try hubTakesIn(f, eachInserting: 2)
                let pruned = try CLI.ok(["prune", "--db", f.hub.url, "--bundles", f.down.path])
                let kept = pruned.stderr.contains("has not run 'export --relay' yet")
                XCTAssertEqual(kept, n >= 2 && night == 1, "\(n) laptops, night \(night): \(pruned.stderr)")
                try CLI.ok(["export", "--db", f.hub.url, "--to", f.down.path, "--relay"])
                for l in f.laptops { try l.ingest([f.down.path]) }
            }
            if n >= 2 { try assertSameRows(f) }
            XCTAssertEqual(
                try count(f.laptops[0], "SELECT count(*) FROM sales_order"), Int64(3 * 2 * n), "\(n) laptops")
            // Once confirmed, the relayed rows go.
            try confirm(f)
            try CLI.ok(["prune", "--db", f.hub.url])
            XCTAssertEqual(try count(f.hub, "SELECT count(*) FROM ds_change_inbox"), Int64(n), "\(n) laptops")
        }
    }

    /// A hub before its first `export --relay` whose peer is revoked after its last sync has one
    /// peer left: prune then removed the revoked peer's changes unrelayed (found from outside).
    /// They are kept while the remaining peer may need them; the remaining peer's own go.
    func testARevokedPeersChangesAreKeptForRelay() throws {
        var f = try fleet(2, hub: .sqlite)
        try hubTakesIn(f, eachInserting: 2)
        let first = try CLI.ok(["prune", "--db", f.hub.url])
        XCTAssertTrue(first.stderr.contains("kept 4 applied inbox row(s)"), first.stderr)
        let retired = f.laptops.removeLast()
        try CLI.ok(["trust", "--db", f.hub.url, "--revoke", retired.name])
        let second = try CLI.ok(["prune", "--db", f.hub.url])
        XCTAssertTrue(second.stderr.contains("kept 2 applied inbox row(s)"), second.stderr)
        XCTAssertEqual(
            try count(f.hub, "SELECT count(*) FROM ds_change_inbox WHERE origin = '\(retired.name)'"), 2)
        try CLI.ok(["export", "--db", f.hub.url, "--to", f.down.path, "--relay"])
        try f.laptops[0].ingest([f.down.path])
        try assertSameRows(f)
        XCTAssertEqual(try count(f.laptops[0], "SELECT count(*) FROM sales_order"), 4)
    }

    /// A laptop that never edits confirms what it took in with a receipts-only bundle, which
    /// replaces its last one: its hub removes the relay files and inbox rows it kept for it
    /// (found from outside: a read-only laptop kept every file on the hub forever).
    func testALaptopThatNeverEditsConfirmsWithReceiptsOnly() throws {
        let f = try fleet(2)
        let writer = f.laptops[0], reader = f.laptops[1]
        try CLI.ok(["config", "--db", reader.url, "encrypt", "always"])
        let receiptsFile = "\(reader.name)~~receipts_000000000001-000000000001_\(try reader.epoch8()).djb"
        var seen: Set<[UInt8]> = []
        for night in 1...3 {
            try insert(writer, 3)
            try writer.export(to: f.up)
            try f.hub.ingest([f.up.path])
            try CLI.ok(["export", "--db", f.hub.url, "--to", f.down.path, "--relay"])
            XCTAssertEqual(try files(f.down).count, 1, "night \(night)")
            for l in f.laptops { try l.ingest([f.down.path]) }

            let r = try CLI.ok(["export", "--db", reader.url, "--to", f.up.path])
            XCTAssertTrue(
                r.stdout.hasSuffix(
                    "nothing new to export; wrote what this node holds, so its peers can prune (receipts only)\n"),
                r.stdout)
            XCTAssertEqual(try files(f.up).filter { $0.hasPrefix(reader.name) }, [receiptsFile], "night \(night)")
            let path = f.up.appendingPathComponent(receiptsFile).path
            XCTAssertTrue(EncryptedFormat.isEncrypted(path: path), "night \(night)")
            XCTAssertTrue(seen.insert(Array(try Data(contentsOf: URL(fileURLWithPath: path)))).inserted)
            // Nothing more to say: the next export writes nothing.
            XCTAssertEqual(
                try CLI.ok(["export", "--db", reader.url, "--to", f.up.path]).stdout, "nothing new to export\n")
            // `status` shows it wrote something, though it never exported a change.
            let status = try CLI.ok(["status", "--db", reader.url]).stdout
            XCTAssertTrue(status.contains("last export:      never; receipts only at 20"), status)
            let json = try CLI.ok(["status", "--db", reader.url, "--json"]).stdout
            XCTAssertTrue(json.contains("\"last_export\":null,\"last_receipts\":\"20"), json)

            // The writer has nothing new either; it confirms the relay the same way.
            XCTAssertEqual(try writer.export(to: f.up).count, 1)
            try f.hub.ingest([f.up.path])
            let pruned = try CLI.ok(["prune", "--db", f.hub.url, "--bundles", f.down.path])
            XCTAssertTrue(pruned.stdout.contains("removed 1 bundle file(s)"), "night \(night): \(pruned.stdout)")
            XCTAssertEqual(try files(f.down), [], "night \(night)")
        }
        // The writer's receipts file says what it is and what it holds, to the hub: encrypted,
        // since the hub's relay reached the writer encrypted (docs/encryption.md).
        let writerFile = f.up.appendingPathComponent(
            "\(writer.name)~~receipts_000000000001-000000000001_\(try writer.epoch8()).djb"
        ).path
        XCTAssertEqual(
            try CLI.ok(["verify", writerFile]).stdout,
            "\(writerFile): OK (encrypted to hub, signed as l0 by the key it carries; --db on one of them checks that key against l0's trusted one and reads its content)\n"
        )
        let shown = try CLI.ok(["inspect", "--db", f.hub.url, writerFile]).stdout
        XCTAssertTrue(shown.contains("changes:   0 (receipts only: what l0 holds"), shown)
        XCTAssertTrue(shown.contains("holds hub's relay stream (epoch "), shown)
        // Lost before the hub read it: a re-send writes it again, unchanged or not.
        let last = f.up.appendingPathComponent(receiptsFile)
        try FileManager.default.removeItem(at: last)
        XCTAssertEqual(try CLI.ok(["export", "--db", reader.url, "--to", f.up.path]).stdout, "nothing new to export\n")
        let resent = try CLI.ok(["export", "--db", reader.url, "--to", f.up.path, "--resend"])
        XCTAssertTrue(resent.stdout.contains("(receipts only)"), resent.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: last.path))
        try assertSameRows(f)
        XCTAssertEqual(try count(reader, "SELECT count(*) FROM sales_order"), 9)
        try CLI.ok(["prune", "--db", f.hub.url])
        XCTAssertEqual(try count(f.hub, "SELECT count(*) FROM ds_change_inbox"), 0)
        XCTAssertEqual(try count(f.hub, "SELECT count(*) FROM ds_change_outbox"), 0)
    }

    /// A laptop restored from a backup that made no change since is found by its receipts, which
    /// fall below what it confirmed before (found from outside: once receipts-only bundles let
    /// the hub prune for it, the restored laptop lacked two nights for good and nothing said so).
    /// With the relayed rows still on the hub, a resend fills the holes; once the hub pruned them,
    /// `prune` names the laptop until it re-joins.
    func testALaptopRestoredFromABackupIsFoundByItsReceipts() throws {
        for pruneRows in [false, true] {
            folder = try TestDatabases.tempFolder("restored-\(pruneRows)")
            let f = try fleet(1, hub: .sqlite)
            // The reader through the CLI: its file is swapped for a backup.
            let reader = try cliNode("reader", trusting: [f.hub])
            var notices = ""
            func night() throws {
                notices += try readerNight(
                    f, reader: reader,
                    prune: ["prune", "--db", f.hub.url, "--bundles", f.down.path] + (pruneRows ? [] : ["--files-only"]))
            }
            func readerRows() throws -> [[String]] {
                try TestDatabases.dump(try DatabaseOpener.open(reader), "sales_order")
            }
            try night()
            try night()
            let backup = try backUp(reader)
            for _ in 0..<3 { try night() }
            XCTAssertEqual(try readerRows().count, 5)
            XCTAssertEqual(try files(f.down).count, 1, "the relay files the reader confirmed were removed")
            try restore(reader, from: backup)
            XCTAssertEqual(notices, "")
            try night()
            XCTAssertTrue(
                notices.contains("reader confirms less than it did")
                    && notices.contains("its database was restored from a backup"), notices)
            XCTAssertEqual(try readerRows().count, 4, "nights 3 to 5 are lost to the reader")
            let resend = try CLI.ok([
                "export", "--db", f.hub.url, "--to", f.down.path, "--relay", "--resend", "--peer", "reader",
            ])
            try CLI.ok(["ingest", "--db", reader, f.down.path])
            let prune = try CLI.ok(["prune", "--db", f.hub.url])
            if pruneRows {
                // Pruned on the hub before the restore was known: named, with the cure.
                for out in [resend.stderr, prune.stderr] {
                    XCTAssertTrue(out.contains("reader may lack changes this node pruned"), out)
                }
                XCTAssertEqual(try readerRows().count, 4)
            } else {
                XCTAssertEqual(try readerRows(), try f.hub.rows(), "the resend filled the reader's holes")
                XCTAssertEqual(try readerRows().count, 6)
                XCTAssertFalse(prune.stderr.contains("reader"), prune.stderr)
            }
            try CLI.ok(["check", "--db", reader])
        }
    }

    /// A laptop restored from a backup that edits again numbers its new change with the seq of
    /// one it lost, which the hub holds and pruned from its inbox: the hub skipped it for good
    /// (found from outside). Found by its receipts, the laptop is told, as for a fork, that the
    /// hub holds more than it issued: it moves to a new epoch and its new edit reaches everyone.
    /// What it lost is named until it re-joins from a snapshot, which ends the warning even
    /// though the hub's inbox is empty (its snapshot held no span then; found from outside).
    func testARestoredLaptopsNewEditReachesEveryoneAndASnapshotEndsTheWarning() throws {
        let f = try fleet(1, hub: .sqlite)
        let other = f.laptops[0]
        let l = try cliNode("restored", trusting: [f.hub])
        func lInsert(_ id: String) throws {
            try DatabaseOpener.open(l).execute("INSERT INTO sales_order (order_id) VALUES (?)", [.text(id)])
        }
        var warnings = ""
        func night() throws {
            try CLI.ok(["export", "--db", l, "--to", f.up.path])
            try other.export(to: f.up)
            warnings += try CLI.ok(["ingest", "--db", f.hub.url, f.up.path]).stderr
            try CLI.ok(["export", "--db", f.hub.url, "--to", f.down.path, "--relay"])
            warnings += try CLI.ok(["prune", "--db", f.hub.url, "--bundles", f.down.path]).stderr
            try other.ingest([f.down.path])
            warnings += try CLI.ok(["ingest", "--db", l, f.down.path]).stderr
        }
        func lRows() throws -> [[String]] { try TestDatabases.dump(try DatabaseOpener.open(l), "sales_order") }
        try lInsert("a1")
        try insert(other, 1)
        for _ in 0..<2 { try night() }
        let backup = try backUp(l)
        try lInsert("a2")
        try insert(other, 1)
        for _ in 0..<2 { try night() }
        XCTAssertEqual(try count(f.hub, "SELECT count(*) FROM ds_change_inbox"), 0, "the hub pruned everything")
        try restore(l, from: backup)
        // The hub's folder no longer holds the laptop's files (read and cleared): it learns of
        // its restore from the hub's receipts, not from its own files
        // (`DeliveryTests.testARestoredNodeDoesNotReplaceItsOwnUnreadBundle`).
        for n in try files(f.up) where n.hasPrefix("restored_") {
            try FileManager.default.removeItem(at: f.up.appendingPathComponent(n))
        }
        try lInsert("a3")
        XCTAssertEqual(warnings, "")
        for _ in 0..<3 { try night() }
        XCTAssertTrue(warnings.contains("restored confirms less than it did"), warnings)
        XCTAssertTrue(warnings.contains("new epoch: hub confirms restored#"), warnings)
        let ids = { (rows: [[String]]) in Set(rows.map { $0[0] }) }
        XCTAssertTrue(ids(try f.hub.rows()).contains("a3"), "the restored laptop's new edit reached the hub")
        XCTAssertEqual(try other.rows(), try f.hub.rows())
        XCTAssertFalse(ids(try lRows()).contains("a2"), "lost with the backup")
        let named = try CLI.ok(["prune", "--db", f.hub.url]).stderr
        XCTAssertTrue(named.contains("restored may lack changes this node pruned"), named)

        // The cure: a snapshot of the hub, whose inbox is empty.
        let snap = try TestDatabases.subfolder(folder, "snap")
        try CLI.ok(["snapshot", "--db", f.hub.url, "--to", snap.path])
        try CLI.ok(["ingest", "--db", l, snap.path])
        warnings = ""
        for _ in 0..<2 { try night() }
        XCTAssertEqual(try lRows(), try f.hub.rows())
        XCTAssertEqual(try other.rows(), try f.hub.rows())
        XCTAssertEqual(
            ids(try lRows()), ["a1", "a2", "a3", "l0-1", "l0-2"].reduce(into: Set<String>()) { $0.insert($1) })
        XCTAssertFalse(warnings.contains("restored"), warnings)
        XCTAssertFalse(try CLI.ok(["prune", "--db", f.hub.url]).stderr.contains("restored"))
        try CLI.ok(["check", "--db", l])
    }

    /// In a full mesh nothing relays: a node restored from a backup learns of it and moves to a
    /// new epoch, and its peers replaced its receipts without a word, though it lacks what they
    /// sent it since the backup (found from outside). A new epoch that confirms less of other
    /// origins than the last one is said too.
    func testAMeshNodeRestoredIsNamedByItsPeers() throws {
        let b = try TestNode("b", .sqlite, folder: folder), c = try TestNode("c", .sqlite, folder: folder)
        try trustAll([b, c])
        let a = try cliNode("a", trusting: [b, c])
        let outs = try ["a", "b", "c"].map { try TestDatabases.subfolder(folder, "out-\($0)") }
        var notices: [String] = []
        func round() throws {
            try CLI.ok(["export", "--db", a, "--to", outs[0].path])
            try b.export(to: outs[1])
            try c.export(to: outs[2])
            for (i, out) in outs.enumerated() {
                if i != 0 { notices.append(try CLI.ok(["ingest", "--db", a, out.path]).stderr) }
                if i != 1 { notices += try b.ingest([out.path]).notices }
                if i != 2 { notices += try c.ingest([out.path]).notices }
            }
            // Each node removes the files every peer confirmed: a restored node cannot read
            // again what it lost.
            for (url, out) in zip([a, b.url, c.url], outs) {
                try CLI.ok(["prune", "--db", url, "--no-relay", "--bundles", out.path])
            }
        }
        try DatabaseOpener.open(a).execute("INSERT INTO sales_order (order_id) VALUES ('a1')")
        try insert(b, 1)
        for _ in 0..<2 { try round() }
        let backup = try backUp(a)
        try DatabaseOpener.open(a).execute("INSERT INTO sales_order (order_id) VALUES ('a2')")
        try insert(b, 1)
        for _ in 0..<2 { try round() }
        XCTAssertEqual(notices.filter { !$0.isEmpty }, [])
        try restore(a, from: backup)
        for _ in 0..<3 { try round() }
        let said = notices.joined(separator: "\n")
        XCTAssertTrue(said.contains("new epoch:"), said)
        XCTAssertEqual(
            notices.filter {
                $0.contains(
                    "a confirms less than it did (b up to 1, not 2; its own changes of its last epoch up to 2, which this node holds)"
                )
            }.count, 2,
            "b and c each say it once: \(said)")
        // b pruned its own b2 once everyone had it: a re-send cannot give it back, and says so,
        // as prune does (found from outside: the advised re-send wrote nothing, silently).
        let lacks = "a lacks this node's changes 2-2, pruned here once every peer had confirmed them"
        let resend = try CLI.ok(["export", "--db", b.url, "--to", outs[1].path, "--resend", "--peer", "a"])
        XCTAssertTrue(resend.stderr.contains(lacks), resend.stderr)
        XCTAssertTrue(
            resend.stdout.hasPrefix(
                "nothing to re-send to a: this node holds nothing it lacks; what was pruned here is not re-sent"),
            resend.stdout)
        XCTAssertTrue(try CLI.ok(["prune", "--db", b.url, "--no-relay"]).stderr.contains(lacks))
        XCTAssertFalse(try CLI.ok(["prune", "--db", c.url, "--no-relay"]).stderr.contains("lacks"))
        // The cure: a snapshot of b.
        let snap = try TestDatabases.subfolder(folder, "snap")
        try CLI.ok(["snapshot", "--db", b.url, "--to", snap.path])
        try CLI.ok(["ingest", "--db", a, snap.path])
        for _ in 0..<2 { try round() }
        XCTAssertEqual(try TestDatabases.dump(try DatabaseOpener.open(a), "sales_order"), try b.rows())
        XCTAssertEqual(try c.rows(), try b.rows())
        XCTAssertFalse(try CLI.ok(["prune", "--db", b.url, "--no-relay"]).stderr.contains("lacks"))
        try checkAll([a, b.url, c.url])
    }

    /// A hub restored from a backup, with no change of its own, is told by its laptops' spans of
    /// its relay stream, which reach ids it never issued: it moves to a new epoch, so its next
    /// relay files are not taken as held (found from outside: they were pruned unread, and the
    /// laptops' new changes never met). What the laptops pruned after the hub confirmed it is
    /// named on their prune.
    func testAHubRestoredFromABackupIsToldByItsLaptops() throws {
        let (hub, laptops, up, down) = try cliHub()
        var said = ""
        func round() throws {
            for l in laptops { try l.export(to: up) }
            said += try CLI.ok(["ingest", "--db", hub, up.path]).stderr
            try CLI.ok(["export", "--db", hub, "--to", down.path, "--relay"])
            try CLI.ok(["prune", "--db", hub, "--bundles", down.path])
            for l in laptops {
                said += try l.ingest([down.path]).notices.joined(separator: "\n")
                said += try CLI.ok(["prune", "--db", l.url, "--bundles", up.path]).stderr
            }
        }
        for l in laptops { try insert(l, 1) }
        for _ in 0..<2 { try round() }
        let backup = try backUp(hub)
        for l in laptops { try insert(l, 1) }
        for _ in 0..<2 { try round() }
        XCTAssertEqual(said, "")
        try restore(hub, from: backup)
        for l in laptops {
            try insert(l, 1)
            try round()
        }
        try round()
        XCTAssertTrue(said.contains("of this node's relay stream of epoch"), said)
        XCTAssertTrue(said.contains("restored from an older backup"), said)
        // The laptops' new changes met.
        let ids = { (n: TestNode) in Set(try n.rows().map { $0[0] }) }
        let newOnes: Set<String> = ["l1-5", "l2-6"]
        for l in laptops {
            let have = try ids(l)
            XCTAssertTrue(newOnes.isSubset(of: have), "\(l.name): \(have)")
        }
        // What the restored hub lost, the laptops had pruned: named, with the cure.
        for l in laptops {
            let pruned = try CLI.ok(["prune", "--db", l.url])
            XCTAssertTrue(pruned.stderr.contains("hub lacks this node's changes"), pruned.stderr)
            XCTAssertTrue(
                pruned.stderr.contains(
                    "hub relays: once it has ingested that snapshot, re-join each of its other peers from a new snapshot of hub"
                ), pruned.stderr)
        }
        // The cure, as said: the hub takes a snapshot of l1, which holds everything; l2 re-joins
        // from a new snapshot of the hub (a hub does not relay what a snapshot brought it, and
        // l2 lacked l1's changes for good when it did not; found from outside).
        let s1 = try TestDatabases.subfolder(folder, "snap-l1"), s2 = try TestDatabases.subfolder(folder, "snap-hub")
        try CLI.ok(["snapshot", "--db", laptops[0].url, "--to", s1.path])
        try CLI.ok(["ingest", "--db", hub, s1.path])
        try CLI.ok(["snapshot", "--db", hub, "--to", s2.path])
        try CLI.ok(["ingest", "--db", laptops[1].url, s2.path])
        said = ""
        for l in laptops { try insert(l, 1) }
        for _ in 0..<3 { try round() }
        let hubIds = Set(
            try DatabaseOpener.open(hub).rows("SELECT order_id FROM sales_order").compactMap { $0.string(0) })
        for l in laptops { XCTAssertEqual(try ids(l), hubIds, l.name) }
        for l in laptops { XCTAssertFalse(try CLI.ok(["prune", "--db", l.url]).stderr.contains("lacks"), l.name) }
        try checkAll([hub] + laptops.map(\.url))
    }

    /// A hub restored from a backup lost its own edits made after it, which only the laptops hold;
    /// nothing relays a hub's own changes back to it (found from outside: the hub lacked its edit
    /// for good, every command exited 0 and `check` said OK). It is told which, and by whom, on
    /// ingest and then on every export and prune, until the cure it names brings them back.
    func testAHubRestoredFromABackupIsToldWhichOfItsOwnEditsItLost() throws {
        let (hub, laptops, _, down) = try cliHub()
        let ups = try laptops.map { try TestDatabases.subfolder(folder, "up-\($0.name)") }
        var said = ""
        func hubIngest(_ i: Int) throws {
            try laptops[i].export(to: ups[i])
            said += try CLI.ok(["ingest", "--db", hub, ups[i].path]).stderr
        }
        func round() throws {
            for i in [1, 0] { try hubIngest(i) }
            said += try CLI.ok(["export", "--db", hub, "--to", down.path, "--relay"]).stderr
            for l in laptops { try l.ingest([down.path]) }
        }
        func hubInsert(_ id: String) throws {
            try DatabaseOpener.open(hub).execute("INSERT INTO sales_order (order_id) VALUES (?)", [.text(id)])
        }
        let ids = { (db: Database) in Set(try db.rows("SELECT order_id FROM sales_order").compactMap { $0.string(0) }) }
        try hubInsert("h1")
        for l in laptops { try insert(l, 1) }
        for _ in 0..<2 { try round() }
        let backup = try backUp(hub)
        try hubInsert("h2")
        try round()
        // h3 reaches l1 only.
        try hubInsert("h3")
        try CLI.ok(["export", "--db", hub, "--to", down.path, "--relay"])
        try laptops[0].ingest([down.path])
        XCTAssertEqual(said, "")
        XCTAssertTrue(try ids(laptops[0].db).isSuperset(of: ["h2", "h3"]))
        try restore(hub, from: backup)
        try hubInsert("h4")
        // l2 is heard from first, and holds only h2; then l1, which holds h3 too: the range grows
        // and names the peer that holds the most (found from outside: only the first was named).
        try hubIngest(1)
        XCTAssertTrue(said.contains("restored from an older backup"), said)
        XCTAssertTrue(
            said.contains("this node's own changes #2 of its epoch ")
                && said.contains("are lost here and l2 holds them"),
            said)
        said = ""
        try hubIngest(0)
        XCTAssertTrue(
            said.contains("#2-3 of its epoch ")
                && said.contains(
                    "are lost here and l1 holds them; they come back only from a node that relays them: on l1 run 'datajoin export --db URL --to FOLDER --relay --resend --peer hub'"
                ), said)
        // Named on every export and prune while they are lost.
        for args in [["export", "--db", hub, "--to", down.path, "--relay"], ["prune", "--db", hub]] {
            let r = try CLI.ok(args)
            XCTAssertTrue(
                r.stderr.contains("restored from a backup: this node's own changes #2-3")
                    && r.stderr.contains("l1 holds them")
                    // A hub does not relay what a snapshot brings it (found from outside).
                    && r.stderr.contains(
                        "if l1 pruned them, re-join from a snapshot of a node that holds them (docs/snapshot.md), then, since this node relays, re-join each of its other peers from a new snapshot of this node"
                    ), "\(args[0]): \(r.stderr)")
        }
        XCTAssertFalse(try ids(DatabaseOpener.open(hub)).contains("h2"))

        // The cure it names. The laptop does not become a relay by it (found from outside: it
        // then kept its inbox for good).
        let back = try TestDatabases.subfolder(folder, "back")
        try CLI.ok(["export", "--db", laptops[0].url, "--to", back.path, "--relay", "--resend", "--peer", "hub"])
        try CLI.ok(["ingest", "--db", hub, back.path])
        XCTAssertEqual(
            try laptops[0].db.scalar("SELECT count(*) FROM ds_setting WHERE name = 'relay_started'"), .integer(0))
        said = ""
        for _ in 0..<2 { try round() }
        let all: Set<String> = ["h1", "h2", "h3", "h4"]
        XCTAssertTrue(all.isSubset(of: try ids(DatabaseOpener.open(hub))))
        for l in laptops { XCTAssertEqual(try ids(l.db), try ids(DatabaseOpener.open(hub)), l.name) }
        XCTAssertEqual(said, "")
        XCTAssertEqual(try CLI.ok(["prune", "--db", hub]).stderr, "")
        let pruned = try CLI.ok(["prune", "--db", laptops[0].url])
        XCTAssertEqual(pruned.stderr, "")
        XCTAssertEqual(try count(laptops[0], "SELECT count(*) FROM ds_change_inbox"), 0, pruned.stdout)
        try checkAll([hub] + laptops.map(\.url))
    }

    /// A hub restored from a backup that learns of it from its relay stream (the first laptop
    /// heard from holds a relay file it wrote after the backup, and none of its own edits) is
    /// told of its lost edits by the next laptop's receipts, of the epoch it has left by then
    /// (found from outside: it was never told, and lacked its edit for good).
    func testAHubThatLearnsOfItsRestoreFromItsRelayStreamIsToldOfItsLostEdits() throws {
        let (hub, laptops, up, down) = try cliHub()
        var said = ""
        func round() throws {
            for l in laptops { try l.export(to: up) }
            said += try CLI.ok(["ingest", "--db", hub, up.path]).stderr
            said += try CLI.ok(["export", "--db", hub, "--to", down.path, "--relay"]).stderr
            for l in laptops { try l.ingest([down.path]) }
        }
        try DatabaseOpener.open(hub).execute("INSERT INTO sales_order (order_id) VALUES ('h1')")
        for l in laptops { try insert(l, 1) }
        for _ in 0..<2 { try round() }
        let backup = try backUp(hub)
        // After the backup: l2's change relayed to l1 (no edit of the hub's), then the hub's h2,
        // which only l2 reads.
        try insert(laptops[1], 1)
        try laptops[1].export(to: up)
        try CLI.ok(["ingest", "--db", hub, up.path])
        try CLI.ok(["export", "--db", hub, "--to", down.path, "--relay"])
        try laptops[0].ingest([down.path])
        try DatabaseOpener.open(hub).execute("INSERT INTO sales_order (order_id) VALUES ('h2')")
        try CLI.ok(["export", "--db", hub, "--to", down.path, "--relay"])
        try laptops[1].ingest([down.path])
        try restore(hub, from: backup)
        let l1Out = try TestDatabases.subfolder(folder, "l1-out")
        try laptops[0].export(to: l1Out)
        said += try CLI.ok(["ingest", "--db", hub, l1Out.path]).stderr
        XCTAssertTrue(said.contains("of this node's relay stream of epoch"), said)
        XCTAssertFalse(said.contains("own changes"), said)
        said = ""
        let l2Out = try TestDatabases.subfolder(folder, "l2-out")
        try laptops[1].export(to: l2Out)
        said += try CLI.ok(["ingest", "--db", hub, l2Out.path]).stderr
        XCTAssertTrue(said.contains("this node's own changes #2 of its epoch "), said)
        XCTAssertTrue(
            said.contains("on l2 run 'datajoin export --db URL --to FOLDER --relay --resend --peer hub'"), said)
        // The cure brings h2 back, and everyone converges.
        let back = try TestDatabases.subfolder(folder, "back")
        try CLI.ok(["export", "--db", laptops[1].url, "--to", back.path, "--relay", "--resend", "--peer", "hub"])
        try CLI.ok(["ingest", "--db", hub, back.path])
        said = ""
        for _ in 0..<2 { try round() }
        let hubRows = Set(
            try DatabaseOpener.open(hub).rows("SELECT order_id FROM sales_order").compactMap { $0.string(0) })
        XCTAssertTrue(hubRows.contains("h2"), "\(hubRows)")
        for l in laptops { XCTAssertEqual(Set(try l.rows().map { $0[0] }), hubRows, l.name) }
        XCTAssertEqual(said, "")
        try checkAll([hub] + laptops.map(\.url))
    }

    /// A laptop restored from a backup, whose edits after it the hub already relayed, moves to a
    /// new epoch: its hub is told it lacks them and how to send them again, and the laptop is
    /// told until they are back (found from outside: the hub kept its inbox rows and relay files
    /// for the laptop for good, and nothing said why).
    func testAHubIsToldARestoredLaptopLacksItsOwnRelayedEdits() throws {
        let f = try fleet(1, hub: .sqlite)
        let l = try cliNode("lap", trusting: [f.hub])
        var said = ""
        func round() throws { said += try night(f, cliLaptop: l) }
        func lInsert(_ id: String) throws {
            try DatabaseOpener.open(l).execute("INSERT INTO sales_order (order_id) VALUES (?)", [.text(id)])
        }
        let ids = { (db: Database) in Set(try db.rows("SELECT order_id FROM sales_order").compactMap { $0.string(0) }) }
        try lInsert("a1")
        for _ in 0..<2 { try round() }
        let backup = try backUp(l)
        try lInsert("a2")
        try lInsert("a3")
        for _ in 0..<2 { try round() }
        XCTAssertEqual(said, "")
        try restore(l, from: backup)
        // As docs/delivery.md advises, it ingests before it exports: its first bundle is of its
        // new epoch, so the hub learns of the restore from that alone.
        said += try CLI.ok(["ingest", "--db", l, f.down.path]).stderr
        XCTAssertTrue(said.contains("new epoch: hub confirms lap#3"), said)
        for _ in 0..<2 { try round() }
        XCTAssertTrue(said.contains("this node's own changes #2-3 of its epoch "), said)
        XCTAssertTrue(said.contains("are lost here and hub holds them"), said)
        XCTAssertTrue(
            said.contains(
                "lap confirms less than it did (its own changes of its last epoch up to 3, which this node holds): its database was restored from a backup. Send it again what it lost with 'datajoin export --db URL --to FOLDER --relay --resend --peer lap'"
            ), said)
        XCTAssertTrue(
            try CLI.ok(["prune", "--db", l]).stderr.contains("restored from a backup: this node's own changes #2-3"))
        XCTAssertFalse(try ids(DatabaseOpener.open(l)).contains("a2"))
        // The cure the hub was told.
        try CLI.ok(["export", "--db", f.hub.url, "--to", f.down.path, "--relay", "--resend", "--peer", "lap"])
        try round()  // its export comes before it ingests the re-send, and says so once more
        said = ""
        try round()
        XCTAssertEqual(said, "")
        XCTAssertEqual(try ids(DatabaseOpener.open(l)), try ids(f.hub.db))
        XCTAssertTrue(try ids(f.hub.db).isSuperset(of: ["a1", "a2", "a3"]))
        XCTAssertEqual(try CLI.ok(["prune", "--db", l]).stderr, "")
        XCTAssertEqual(try CLI.ok(["prune", "--db", f.hub.url, "--bundles", f.down.path]).stderr, "")
        XCTAssertEqual(try count(f.hub, "SELECT count(*) FROM ds_change_inbox WHERE origin = 'lap'"), 0)
        // Its receipts-only file of the epoch it left goes with its next prune; the current one stays.
        let epoch8 = String(try NodeIdentity.load(DatabaseOpener.open(l)).epoch.prefix(8))
        let receiptsFiles = { try self.files(f.up).filter { $0.hasPrefix("lap~~receipts_") } }
        let before = try receiptsFiles()
        XCTAssertEqual(before.count, 2, "\(before)")
        // One named so that it did not write is left, and counted.
        let forged = "lap~~receipts_000000000001-000000000001_deadbeef.djb"
        try Data("not a bundle".utf8).write(to: f.up.appendingPathComponent(forged))
        let pruned = try CLI.ok(["prune", "--db", l, "--bundles", f.up.path, "--files-only"]).stdout
        XCTAssertTrue(pruned.contains("; left 1 named as this node's"), pruned)
        XCTAssertEqual(try receiptsFiles(), ["lap~~receipts_000000000001-000000000001_\(epoch8).djb", forged].sorted())
        try checkAll([l, f.hub.url])
    }

    /// A laptop restored from a backup whose first ingest is a new snapshot of its hub gets its
    /// lost edits from it: it is not told they are lost (found from outside: a false alarm).
    func testARestoredLaptopThatReJoinsFromASnapshotFirstIsNotToldOfLostEdits() throws {
        let f = try fleet(1, hub: .sqlite)
        let l = try cliNode("lap", trusting: [f.hub])
        var said = ""
        func round() throws { said += try night(f, cliLaptop: l) }
        let lInsert = { (id: String) in
            try DatabaseOpener.open(l).execute("INSERT INTO sales_order (order_id) VALUES (?)", [.text(id)])
        }
        try lInsert("a1")
        for _ in 0..<2 { try round() }
        let backup = try backUp(l)
        try lInsert("a2")
        try lInsert("a3")
        for _ in 0..<2 { try round() }
        try restore(l, from: backup)
        let snap = try TestDatabases.subfolder(folder, "snap")
        try CLI.ok(["snapshot", "--db", f.hub.url, "--to", snap.path])
        said = try CLI.ok(["ingest", "--db", l, snap.path]).stderr
        for _ in 0..<2 { try round() }
        XCTAssertFalse(said.contains("this node's own changes"), said)
        for args in [["export", "--db", l, "--to", f.up.path], ["prune", "--db", l]] {
            XCTAssertFalse(try CLI.ok(args).stderr.contains("this node's own changes"), args[0])
        }
        let rows = Set(try DatabaseOpener.open(l).rows("SELECT order_id FROM sales_order").compactMap { $0.string(0) })
        XCTAssertTrue(rows.isSuperset(of: ["a1", "a2", "a3"]), "\(rows)")
        XCTAssertEqual(rows, Set(try f.hub.rows().map { $0[0] }))
        try checkAll([l, f.hub.url])
    }

    /// A node that joins from a hub's snapshot and then reads the older relay files still in the
    /// folder gets receipts lower than the snapshot's: no sign of a restore (found from outside:
    /// the joiner took the hub for restored and moved it to a new epoch).
    func testOlderFilesAfterASnapshotAreNoSignOfARestore() throws {
        let f = try fleet(2, hub: .sqlite)
        let (writer, slow) = (f.laptops[0], f.laptops[1])
        try f.hub.exec("INSERT INTO sales_order (order_id) VALUES ('h1')")
        for _ in 0..<3 {
            try insert(writer, 1)
            try writer.export(to: f.up)
            try f.hub.ingest([f.up.path])
            try CLI.ok(["export", "--db", f.hub.url, "--to", f.down.path, "--relay"])
            try writer.ingest([f.down.path])
        }
        // slow has not confirmed: the relay files stay.
        XCTAssertEqual(try files(f.down).count, 4, "three relay files and the hub's own")
        let snap = try TestDatabases.subfolder(folder, "snap")
        try CLI.ok(["snapshot", "--db", f.hub.url, "--to", snap.path])
        let joiner = try join("joiner", f)
        XCTAssertEqual(try joiner.ingest([snap.path]).notices, [])
        XCTAssertEqual(try joiner.ingest([f.down.path]).notices, [])
        XCTAssertEqual(try joiner.db.scalar("SELECT count(*) FROM ds_setting WHERE name LIKE 'fork:%'"), .integer(0))
        let epoch = try NodeIdentity.load(f.hub.db).epoch
        try joiner.export(to: f.up)
        try slow.ingest([f.down.path])
        try slow.export(to: f.up)
        XCTAssertEqual(try f.hub.ingest([f.up.path]).notices, [])
        XCTAssertEqual(try NodeIdentity.load(f.hub.db).epoch, epoch, "the hub keeps its epoch")
        XCTAssertEqual(try joiner.rows(), try f.hub.rows())
    }

    /// A change held at export (text that is not UTF-8) stops the export with exit 2, and still
    /// the laptop confirms what it took in: the hub does not keep its files until the cure.
    func testAHeldChangeDoesNotHoldBackTheReceipts() throws {
        let f = try fleet(2)
        let (writer, held) = (f.laptops[0], f.laptops[1])
        try insert(writer, 2)
        try writer.export(to: f.up)
        try f.hub.ingest([f.up.path])
        try CLI.ok(["export", "--db", f.hub.url, "--to", f.down.path, "--relay"])
        for l in f.laptops { try l.ingest([f.down.path]) }
        try held.exec("INSERT INTO sales_order (order_id) VALUES (CAST(x'41ff' AS TEXT))")
        let r = try CLI.run(["export", "--db", held.url, "--to", f.up.path])
        XCTAssertEqual(r.status, 2, r.stderr)
        let receipts = "\(held.name)~~receipts_000000000001-000000000001_\(try held.epoch8()).djb"
        XCTAssertEqual(r.stdout, f.up.appendingPathComponent(receipts).path + "\n")
        XCTAssertEqual(try files(f.up).filter { $0.hasPrefix(held.name) }, [receipts])
        try writer.export(to: f.up)
        try f.hub.ingest([f.up.path])
        let pruned = try CLI.ok(["prune", "--db", f.hub.url, "--bundles", f.down.path])
        XCTAssertTrue(pruned.stdout.contains("removed 1 bundle file(s)"), pruned.stdout)
    }

    /// A laptop's older bundle that arrives after a newer one (a USB stick found late) confirms
    /// less than the newer one did, and is no sign of a restore: nothing is said, nothing is
    /// forgotten.
    func testAnOlderBundleArrivingLateIsNoSignOfARestore() throws {
        let f = try fleet(2)
        let (l0, l1) = (f.laptops[0], f.laptops[1])
        let n1 = try TestDatabases.subfolder(folder, "n1"), n2 = try TestDatabases.subfolder(folder, "n2")
        let n3 = try TestDatabases.subfolder(folder, "n3"), other = try TestDatabases.subfolder(folder, "l1")
        func relay() throws {
            _ = try Exporter.export(f.hub.db, ExportOptions(folder: f.down.path, relay: true))
            try l0.ingest([f.down.path])
        }
        try insert(l0, 1)
        try l0.export(to: n1)
        try f.hub.ingest([n1.path])
        try relay()
        try insert(l0, 1)
        try l0.export(to: n2)
        // The hub does not see n2 yet; l1's change reaches l0 through it.
        try insert(l1, 1)
        try l1.export(to: other)
        try f.hub.ingest([other.path])
        try relay()
        try insert(l0, 1)
        try l0.export(to: n3)
        XCTAssertEqual(try f.hub.ingest([n3.path]).notices, [])
        XCTAssertEqual(
            try RelayStream.peerSpans(f.hub.db, peer: "l0", epoch: try NodeIdentity.load(f.hub.db).epoch),
            [RelaySpan(after: 0, last: 2)])
        XCTAssertEqual(try f.hub.ingest([n2.path]).notices, [], "n2, older, after n3")
        XCTAssertEqual(
            try RelayStream.peerSpans(f.hub.db, peer: "l0", epoch: try NodeIdentity.load(f.hub.db).epoch),
            [RelaySpan(after: 0, last: 2)])
        try relay()
        try l1.ingest([f.down.path])
        try assertSameRows(f)
    }

    /// A laptop's change that reached only another laptop (it read the bundle directly; the
    /// copy for the hub was lost), and then the laptop was restored from a backup: the hub lacks
    /// that change of an epoch the laptop left, and only the other laptop holds it. The hub names
    /// it with the cure, which brings the change everywhere. Found from outside: the rows stayed
    /// apart for good, with every command exiting 0 and `check` OK.
    func testAChangeOnlyAnotherLaptopHoldsAfterItsOriginWasRestoredIsNamedAndComesBack() throws {
        let f = try fleet(1)
        let l0 = f.laptops[0]
        let l4 = try cliNode("l4", trusting: [f.hub, l0])
        try f.hub.exec("INSERT INTO ds_setting (name, value) VALUES ('partial_grace_seconds', '0')")
        let stick = try TestDatabases.subfolder(folder, "stick"), lost = try TestDatabases.subfolder(folder, "lost")
        func round() throws {
            try CLI.ok(["export", "--db", l4, "--to", f.up.path])
            try l0.export(to: f.up)
            try f.hub.ingest([f.up.path])
            _ = try Exporter.export(f.hub.db, ExportOptions(folder: f.down.path, relay: true))
            try CLI.ok(["ingest", "--db", l4, f.down.path])
            try l0.ingest([f.down.path])
        }
        try insert(f.hub, 2)
        try round()
        let backup = try backUp(l4)
        let l4db = try DatabaseOpener.open(l4)
        try l4db.execute("DELETE FROM sales_order WHERE order_id = 'hub-1'")
        try CLI.ok(["export", "--db", l4, "--to", stick.path])
        try CLI.ok(["ingest", "--db", l0.url, stick.path])
        try CLI.ok(["export", "--db", l4, "--to", lost.path])  // nothing new: the hub's copy is lost
        try l4db.execute("UPDATE sales_order SET description = 'edited on l4' WHERE order_id = 'hub-2'")
        try CLI.ok(["export", "--db", l4, "--to", f.up.path])
        try f.hub.ingest([f.up.path])
        try restore(l4, from: backup)
        // The documented recovery of a restored laptop: ingest first, then export.
        try round()
        try round()
        try l0.export(to: f.up)
        let gaps = try f.hub.ingest([f.up.path]).gaps
        XCTAssertEqual(gaps.count, 1, "\(gaps)")
        let said = gaps.joined()
        XCTAssertTrue(said.contains("l4 (epoch "), said)
        XCTAssertTrue(said.contains("which it has left): change 1 is still missing here"), said)
        XCTAssertTrue(
            said.contains("l0's receipts say it holds them")
                && said.contains("on l0 run 'datajoin export --db URL --to FOLDER --relay --resend --peer hub'"), said)
        XCTAssertEqual(try count(f.hub, "SELECT count(*) FROM sales_order WHERE order_id = 'hub-1'"), 1, "not yet")
        // The cure, as said.
        try CLI.ok(["export", "--db", l0.url, "--to", f.up.path, "--relay", "--resend", "--peer", "hub"])
        XCTAssertEqual(try f.hub.ingest([f.up.path]).gaps, [])
        try round()
        try round()
        XCTAssertEqual(try count(f.hub, "SELECT count(*) FROM sales_order WHERE order_id = 'hub-1'"), 0)
        let rows = try f.hub.rows()
        XCTAssertEqual(try l0.rows(), rows)
        XCTAssertEqual(try TestDatabases.dump(DatabaseOpener.open(l4), "sales_order"), rows)
        XCTAssertFalse(try CLI.ok(["export", "--db", l4, "--to", f.up.path]).stderr.contains("lost here"))
        try checkAll([f.hub.url, l0.url, l4])
    }

    /// A laptop's change that reached only another laptop (a stick; the hub's copy was lost with
    /// the disk), and the laptop restored from a backup gives its next change the same seq: the
    /// hub takes that one as the change it never had, with no gap and no fork to see, and relays
    /// it. The other laptop sees the fork: it names the hub, which lacks its copy, with the cure,
    /// which brings both changes everywhere, and the change lost after it; its prunes keep them
    /// meanwhile, and the hub, shown the copy, says nothing back. Found from outside: the original
    /// stayed on that one laptop for good, every command exiting 0 and `check` OK.
    func testAReusedSeqOfAChangeOnlyAnotherLaptopHeldIsNamedAndComesBack() throws {
        let f = try fleet(1)
        let l0 = f.laptops[0]
        let l4 = try cliNode("l4", trusting: [f.hub, l0])
        let stick = try TestDatabases.subfolder(folder, "stick")
        var said: [String] = []
        func round() throws {
            try hubNight(f, l0, l4)
            said += try l0.ingest([f.down.path]).gaps
        }
        try insert(f.hub, 2)
        try round()
        let backup = try backUp(l4)
        try DatabaseOpener.open(l4).execute("DELETE FROM sales_order WHERE order_id = 'hub-1'")
        try DatabaseOpener.open(l4).execute(
            "INSERT INTO sales_order (order_id, description) VALUES ('l4-lost', 'lost with the disk')")
        try CLI.ok(["export", "--db", l4, "--to", stick.path])
        try CLI.ok(["ingest", "--db", l0.url, stick.path])
        try restore(l4, from: backup)
        let epoch = try NodeIdentity.load(DatabaseOpener.open(l4)).epoch
        try DatabaseOpener.open(l4).execute(
            "UPDATE sales_order SET description = 'edited on l4' WHERE order_id = 'hub-2'")
        try round()
        XCTAssertEqual(said.count, 1, "\(said)")
        let warning = said.joined()
        XCTAssertTrue(warning.contains("l4's change 1 (epoch "), warning)
        XCTAssertTrue(
            warning.contains("on this node run 'datajoin export --db URL --to FOLDER --relay --resend --peer hub'"),
            warning)
        XCTAssertEqual(try count(f.hub, "SELECT count(*) FROM sales_order WHERE order_id = 'hub-1'"), 1, "not yet")
        // A laptop's nightly prune, which never forwards: the copy held of the reused seq and the
        // lost change after it are kept while the fork waits (pruned, the cure sent none of them).
        for _ in 0..<2 {
            let pruned = try CLI.ok(["prune", "--db", l0.url, "--no-relay"])
            XCTAssertTrue(pruned.stderr.contains("came from hub with another stamp"), pruned.stderr)
        }
        let exported = try CLI.ok(["export", "--db", l0.url, "--to", f.up.path])
        XCTAssertTrue(exported.stderr.contains("on this node run 'datajoin export"), exported.stderr)
        XCTAssertEqual(try count(l0, "SELECT count(*) FROM ds_change_inbox WHERE origin = 'l4'"), 2)
        // The cure, as said. The hub, shown l0's copy, has seen both: it says nothing back.
        try CLI.ok(["export", "--db", l0.url, "--to", f.up.path, "--relay", "--resend", "--peer", "hub"])
        XCTAssertEqual(try f.hub.ingest([f.up.path]).gaps, [])
        // The hub confirms l0's copy, and l0 stops saying it; told by the hub's receipts, l4 moves
        // to a new epoch and sends its change again, which sorts the copies out everywhere.
        said = []
        try round()
        XCTAssertEqual(said, [])
        XCTAssertEqual(try NodeIdentity.load(DatabaseOpener.open(l4)).epoch == epoch, false, "l4 told")
        try round()
        try round()
        XCTAssertEqual(said, [])
        XCTAssertEqual(try count(l0, "SELECT count(*) FROM ds_change_forked"), 0)
        XCTAssertEqual(try count(f.hub, "SELECT count(*) FROM ds_change_forked"), 0)
        XCTAssertEqual(try count(f.hub, "SELECT count(*) FROM sales_order WHERE order_id = 'hub-1'"), 0)
        XCTAssertEqual(try count(f.hub, "SELECT count(*) FROM sales_order WHERE order_id = 'l4-lost'"), 1)
        XCTAssertEqual(
            try count(f.hub, "SELECT count(*) FROM sales_order WHERE description = 'edited on l4'"), 1)
        try assertConverged(f, l0, l4)
    }

    /// A night of the reused-seq tests up to the laptop `l0`'s ingest: both laptops export, the
    /// hub ingests, relays and prunes (what it relayed leaves its inbox), `l4` ingests.
    func hubNight(_ f: Fleet, _ l0: TestNode, _ l4: String) throws {
        try CLI.ok(["export", "--db", l4, "--to", f.up.path])
        try l0.export(to: f.up)
        try f.hub.ingest([f.up.path])
        _ = try Exporter.export(f.hub.db, ExportOptions(folder: f.down.path, relay: true))
        try CLI.ok(["prune", "--db", f.hub.url])
        try CLI.ok(["ingest", "--db", l4, f.down.path])
    }

    /// The hub's rows on the laptop and on the CLI-driven laptop `l4`; `check` on all three.
    func assertConverged(_ f: Fleet, _ l0: TestNode, _ l4: String, file: StaticString = #filePath, line: UInt = #line)
        throws
    {
        let rows = try f.hub.rows()
        XCTAssertEqual(try l0.rows(), rows, file: file, line: line)
        XCTAssertEqual(try TestDatabases.dump(DatabaseOpener.open(l4), "sales_order"), rows, file: file, line: line)
        try checkAll([f.hub.url, l0.url, l4], file: file, line: line)
    }

    /// The same, with the laptop's nightly `prune --no-relay` run the night it read the stick:
    /// its copy is gone from its inbox before the hub relays the reused seq, and still compared
    /// by its stamp. The hub's copy goes in its place and is applied (kept aside, it waited for
    /// good for a new epoch of the restored laptop that nothing brought; found from outside),
    /// and the laptop says once that no re-send carries its copy: the cure is by hand, after
    /// which every node holds both changes.
    func testAReusedSeqOfAChangePrunedHereIsAppliedAndNamedWithTheCureByHand() throws {
        let f = try fleet(1)
        let l0 = f.laptops[0]
        let l4 = try cliNode("l4", trusting: [f.hub, l0])
        let stick = try TestDatabases.subfolder(folder, "stick")
        func round() throws -> String {
            try hubNight(f, l0, l4)
            let said = try CLI.ok(["ingest", "--db", l0.url, f.down.path]).stderr
            try CLI.ok(["prune", "--db", l0.url, "--no-relay"])
            return said
        }
        try insert(f.hub, 2)
        _ = try round()
        let backup = try backUp(l4)
        try DatabaseOpener.open(l4).execute("DELETE FROM sales_order WHERE order_id = 'hub-1'")
        try CLI.ok(["export", "--db", l4, "--to", stick.path])
        try CLI.ok(["ingest", "--db", l0.url, stick.path])
        try CLI.ok(["prune", "--db", l0.url, "--no-relay"])
        XCTAssertEqual(try count(l0, "SELECT count(*) FROM ds_change_inbox WHERE origin = 'l4'"), 0)
        try restore(l4, from: backup)
        try DatabaseOpener.open(l4).execute(
            "UPDATE sales_order SET description = 'edited on l4' WHERE order_id = 'hub-2'")
        let said = try round()
        XCTAssertTrue(said.contains("l4's change 1 (epoch "), said)
        XCTAssertTrue(said.contains("than the copy this node had pruned"), said)
        XCTAssertTrue(said.contains("make that change again there by hand"), said)
        XCTAssertEqual(try count(l0, "SELECT count(*) FROM ds_change_forked"), 0)
        XCTAssertEqual(try count(l0, "SELECT count(*) FROM sales_order WHERE description = 'edited on l4'"), 1)
        XCTAssertEqual(try round(), "", "said once")
        // The cure by hand, on the hub.
        try f.hub.exec("DELETE FROM sales_order WHERE order_id = 'hub-1'")
        XCTAssertEqual(try round(), "")
        XCTAssertEqual(try round(), "")
        XCTAssertEqual(try f.hub.rows().map { $0[0] }, ["hub-2"])
        try assertConverged(f, l0, l4)
    }

    /// A laptop keeps a change that came straight from its origin (a stick) until its hub
    /// confirms it, though another change of that origin came through the hub. Found from
    /// outside: a plain `prune` judged by origin, let it go with the other, and when the origin
    /// was then restored from a backup it was lost for good.
    func testALaptopKeepsAChangeFromAStickUntilItsHubHoldsIt() throws {
        let f = try fleet(1)
        let l0 = f.laptops[0]
        let l4 = try cliNode("l4", trusting: [f.hub, l0])
        let stick = try TestDatabases.subfolder(folder, "stick")
        func hubRound() throws {
            try f.hub.ingest([f.up.path])
            _ = try Exporter.export(f.hub.db, ExportOptions(folder: f.down.path, relay: true))
            try l0.ingest([f.down.path])
        }
        try DatabaseOpener.open(l4).execute(
            "INSERT INTO sales_order (order_id, description) VALUES ('l4-1', 'by the hub')")
        try CLI.ok(["export", "--db", l4, "--to", f.up.path])
        try hubRound()
        try DatabaseOpener.open(l4).execute(
            "INSERT INTO sales_order (order_id, description) VALUES ('l4-2', 'on a stick')")
        try CLI.ok(["export", "--db", l4, "--to", stick.path])
        try CLI.ok(["ingest", "--db", l0.url, stick.path])
        let kept = try CLI.ok(["prune", "--db", l0.url])
        XCTAssertTrue(kept.stderr.contains("kept 1 applied inbox row(s) that a peer may lack"), kept.stderr)
        XCTAssertEqual(try count(l0, "SELECT count(*) FROM ds_change_inbox WHERE origin = 'l4'"), 1)
        XCTAssertEqual(try count(l0, "SELECT count(*) FROM ds_change_inbox WHERE origin = 'l4' AND seq = 2"), 1)
        // The hub gets it (the re-send its gap asks for) and confirms it: then it goes.
        try DatabaseOpener.open(l4).execute(
            "INSERT INTO sales_order (order_id, description) VALUES ('l4-3', 'by the hub')")
        try CLI.ok(["export", "--db", l4, "--to", f.up.path])
        try CLI.ok(["export", "--db", l4, "--to", f.up.path, "--resend", "--peer", "hub"])
        try hubRound()
        XCTAssertEqual(try count(f.hub, "SELECT count(*) FROM sales_order WHERE order_id = 'l4-2'"), 1)
        try l0.export(to: f.up)
        try hubRound()
        try CLI.ok(["prune", "--db", l0.url])
        XCTAssertEqual(try count(l0, "SELECT count(*) FROM ds_change_inbox WHERE origin = 'l4'"), 0)
        try CLI.ok(["ingest", "--db", l4, f.down.path])
        try assertConverged(f, l0, l4)
    }

    /// Two laptops that also trust each other (for sticks) prune what their hub relayed: the hub
    /// sends it to the other laptop itself. Found from outside: each kept every row its hub
    /// relayed for good, as the other laptop's receipts never reach it; a row that came on a
    /// stick still waits for the hub.
    func testLaptopsThatTrustEachOtherPruneWhatTheirHubRelayed() throws {
        let f = try fleet(2)
        let (l0, l1) = (f.laptops[0], f.laptops[1])
        try l0.trust(l1)
        try l1.trust(l0)
        for _ in 0..<2 {
            try cycle(f)
            try l0.export(to: f.up)
            try l1.export(to: f.up)
        }
        let pruned = try CLI.ok(["prune", "--db", l0.url])
        XCTAssertFalse(pruned.stderr.contains("kept"), pruned.stderr)
        XCTAssertEqual(try count(l0, "SELECT count(*) FROM ds_change_inbox"), 0)
        let stick = try TestDatabases.subfolder(folder, "stick")
        try insert(l1, 1)
        try l1.export(to: stick)
        try l0.ingest([stick.path])
        let kept = try CLI.ok(["prune", "--db", l0.url])
        XCTAssertTrue(kept.stderr.contains("kept 1 applied inbox row(s)"), kept.stderr)
        try checkAll([f.hub.url, l0.url, l1.url])
    }

    /// A laptop whose clock jumps back between two bundles, the first of them read late: its
    /// bundles' times never go back, so the late one is older and no sign of a restore. Found
    /// from outside: the hub took the laptop for restored, and it moved to a new epoch and was
    /// told on every export that it had lost a change it never issued.
    func testALaptopWhoseClockJumpedBackIsNoRestoredNode() throws {
        let f = try fleet(1)
        let l0 = f.laptops[0]
        let epoch = try NodeIdentity.load(l0.db).epoch
        func setOffset(hours: Int64) throws {
            try l0.exec("DELETE FROM ds_setting WHERE name = 'test_clock_offset_ms'")
            try l0.exec(
                "INSERT INTO ds_setting (name, value) VALUES ('test_clock_offset_ms', ?)",
                [.text(String(hours * 3_600_000))])
        }
        var sticks: [URL] = []
        for (i, hours) in [3, 3, -4].enumerated() {
            try setOffset(hours: Int64(hours))
            try insert(l0, 1)
            sticks.append(try TestDatabases.subfolder(folder, "stick\(i)"))
            try l0.export(to: sticks[i])
        }
        let times = try sticks.map { stick -> String in
            let file = try XCTUnwrap(
                try FileManager.default.contentsOfDirectory(atPath: stick.path).first { $0.hasSuffix(".djb") })
            return try BundleReader(path: stick.appendingPathComponent(file).path, maxExpandedBytes: 1 << 30).header
                .createdAt
        }
        XCTAssertEqual(times, times.sorted(), "the bundle written after the clock went back is still the later one")
        XCTAssertEqual(Set(times).count, 3)
        for i in [0, 2, 1] {
            XCTAssertEqual(try f.hub.ingest([sticks[i].path]).notices, [], "bundle \(i)")
        }
        XCTAssertEqual(try Forks.all(f.hub.db), [:])
        _ = try Exporter.export(f.hub.db, ExportOptions(folder: f.down.path, relay: true))
        try l0.ingest([f.down.path])
        try insert(l0, 1)
        try l0.export(to: f.up)
        XCTAssertEqual(try f.hub.ingest([f.up.path]).notices, [])
        XCTAssertEqual(try NodeIdentity.load(l0.db).epoch, epoch, "the laptop stays in its epoch")
        let said =
            try CLI.ok(["status", "--db", l0.url]).stdout
            + CLI.ok(["export", "--db", l0.url, "--to", f.up.path]).stderr
        XCTAssertFalse(said.contains("lost here"), said)
        XCTAssertFalse(try CLI.ok(["status", "--db", f.hub.url]).stdout.contains("restored"))
        try assertSameRows(f)
        // A clock past what a stamp can carry (the year 9999) once: the time is kept within it,
        // and exports go on when the clock is right again (found from outside: every later
        // export failed on the setting).
        try setOffset(hours: HybridLogicalClock.maxMs / 3_600_000)
        _ = try BundleTime.next(l0.db)
        XCTAssertEqual(try Settings.int(l0.db, BundleTime.setting), HybridLogicalClock.maxMs)
        try setOffset(hours: 0)
        try insert(l0, 1)
        XCTAssertEqual(try l0.export(to: f.up).count, 1)
        let now = HybridLogicalClock.nowMs()
        XCTAssertTrue(
            try (now - 60_000...now + 60_000).contains(Settings.int(l0.db, BundleTime.setting) ?? 0),
            "a time past the clock window is not followed")
    }

    /// A laptop that exported once with its clock far ahead (the year 6429) and was later
    /// restored from a backup is still found by its receipts: the hub takes a bundle time past
    /// its clock window as no sign of order, and the laptop's own times come back to its clock.
    /// Found from outside: the restore was never found, and the laptop lacked a change for good.
    func testARestoreIsFoundAfterAnExportWithAClockFarAhead() throws {
        let f = try fleet(1, hub: .sqlite)
        let reader = try cliNode("reader", trusting: [f.hub])
        var notices = ""
        func night(_ env: [String: String] = [:]) throws { notices += try readerNight(f, reader: reader, env: env) }
        try night()
        try night()
        let backup = try backUp(reader)
        try night()
        try night(["DATAJOIN_TEST_CLOCK_OFFSET_MS": String(HybridLogicalClock.maxMs - HybridLogicalClock.nowMs())])
        try night()
        try restore(reader, from: backup)
        XCTAssertEqual(notices, "")
        try night()
        XCTAssertTrue(
            notices.contains("reader confirms less than it did")
                && notices.contains("its database was restored from a backup"), notices)
    }

    /// A laptop's bundle read after its later changes came through the hub (a stick carried
    /// straight to a peer, read after the night's relay) confirms fewer of its own changes than
    /// the peer holds, and is no sign of a restore: it was written before them. Found from
    /// outside: the peer took the laptop for restored, and the laptop moved to a new epoch, sent
    /// everything again and was told on every export that it had lost its own changes.
    func testALaptopsBundleReadAfterItsLaterChangesCameThroughTheHubIsNoSignOfARestore() throws {
        for brand in [Brand.sqlite, .postgres, .mariadb] {
            folder = try TestDatabases.tempFolder("stick-\(brand)")
            var f = try fleet(1, hub: .sqlite)
            let a = f.laptops[0]
            let b = try TestNode("b", brand, folder: folder)
            for (x, y) in [(b, f.hub), (f.hub, b), (a, b), (b, a)] { try x.trust(y) }
            f.laptops.append(b)
            let stick1 = try TestDatabases.subfolder(folder, "stick1")
            let stick2 = try TestDatabases.subfolder(folder, "stick2")
            try insert(a, 1)
            try a.export(to: stick1)
            XCTAssertEqual(try b.ingest([stick1.path]).notices, [], "\(brand)")
            try insert(a, 1)
            try a.export(to: stick2)
            try insert(a, 1)
            try a.export(to: f.up)
            try f.hub.ingest([f.up.path])
            _ = try Exporter.export(f.hub.db, ExportOptions(folder: f.down.path, relay: true))
            XCTAssertEqual(try b.ingest([f.down.path]).notices, [], "\(brand)")
            let epoch = try NodeIdentity.load(a.db).epoch
            XCTAssertEqual(try b.ingest([stick2.path]).notices, [], "\(brand): written before seq 3 was")
            XCTAssertEqual(
                try b.db.scalar("SELECT count(*) FROM ds_setting WHERE name LIKE 'fork:%'"), .integer(0), "\(brand)")
            // Everyone takes in the rest; the laptop keeps its epoch and hears of no loss.
            try f.hub.ingest([stick1.path, stick2.path])
            try insert(b, 1)
            try b.export(to: f.up)
            try f.hub.ingest([f.up.path])
            _ = try Exporter.export(f.hub.db, ExportOptions(folder: f.down.path, relay: true))
            for l in [a, b] { XCTAssertEqual(try l.ingest([f.down.path]).notices, [], "\(brand) \(l.name)") }
            XCTAssertEqual(try a.ingest([f.up.path]).notices, [], "\(brand): b's own bundle")
            XCTAssertEqual(try NodeIdentity.load(a.db).epoch, epoch, "\(brand): the laptop keeps its epoch")
            let export = try CLI.ok(["export", "--db", a.url, "--to", f.up.path])
            XCTAssertFalse(export.stderr.contains("lost"), "\(brand): \(export.stderr)")
            try assertSameRows(f)
            XCTAssertEqual(try f.hub.rows().count, 4, "\(brand)")
            try checkAll([a.url, b.url, f.hub.url])
        }
    }

    /// A quiet node writes its receipts again once a day, unchanged: a node restored from a
    /// backup holds the record of a bundle it may never have written (found from outside: a
    /// restored laptop that never edits stayed silent, and unnoticed, for good).
    func testUnchangedReceiptsAreWrittenAgainAfterADay() throws {
        let f = try fleet(1)
        let l = f.laptops[0]
        try insert(l, 1)
        try l.export(to: f.up)
        try f.hub.ingest([f.up.path])
        _ = try Exporter.export(f.hub.db, ExportOptions(folder: f.down.path, relay: true))
        try l.ingest([f.down.path])
        let out = try TestDatabases.subfolder(folder, "receipts")
        XCTAssertEqual(try Exporter.export(l.db, ExportOptions(folder: out.path)).map(\.receiptsOnly), [true])
        XCTAssertEqual(try Exporter.export(l.db, ExportOptions(folder: out.path)).count, 0)
        let digest = try XCTUnwrap(Settings.text(l.db, ReceiptsOnly.sentSetting)?.split(separator: " ").first)
        let day = ReceiptsOnly.refreshSeconds
        // Seconds pass while the test runs: "not yet" is a few seconds short of a day.
        for (age, writes) in [(day - 5, false), (day, true), (day + 1, true), (3 * day, true)] {
            let then = Int64(Date().timeIntervalSince1970) - age
            try l.exec(
                "UPDATE ds_setting SET value = ? WHERE name = ?",
                [.text("\(digest) \(then)"), .text(ReceiptsOnly.sentSetting)])
            XCTAssertEqual(
                try Exporter.export(l.db, ExportOptions(folder: out.path)).count, writes ? 1 : 0, "\(age) s after")
        }
        XCTAssertEqual(try Exporter.export(l.db, ExportOptions(folder: out.path)).count, 0)
    }

    /// Spans a peer sent before, left out now: a loss. A peer sends only its lowest 64 spans, so
    /// above the highest it sent a loss counts only when it sent fewer than 64. At 63, 64, 65 and
    /// 192 spans held.
    func testALostSpanIsFoundOnlyWhereThePeerSentAllItHolds() {
        let cap = RelayStream.maxSpans
        for held in [cap - 1, cap, cap + 1, 3 * cap] {
            // Spans (2i, 2i+1]: apart, so none joins another.
            let all = (0..<held).map { RelaySpan(after: Int64(2 * $0), last: Int64(2 * $0 + 1)) }
            let sent = Array(all.prefix(cap))
            let capped = sent.count >= cap
            XCTAssertNil(PeerRestore.lostSpan(known: all, incoming: sent, capped: capped), "\(held) held")
            XCTAssertNil(PeerRestore.lostSpan(known: sent, incoming: sent, capped: capped), "\(held) held")
            // One span below the top it sent is gone: found whatever the count.
            var fewer = sent
            fewer.remove(at: sent.count / 2)
            XCTAssertEqual(
                PeerRestore.lostSpan(known: all, incoming: fewer, capped: capped), sent[sent.count / 2],
                "\(held) held")
            // Its highest span gone: a loss only when it sent all it holds.
            let lower = Array(sent.dropLast())
            XCTAssertEqual(
                PeerRestore.lostSpan(known: sent, incoming: lower, capped: false), sent.last, "\(held) held")
            XCTAssertEqual(
                PeerRestore.lostSpan(known: all, incoming: lower, capped: false), sent.last, "\(held) held")
        }
        // Spans joined since are no loss; nothing known is no loss.
        XCTAssertNil(
            PeerRestore.lostSpan(
                known: [RelaySpan(after: 0, last: 2), RelaySpan(after: 3, last: 5)],
                incoming: [RelaySpan(after: 0, last: 9)], capped: false))
        XCTAssertNil(PeerRestore.lostSpan(known: [], incoming: [], capped: false))
        XCTAssertEqual(
            PeerRestore.lostSpan(known: [RelaySpan(after: 0, last: 9)], incoming: [], capped: false),
            RelaySpan(after: 0, last: 9))
    }

    /// An `export --relay` that finds nothing still makes the node a relay (the documented
    /// "one `export --relay` before the first prune"): prune then keeps what it has not relayed,
    /// with no note, even with `--no-relay`.
    func testAnExportRelayThatFindsNothingMakesTheNodeARelay() throws {
        let f = try fleet(2, hub: .sqlite)
        let first = try CLI.ok(["export", "--db", f.hub.url, "--to", f.down.path, "--relay"])
        XCTAssertTrue(first.stdout.contains("nothing new to export"), first.stdout)
        try hubTakesIn(f, eachInserting: 3)
        let pruned = try CLI.ok(["prune", "--db", f.hub.url, "--no-relay"])
        XCTAssertFalse(pruned.stderr.contains("kept"), pruned.stderr)
        XCTAssertEqual(try count(f.hub, "SELECT count(*) FROM ds_change_inbox"), 6, "not relayed yet")
        try CLI.ok(["export", "--db", f.hub.url, "--to", f.down.path, "--relay"])
        for l in f.laptops { try l.ingest([f.down.path]) }
        try assertSameRows(f)
    }

    /// A laptop revoked while away, the hub pruning what it relayed meanwhile, then trusted
    /// again: it lacked the pruned changes for good and nothing said so (found from outside).
    /// Now it starts anew as a peer first heard from after that prune: `prune` and
    /// `export --relay --resend` name it, and the re-join from a new snapshot converges.
    func testAPeerTrustedAgainAfterAPruneIsNamedUntilItRejoins() throws {
        var f = try fleet(2, hub: .sqlite)
        try cycle(f)
        let away = f.laptops.removeLast()
        try CLI.ok(["trust", "--db", f.hub.url, "--revoke", away.name])
        for _ in 0..<2 {
            try cycle(f)
            try confirm(f)
        }
        try CLI.ok(["prune", "--db", f.hub.url])
        XCTAssertGreaterThan(try Settings.int(f.hub.db, RelayStream.prunedThroughSetting) ?? 0, 0)
        try f.hub.trust(away)
        let pruned = try CLI.ok(["prune", "--db", f.hub.url])
        XCTAssertTrue(
            pruned.stderr.contains("\(away.name) may lack changes this node pruned"),
            pruned.stderr)
        let resent = try CLI.ok([
            "export", "--db", f.hub.url, "--to", f.down.path, "--relay", "--resend", "--peer", away.name,
        ])
        XCTAssertTrue(resent.stderr.contains("re-join it from a new snapshot"), resent.stderr)
        // The cure: a snapshot of the hub.
        let snap = try TestDatabases.subfolder(folder, "rejoin")
        try CLI.ok(["snapshot", "--db", f.hub.url, "--to", snap.path])
        try away.ingest([snap.path])
        f.laptops.append(away)
        try assertSameRows(f)
    }

    /// Every node sends to every other (no hub): `--no-relay` prunes the applied inbox rows of a
    /// node with several peers that never relays; without it they are kept, with the reason.
    func testANodeThatNeverRelaysPrunesWithNoRelay() throws {
        let f = try fleet(2, hub: .sqlite)
        try hubTakesIn(f, eachInserting: 3)
        let kept = try CLI.ok(["prune", "--db", f.hub.url])
        XCTAssertTrue(kept.stderr.contains("kept 6 applied inbox row(s)"), kept.stderr)
        XCTAssertEqual(try count(f.hub, "SELECT count(*) FROM ds_change_inbox"), 6)
        let pruned = try CLI.ok(["prune", "--db", f.hub.url, "--no-relay"])
        XCTAssertFalse(pruned.stderr.contains("kept"), pruned.stderr)
        XCTAssertTrue(pruned.stdout.contains("6 inbox row(s)"), pruned.stdout)
        XCTAssertEqual(try count(f.hub, "SELECT count(*) FROM ds_change_inbox"), 0)
    }

    /// A hub whose operator said it never forwards (`prune --no-relay`), and later relays after
    /// all: the changes that prune removed never reach the laptops that lacked them. Each such
    /// laptop is named on every relay and prune, no relay bundle says it holds them, and a new
    /// snapshot ends it (found in review: the first relay said nothing, and claimed them held).
    func testAHubThatPrunedWithNoRelayAndThenRelaysNamesThePeersThatLackedIt() throws {
        var f = try fleet(2, hub: .sqlite)
        try hubTakesIn(f, eachInserting: 3)
        let quiet = try CLI.ok(["prune", "--db", f.hub.url, "--no-relay"])
        XCTAssertTrue(quiet.stdout.contains("6 inbox row(s)"), quiet.stdout)
        XCTAssertEqual(quiet.stderr, "", "a node that never forwards is told nothing")

        // A third laptop that lacked nothing: it joined after the prune, from a snapshot.
        let snapFolder = try TestDatabases.subfolder(folder, "snap1")
        try CLI.ok(["snapshot", "--db", f.hub.url, "--to", snapFolder.path])
        let late = try join("late", f)
        try late.ingest([snapFolder.path])
        f.laptops.append(late)

        let relayed = try CLI.ok(["export", "--db", f.hub.url, "--to", f.down.path, "--relay"])
        for name in ["l0", "l1"] {
            XCTAssertTrue(
                relayed.stderr.contains("\(name) may lack changes this node pruned up to inbox id 6"), relayed.stderr)
        }
        XCTAssertFalse(relayed.stderr.contains("late"), relayed.stderr)
        for l in f.laptops { try l.ingest([f.down.path]) }
        XCTAssertEqual(
            try count(f.laptops[0], "SELECT count(*) FROM sales_order"), 3, "l1's rows were pruned unrelayed")
        try confirm(f)
        _ = try relay(f)
        for l in f.laptops { try l.ingest([f.down.path]) }
        try confirm(f)
        // Still named: no relay bundle told them they hold the pruned ids.
        let named = try CLI.ok(["prune", "--db", f.hub.url]).stderr
        for name in ["l0", "l1"] { XCTAssertTrue(named.contains("\(name) may lack changes"), named) }
        XCTAssertEqual(
            try f.hub.db.rows("SELECT DISTINCT after_id FROM ds_peer_relay_receipt WHERE peer IN ('l0', 'l1')").map {
                $0.int(0)
            }, [6])

        // The cure: each re-joins from a new snapshot of the hub.
        let snap = try TestDatabases.subfolder(folder, "snap2")
        try CLI.ok(["snapshot", "--db", f.hub.url, "--to", snap.path])
        for l in f.laptops.prefix(2) { try l.ingest([snap.path]) }
        try confirm(f)
        _ = try relay(f)
        for l in f.laptops { try l.ingest([f.down.path]) }
        try assertSameRows(f)
        try confirm(f)
        XCTAssertEqual(try CLI.ok(["prune", "--db", f.hub.url]).stderr, "")
        XCTAssertEqual(try CLI.ok(["export", "--db", f.hub.url, "--to", f.down.path, "--relay"]).stderr, "")
        try checkAll([f.hub.url] + f.laptops.map(\.url))
    }

    func testALateJoinerGetsTheWholeStreamByAResend() throws {
        var f = try fleet(1)
        for _ in 0..<2 { try cycle(f) }
        let late = try join("late", f)
        f.laptops.append(late)
        // It confirms nothing yet: the hub's stream is kept for it.
        let waiting = try CLI.ok(["prune", "--db", f.hub.url, "--bundles", f.down.path, "--files-only"]).stdout
        XCTAssertTrue(waiting.contains("waiting for: ") && waiting.contains("late"), waiting)
        // The hub's own changes, then its whole stream from the start.
        let resent = try relay(f, resendTo: "late")
        let stream = resent.filter { $0.contains("hub~relay_") }
        XCTAssertEqual(stream.count, resent.count - 1, "\(resent)")
        XCTAssertEqual(try BundleInspector.read(stream[0]).header.relaySpan?.after, 0)
        try late.ingest(resent)
        XCTAssertEqual(
            try late.db.rows("SELECT after_id FROM ds_relay_held").map { $0.int(0) }, [0], "one span from the start")
        try confirm(f)
        try f.laptops[0].ingest(try relay(f))
        try late.ingest([f.down.path])
        try assertSameRows(f)
        try confirm(f)
        try CLI.ok(["prune", "--db", f.hub.url, "--bundles", f.down.path])
        XCTAssertEqual(try files(f.down), [])
    }

    func testASnapshotJoinerHoldsTheStreamUpToTheSnapshot() throws {
        var f = try fleet(2)
        for _ in 0..<2 { try cycle(f) }
        try confirm(f)
        try CLI.ok(["prune", "--db", f.hub.url, "--bundles", f.down.path])
        let snapFolder = try TestDatabases.subfolder(folder, "snap")
        let snap = try Snapshotter.write(f.hub.db, folder: snapFolder.path)
        let span = try XCTUnwrap(BundleInspector.read(snap.path).header.relaySpan)
        XCTAssertEqual(span.after, 0)
        XCTAssertEqual(span.last, try count(f.hub, "SELECT max(id) FROM ds_change_inbox"))
        let joiner = try join("snapjoin", f)
        f.laptops.append(joiner)
        try joiner.ingest([snap.path])
        XCTAssertEqual(try joiner.rows(), try f.hub.rows())
        for _ in 0..<2 { try cycle(f) }
        try confirm(f)
        XCTAssertEqual(
            try f.hub.db.rows("SELECT after_id FROM ds_peer_relay_receipt WHERE peer = 'snapjoin'").map { $0.int(0) },
            [0], "its spans start at the snapshot")
        try CLI.ok(["prune", "--db", f.hub.url, "--bundles", f.down.path])
        XCTAssertEqual(try files(f.down), [])
        _ = try relay(f)
        for l in f.laptops { try l.ingest([f.down.path]) }
        try assertSameRows(f)
    }

    /// A node that joins from a snapshot taken before the hub pruned lacks the pruned changes
    /// (docs/snapshot.md says to join from a new one); the hub names it on prune and resend, and
    /// never tells it that it holds what was pruned (found from outside: a re-send's span said
    /// so, and nothing warned).
    func testAJoinerFromASnapshotOlderThanAPruneIsNamedAndNotToldItHoldsThePrunedPart() throws {
        var f = try fleet(2)
        try cycle(f)
        let snapFolder = try TestDatabases.subfolder(folder, "snap")
        let stale = try Snapshotter.write(f.hub.db, folder: snapFolder.path)
        for _ in 0..<2 { try cycle(f) }
        try confirm(f)
        XCTAssertFalse(try CLI.ok(["prune", "--db", f.hub.url]).stdout.contains(" 0 inbox row(s)"))
        let floor = try XCTUnwrap(Settings.int(f.hub.db, RelayStream.prunedThroughSetting))
        let fresh = try Snapshotter.write(f.hub.db, folder: snapFolder.path)

        let old = try join("oldsnap", f), new = try join("newsnap", f)
        try old.ingest([stale.path])
        try new.ingest([fresh.path])
        for n in [old, new] {
            try insert(n, 1)
            try n.export(to: f.up)
        }
        try f.hub.ingest([f.up.path])
        f.laptops += [old, new]
        let pruned = try CLI.ok(["prune", "--db", f.hub.url])
        XCTAssertTrue(pruned.stderr.contains("oldsnap may lack changes this node pruned"), pruned.stderr)
        XCTAssertTrue(pruned.stderr.contains("up to inbox id \(floor)"), pruned.stderr)
        XCTAssertFalse(pruned.stderr.contains("newsnap"), pruned.stderr)

        let resendFolder = try TestDatabases.subfolder(folder, "resend")
        let resent = try CLI.ok([
            "export", "--db", f.hub.url, "--to", resendFolder.path, "--relay", "--resend", "--peer", "oldsnap",
        ])
        XCTAssertTrue(resent.stderr.contains("oldsnap may lack changes this node pruned"), resent.stderr)
        let files = try self.files(resendFolder).filter { $0.contains("~relay_") }
        XCTAssertFalse(files.isEmpty)
        for name in files {
            let span = try BundleInspector.read(resendFolder.appendingPathComponent(name).path).header.relaySpan
            XCTAssertTrue(span.map { $0.after >= floor } ?? true, "\(name): \(String(describing: span)) below \(floor)")
        }
        try old.ingest([resendFolder.path])
        try confirm(f)
        // Still named: what was pruned before it joined never reached it.
        XCTAssertTrue(
            try CLI.ok(["prune", "--db", f.hub.url]).stderr.contains("oldsnap may lack changes this node pruned"))
        XCTAssertNotEqual(try old.rows().count, try f.hub.rows().count, "the documented gap is real")
        // The node that joined from the new snapshot converges and is never named.
        _ = try relay(f)
        try new.ingest([f.down.path])
        XCTAssertEqual(try new.rows(), try f.hub.rows())
    }

    /// At most `maxSpans` spans per relayer are sent and kept: the lowest. Size − 1, size,
    /// size + 1 and 3 × size.
    func testSpansAreCappedAtTheLowest() throws {
        let f = try fleet(1, hub: .sqlite)
        let (hub, l) = (f.hub, f.laptops[0])
        let me = try NodeIdentity.load(hub.db)
        let cap = RelayStream.maxSpans
        for k in [cap - 1, cap, cap + 1, 3 * cap] {
            try l.exec("DELETE FROM ds_relay_held")
            try hub.exec("DELETE FROM ds_peer_relay_receipt")
            // Every other span lost: k spans apart, given from the highest down.
            for i in (0..<k).reversed() {
                try RelayStream.noteHeld(
                    l.db, relayer: "hub", epoch: me.epoch, RelaySpan(after: Int64(10 * i), last: Int64(10 * i + 5)))
            }
            XCTAssertEqual(try count(l, "SELECT count(*) FROM ds_relay_held"), Int64(k), "k=\(k)")
            let sent = try RelayStream.heldReceipts(l.db)
            XCTAssertEqual(sent.count, min(k, cap), "k=\(k)")
            XCTAssertEqual(sent.last?.span.after, Int64(10 * (min(k, cap) - 1)), "k=\(k): the lowest are sent")
            try RelayStream.recordPeer(hub.db, peer: "l0", me: me, sent)
            XCTAssertEqual(
                RelayStream.merged(try RelayStream.peerSpans(hub.db, peer: "l0", epoch: me.epoch)).count, min(k, cap))
            // The hub keeps at most `cap` too, whatever a peer sends.
            let more = (0..<Int64(k)).map { (i: Int64) -> RelayReceipt in
                RelayReceipt(relayer: "hub", epoch: me.epoch, span: RelaySpan(after: 10 * i + 6, last: 10 * i + 8))
            }
            try RelayStream.recordPeer(hub.db, peer: "l0", me: me, more)
            XCTAssertEqual(try count(hub, "SELECT count(*) FROM ds_peer_relay_receipt"), Int64(cap), "k=\(k)")
        }
        // Spans of another relayer or another epoch of this hub confirm nothing here.
        try hub.exec("DELETE FROM ds_peer_relay_receipt")
        try RelayStream.recordPeer(
            hub.db, peer: "l0", me: me,
            [
                RelayReceipt(relayer: "other", epoch: me.epoch, span: RelaySpan(after: 0, last: 9)),
                RelayReceipt(relayer: "hub", epoch: "0123456789abcdef", span: RelaySpan(after: 0, last: 9)),
            ])
        XCTAssertEqual(try count(hub, "SELECT count(*) FROM ds_peer_relay_receipt"), 0)
    }

    func testSpansJoinAndGaps() {
        func s(_ a: Int64, _ b: Int64) -> RelaySpan { RelaySpan(after: a, last: b) }
        XCTAssertEqual(RelayStream.merged([s(5, 9), s(0, 5), s(12, 20), s(9, 10), s(13, 15)]), [s(0, 10), s(12, 20)])
        XCTAssertEqual(RelayStream.merged([]), [])
        XCTAssertEqual(RelayStream.gaps([], upTo: 7), [s(0, 7)])
        XCTAssertEqual(RelayStream.gaps([s(0, 10), s(12, 20)], upTo: 25), [s(10, 12), s(20, 25)])
        XCTAssertEqual(RelayStream.gaps([s(3, 10)], upTo: 10), [s(0, 3)])
        XCTAssertEqual(RelayStream.gaps([s(0, 30)], upTo: 10), [])
        XCTAssertEqual(RelayStream.gaps([s(12, 30)], upTo: 10), [s(0, 10)])
    }

    func testTheHeaderFieldsRoundTripAndImpossibleSpansAreRefused() throws {
        var h = BundleHeader(
            sender: "hub", senderEpoch: "0123456789abcdef", createdAt: "now", origins: [], changeCount: 0,
            publicKey: [UInt8](repeating: 7, count: 32))
        h.relaySpan = RelaySpan(after: 0, last: Int64(BundleFormat.maxSeq))
        h.relayReceipts = [RelayReceipt(relayer: "h2", epoch: "fedcba9876543210", span: RelaySpan(after: 4, last: 5))]
        XCTAssertEqual(try BundleHeader.decode(h.encode()), h)
        for bad in [RelaySpan(after: 5, last: 5), RelaySpan(after: 6, last: 5)] {
            var b = h
            b.relaySpan = bad
            XCTAssertThrowsError(try BundleHeader.decode(b.encode()), "\(bad)")
            b = h
            b.relayReceipts[0].span = bad
            XCTAssertThrowsError(try BundleHeader.decode(b.encode()), "\(bad)")
        }
        var b = h
        b.relaySpan = RelaySpan(after: 0, last: Int64(BundleFormat.maxSeq) + 1)
        XCTAssertThrowsError(try BundleHeader.decode(b.encode()))
        b = h
        b.relayReceipts[0].relayer = "bad name\n"
        XCTAssertThrowsError(try BundleHeader.decode(b.encode()))
        // Without them, a header holds neither field.
        var plain = h
        plain.relaySpan = nil
        plain.relayReceipts = []
        XCTAssertEqual(try BundleHeader.decode(plain.encode()), plain)
        XCTAssertLessThan(plain.encode().count, h.encode().count)
    }
}
