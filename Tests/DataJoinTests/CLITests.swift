import Crypto
import Foundation
import XCTest

@testable import DataJoin

/// Bad input gets a clear one-line error, a non-zero exit, and changes nothing.
final class CLITests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws { folder = try TestDatabases.tempFolder("cli") }

    private func node(_ name: String = "n1") throws -> TestNode {
        try TestNode(name, .sqlite, folder: folder, viaCLI: true)
    }

    func testUnknownCommandAndFlagAreUsageErrors() throws {
        var r = try CLI.run(["frobnicate"])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("frobnicate"), r.stderr)
        r = try CLI.run(["export", "--db", "x.db", "--to", "/tmp", "--bogus"])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("--bogus"), r.stderr)
        // `help` of words that are no command printed the overview and exited 0 (found from
        // outside): a word at the top, under a command that names none of its subcommands, under
        // one that has none, and an option, which is the command's own.
        for (args, message) in [
            (["help", "nosuchcmd"], "unknown command 'nosuchcmd'; see 'datajoin --help'"),
            (["help", "exprot"], "unknown command 'exprot' (did you mean 'export'?)"),
            (
                ["help", "key-blocks", "nosuch"],
                "unknown command 'nosuch' of 'datajoin key-blocks' (see 'datajoin key-blocks --help')"
            ),
            (
                ["help", "export", "foo"],
                "'datajoin export' has no subcommands, so 'foo' is none (see 'datajoin export --help')"
            ),
            (
                ["help", "help", "export"],
                "'datajoin help' has no subcommands, so 'export' is none (see 'datajoin --help')"
            ),
            (
                ["help", "export", "-q"],
                "'datajoin help' takes command names, not options like '-q': see 'datajoin export --help'"
            ),
        ] {
            r = try CLI.run(args)
            XCTAssertEqual(r.status, 64, "\(args): \(r.stdout)\(r.stderr)")
            XCTAssertEqual(r.stdout, "", "\(args)")
            XCTAssertEqual(r.stderr, "datajoin: error: \(message)\n", "\(args)")
        }
        // The commands' own help is as before, nested ones too.
        for args in [
            ["help"], ["help", "help"], ["help", "export"], ["help", "exit-codes"], ["help", "key-blocks"],
            ["help", "key-blocks", "grant"], ["help", "export", "--help"], ["help", "--help", "export"],
        ] {
            let ok = try CLI.run(args)
            XCTAssertEqual(ok.status, 0, "\(args): \(ok.stderr)")
            XCTAssertFalse(ok.stdout.isEmpty, "\(args)")
        }
        XCTAssertTrue(try CLI.run(["help", "export"]).stdout.contains("datajoin export"))
    }

    /// An export cut into several files where a transaction may go on says so (SQLite and
    /// MariaDB record no transaction ids; found from outside: a peer that ingested only the
    /// first file applied half a transaction, documented only). PostgreSQL cuts between
    /// transactions and says nothing.
    func testAnExportCutWithoutTransactionIdsSaysSo() throws {
        for brand in TestDatabases.availableBrands {
            let a = try TestNode("cut-\(brand)", brand, folder: folder)
            try a.exec("INSERT INTO sales_order (order_id) VALUES ('t0'), ('t1'), ('t2')")
            let out = try TestDatabases.subfolder(folder, "cut-\(brand)")
            let r = try CLI.ok(["export", "--db", a.url, "--to", out.path, "--max-changes", "2", "-q"])
            let files = try FileManager.default.contentsOfDirectory(atPath: out.path)
            if brand == .postgres {
                XCTAssertEqual(files.count, 1, "one transaction of 3 is never cut")
                XCTAssertEqual(r.stderr, "")
            } else {
                XCTAssertEqual(files.count, 2, "\(brand)")
                XCTAssertEqual(
                    r.stderr,
                    "datajoin: warning: these 3 changes go into 2 bundles, cut where a transaction may go on (SQLite and MariaDB "
                        + "record no transaction ids): deliver the files together, or a peer that ingests only some of them "
                        + "applies part of a transaction until the rest arrive\n")
            }
            // One file: nothing to say.
            try a.exec("INSERT INTO sales_order (order_id) VALUES ('one')")
            XCTAssertEqual(
                try CLI.ok(["export", "--db", a.url, "--to", out.path, "--max-changes", "2", "-q"]).stderr, "")
            try CLI.ok(["check", "--db", a.url, "-q"])
        }
    }

    /// `--max-changes 3` against transactions of 2, 3, 4 and 9 changes, own and relayed, for
    /// each brand of origin: a PostgreSQL transaction is never cut (one larger than the maximum
    /// goes alone), a SQLite or MariaDB one is cut every 3 and said so, and every row arrives.
    func testCutsAroundTheMaximumChangesPerBundle() throws {
        for brand in TestDatabases.availableBrands {
            let origin = try TestNode("max-\(brand)", brand, folder: folder)
            let hub = try TestNode("max-hub-\(brand)", .sqlite, folder: folder)
            let leaf = try TestNode("max-leaf-\(brand)", .sqlite, folder: folder)
            try trustAll([origin, hub, leaf])
            var rows = 0
            for size in [2, 3, 4, 9] {
                let values = (0..<size).map { "('\(brand)-\(size)-\($0)')" }.joined(separator: ", ")
                try origin.exec("INSERT INTO sales_order (order_id) VALUES \(values)")
                rows += size
                let expected = brand == .postgres ? 1 : (size + 2) / 3
                for (from, args) in [(origin, [String]()), (hub, ["--relay"])] {
                    let out = try TestDatabases.subfolder(folder, "max-\(brand)-\(size)-\(from.name)")
                    let r = try CLI.ok(
                        ["export", "--db", from.url, "--to", out.path, "--max-changes", "3", "-q"] + args)
                    let files = try FileManager.default.contentsOfDirectory(atPath: out.path)
                    XCTAssertEqual(files.count, expected, "\(brand) \(size) \(from.name)")
                    XCTAssertEqual(
                        r.stderr.contains("deliver the files together"), expected > 1, "\(brand) \(size): \(r.stderr)")
                    try CLI.ok(["ingest", "--db", (from === origin ? hub : leaf).url, out.path, "-q"])
                }
                for n in [hub, leaf] {
                    XCTAssertEqual(
                        try n.db.scalar("SELECT count(*) FROM sales_order"), .integer(Int64(rows)), "\(brand) \(size)")
                }
            }
            for n in [origin, hub, leaf] { try CLI.ok(["check", "--db", n.url, "-q"]) }
            XCTAssertEqual(try leaf.rows(), try origin.rows())
        }
    }

    /// A PostgreSQL origin's transaction stays in one relay file too (found in review: a hub's
    /// relay was cut anywhere by --max-changes).
    func testARelayKeepsAPostgresTransactionInOneFile() throws {
        let a = try TestNode("rtx-a", .postgres, folder: folder)
        let s = try TestNode("rtx-s", .sqlite, folder: folder)
        let hub = try TestNode("rtx-hub", .sqlite, folder: folder)
        let leaf = try TestNode("rtx-leaf", .sqlite, folder: folder)
        try trustAll([a, s, hub, leaf])
        // The origin's statements through the hub, relayed with --max-changes 2.
        func relayed(_ origin: TestNode, _ statements: [String]) throws -> (
            stderr: String, folder: URL, files: [String]
        ) {
            for sql in statements { try origin.exec(sql) }
            let drop = try TestDatabases.subfolder(folder, "rtx-\(origin.name)")
            try CLI.ok(["export", "--db", origin.url, "--to", drop.path, "-q"])
            try CLI.ok(["ingest", "--db", hub.url, drop.path, "-q"])
            let out = try TestDatabases.subfolder(folder, "rtx-\(origin.name)-relay")
            let r = try CLI.ok(["export", "--db", hub.url, "--to", out.path, "--relay", "--max-changes", "2", "-q"])
            return (r.stderr, out, try FileManager.default.contentsOfDirectory(atPath: out.path).sorted())
        }
        let pg = try relayed(
            a,
            [
                "INSERT INTO sales_order (order_id) VALUES ('t0'), ('t1'), ('t2')",
                "INSERT INTO sales_order (order_id) VALUES ('u0'), ('u1'), ('u2')",
            ])
        XCTAssertEqual(pg.stderr, "", "no transaction of a PostgreSQL origin is cut")
        XCTAssertEqual(pg.files.count, 2, "two transactions of 3, never cut: \(pg.files)")
        // Each file alone gives the leaf whole transactions.
        try CLI.ok(["ingest", "--db", leaf.url, pg.folder.appendingPathComponent(pg.files[0]).path, "-q"])
        XCTAssertEqual(try leaf.db.scalar("SELECT count(*) FROM sales_order"), .integer(3))
        try CLI.ok(["ingest", "--db", leaf.url, pg.folder.path, "-q"])
        XCTAssertEqual(try leaf.rows(), try a.rows())
        // A SQLite origin's cut relay says so, as its own export does.
        let lite = try relayed(s, ["INSERT INTO sales_order (order_id) VALUES ('s0'), ('s1'), ('s2')"])
        XCTAssertEqual(lite.files.count, 2)
        XCTAssertTrue(
            lite.stderr.hasPrefix(
                "datajoin: warning: these relayed changes go into 2 bundles, cut where a transaction of a SQLite"),
            lite.stderr)
        for n in [a, s, hub, leaf] { try CLI.ok(["check", "--db", n.url, "-q"]) }
    }

    /// `watch -v` names each bundle it loads and writes, as -v says (found from outside: it
    /// named none); without -v, the cycle's line only.
    func testWatchVerboseNamesEachBundle() throws {
        let a = try node("wv1")
        let b = try node("wv2")
        try trustAll([a, b])
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('w1')")
        try b.exec("INSERT INTO sales_order (order_id) VALUES ('w2')")
        let drop = try TestDatabases.subfolder(folder, "wv-in")
        let file = try a.export(to: drop)[0]
        let out = try TestDatabases.subfolder(folder, "wv-out")
        let w = try CLI.run([
            "watch", "--db", b.url, "--in", drop.path, "--out", out.path, "--cycles", "1", "--every", "1", "-v",
        ])
        XCTAssertEqual(w.status, 0, w.stderr)
        XCTAssertTrue(w.stdout.contains("cycle 1: loaded \(file) (1 change(s))\n"), w.stdout)
        let written = try FileManager.default.contentsOfDirectory(atPath: out.path)
        XCTAssertEqual(written.count, 1)
        XCTAssertTrue(w.stdout.contains("cycle 1: wrote \(out.path)/\(written[0]) (1 change(s))\n"), w.stdout)
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('w3')")
        _ = try a.export(to: drop)
        let plain = try CLI.run([
            "watch", "--db", b.url, "--in", drop.path, "--out", out.path, "--cycles", "1", "--every", "1",
        ])
        XCTAssertFalse(plain.stdout.contains(": loaded /"), plain.stdout)
        XCTAssertEqual(try b.db.scalar("SELECT count(*) FROM sales_order"), .integer(3))
        // A file left for another node is named once, not every cycle.
        let c = try node("wv3")
        try trustAll([a, c])
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('w4')")
        try CLI.ok(["export", "--db", a.url, "--to", drop.path, "--recipient", "wv3", "-q"])
        let left = try CLI.run([
            "watch", "--db", b.url, "--in", drop.path, "--out", out.path, "--cycles", "3", "--every", "0.1", "-v",
        ])
        XCTAssertEqual(left.status, 0, left.stderr)
        XCTAssertEqual(left.stdout.components(separatedBy: ": left ").count, 2, left.stdout)
        XCTAssertTrue(left.stdout.contains("encrypted to wv3"), left.stdout)
        // One folder for --in and --out holding its own files only: no cycle line, cycle after
        // cycle (found from outside: one every cycle).
        let own = try TestDatabases.subfolder(folder, "wv-own")
        try b.exec("INSERT INTO sales_order (order_id) VALUES ('w5')")
        try CLI.ok(["export", "--db", b.url, "--to", own.path, "-q"])
        let idle = try CLI.run([
            "watch", "--db", b.url, "--in", own.path, "--out", own.path, "--cycles", "3", "--every", "0.1",
        ])
        XCTAssertEqual(idle.status, 0, idle.stderr)
        XCTAssertFalse(idle.stdout.contains("cycle"), idle.stdout)
        for n in [a, b, c] { try CLI.ok(["check", "--db", n.url, "-q"]) }
    }

    /// A file name with a line break is printed on one line on stdout too, as on stderr: it
    /// made two lines of one (found from outside), and a script reading lines saw a file `b.djb`.
    func testAFileNameWithALineBreakIsPrintedOnOneLine() throws {
        let a = try node("nl1")
        let b = try node("nl2")
        try trustAll([a, b])
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('n1')")
        let drop = try TestDatabases.subfolder(folder, "newline")
        let file = try a.export(to: drop)[0]
        let good = drop.appendingPathComponent("a\nb.djb").path
        try FileManager.default.moveItem(atPath: file, toPath: good)
        try Data("junk".utf8).write(to: drop.appendingPathComponent("c\nd.djb"))
        let out = try TestDatabases.subfolder(folder, "newline-out")
        let runs = [
            ("verify", try CLI.run(["verify", drop.path])), ("inspect", try CLI.run(["inspect", good])),
            ("ingest", try CLI.run(["ingest", "--db", b.url, drop.path])),
            ("status", try CLI.run(["status", "--db", b.url])),
        ]
        try Data("junk".utf8).write(to: drop.appendingPathComponent("e\nf.djb"))
        let watch = try CLI.run([
            "watch", "--db", b.url, "--in", drop.path, "--out", out.path, "--cycles", "1", "--every", "1",
        ])
        for (name, r) in runs + [("watch", watch)] {
            for line in (r.stdout + r.stderr).split(separator: "\n") {
                XCTAssertFalse(
                    line.hasPrefix("b.djb") || line.hasPrefix("d.djb") || line.hasPrefix("f.djb"),
                    "\(name) split a name: \(r.stdout)\(r.stderr)")
            }
        }
        XCTAssertTrue(runs[0].1.stdout.contains("a\\u{a}b.djb: OK"), runs[0].1.stdout)
        XCTAssertTrue(runs[1].1.stdout.contains("bundle:    \(drop.path)/a\\u{a}b.djb\n"), runs[1].1.stdout)
        XCTAssertTrue(runs[2].1.stdout.contains("a\\u{a}b.djb: loaded 1 change(s)"), runs[2].1.stdout)
        XCTAssertTrue(runs[3].1.stdout.contains("quarantine/c\\u{a}d.djb: not a gzip file"), runs[3].1.stdout)
        XCTAssertTrue(runs[3].1.stdout.contains("last bundle a\\u{a}b.djb at"), runs[3].1.stdout)
        XCTAssertTrue(watch.stdout.contains("1 refused (e\\u{a}f.djb: not a gzip file"), watch.stdout)
        XCTAssertEqual(try b.db.scalar("SELECT order_id FROM sales_order"), .text("n1"))
    }

    /// When `ingest` refuses every file, nothing was done: the run exits with the first refusal's
    /// class, as `verify` does (65 forged or damaged, 77 a sender not trusted), not 2, "partial
    /// success" (found from outside: a cron job that alerts on 65 and 77 never heard of a forged
    /// bundle). One good file beside them keeps 2.
    func testIngestThatRefusesEveryFileExitsWithTheRefusalsClass() throws {
        let a = try node("ar1")
        let b = try node("ar2")
        let c = try node("ar3")
        try b.trust(a)
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('g1')")
        try c.exec("INSERT INTO sales_order (order_id) VALUES ('c1')")
        let good = try a.export(to: try TestDatabases.subfolder(folder, "ar-good"))[0]
        let stranger = try c.export(to: try TestDatabases.subfolder(folder, "ar-stranger"))[0]
        let forgedFolder = try TestDatabases.subfolder(folder, "ar-forged")
        let forged = forgedFolder.appendingPathComponent((good as NSString).lastPathComponent).path
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))
        bytes[bytes.count / 2] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: forged))
        let missing = folder.appendingPathComponent("ar-not-mounted").path
        let copying = folder.appendingPathComponent("ar-copying.djb").path
        try Data(try Data(contentsOf: URL(fileURLWithPath: good)).prefix(40)).write(to: URL(fileURLWithPath: copying))
        for (paths, status) in [
            ([forged], 65), ([stranger], 77), ([forged, stranger], 65), ([stranger, forged], 77),
            ([missing, stranger], 66), ([stranger, good], 2), ([good], 0),
            // Beside a file already ingested (a drop folder keeps them until prune), or one still
            // being copied, nothing loads either: the refusal's class (found in review).
            ([good, forged], 65), ([good, stranger], 77), ([copying, forged], 65), ([good], 0),
        ] {
            let r = try CLI.run(["ingest", "--db", b.url] + paths)
            XCTAssertEqual(r.status, Int32(status), "\(paths): \(r.stdout)\(r.stderr)")
            XCTAssertFalse(r.stderr.isEmpty && status != 0, "\(paths)")
            // Every file refused and nothing to import: the refusals, not a line of zeros
            // before them (found from outside). The good file's run says what it applied.
            if status == 2 { XCTAssertTrue(r.stdout.contains("imported: 1 applied"), r.stdout) }
            if status > 2 { XCTAssertFalse(r.stdout.contains("imported:"), "\(paths): \(r.stdout)") }
        }
        XCTAssertEqual(try b.db.scalar("SELECT group_concat(order_id) FROM sales_order"), .text("g1"))
    }

    /// A late bundle of a node set up again under its name is refused as the old key's, with the
    /// cure named; the cure of docs/delivery.md loads it (found from outside: the refusal said
    /// nothing of changes that may exist nowhere else).
    func testALateBundleOfANodeSetUpAgainNamesItsCureAndTheCureLoadsIt() throws {
        let old = try TestNode("again", .sqlite, folder: try TestDatabases.subfolder(folder, "again-old"), viaCLI: true)
        let b = try node("again-peer")
        try trustAll([old, b])
        try old.exec("INSERT INTO sales_order (order_id) VALUES ('before')")
        let late = try old.export(to: try TestDatabases.subfolder(folder, "again-late"))[0]
        let again = try TestNode(
            "again", .sqlite, folder: try TestDatabases.subfolder(folder, "again-new"), viaCLI: true)
        let word = try CLI.ok(["key", "--db", again.url, "-q"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try CLI.ok(["trust", "--db", b.url, "--replace", "again", word])
        // verify and inspect say what ingest would, in its class (found from outside: 77).
        for command in ["verify", "inspect"] {
            let v = try CLI.run([command, "--db", b.url, late])
            XCTAssertEqual(v.status, 65, "\(command): \(v.stderr)")
            XCTAssertTrue(v.stderr.contains("carries a different key than the one trusted for again"), v.stderr)
        }
        var r = try CLI.run(["ingest", "--db", b.url, late])
        XCTAssertEqual(r.status, 65, r.stderr)
        XCTAssertTrue(
            r.stderr.contains(
                "forged, or written before again was set up again with a new key (its changes may exist nowhere else: docs/delivery.md, 'A late bundle of a node set up again')"
            ), r.stderr)
        // The cure: the old key for a moment (the file's own, as inspect shows it), then back.
        let json = try CLI.ok(["inspect", "--json", late]).stdout
        let key = try XCTUnwrap(
            (try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])?["public_key"] as? String)
        XCTAssertEqual(key.count, 64)
        try CLI.ok(["trust", "--db", b.url, "--replace", "again", key])
        r = try CLI.run(["ingest", "--db", b.url, late])
        XCTAssertEqual(r.status, 0, r.stderr)
        try CLI.ok(["trust", "--db", b.url, "--replace", "again", word])
        XCTAssertEqual(try b.db.scalar("SELECT order_id FROM sales_order"), .text("before"))
        // The new node's bundles load after it.
        try again.exec("INSERT INTO sales_order (order_id) VALUES ('after')")
        let fresh = try again.export(to: try TestDatabases.subfolder(folder, "again-fresh"))[0]
        XCTAssertEqual(try CLI.run(["ingest", "--db", b.url, fresh]).status, 0)
        XCTAssertEqual(try b.db.scalar("SELECT count(*) FROM sales_order"), .integer(2))
        XCTAssertEqual(try CLI.run(["check", "--db", b.url]).status, 0)
    }

    /// A gap that has lasted the grace period (`partial_grace_seconds`) is said by every
    /// `ingest` and once by `watch` (stderr, also under -q), with the cure; a gap younger than
    /// that, or closed, says nothing (found from outside: a node that exported into a folder one
    /// peer never read left that peer without those changes, and only `status` showed it).
    func testAGapThatLastsIsSaidWithItsCure() throws {
        let a = try node("gap1")
        let b = try node("gap2")
        try trustAll([a, b])
        try b.exec("INSERT INTO ds_setting (name, value) VALUES ('partial_grace_seconds', '3600')")
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('lost1'), ('lost2')")
        _ = try a.export(to: try TestDatabases.subfolder(folder, "gap-unread"))
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('later')")
        let shared = try TestDatabases.subfolder(folder, "gap-shared")
        _ = try a.export(to: shared)
        func received(minutesAgo: Int) throws {
            let ms = Int64(Date().timeIntervalSince1970 * 1000) - Int64(minutesAgo) * 60_000
            try b.exec("UPDATE ds_change_inbox SET received_at = ?", [.text(UTCText.iso8601(ms: ms))])
        }
        // Just opened, and 59 minutes old: it may be a bundle still on its way.
        var r = try CLI.run(["ingest", "--db", b.url, shared.path, "-q"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stderr, "")
        try received(minutesAgo: 59)
        XCTAssertEqual(try CLI.run(["ingest", "--db", b.url, shared.path, "-q"]).stderr, "")
        // 61 minutes: said, under -q too, with when the later changes came.
        try received(minutesAgo: 61)
        let when = try XCTUnwrap(try b.db.scalar("SELECT received_at FROM ds_change_inbox").asString)
        let cure =
            "gap1 (epoch \(try a.epoch8())): changes 1–2 are still missing here, and later ones arrived at \(when) (a bundle lost, or written where this node does not read); on gap1, or on a node that relays it, run 'datajoin export --db URL --to FOLDER --resend --peer gap2'"
        r = try CLI.run(["ingest", "--db", b.url, shared.path, "-q"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("datajoin: warning: " + cure), r.stderr)
        // A watch says it once, on stderr, not every cycle.
        let out = try TestDatabases.subfolder(folder, "gap-out")
        let w = try CLI.run([
            "watch", "--db", b.url, "--in", shared.path, "--out", out.path, "--cycles", "3", "--every", "0.1", "-q",
        ])
        XCTAssertEqual(w.status, 0, w.stderr)
        XCTAssertEqual(w.stderr.components(separatedBy: cure).count, 2, w.stderr)
        XCTAssertFalse(w.stdout.contains(cure), w.stdout)
        // A node revoked here sends nothing more this node takes: no cure to offer, nothing said;
        // trusted again, it is said again.
        try CLI.ok(["trust", "--db", b.url, "--revoke", "gap1"])
        XCTAssertEqual(try CLI.run(["ingest", "--db", b.url, shared.path, "-q"]).stderr, "")
        try CLI.ok([
            "trust", "--db", b.url, "gap1",
            try CLI.ok(["key", "--db", a.url, "-q"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines),
        ])
        XCTAssertTrue(try CLI.run(["ingest", "--db", b.url, shared.path, "-q"]).stderr.contains(cure))
        // The cure closes it, and nothing more is said.
        let resent = try TestDatabases.subfolder(folder, "gap-resent")
        try CLI.ok(["export", "--db", a.url, "--to", resent.path, "--resend", "--peer", "gap2"])
        r = try CLI.run(["ingest", "--db", b.url, resent.path, "-q"])
        XCTAssertEqual(r.stderr, "")
        r = try CLI.run(["ingest", "--db", b.url, shared.path, "-q"])
        XCTAssertEqual(r.stderr, "")
        XCTAssertEqual(try b.db.scalar("SELECT count(*) FROM sales_order"), .integer(3))
    }

    /// A bundle copied by a tool that upper-cases names is a bundle (it was skipped: "no bundle
    /// files found", exit 0); `verify` gives a missing path its own class, 66, not the damaged
    /// file's 65 (both found from outside).
    func testAnUpperCaseBundleNameIsABundleAndAMissingPathIsNoInput() throws {
        let a = try node("uc1")
        let b = try node("uc2")
        try trustAll([a, b])
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('u1')")
        let drop = try TestDatabases.subfolder(folder, "upper")
        let file = try a.export(to: drop)[0]
        let upper = String(file.dropLast(4)) + ".DJB"
        try FileManager.default.moveItem(atPath: file, toPath: upper)
        var r = try CLI.run(["verify", drop.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("\(upper): OK (1 change from uc1 1-1"), r.stdout)
        let missing = drop.appendingPathComponent("gone.djb").path
        r = try CLI.run(["verify", upper, missing])
        XCTAssertEqual(r.status, 66, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("\(upper): OK"), r.stdout)
        XCTAssertEqual(
            r.stderr, "datajoin: error: \(missing): no such file or folder (not mounted?); the other paths were read\n")
        // A damaged file first: its class, the first problem's.
        let junk = drop.appendingPathComponent("junk.djb").path
        try Data("not a bundle".utf8).write(to: URL(fileURLWithPath: junk))
        XCTAssertEqual(try CLI.run(["verify", junk, missing]).status, 65)
        try FileManager.default.removeItem(atPath: junk)
        r = try CLI.run(["ingest", "--db", b.url, drop.path])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("1 applied"), r.stdout)
        XCTAssertEqual(try b.db.scalar("SELECT order_id FROM sales_order"), .text("u1"))
    }

    func testHelpTeachesWithExamples() throws {
        // Every command, nested ones too (found from outside: `key-blocks` had none).
        for cmd in [
            "init", "track", "untrack", "export", "ingest", "import", "status", "inspect", "verify", "key", "trust",
            "conflicts", "watch", "snapshot", "prune", "check", "config", "key-blocks", "key-blocks show",
            "key-blocks authority", "key-blocks grant", "key-blocks add",
        ] {
            let r = try CLI.ok(cmd.split(separator: " ").map(String.init) + ["--help"])
            XCTAssertTrue(r.stdout.contains("Example"), "\(cmd) --help has no example")
            // Prose is wrapped by the parser, not broken twice; examples fit as written.
            let text = r.stdout.components(separatedBy: "USAGE:")[0]
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            for line in lines {
                XCTAssertLessThanOrEqual(line.count, 80, "\(cmd) --help: \(line)")
            }
            // An indented line (an example) wrapped by the parser leaves its tail unindented
            // (found in review: 80 columns were counted after the wrap).
            for (a, b) in zip(lines, lines.dropFirst()) where a.hasPrefix("  ") && !b.isEmpty && !b.hasPrefix(" ") {
                XCTFail("\(cmd) --help wraps an example: \(a) / \(b)")
            }
            // The usage fits too (found from outside: up to 189 columns on one line), and names
            // every flag the options list, no more, no fewer (it is written by hand).
            let all = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            let usageLines = all.drop { !$0.hasPrefix("USAGE:") }.prefix { !$0.isEmpty }
            XCTAssertFalse(usageLines.isEmpty, "\(cmd) --help has no usage")
            for line in usageLines {
                XCTAssertLessThan(line.count, 80, "\(cmd) --help: \(line)")
            }
            let usage = usageLines.joined(separator: "\n")
            // Each option's `--flag <value>` and each argument's `<name>`, as the option and
            // argument lines list them (not their descriptions), against the usage's.
            let pattern = try NSRegularExpression(pattern: "--[a-z-]+( <[^>]+>)?|<[^>]+>")
            func tokens(_ s: String) -> [String] {
                pattern.matches(in: s, range: NSRange(s.startIndex..., in: s)).compactMap {
                    Range($0.range, in: s).map { String(s[$0]) }
                }
            }
            func listed(_ section: String) -> [String] {
                let body =
                    r.stdout.components(separatedBy: "\n\(section):\n").dropFirst().first?.components(
                        separatedBy: "\n\n"
                    ).first ?? ""
                return body.split(separator: "\n").filter { $0.hasPrefix("  ") && !$0.hasPrefix("   ") }.flatMap {
                    tokens($0.dropFirst(2).components(separatedBy: "  ")[0])
                }
            }
            XCTAssertEqual(
                Set(tokens(usage)).subtracting(["--help", "--version", "<subcommand>"]),
                Set(listed("OPTIONS") + listed("ARGUMENTS")).subtracting(["--help", "--version"]),
                "\(cmd): the usage and the options and arguments name other flags")
            let prose = text.split(separator: "\n").filter { !$0.hasPrefix(" ") && !$0.hasPrefix("OVERVIEW") }
            for (a, b) in zip(prose, prose.dropFirst())
            where a.count < 40 && !a.hasSuffix(":") && !a.hasSuffix(".") && !a.hasSuffix(")") {
                XCTFail("\(cmd) --help breaks a sentence early: \(a) / \(b)")
            }
        }
    }

    func testMalformedURL() throws {
        for bad in ["mysql://x/y", "postgresql://", "sqlite:", "notadb"] {
            let r = try CLI.run(["status", "--db", bad])
            XCTAssertEqual(r.status, 64, bad)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertTrue(r.stderr.hasPrefix("datajoin: error: "), r.stderr)
        }
    }

    func testMissingDatabaseArgumentUsesEnvironment() throws {
        let n = try node()
        var r = try CLI.run(["status"])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("DATAJOIN_DB"), r.stderr)
        r = try CLI.ok(["status", "--json"], env: ["DATAJOIN_DB": n.url])
        XCTAssertTrue(r.stdout.contains("\"node\":{\"id\":\"n1\""), r.stdout)
    }

    func testUnreachableServerNeverPrintsPassword() throws {
        let r = try CLI.run(["status", "--db", "postgresql://alice:s3cretpw@127.0.0.1:1/nodb"])
        XCTAssertEqual(r.status, 69)
        XCTAssertTrue(r.stderr.contains("cannot connect"), r.stderr)
        XCTAssertFalse(r.stderr.contains("s3cretpw"), r.stderr)
        XCTAssertFalse(r.stdout.contains("s3cretpw"))
        XCTAssertTrue(r.stderr.contains("alice:***@"), r.stderr)
        // libpq's hint comes after a newline and a tab: one line of words, no escaped tab.
        XCTAssertFalse(r.stderr.contains("\\u{9}"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        // A libpq connection string is no URL DataJoin takes: refused without its password
        // (found from outside: it was printed whole), from --db and from DATAJOIN_DB.
        let conninfo = "host=127.0.0.1 user=datajoin password=s3cretpw dbname=x"
        for (args, env) in [(["status", "--db", conninfo], [:]), (["status"], ["DATAJOIN_DB": conninfo])] {
            let r = try CLI.run(args, env: env)
            XCTAssertEqual(r.status, 64, r.stderr)
            XCTAssertTrue(r.stderr.contains("unrecognised database URL"), r.stderr)
            XCTAssertTrue(r.stderr.contains("password=***"), r.stderr)
            XCTAssertFalse(r.stderr.contains("s3cretpw") || r.stdout.contains("s3cretpw"), r.stderr)
        }
        // A URL that does not parse, a scheme or an `@` mistyped: refused without the password
        // (found from outside: printed whole), from --db and DATAJOIN_DB, and what is not the
        // password stays, to find the typo by.
        for (typo, kept) in [
            ("postgresql:/alice:s3cretpw@127.0.0.1:5432/db", "postgresql:/alice:***@127.0.0.1:5432/db"),
            ("postgresql//alice:s3cretpw@127.0.0.1:5432/db", "postgresql//alice:***@127.0.0.1:5432/db"),
            ("mysql:alice:s3cretpw@127.0.0.1:3306/db", "mysql:alice:***@127.0.0.1:3306/db"),
            ("postgresql://alice:s3cretpw127.0.0.1:5432/db", "'postgresql://alice:***'"),
            ("mariadb://alice:s3cretpw127.0.0.1:3306/db", "'mariadb://alice:***'"),
            ("postgresql://alice:s3c/cretpw127.0.0.1:5432/db", "'postgresql://alice:***'"),
            ("postgres:alice:s3cretpw", "'postgres:alice:***'"),
            // No scheme at all, or a scheme mistyped before a SQLite file's ending (found from
            // outside and in review: printed as a path, password and all).
            ("alice:s3cretpw@127.0.0.1:5432/db", "'alice:***@127.0.0.1:5432/db'"),
            ("postgresql:/alice:s3cretpw@h/x.db", "'postgresql:/alice:***@h/x.db'"),
            ("mysql:alice:s3cretpw@h/app.sqlite", "'mysql:alice:***@h/app.sqlite'"),
            ("sqlite:postgresql://alice:s3cretpw@h/x", "'sqlite:postgresql://alice:***@h/x'"),
            ("sqlite://alice:s3cretpw@h", "'sqlite://alice:***@h'"),
            // Other tools' forms (found from outside).
            ("server=h;user id=u;pwd=s3cretpw", "pwd=***"), ("Server=h;Uid=u;Pwd=s3cretpw", "Pwd=***"),
            ("u/s3cretpw@h:1521/x", "'u/***@h:1521/x'"), ("u:s3cretpw", "'u:***'"),
        ] {
            for (args, env) in [(["status", "--db", typo], [:]), (["status"], ["DATAJOIN_DB": typo])] {
                let r = try CLI.run(args, env: env)
                XCTAssertEqual(r.status, 64, r.stderr)
                XCTAssertFalse(r.stderr.contains("cretpw") || r.stdout.contains("cretpw"), r.stderr)
                XCTAssertTrue(r.stderr.contains(kept), r.stderr)
            }
        }
        // A valid URL keeps its host, port and database in full.
        XCTAssertEqual(
            DatabaseURL.redactMalformed("postgresql://[::1]:5432/db"), "postgresql://[::1]:5432/db")
        XCTAssertEqual(DatabaseURL.redactMalformed("postgresql://h:5432/db"), "postgresql://h:5432/db")
        XCTAssertEqual(
            DatabaseURL.redactMalformed("postgresql://h:5432?sslmode=require"), "postgresql://h:5432?sslmode=require")
        // A path with an @ is a path still, and a file named like a user and password that is
        // there too (found from outside: refused).
        let at = folder.appendingPathComponent("me@home.db").path
        try CLI.ok(["init", "--db", at, "--node", "athome"])
        let odd = folder.appendingPathComponent("k:v@h.db").path
        try CLI.ok(["init", "--db", odd, "--node", "kv"])
        let relative = try CLI.runProgram(CLI.executable, ["status", "--db", "k:v@h.db"], in: folder)
        XCTAssertEqual(relative.status, 0, relative.output)
    }

    /// Found from outside: `-q` kept nothing of what a command was run to print (`trust …
    /// "$(datajoin key -q …)"` got nothing), and `SQLITE:x.db` made a file of that name.
    func testQuietKeepsTheResultAndASchemeIsOneInAnyCase() throws {
        let n = try node("q1")
        let key = try CLI.ok(["key", "--db", n.url, "-q"])
        XCTAssertTrue(key.stdout.hasPrefix("dj2-"), key.stdout)
        XCTAssertEqual(key.stderr, "")
        let json = try CLI.ok(["status", "--db", n.url, "--json", "-q"]).stdout
        XCTAssertTrue(json.contains("\"node\":{\"id\":\"q1\""), json)
        // Opposite flags are refused, not one kept without a word (found from outside).
        for args in [["status", "--db", n.url, "-q", "-v"], ["trust", "--db", n.url, "--revoke", "x", "--replace"]] {
            let r = try CLI.run(args)
            XCTAssertEqual(r.status, 64, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("ask for opposite things"), r.stderr)
        }
        let upper = folder.appendingPathComponent("upper.db").path
        try CLI.ok(["init", "--db", "SQLITE:" + upper, "--node", "q2"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: upper))
        XCTAssertFalse(FileManager.default.fileExists(atPath: "SQLITE:" + upper))
        XCTAssertTrue(try CLI.ok(["status", "--db", "Sqlite:" + upper, "--json"]).stdout.contains("\"id\":\"q2\""))
    }

    /// A table of DataJoin's name that another program made is not taken for DataJoin's: `init`
    /// said "initialized" and every later command failed on it (found from outside). Refused
    /// with its name, nothing kept where the brand's DDL is transactional, and once it is
    /// renamed, `init` works; on every brand.
    func testInitRefusesATableOfItsNameThatIsNotItsOwn() throws {
        for brand in TestDatabases.availableBrands {
            let url = try TestDatabases.create(brand, name: "foreign\(brand)", in: folder)
            let db = try DatabaseOpener.open(url, create: true)
            try db.executeScript("CREATE TABLE ds_setting (k VARCHAR(50) PRIMARY KEY, v TEXT)")
            let r = try CLI.run(["init", "--db", url, "--node", "f1"])
            XCTAssertEqual(r.status, 1, "\(brand): \(r.stdout)\(r.stderr)")
            XCTAssertEqual(r.stdout, "", "\(brand)")
            XCTAssertTrue(
                r.stderr.hasSuffix(
                    "a DataJoin node: its table ds_setting lacks columns DataJoin's has (name, value), another program's or one an unfinished init left; rename or drop it, then run 'datajoin init' again\n"
                ), "\(brand): \(r.stderr)")
            // Looked at before anything is made: no other table of DataJoin's is there (MariaDB
            // commits each CREATE TABLE).
            XCTAssertFalse(try SyncSchema.installed(db), "\(brand)")
            XCTAssertEqual(try CLI.run(["status", "--db", url]).status, 66, "\(brand): no node")
            try db.executeScript("DROP TABLE ds_setting")
            // An outbox whose index would name a column it lacks, and a node table, are named too
            // (the DDL failed on the first with the database's own error); a view of DataJoin's
            // name; an index of DataJoin's name on another table (its inbox ran without its
            // unique index; MariaDB's index names are its table's own); columns in other letter
            // case where the brand keeps it (PostgreSQL folds the unquoted names to DataJoin's).
            var cases: [(setup: String, says: String, undo: String)] = [
                (
                    "CREATE TABLE ds_change_outbox (k VARCHAR(50) PRIMARY KEY, seq BIGINT)",
                    "its table ds_change_outbox lacks columns DataJoin's has (id, object_database, object_table, object_pk_attribute, object_attribute, object_id, object_value, object_operation and 8 more)",
                    "DROP TABLE ds_change_outbox"
                ),
                (
                    "CREATE TABLE ds_node (k VARCHAR(50) PRIMARY KEY, seq BIGINT)",
                    "its table ds_node lacks columns DataJoin's has (node_id, epoch", "DROP TABLE ds_node"
                ),
                (
                    "CREATE VIEW ds_setting AS SELECT 'a' AS name, 'b' AS value",
                    "its ds_setting is a view, not a table, another program's", "DROP VIEW ds_setting"
                ),
            ]
            if brand != .mariadb {
                cases.append(
                    (
                        "CREATE TABLE other_app (x INT); CREATE UNIQUE INDEX ds_change_inbox_origin_seq ON other_app (x)",
                        "the name of DataJoin's index ds_change_inbox_origin_seq (on ds_change_inbox) is taken by other_app, another program's",
                        "DROP TABLE other_app"
                    ))
            }
            if brand != .postgres {
                cases.append(
                    (
                        "CREATE TABLE ds_setting (NAME VARCHAR(50) PRIMARY KEY, VALUE TEXT)",
                        "its table ds_setting has columns DataJoin's has only in other letter case (name, value)",
                        "DROP TABLE ds_setting"
                    ))
            }
            for c in cases {
                try db.executeScript(c.setup)
                let r = try CLI.run(["init", "--db", url, "--node", "f1"])
                XCTAssertEqual(r.status, 1, "\(brand) \(c.setup): \(r.stderr)")
                XCTAssertTrue(r.stderr.contains(c.says), "\(brand): \(r.stderr)")
                XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(brand): \(r.stderr)")
                XCTAssertFalse(try SyncSchema.installed(db) && c.setup.contains("ds_node") == false, "\(brand)")
                try db.executeScript(c.undo)
            }
            try CLI.ok(["init", "--db", url, "--node", "f1", "-q"])
            try CLI.ok(["check", "--db", url])
            // Run again on the node, it is no refusal.
            try CLI.ok(["init", "--db", url, "--node", "f1", "-q"])
        }
        // Every table and index DataJoin's DDL makes is known to the check.
        let known = try SyncSchema.created()
        for table in [
            "ds_node", "ds_setting", "ds_change_outbox", "ds_change_inbox", "ds_change_forked", "ds_conflict",
        ] {
            XCTAssertFalse(known.columns[table, default: []].isEmpty, table)
        }
        XCTAssertGreaterThanOrEqual(known.columns.count, 25)
        XCTAssertEqual(known.indexes["ds_change_inbox_origin_seq"], "ds_change_inbox")
    }

    func testInitIsIdempotentAndRefusesRename() throws {
        let n = try node()
        try CLI.ok(["init", "--db", n.url, "--node", "n1"])
        let r = try CLI.run(["init", "--db", n.url, "--node", "other"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("already DataJoin node 'n1'"), r.stderr)
        XCTAssertEqual(try n.db.scalar("SELECT node_id FROM ds_node"), .text("n1"))
        XCTAssertEqual(try n.db.scalar("SELECT count(*) FROM ds_node"), .integer(1))
        XCTAssertEqual(try CLI.run(["init", "--db", n.url, "--node", "bad name!"]).status, 64)
    }

    /// Every command but `init` says a database is not a node yet, with exit 66, before it reads
    /// any table of its own (found from outside: `ingest`, `conflicts`, `snapshot`, `config`,
    /// `verify --db` and `inspect --db` failed with exit 1 and the database's "no such table"),
    /// and creates nothing; on every brand.
    func testEveryCommandOnADatabaseThatIsNoNodeSaysToRunInit() throws {
        let url = folder.appendingPathComponent("fresh.db").path
        let r = try CLI.run(["export", "--db", url, "--to", folder.path])
        XCTAssertEqual(r.status, 66)
        XCTAssertTrue(r.stderr.contains("datajoin init"), r.stderr)
        // A file that is no bundle: read first, it would be refused with 65.
        let junk = folder.appendingPathComponent("junk.djb")
        try Data("not a bundle".utf8).write(to: junk)
        let key = Hex.encode(Array(Curve25519.Signing.PrivateKey().publicKey.rawRepresentation))
        for brand in TestDatabases.availableBrands {
            let url = try TestDatabases.create(brand, name: "plain\(brand)", in: folder)
            let db = try DatabaseOpener.open(url, create: true)
            try db.executeScript(TestDatabases.ddl(TestDatabases.salesOrderSQL, for: brand))
            let out = try TestDatabases.subfolder(folder, "out-\(brand)")
            for args in [
                ["export", "--db", url, "--to", out.path], ["ingest", "--db", url, junk.path],
                ["ingest", "--db", url, "--dry-run", junk.path], ["import", "--db", url], ["status", "--db", url],
                ["conflicts", "--db", url], ["snapshot", "--db", url, "--to", out.path], ["config", "--db", url],
                ["verify", "--db", url, junk.path], ["inspect", "--db", url, junk.path], ["key", "--db", url],
                ["prune", "--db", url], ["check", "--db", url], ["track", "--db", url, "sales_order"],
                ["trust", "--db", url, "peer", key], ["trust", "--db", url, "--revoke", "peer"],
                ["untrack", "--db", url, "sales_order"], ["key-blocks", "show", "--db", url],
                ["key-blocks", "authority", "--db", url], ["key-blocks", "grant", "--db", url, "--node", "x"],
                ["key-blocks", "add", "--db", url, "2"],
                ["watch", "--db", url, "--in", out.path, "--out", out.path, "--every", "1", "--cycles", "1"],
            ] {
                let r = try CLI.run(args)
                XCTAssertEqual(r.status, 66, "\(brand) \(args[0]): \(r.stdout)\(r.stderr)")
                XCTAssertEqual(r.stdout, "", "\(brand) \(args[0])")
                XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(brand) \(args[0]): \(r.stderr)")
                XCTAssertTrue(
                    r.stderr.hasPrefix("datajoin: error: ")
                        && r.stderr.hasSuffix(
                            " is not a DataJoin node yet: run 'datajoin init --db URL --node NAME' first\n"),
                    "\(brand) \(args[0]): \(r.stderr)")
            }
            XCTAssertFalse(try SyncSchema.installed(db), "\(brand): nothing installed")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path), [], "\(brand)")
            // Without --db, `verify` and `inspect` need no node: the file's own class.
            XCTAssertEqual(try CLI.run(["verify", junk.path]).status, 65)
            let inspected = try CLI.run(["inspect", junk.path])
            XCTAssertEqual(inspected.status, 65)
            // One line that names the file, as verify's does (found from outside: it did not).
            XCTAssertTrue(inspected.stderr.hasPrefix("datajoin: error: \(junk.path): "), inspected.stderr)
        }
        // The application's own SQLite file is left byte for byte, its journal mode too, and a
        // file of 0 bytes stays one (found from outside: each became a WAL database).
        let appFile = folder.appendingPathComponent("app.db").path
        do {
            let app = try DatabaseOpener.open(appFile, create: true)
            try app.executeScript("PRAGMA journal_mode=DELETE; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        }
        let empty = folder.appendingPathComponent("empty.db").path
        XCTAssertTrue(FileManager.default.createFile(atPath: empty, contents: Data()))
        for file in [appFile, empty] {
            let before = try Data(contentsOf: URL(fileURLWithPath: file))
            for args in [
                ["status", "--db", file], ["export", "--db", file, "--to", folder.path], ["key", "--db", file],
            ] {
                XCTAssertEqual(try CLI.run(args).status, 66, "\(file) \(args[0])")
            }
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: file)), before, file)
            XCTAssertFalse(FileManager.default.fileExists(atPath: file + "-wal"), file)
        }
        // DataJoin's tables without a node row (an init cut short, a row deleted by hand).
        let half = try TestNode("half", .sqlite, folder: folder, viaCLI: true)
        try half.exec("DELETE FROM ds_node")
        for args in [
            ["ingest", "--db", half.url, junk.path], ["conflicts", "--db", half.url], ["status", "--db", half.url],
        ] {
            let r = try CLI.run(args)
            XCTAssertEqual(r.status, 66, "\(args[0]): \(r.stderr)")
            XCTAssertTrue(
                r.stderr.hasSuffix(" has DataJoin tables but no node id: run 'datajoin init --db URL --node NAME'\n"),
                "\(args[0]): \(r.stderr)")
        }
    }

    /// SIGINT and SIGTERM end a command with one line and 130 or 143 (found from outside: exit
    /// 130 and nothing said). Interrupted while it waits for another writer's lock, which is
    /// certain to be before it wrote anything; afterwards the same command does its work.
    func testAnInterruptedCommandSaysSoAndExits130Or143() throws {
        let a = try TestNode("intr", .sqlite, folder: folder, viaCLI: true)
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('k1')")
        let out = try TestDatabases.subfolder(folder, "intr-out")
        let holder = try DatabaseOpener.open(a.url)
        try holder.executeScript("BEGIN IMMEDIATE")
        for (sig, status) in [(SIGINT, Int32(130)), (SIGTERM, Int32(143))] {
            let run = try CLI.start(["export", "--db", a.url, "--to", out.path, "--lock-timeout", "60"])
            XCTAssertNotNil(run.waitForLine { $0.hasPrefix("datajoin: waiting for ") }, run.allOutput())
            kill(run.process.processIdentifier, sig)
            run.process.waitUntilExit()
            // Ended by the signal itself, as a shell's loop expects of a program Ctrl-C stops
            // (a shell reports it as 128 + the signal: 130, 143).
            XCTAssertEqual(run.process.terminationReason, .uncaughtSignal, "\(sig)")
            XCTAssertEqual(run.process.terminationStatus + 128, status, run.allOutput())
            XCTAssertNotNil(
                run.waitForLine {
                    $0 == "datajoin: interrupted: what was committed stays, the open transaction is rolled back; "
                        + "run the command again to go on (docs/cli.md, exit status 130 and 143)"
                }, run.allOutput())
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path), [])
        // A signal ignored when it started stays ignored (a background job of a script, `trap ''
        // INT`; found in review): the export goes on and finishes once the lock is free.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = [
            "-c", "trap '' INT; exec \"$0\" \"$@\"", CLI.executable.path, "export", "--db", a.url, "--to", out.path,
            "--lock-timeout", "60",
        ]
        let pipe = Pipe()
        (p.standardOutput, p.standardError, p.standardInput) = (pipe, pipe, FileHandle.nullDevice)
        let ignoring = CLI.Running(process: p, output: pipe)
        try p.run()
        XCTAssertNotNil(ignoring.waitForLine { $0.hasPrefix("datajoin: waiting for ") }, ignoring.allOutput())
        kill(p.processIdentifier, SIGINT)
        try holder.executeScript("ROLLBACK")
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .exit, ignoring.allOutput())
        XCTAssertEqual(p.terminationStatus, 0, ignoring.allOutput())
        XCTAssertFalse(ignoring.allOutput().contains("interrupted"), ignoring.allOutput())
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path).count, 1)
        try CLI.ok(["export", "--db", a.url, "--to", out.path])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path).count, 1, "nothing twice")
        try CLI.ok(["check", "--db", a.url])
    }

    /// Found from outside (issue 12's trial): a pipe or a device named as a bundle hung
    /// `ingest` and `verify`; a URL whose password holds `@` or a lone `%` had part of the
    /// password printed by libpq; `watch` took `--every inf` and `--cycles 0`.
    func testSpecialFilesPasswordsInURLsAndWatchLimitsAreRefusedAtOnce() throws {
        let n = try node()
        let fifo = folder.appendingPathComponent("pipe.djb").path
        let mk = Process()
        mk.executableURL = URL(fileURLWithPath: "/usr/bin/mkfifo")
        mk.arguments = [fifo]
        try mk.run()
        mk.waitUntilExit()
        for args in [["ingest", "--db", n.url, fifo], ["ingest", "--db", n.url, "/dev/urandom"]] {
            let r = try CLI.run(args)
            // The only file refused: the run failed with its class (a non-bundle file).
            XCTAssertEqual(r.status, 65, r.stderr)
            XCTAssertTrue(r.stderr.contains("not a regular file"), r.stderr)
        }
        for args in [["verify", fifo], ["inspect", fifo]] {
            let r = try CLI.run(args)
            XCTAssertEqual(r.status, 65, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("not a regular file (a pipe"), r.stderr)
        }
        for url in [
            "postgresql://u:Hunter2@Secret@127.0.0.1:1/p", "postgresql://u:Hunter2%@127.0.0.1:1/p",
            "mariadb://u:Hunter2@Secret@127.0.0.1:1/p", "postgresql://u:Hunter2#Secret@127.0.0.1:1/p",
            "mariadb://u:Hunter2#Secret@127.0.0.1:1/p",
        ] {
            let r = try CLI.run(["status", "--db", url])
            XCTAssertEqual(r.status, 64, r.stderr)
            XCTAssertFalse(r.stderr.contains("Hunter2") || r.stderr.contains("Secret"), r.stderr)
            // What to write instead, not only what was expected (found from outside).
            if url.contains("#") { XCTAssertTrue(r.stderr.contains("write '#' as %23"), r.stderr) }
        }
        // Written so, the password is whole: the connection fails at the server, not the URL.
        let encoded = try CLI.run(["status", "--db", "postgresql://u:Hunter2%23Secret@127.0.0.1:1/p"])
        XCTAssertEqual(encoded.status, 69, encoded.stderr)
        XCTAssertEqual(
            DatabaseURL.scrub("database \"p1 password=Leak1\" does not exist"),
            "database \"p1 password=***\" does not exist")
        XCTAssertEqual(DatabaseURL.scrub("x password = 'Sek rit' y"), "x password = *** y")
        XCTAssertEqual(DatabaseURL.scrub("x password='se\\'cret' y"), "x password=*** y")
        XCTAssertEqual(DatabaseURL.scrub("x password=ab\"cd y"), "x password=*** y")
        // Decoded once: %2541 is the three characters %41.
        guard case .mariadb(let address, _) = try DatabaseURL.parse("mariadb://u%2541:a%2541b@h/d%2541b") else {
            return XCTFail("not a MariaDB URL")
        }
        XCTAssertEqual([address.user, address.password, address.database], ["u%41", "a%41b", "d%41b"])
        // A huge file of zeros is refused by its first bytes, not hashed first.
        let huge = folder.appendingPathComponent("huge.djb").path
        FileManager.default.createFile(atPath: huge, contents: nil)
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: huge))
        try handle.truncate(atOffset: 3 << 30)
        try handle.close()
        let big = try CLI.run(["ingest", "--db", n.url, huge])
        XCTAssertEqual(big.status, 65, big.stderr)
        XCTAssertTrue(big.stderr.contains("not a gzip file"), big.stderr)
        for extra in [
            ["--every", "inf"], ["--every", "0"], ["--every", "86401"], ["--every", "1", "--cycles", "0"],
            ["--every", "0x10"], ["--every", "1e3"], ["--every", "nan"], ["--every", "0.0999"],
        ] {
            let r = try CLI.run(["watch", "--db", n.url, "--in", folder.path, "--out", folder.path] + extra)
            XCTAssertEqual(r.status, 64, "\(extra): \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        }
        // --lock-timeout reads seconds the same way; a sign in front is a sign.
        for timeout in ["0x10", "1e3", "0", "-1"] {
            let r = try CLI.run(["status", "--db", n.url, "--lock-timeout", timeout])
            XCTAssertEqual(r.status, 64, "\(timeout): \(r.stderr)")
        }
        try CLI.ok(["status", "--db", n.url, "--lock-timeout", "+2.5"])
        // The user's own text comes back, not the number it parsed to.
        for every in ["0.0000001", "-1", "100000"] {
            let r = try CLI.run(["watch", "--db", n.url, "--in", folder.path, "--out", folder.path, "--every", every])
            XCTAssertEqual(r.status, 64, r.stderr)
            XCTAssertTrue(r.stderr.contains("from 0.1 to 86400, not \(every) "), r.stderr)
        }
    }

    func testTrackErrors() throws {
        let n = try node()
        var r = try CLI.run(["track", "--db", n.url, "no_such_table"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("does not exist"), r.stderr)
        r = try CLI.run(["track", "--db", n.url, "sales_order"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("already tracked"), r.stderr)
        try n.exec("CREATE TABLE nokey (a TEXT, b TEXT)")
        r = try CLI.run(["track", "--db", n.url, "nokey"])
        // As every table `track` refuses as declared (a key collation, a padded key): 64, not 1.
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("no primary key"), r.stderr)
        // A refused list changes nothing, even for the good names in it.
        try n.exec("CREATE TABLE good (id TEXT PRIMARY KEY)")
        r = try CLI.run(["track", "--db", n.url, "good", "nokey"])
        XCTAssertEqual(r.status, 64)
        XCTAssertEqual(try Tracker.trackedNames(n.db), ["sales_order"])
        r = try CLI.ok(["untrack", "--db", n.url, "sales_order"])
        XCTAssertEqual(try Tracker.trackedNames(n.db), [])
        try n.exec("INSERT INTO sales_order (order_id) VALUES ('x')")
        XCTAssertEqual(try n.db.scalar("SELECT count(*) FROM ds_change_outbox"), .integer(0))
    }

    func testTrackWarnsAboutLocalSequenceKeys() throws {
        let n = try node()
        try n.exec("CREATE TABLE auto (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)")
        let refused = try CLI.run(["track", "--db", n.url, "auto"])
        XCTAssertEqual(refused.status, 64, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("UUID"), refused.stderr)
        let r = try CLI.ok(["track", "--db", n.url, "--no-key-blocks", "auto"])
        XCTAssertTrue(r.stderr.contains("merge, column by column"), r.stderr)
    }

    /// PostgreSQL keys that take two keys for one, as MariaDB's are (found from outside: rows
    /// merged silently): `char(n)` pads, and so do a domain over it, a domain over that domain
    /// (found by the second trial) and an array of it; `citext` ignores case; `name` cuts at 63
    /// bytes; a nondeterministic (ICU, case-insensitive) collation. Refused at `track` with what
    /// to do; `varchar`, `text` and a deterministic collation are tracked.
    func testAPostgresKeyThatMergesKeysIsRefusedAtTrack() throws {
        let folder = try TestDatabases.tempFolder("pgkeys")
        let url = try TestDatabases.create(.postgres, name: "pgkeys", in: folder)
        let db = try DatabaseOpener.open(url)
        try db.executeScript(
            """
            CREATE TABLE c (k char(5) PRIMARY KEY, v text);
            CREATE DOMAIN code AS character(3);
            CREATE TABLE d (k code PRIMARY KEY);
            CREATE DOMAIN code2 AS code;
            CREATE TABLE dd (k code2 PRIMARY KEY);
            CREATE TABLE ca (k char(3)[] PRIMARY KEY);
            CREATE EXTENSION IF NOT EXISTS citext;
            CREATE TABLE ct (k citext PRIMARY KEY);
            CREATE TABLE nm (k name PRIMARY KEY);
            CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
            CREATE TABLE n (k text COLLATE ci PRIMARY KEY);
            CREATE TABLE ok (k varchar(5) PRIMARY KEY, t text COLLATE "C", u text COLLATE ci)
            """)
        try CLI.ok(["init", "--db", url, "--node", "pgkeys"])
        let refused = [
            ("c", "pads with spaces"), ("d", "pads with spaces"), ("dd", "pads with spaces"),
            ("ca", "pads with spaces"),
            ("ct", "compares without case"), ("nm", "cuts text at 63 bytes"), ("n", "nondeterministic collation ci"),
        ]
        for (table, says) in refused {
            let r = try CLI.run(["track", "--db", url, table])
            XCTAssertEqual(r.status, 64, r.stderr)
            XCTAssertTrue(r.stderr.contains(says), r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        }
        XCTAssertEqual(try db.scalar("SELECT count(*) FROM ds_tracked_table"), .integer(0), "nothing registered")
        try CLI.ok(["track", "--db", url, "ok"])
        XCTAssertEqual(try db.scalar("SELECT count(*) FROM ds_tracked_table"), .integer(1))
    }

    /// A folder that is not there (a USB stick not mounted) among others: the others are read and
    /// loaded, the missing one is named, exit 2 (found from outside: exit 66, nothing loaded).
    /// When no path is there at all, exit 66 as before.
    func testAMissingFolderAmongOthersDoesNotStopTheIngest() throws {
        let a = try node("mf1")
        let b = try node("mf2")
        try trustAll([a, b])
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('m1')")
        let up = folder.appendingPathComponent("mf-up")
        try FileManager.default.createDirectory(at: up, withIntermediateDirectories: true)
        try a.export(to: up)
        let missing = folder.appendingPathComponent("not-mounted").path
        let r = try CLI.run(["ingest", "--db", b.url, up.path, missing])
        XCTAssertEqual(r.status, 2, r.stdout + r.stderr)
        XCTAssertTrue(r.stderr.contains("not-mounted: refused: no such file or folder"), r.stderr)
        XCTAssertEqual(try b.db.scalar("SELECT count(*) FROM sales_order"), .integer(1))
        let none = try CLI.run(["ingest", "--db", b.url, missing, missing + "2"])
        XCTAssertEqual(none.status, 66, none.stderr)
    }

    /// A folder where a bundle file should be is input of the wrong kind (66), as a folder given
    /// for --db is (found from outside: `inspect FOLDER` exited 1).
    func testAFolderGivenAsABundleFileExits66() throws {
        // (verify reads every bundle of a folder.)
        let r = try CLI.run(["inspect", folder.path])
        XCTAssertEqual(r.status, 66, r.stderr)
        XCTAssertEqual(r.stderr, "datajoin: error: cannot open \(folder.path): it is a folder, not a bundle file\n")
    }

    /// `inspect --db` on a node that would refuse the sender says so and exits 77, as
    /// `verify --db` does (found from outside: it said "verified" and exited 0).
    func testInspectOnANodeThatDoesNotTrustTheSenderSaysSo() throws {
        let a = try node("ia")
        let b = try node("ib")
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('a')")
        let drop = try TestDatabases.subfolder(folder, "inspect-trust")
        let file = try a.export(to: drop)[0]
        let r = try CLI.run(["inspect", "--db", b.url, file])
        XCTAssertEqual(r.status, 77, r.stderr)
        XCTAssertTrue(r.stderr.contains("\(file): intact, but ingest here would refuse it:"), r.stderr)
        XCTAssertTrue(r.stdout.contains("changes:   1"), r.stdout)
        try b.trust(a)
        XCTAssertEqual(try CLI.run(["inspect", "--db", b.url, file]).status, 0)
        XCTAssertEqual(try CLI.run(["inspect", file]).status, 0)
    }

    func testExportToMissingOrUnwritableFolder() throws {
        let n = try node()
        try n.exec("INSERT INTO sales_order (order_id) VALUES ('a')")
        var r = try CLI.run(["export", "--db", n.url, "--to", folder.appendingPathComponent("missing").path])
        XCTAssertEqual(r.status, 66)
        XCTAssertTrue(r.stderr.contains("does not exist"), r.stderr)
        // A file where the folder should be is named as one (it was reported as missing).
        let file = folder.appendingPathComponent("a-file")
        try Data("x".utf8).write(to: file)
        for command in ["export", "snapshot"] {
            r = try CLI.run([command, "--db", n.url, "--to", file.path])
            XCTAssertEqual(r.status, 66, command)
            XCTAssertEqual(
                r.stderr, "datajoin: error: output folder \(file.path) is a file, not a folder; give a folder\n",
                command)
        }
        let ro = folder.appendingPathComponent("ro")
        try FileManager.default.createDirectory(at: ro, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: ro.path)
        // Root writes anywhere a mode allows nothing; /sys is read-only for everyone.
        let target = geteuid() == 0 ? "/sys" : ro.path
        r = try CLI.run(["export", "--db", n.url, "--to", target])
        XCTAssertEqual(r.status, 77, "a folder it may not write to, as prune --bundles says (found from outside)")
        XCTAssertTrue(r.stderr.contains("not writable"), r.stderr)
        XCTAssertEqual(try ProgramPointer.get(n.db, Program.export), 0)
        XCTAssertEqual(try n.db.scalar("SELECT count(*) FROM ds_change_outbox WHERE seq IS NOT NULL"), .integer(0))
    }

    /// A crash's temporary file is removed by the next export; one whose writer still runs is
    /// another export's, and stays (found from outside: two exports at once, and one removed the
    /// other's file before its rename).
    func testAnExportLeavesTheTemporaryFileOfAnotherExportThatRuns() throws {
        let n = try node()
        let out = folder.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let ended = Process()
        ended.executableURL = URL(fileURLWithPath: "/bin/true")
        try ended.run()
        ended.waitUntilExit()
        let stem = ".\(n.name)_000000000009-000000000009_00000000.djb"
        let running = stem + ".\(getpid()).tmp", crashed = stem + ".\(ended.processIdentifier).tmp"
        let older = stem + ".tmp"
        for f in [running, crashed, older] {
            XCTAssertTrue(FileManager.default.createFile(atPath: out.appendingPathComponent(f).path, contents: Data()))
        }
        try n.exec("INSERT INTO sales_order (order_id) VALUES ('a')")
        try CLI.ok(["export", "--db", n.url, "--to", out.path])
        let left = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasPrefix(".") }
        XCTAssertEqual(left, [running])
    }

    func testNothingNewExportsNoFile() throws {
        let n = try node()
        let out = folder.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let r = try CLI.ok(["export", "--db", n.url, "--to", out.path])
        XCTAssertTrue(r.stdout.contains("nothing new to export"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path), [])
    }

    func testIngestRefusesNonBundleButLoadsTheGoodOnes() throws {
        let a = try node("a"), b = try node("b")
        try CLI.ok([
            "trust", "--db", b.url, "a",
            try CLI.ok(["key", "--db", a.url]).stdout.trimmingCharacters(in: .whitespacesAndNewlines),
        ])
        let drop = folder.appendingPathComponent("drop")
        try FileManager.default.createDirectory(at: drop, withIntermediateDirectories: true)
        try a.exec("INSERT INTO sales_order (order_id, description) VALUES ('k1', 'hello')")
        try CLI.ok(["export", "--db", a.url, "--to", drop.path])
        let junk = drop.appendingPathComponent("aaa-junk.djb")
        try Data("this is not a bundle".utf8).write(to: junk)
        try Data("rsync temp".utf8).write(to: drop.appendingPathComponent(".a_000000000002.djb.Xy12ab"))
        let r = try CLI.run(["ingest", "--db", b.url, drop.path])
        XCTAssertEqual(r.status, 2, r.stderr)
        let errors = r.stderr.split(separator: "\n")
        XCTAssertEqual(errors.count, 1, r.stderr)
        XCTAssertTrue(errors[0].contains("aaa-junk.djb") && errors[0].contains("refused"), r.stderr)
        XCTAssertEqual(try b.rows(), try a.rows())
        XCTAssertEqual(try b.db.scalar("SELECT count(*) FROM ds_change_inbox"), .integer(1))
    }

    /// `--verbose` names a bundle the database refused on the importer's fast path, with the
    /// database's words: the bench fails a figure on this line (SQLite keeps no server log).
    func testVerboseIngestNamesAFallBackToChangeByChange() throws {
        let a = try node("a"), b = try node("b")
        try CLI.ok([
            "trust", "--db", b.url, "a",
            try CLI.ok(["key", "--db", a.url]).stdout.trimmingCharacters(in: .whitespacesAndNewlines),
        ])
        try b.exec("CREATE UNIQUE INDEX one_description ON sales_order (description)")
        try b.exec("INSERT INTO sales_order (order_id, description) VALUES ('b1', 'taken')")
        try a.exec("INSERT INTO sales_order (order_id, description) VALUES ('a1', 'taken')")
        try a.exec("INSERT INTO sales_order (order_id, description) VALUES ('a2', 'free')")
        let drop = folder.appendingPathComponent("drop")
        try FileManager.default.createDirectory(at: drop, withIntermediateDirectories: true)
        try CLI.ok(["export", "--db", a.url, "--to", drop.path])
        let r = try CLI.run(["ingest", "--db", b.url, "--verbose", drop.path])
        let line = r.stderr.split(separator: "\n").first { $0.contains("on the fast path") }
        XCTAssertNotNil(line, r.stderr)
        XCTAssertTrue(line?.contains("UNIQUE") == true, r.stderr)
        // The other change still applied; the refused one is held.
        XCTAssertEqual(try b.db.scalar("SELECT count(*) FROM sales_order WHERE order_id = 'a2'"), .integer(1))
        XCTAssertEqual(try b.db.scalar("SELECT count(*) FROM ds_change_held"), .integer(1))
    }

    func testStatusShowsWaitingWork() throws {
        let n = try node()
        try n.exec("INSERT INTO sales_order (order_id) VALUES ('a'), ('b')")
        let r = try CLI.ok(["status", "--db", n.url, "--json"])
        for field in [
            "\"schema\":1,", "\"id\":\"n1\"", "\"tracked_tables\":[\"sales_order\"]", "\"export\":{\"waiting\":2,",
            "\"import\":{\"waiting\":0,\"pointer\":0,",
            "\"pointer\":0,\"last_export\":null,\"last_receipts\":null,\"held\":null}",
        ] {
            XCTAssertTrue(r.stdout.contains(field), "missing \(field) in \(r.stdout)")
        }
        let text = try CLI.ok(["status", "--db", n.url]).stdout
        XCTAssertTrue(text.contains("waiting export:   2 change(s)"), text)
    }

    func testInspectAndVerify() throws {
        let n = try node()
        try n.exec("INSERT INTO sales_order (order_id, description) VALUES ('ord2', 'it''s; DROP TABLE x')")
        try n.exec("INSERT INTO sales_order (order_id, description) VALUES ('esc', ?)", [.text("\u{1b}[31mred\nline")])
        let out = folder.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let path = try CLI.ok(["export", "--db", n.url, "--to", out.path]).stdout.split(separator: "\n")[0]
        XCTAssertTrue(
            (String(path) as NSString).lastPathComponent.hasPrefix("n1_000000000001-000000000002_"), String(path))
        var r = try CLI.ok(["inspect", String(path), "--json"])
        XCTAssertTrue(r.stdout.contains("\"sender\":\"n1\""), r.stdout)
        XCTAssertTrue(r.stdout.contains("it's; DROP TABLE x"), r.stdout)
        // The text form never hands a file's control characters to the terminal.
        let text = try CLI.ok(["inspect", String(path)]).stdout
        XCTAssertFalse(text.contains("\u{1b}"), text)
        XCTAssertTrue(text.contains("\\u{1b}[31mred\\u{a}line"), text)
        r = try CLI.ok(["verify", String(path)])
        XCTAssertTrue(r.stdout.contains("OK"), r.stdout)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: String(path)))
        bytes[bytes.count / 2] ^= 0x10
        let bad = out.appendingPathComponent("bad.djb")
        try bytes.write(to: bad)
        r = try CLI.run(["verify", bad.path])
        XCTAssertEqual(r.status, 65)
        XCTAssertTrue(r.stderr.contains("bad.djb"), r.stderr)
    }
}
