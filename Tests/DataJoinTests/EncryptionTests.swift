import Crypto
import Foundation
import XCTest

@testable import DataJoin

/// Issue 15: encrypted bundles (format v2). Only the recipients read the rows; every byte is
/// signed, and the STREAM chunks refuse a file cut, reordered or spliced even when re-signed.
final class EncryptionTests: ScenarioTestCase {
    var folder: URL!
    override func setUpWithError() throws {
        try super.setUpWithError()
        folder = try TestDatabases.tempFolder("enc")
    }

    func out(_ label: String) throws -> URL {
        try TestDatabases.subfolder(folder, label + "-" + UUID().uuidString.prefix(6))
    }

    func contains(_ file: String, _ text: String) throws -> Bool {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        return bytes.range(of: Data(text.utf8)) != nil
    }

    /// Each brand to each other brand, encrypted: the rows arrive, and the file holds neither
    /// a value nor a table name in the clear, and is not a gzip stream.
    func testEncryptedRoundTripOnEveryBrand() throws {
        let brands = TestDatabases.availableBrands
        for from in brands {
            for to in brands {
                TestNode.created.removeAll()
                let a = try TestNode("ea\(from)\(to)", from, folder: folder)
                let b = try TestNode("eb\(from)\(to)", to, folder: folder)
                try trustAll([a, b])
                try a.exec(
                    "INSERT INTO sales_order (order_id, description, customer_id) VALUES ('ord1', 'Ada Lovelace, 12 Secret Lane', 'cust-007')"
                )
                let paths = try Exporter.export(a.db, ExportOptions(folder: try out("rt").path, encrypt: true)).map(
                    \.path)
                XCTAssertEqual(paths.count, 1)
                for secret in ["Secret Lane", "cust-007", "sales_order", "ord1"] {
                    XCTAssertFalse(try contains(paths[0], secret), "\(secret) in clear")
                }
                XCTAssertNotEqual(Array(try Data(contentsOf: URL(fileURLWithPath: paths[0])).prefix(2)), [0x1F, 0x8B])
                XCTAssertTrue(EncryptedFormat.isEncrypted(path: paths[0]))
                try b.ingest(paths)
                XCTAssertEqual(try b.rows(), try a.rows(), "\(from) to \(to)")
                // Re-ingesting the same file changes nothing.
                let again = try b.ingest(paths)
                XCTAssertEqual(again.files.first?.status, .alreadySeen)
            }
        }
    }

    /// A node the file is not encrypted to leaves it where it is and changes nothing: found in a
    /// shared folder it is the other nodes' file, skipped with whom it is for (found from outside:
    /// every ingest of a shared folder exited 2 for good); named on the command line it is
    /// refused.
    func testNonRecipientRefusesAndLeavesTheFile() throws {
        let a = try TestNode("a", .sqlite, folder: folder)
        let b = try TestNode("b", .sqlite, folder: folder)
        let c = try TestNode("c", .sqlite, folder: folder)
        try trustAll([a, b, c])
        try a.exec("INSERT INTO sales_order (order_id, description) VALUES ('ord1', 'for b only')")
        let drop = try out("shared")
        let paths = try Exporter.export(a.db, ExportOptions(folder: drop.path, recipients: ["b"])).map(\.path)
        let r = try CLI.run(["ingest", "--db", c.url, drop.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("encrypted to b, not to this node (c); left in place, skipped"), r.stdout)
        XCTAssertEqual(r.stderr, "")
        let named = try CLI.run(["ingest", "--db", c.url, paths[0]])
        XCTAssertEqual(named.status, 77, named.stderr)
        XCTAssertTrue(named.stderr.contains("refused: encrypted to b, not to this node (c)"), named.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: paths[0]))
        XCTAssertFalse(FileManager.default.fileExists(atPath: drop.appendingPathComponent("quarantine").path))
        XCTAssertEqual(try c.rows(), [])
        XCTAssertEqual(try c.db.scalar("SELECT count(*) FROM ds_change_inbox"), .integer(0))
        // A node of the right name without the key (another database set up as b): told so.
        let b2 = try TestNode("b2", .sqlite, folder: folder)
        try b2.exec("UPDATE ds_node SET node_id = 'b'")
        try b2.exec("DELETE FROM ds_trusted_key")
        try b2.trust(a)
        let wrongKey = try b2.ingest([paths[0]])
        guard case .refused(let why) = wrongKey.files.first?.status else { return XCTFail("\(wrongKey.files)") }
        XCTAssertTrue(why.contains("encrypted to b's key SHA256:"), why)
        XCTAssertTrue(why.contains("which this node does not hold"), why)
        // The cure for a node restored from a backup older than its key (found from outside:
        // refused on every run, with nothing to do about it).
        XCTAssertTrue(
            why.contains(
                "trust its key again on a ('trust --replace b'), run 'datajoin export --resend --peer b' there"),
            why)
        uncheckedNodes.insert("b2")
        try b.ingest([drop.path])
        XCTAssertEqual(try b.rows(), try a.rows())
        // verify and inspect: the signature without a key; the content with a recipient's.
        let v = try CLI.ok(["verify", paths[0]])
        XCTAssertTrue(
            v.stdout.contains(
                "OK (encrypted to b, signed as a by the key it carries; --db on one of them checks that key"), v.stdout)
        XCTAssertFalse(try CLI.ok(["inspect", paths[0]]).stdout.contains("for b only"))
        XCTAssertTrue(try CLI.ok(["inspect", "--db", b.url, paths[0]]).stdout.contains("for b only"))
        XCTAssertTrue(
            try CLI.ok(["inspect", "--json", paths[0]]).stdout.contains("\"encrypted_to\":[\"b\"],\"decrypted\":false"))
    }

    /// A re-send encrypted to one peer never replaces a file of the same name that another
    /// peer may still need to read (found from outside: b's file became c's, and b never missed
    /// it); encrypted to both, it may, and plain, it may not (its changes would be in the clear).
    func testAResendNeverTakesAFileFromAPeerThatHasNotReadIt() throws {
        let a = try TestNode("a", .sqlite, folder: folder)
        let b = try TestNode("b", .sqlite, folder: folder)
        let c = try TestNode("c", .sqlite, folder: folder)
        try trustAll([a, b, c])
        try a.exec("INSERT INTO sales_order (order_id, description) VALUES ('ord1', 'for b')")
        let drop = try out("resend")
        let path =
            try CLI.ok(["export", "--db", a.url, "--to", drop.path, "--recipient", "b"]).stdout
            .split(separator: "\n").first.map(String.init) ?? ""
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let refused = try CLI.run([
            "export", "--db", a.url, "--to", drop.path, "--resend", "--peer", "c", "--recipient", "c",
        ])
        XCTAssertEqual(refused.status, 64, refused.stderr)
        XCTAssertTrue(
            refused.stderr.contains(
                "is already there, encrypted to b; one encrypted to c in its place would take it from b before they read it"
            ),
            refused.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        try CLI.ok([
            "export", "--db", a.url, "--to", drop.path, "--resend", "--peer", "c", "--recipient", "c", "--recipient",
            "b",
        ])
        XCTAssertNotEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        for n in [b, c] {
            try CLI.ok(["ingest", "--db", n.url, drop.path])
            XCTAssertEqual(try n.rows(), try a.rows(), n.name)
        }
        // Plain, it may not replace one that left encrypted: its changes would be in the clear
        // (found from outside). Into the empty place, it goes.
        let plain = try CLI.run(["export", "--db", a.url, "--to", drop.path, "--resend"])
        XCTAssertEqual(plain.status, 64, plain.stderr)
        XCTAssertTrue(EncryptedFormat.isEncrypted(path: path))
        try FileManager.default.removeItem(atPath: path)
        try CLI.ok(["export", "--db", a.url, "--to", drop.path, "--resend"])
        XCTAssertFalse(EncryptedFormat.isEncrypted(path: path))
        // Encrypted to some, it may not replace a plain one; to every peer, it may.
        let narrowed = try CLI.run(["export", "--db", a.url, "--to", drop.path, "--resend", "--recipient", "b"])
        XCTAssertEqual(narrowed.status, 64, narrowed.stderr)
        XCTAssertTrue(
            narrowed.stderr.contains("readable by every peer; one encrypted to b in its place would take it from c"),
            narrowed.stderr)
        try CLI.ok(["export", "--db", a.url, "--to", drop.path, "--resend", "--encrypt"])
        XCTAssertTrue(EncryptedFormat.isEncrypted(path: path))
        // A reader no longer trusted loses nothing it may read.
        try CLI.ok(["trust", "--db", a.url, "--revoke", "c"])
        try CLI.ok(["export", "--db", a.url, "--to", drop.path, "--resend", "--recipient", "b"])
    }

    // MARK: - Tampering

    /// A file of several chunks: random values do not compress.
    func multiChunkBundle(_ a: TestNode, to recipients: [String], prefix: String = "big") throws -> String {
        var rng = SystemRandomNumberGenerator()
        for i in 0..<3 {
            let blob = (0..<(100 * 1024)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            try a.exec(
                "INSERT INTO sales_order (order_id, description) VALUES (?, ?)",
                [.text("\(prefix)\(i)"), .text(Hex.encode(blob))])
        }
        let paths = try Exporter.export(a.db, ExportOptions(folder: try out("multi").path, recipients: recipients))
        return paths[0].path
    }

    struct Layout {
        var headerEnd: Int
        var chunkStarts: [Int]
        var payloadEnd: Int
    }

    func layout(_ bytes: [UInt8]) throws -> Layout {
        var r = ByteReader(ArraySource(Array(bytes.dropFirst(10))))
        let n = try r.int(1 << 20)
        let headerEnd = 10 + ByteWriter.varintSize(UInt64(n)) + n
        let payloadEnd = bytes.count - 96
        let sealed = EncryptedFormat.chunkSize + 16
        return Layout(
            headerEnd: headerEnd, chunkStarts: Array(stride(from: headerEnd, to: payloadEnd, by: sealed)),
            payloadEnd: payloadEnd)
    }

    /// Signs `bytes` (everything but the trailer) again with `key`: what a sender that went
    /// wrong, or a signature check skipped, would let through. The chunks must still refuse.
    func resigned(_ bytes: [UInt8], _ key: Curve25519.Signing.PrivateKey) throws -> [UInt8] {
        let body = Array(bytes.dropLast(96))
        let digest = Array(SHA256.hash(data: body))
        return body + digest + Array(try key.signature(for: digest))
    }

    func refused(_ b: TestNode, _ bytes: [UInt8], _ what: String, line: UInt = #line) throws {
        let drop = try out("bad")
        let path = drop.appendingPathComponent("a_000000000001-000000000003_00000000.djb").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let report = try b.ingest([drop.path])
        guard case .refused(let reason) = report.files.first?.status else {
            return XCTFail("\(what): not refused: \(String(describing: report.files.first?.status))", line: line)
        }
        XCTAssertFalse(reason.isEmpty, line: line)
        XCTAssertEqual(try b.db.scalar("SELECT count(*) FROM ds_change_inbox"), .integer(0), what, line: line)
        XCTAssertEqual(try b.rows(), [], what, line: line)
    }

    /// Altered ciphertext, a file cut at and between chunk boundaries, chunks swapped or
    /// repeated, a recipient block from another file: each refused, nothing loaded; the
    /// signature catches them, and the chunks still do when the file is signed again.
    func testTamperedEncryptedFilesAreRefused() throws {
        let a = try TestNode("a", .sqlite, folder: folder)
        let b = try TestNode("b", .sqlite, folder: folder)
        try trustAll([a, b])
        let path = try multiChunkBundle(a, to: ["b"])
        let good = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        // A file cut short moments ago may still be copying: it stays, as a plain one does.
        let copying = try out("copying")
        let partial = copying.appendingPathComponent((path as NSString).lastPathComponent).path
        try Data(good.prefix(50_000)).write(to: URL(fileURLWithPath: partial))
        guard case .incomplete = try b.ingest([copying.path]).files.first?.status else {
            return XCTFail("a fresh cut-short file is not left to finish copying")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: partial))
        // From here on, no grace: every damaged file is refused at once.
        try b.exec("INSERT INTO ds_setting (name, value) VALUES ('partial_grace_seconds', '0')")
        let l = try layout(good)
        XCTAssertGreaterThanOrEqual(l.chunkStarts.count, 3, "a file of several chunks")
        let key = try NodeIdentity.signingKey(a.db, node: "a")
        let sealed = EncryptedFormat.chunkSize + 16
        var cases: [(String, [UInt8])] = []
        var flipped = good
        flipped[l.chunkStarts[1] + 100] ^= 0x01
        cases.append(("one bit of ciphertext", flipped))
        let c0 = Array(good[l.chunkStarts[0]..<l.chunkStarts[1]])
        let c1 = Array(good[l.chunkStarts[1]..<l.chunkStarts[2]])
        var swapped = Array(good[0..<l.headerEnd]) + c1 + c0 + Array(good[l.chunkStarts[2]...])
        cases.append(("chunks 0 and 1 swapped", swapped))
        swapped = Array(good[0..<l.headerEnd]) + c0 + c0 + Array(good[l.chunkStarts[2]...])
        cases.append(("chunk 0 repeated", swapped))
        // Cut at a chunk boundary (the last chunk dropped), one byte after it, and one before.
        for cut in [l.chunkStarts.last!, l.chunkStarts.last! + 1, l.chunkStarts.last! - 1] {
            cases.append(("cut at \(cut - l.headerEnd) of the payload", Array(good[0..<cut]) + Array(good.suffix(96))))
        }
        cases.append(("trailer cut", Array(good.dropLast(1))))
        XCTAssertEqual(sealed, 65552)
        for (what, bytes) in cases {
            try refused(b, bytes, what + ", signature as written")
            try refused(b, try resigned(bytes, key), what + ", signed again")
        }
        // A recipient block from another file to the same node, signed again.
        let other = Array(
            try Data(contentsOf: URL(fileURLWithPath: try multiChunkBundle(a, to: ["b"], prefix: "other"))))
        let lo = try layout(other)
        let spliced = Array(other[0..<lo.headerEnd]) + Array(good[l.headerEnd...])
        try refused(b, try resigned(spliced, key), "recipient block of another file")
        // The good file still loads.
        try b.ingest([path])
        XCTAssertEqual(try b.db.scalar("SELECT count(*) FROM sales_order WHERE order_id LIKE 'big%'"), .integer(3))
        uncheckedNodes.insert("b")
    }

    /// `--recipient` naming this node itself says so; a recipient named twice is named once
    /// (found from outside: "not a trusted peer", and "only b, b can read").
    func testRecipientsAreNamedAsGiven() throws {
        let a = try TestNode("a", .sqlite, folder: folder)
        let b = try TestNode("b", .sqlite, folder: folder)
        let c = try TestNode("c", .sqlite, folder: folder)
        try trustAll([a, b, c])
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('r1')")
        let drop = try out("recipients")
        let own = try CLI.run(["export", "--db", a.url, "--to", drop.path, "--recipient", "a"])
        XCTAssertEqual(own.status, 64, own.stderr)
        XCTAssertEqual(
            own.stderr, "datajoin: error: a is this node itself: name the peers that are to read the bundle\n")
        let twice = try CLI.run(["export", "--db", a.url, "--to", drop.path, "--recipient", "b", "--recipient", "b"])
        XCTAssertEqual(twice.status, 0, twice.stderr)
        XCTAssertTrue(twice.stderr.hasPrefix("datajoin: warning: only b can read these changes"), twice.stderr)
        try b.ingest([drop.path])
        XCTAssertEqual(try b.rows(), try a.rows())
        uncheckedNodes.insert("c")
    }

    /// Laptops trust only the hub; the hub decrypts what it receives and re-encrypts for
    /// each peer: a laptop never needs another laptop's key.
    func testRelayThroughAHubReEncrypts() throws {
        _ = try TestDatabases.requirePostgres()
        let hub = try TestNode("hub", .postgres, folder: folder)
        let l1 = try TestNode("l1", .sqlite, folder: folder)
        let l2 = try TestNode("l2", .sqlite, folder: folder)
        for l in [l1, l2] {
            try l.trust(hub)
            try hub.trust(l)
        }
        try l1.exec("INSERT INTO sales_order (order_id, description) VALUES ('l1-1', 'from laptop one')")
        try l2.exec("INSERT INTO sales_order (order_id, description) VALUES ('l2-1', 'from laptop two')")
        for l in [l1, l2] {
            let drop = try out(l.name)
            let paths = try Exporter.export(l.db, ExportOptions(folder: drop.path, encrypt: true)).map(\.path)
            XCTAssertTrue(paths.allSatisfy { EncryptedFormat.isEncrypted(path: $0) })
            try hub.ingest(paths)
        }
        // Encrypted in, encrypted out: the hub relays encrypted without being told.
        let relay = try out("relay")
        let relayed = try Exporter.export(hub.db, ExportOptions(folder: relay.path, relay: true))
        XCTAssertTrue(relayed.allSatisfy { EncryptedFormat.isEncrypted(path: $0.path) })
        XCTAssertFalse(try contains(relayed[0].path, "from laptop"))
        for l in [l1, l2] { try l.ingest([relay.path]) }
        for l in [l1, l2] { XCTAssertEqual(try l.rows(), try hub.rows(), l.name) }
        XCTAssertEqual(try hub.db.scalar("SELECT count(*) FROM sales_order"), .integer(2))
        // A snapshot holds every origin's rows: encrypted too, and `config` says so (found from
        // outside: the hub's snapshot wrote the laptops' rows in the clear).
        XCTAssertEqual(
            try CLI.ok(["config", "--db", hub.url]).stdout,
            "encrypt never (but everything it writes is encrypted: this node has received encrypted bundles)\n")
        let l3 = try TestNode("l3", .mariadb, folder: folder)
        try l3.trust(hub)
        try hub.trust(l3)
        let snap = try out("snap")
        // The new node trusted first, as docs/snapshot.md says: the snapshot names who can read it.
        let written = try CLI.ok(["snapshot", "--db", hub.url, "--to", snap.path])
        XCTAssertTrue(
            written.stdout.hasSuffix("bytes, encrypted to l1, l2, l3 (only they can read it)\n"), written.stdout)
        let files = try FileManager.default.contentsOfDirectory(atPath: snap.path).map {
            snap.appendingPathComponent($0).path
        }
        XCTAssertEqual(files.count, 1)
        XCTAssertTrue(EncryptedFormat.isEncrypted(path: files[0]))
        XCTAssertFalse(try contains(files[0], "from laptop"))
        try CLI.ok(["ingest", "--db", l3.url, snap.path, "-q"])
        XCTAssertEqual(try l3.rows(), try hub.rows())
        // An encrypted snapshot spools in TMPDIR: one that does not exist is a missing folder.
        let noTmp = try CLI.run(
            ["snapshot", "--db", hub.url, "--to", try out("snap-notmp").path], env: ["TMPDIR": "/nonexistent-datajoin"])
        XCTAssertEqual(noTmp.status, 66, noTmp.stderr)
        XCTAssertTrue(
            noTmp.stderr.contains("no such folder; an encrypted snapshot spools in the temporary folder"), noTmp.stderr)
        // Its own export too: a backfill sends every row, the laptops' among them, as its own
        // inserts (found from outside: in the clear).
        try CLI.ok(["track", "--db", hub.url, "--backfill", "sales_order", "-q"])
        let own = try out("own")
        try CLI.ok(["export", "--db", hub.url, "--to", own.path, "-q"])
        let ownFiles = try FileManager.default.contentsOfDirectory(atPath: own.path).map {
            own.appendingPathComponent($0).path
        }
        XCTAssertFalse(ownFiles.isEmpty)
        for f in ownFiles {
            XCTAssertTrue(EncryptedFormat.isEncrypted(path: f), f)
            XCTAssertFalse(try contains(f, "from laptop"))
        }
    }

    /// A peer revoked and trusted again lacks what was written meanwhile, encrypted to the
    /// others only: `trust` says so with the cure, and the cure brings it (found from outside:
    /// it skipped those files on every ingest, exit 0, `check` OK).
    func testAPeerTrustedAgainAfterARevokeIsToldWhatItLacksAndGetsIt() throws {
        let h = try TestNode("h", .sqlite, folder: folder)
        let a = try TestNode("a", .sqlite, folder: folder)
        let b = try TestNode("b", .sqlite, folder: folder)
        for l in [a, b] {
            try l.trust(h)
            try h.trust(l)
        }
        for n in [h, a, b] { try CLI.ok(["config", "--db", n.url, "encrypt", "always"]) }
        let fromA = try out("from-a"), fromH = try out("from-h")
        func round() throws {
            try CLI.ok(["export", "--db", a.url, "--to", fromA.path, "-q"])
            try CLI.run(["ingest", "--db", h.url, fromA.path, "-q"])
            try CLI.ok(["export", "--db", h.url, "--to", fromH.path, "--relay", "-q"])
            for l in [a, b] { try CLI.run(["ingest", "--db", l.url, fromH.path, "-q"]) }
        }
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('a0')")
        try round()
        try CLI.ok(["trust", "--db", h.url, "--revoke", "b"])
        try h.exec("INSERT INTO sales_order (order_id) VALUES ('h-meanwhile')")
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('a-meanwhile')")
        try round()
        XCTAssertEqual(try b.rows().map { $0[0] }, ["a0"])
        let again = try CLI.ok([
            "trust", "--db", h.url, "b",
            try CLI.ok(["key", "--db", b.url, "-q"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines),
        ])
        XCTAssertTrue(again.stderr.contains("b was revoked here ("), again.stderr)
        XCTAssertTrue(
            again.stderr.contains(
                "send it again with 'datajoin export --resend --peer b --to FOLDER', adding --relay on a node that relays others' changes"
            ), again.stderr)
        XCTAssertEqual(
            try CLI.ok(["trust", "--db", h.url, "a", try Trust.publicKey(a.db).key]).stderr, "",
            "a peer never revoked is trusted again without a word")
        let cure = try out("cure")
        try CLI.ok(["export", "--db", h.url, "--to", cure.path, "--resend", "--relay", "--peer", "b", "-q"])
        try CLI.run(["ingest", "--db", b.url, cure.path, "-q"])
        XCTAssertEqual(try b.rows().map { $0[0] }, ["a-meanwhile", "a0", "h-meanwhile"])
        XCTAssertEqual(try b.rows(), try h.rows())
        XCTAssertEqual(try a.rows(), try h.rows())
    }

    /// A re-send never puts a file that left encrypted back in the clear, in its place (found
    /// from outside: `--resend` without `--encrypt` replaced it with a plain one).
    func testAResendDoesNotReplaceAnEncryptedFileWithAPlainOne() throws {
        let a = try TestNode("a", .sqlite, folder: folder)
        let b = try TestNode("b", .sqlite, folder: folder)
        try trustAll([a, b])
        try a.exec("INSERT INTO sales_order (order_id, description) VALUES ('r1', 'secret words')")
        let drop = try out("stick")
        try CLI.ok(["export", "--db", a.url, "--to", drop.path, "--encrypt", "-q"])
        let name = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: drop.path).first)
        let path = drop.appendingPathComponent(name).path
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let r = try CLI.run(["export", "--db", a.url, "--to", drop.path, "--resend"])
        XCTAssertEqual(r.status, 64, r.stderr)
        XCTAssertEqual(
            r.stderr,
            "datajoin: error: \(path) is already there, encrypted to b; a plain one in its place would put its changes in the clear, "
                + "so nothing was written over it: add --encrypt (or --recipient for each reader), or export into another folder (--to)\n"
        )
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        try CLI.ok(["export", "--db", a.url, "--to", drop.path, "--resend", "--encrypt", "-q"])
        XCTAssertTrue(EncryptedFormat.isEncrypted(path: path))
        XCTAssertFalse(try contains(path, "secret words"))
        try b.ingest([drop.path])
        XCTAssertEqual(try b.rows(), try a.rows())
    }

    /// A node that has received encrypted bundles encrypts what it writes unasked; a peer it
    /// cannot encrypt to stops even its own export, and the error says why it encrypts at all.
    func testAnEncryptionNotAskedForSaysWhy() throws {
        let a = try TestNode("a", .sqlite, folder: folder)
        let b = try TestNode("b", .sqlite, folder: folder)
        try trustAll([a, b])
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('secret')")
        try b.ingest(try Exporter.export(a.db, ExportOptions(folder: try out("in").path, encrypt: true)).map(\.path))
        let c = try TestNode("c", .sqlite, folder: folder)
        try Trust.trust(b.db, node: "c", publicKey: Hex.encode(try NodeIdentity.load(c.db).publicKey))
        try b.exec("INSERT INTO sales_order (order_id) VALUES ('own')")
        let drop = try out("own")
        let r = try CLI.run(["export", "--db", b.url, "--to", drop.path])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(
            r.stderr.hasPrefix(
                "datajoin: error: this node has received encrypted bundles, so everything it writes is encrypted to its trusted peers (docs/encryption.md), and cannot encrypt to c:"
            ), r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: drop.path), [])
        // c trusted again in the form it has now: the export goes, encrypted.
        try CLI.ok([
            "trust", "--db", b.url, "--replace", "c",
            try CLI.ok(["key", "--db", c.url, "-q"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines),
        ])
        try CLI.ok(["export", "--db", b.url, "--to", drop.path, "-q"])
        let files = try FileManager.default.contentsOfDirectory(atPath: drop.path)
        XCTAssertEqual(files.count, 1)
        XCTAssertTrue(EncryptedFormat.isEncrypted(path: drop.appendingPathComponent(files[0]).path))
        uncheckedNodes.insert("c")
    }

    /// A rotated key: bundles already encrypted to the old key still open; peers encrypt to
    /// the new one once they trust it again (--replace); a peer trusted with the older key form
    /// cannot be encrypted to, and export says so before writing anything.
    func testRotationKeepsOldBundlesReadable() throws {
        let a = try TestNode("a", .sqlite, folder: folder)
        let b = try TestNode("b", .sqlite, folder: folder)
        try trustAll([a, b])
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('before')")
        let old = try Exporter.export(a.db, ExportOptions(folder: try out("old").path, encrypt: true)).map(\.path)
        let oldToken = try Trust.publicKey(b.db).key
        let r = try CLI.ok(["key", "--db", b.url, "--rotate"])
        let newToken = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertNotEqual(newToken, oldToken)
        XCTAssertTrue(newToken.hasPrefix(String(oldToken.prefix(68))), "the signing key stays")
        // Trusting the new word without --replace is refused, with both fingerprints.
        let refused = try CLI.run(["trust", "--db", a.url, "b", newToken])
        XCTAssertEqual(refused.status, 64)
        XCTAssertTrue(refused.stderr.contains("another encryption key"), refused.stderr)
        try CLI.ok(["trust", "--db", a.url, "--replace", "b", newToken])
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('after')")
        let new = try Exporter.export(a.db, ExportOptions(folder: try out("new").path, encrypt: true)).map(\.path)
        try b.ingest(new)
        try b.ingest(old)
        XCTAssertEqual(try b.rows(), try a.rows())
        // The older key form: plain bundles still go, encrypted ones are refused with why.
        let c = try TestNode("c", .sqlite, folder: folder)
        try Trust.trust(a.db, node: "c", publicKey: Hex.encode(try NodeIdentity.load(c.db).publicKey))
        let drop = try out("legacy")
        let e = try CLI.run(["export", "--db", a.url, "--to", drop.path, "--encrypt"])
        // The node's setup, not the command line: 1 (it was 64, a usage error).
        XCTAssertEqual(e.status, 1, e.stderr)
        XCTAssertTrue(e.stderr.contains("cannot encrypt to c"), e.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: drop.path), [])
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('plain')")
        XCTAssertFalse(try Exporter.export(a.db, ExportOptions(folder: drop.path, recipients: ["b"])).isEmpty)
        uncheckedNodes.insert("c")
    }

    /// `config encrypt always` makes export, snapshot and watch encrypt without a flag; a plain
    /// v1 bundle from a peer still ingests.
    func testEncryptAlwaysAndPlainBundlesStillIngest() throws {
        let a = try TestNode("a", .sqlite, folder: folder)
        let b = try TestNode("b", .sqlite, folder: folder)
        try trustAll([a, b])
        XCTAssertEqual(try CLI.ok(["config", "--db", a.url]).stdout, "encrypt never\n")
        XCTAssertEqual(try CLI.ok(["config", "--db", a.url, "encrypt", "always"]).stdout, "encrypt always\n")
        for (words, says) in [
            (["encrypt", "sometimes"], "encrypt takes 'always' or 'never', not 'sometimes'"),
            (["encrypt"], "encrypt needs a value: datajoin config encrypt always (or never)"),
            (["compress", "more"], "unknown setting 'compress more'"),
        ] {
            let r = try CLI.run(["config", "--db", a.url] + words)
            XCTAssertEqual(r.status, 64, r.stderr)
            XCTAssertTrue(r.stderr.contains(says), r.stderr)
        }
        XCTAssertEqual(try CLI.ok(["config", "--db", a.url]).stdout, "encrypt always\n")
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('x')")
        let drop = try out("always")
        try CLI.ok(["export", "--db", a.url, "--to", drop.path])
        let snap = try CLI.ok(["snapshot", "--db", a.url, "--to", drop.path]).stdout.split(separator: "\n")[0]
        let files = try FileManager.default.contentsOfDirectory(atPath: drop.path).filter { $0.hasSuffix(".djb") }
        XCTAssertEqual(files.count, 2)
        for f in files { XCTAssertTrue(EncryptedFormat.isEncrypted(path: drop.appendingPathComponent(f).path), f) }
        XCTAssertTrue(EncryptedFormat.isEncrypted(path: String(snap)))
        // b writes plain bundles: a reads them as before.
        try b.exec("INSERT INTO sales_order (order_id) VALUES ('y')")
        let plain = try b.export(to: try out("plain"))
        XCTAssertFalse(EncryptedFormat.isEncrypted(path: plain[0]))
        try a.ingest(plain)
        try b.ingest([drop.appendingPathComponent(files.first { !$0.contains("snapshot") }!).path])
        XCTAssertEqual(try b.rows(), try a.rows())
    }

    /// A node made before encryption (schema 9) gets its key pair when a newer datajoin opens
    /// it; the peers it trusted keep their keys, with no encryption part until trusted again.
    func testAnOlderNodeGetsItsKeyPairOnUpgrade() throws {
        let a = try TestNode("a", .sqlite, folder: folder)
        let b = try TestNode("b", .sqlite, folder: folder)
        try Trust.trust(a.db, node: "b", publicKey: Hex.encode(try NodeIdentity.load(b.db).publicKey))
        try a.db.executeScript(
            """
            DROP TABLE ds_encryption_key;
            ALTER TABLE ds_trusted_key DROP COLUMN encryption_key;
            UPDATE ds_node SET schema_version = 9;
            """)
        _ = try NodeIdentity.load(a.db)  // upgrades
        XCTAssertEqual(try a.db.scalar("SELECT schema_version FROM ds_node"), .integer(Int64(SyncSchema.version)))
        XCTAssertNotNil(try EncryptionKeys.current(a.db))
        XCTAssertTrue(try Trust.publicKey(a.db).key.hasPrefix("dj2-"))
        XCTAssertEqual(try a.db.scalar("SELECT encryption_key FROM ds_trusted_key WHERE node_id = 'b'"), .null)
        try Trust.trust(b.db, node: "a", publicKey: try Trust.publicKey(a.db).key)
        try b.exec("INSERT INTO sales_order (order_id) VALUES ('to a')")
        try a.ingest(
            try Exporter.export(b.db, ExportOptions(folder: try out("up").path, recipients: ["a"])).map(\.path))
        XCTAssertEqual(try a.rows(), try b.rows())
    }

    /// A weak (small-order) encryption key would let anyone unwrap the file key: `trust`
    /// refuses it, and so does export when one is found in the trust list; `init` prints the
    /// word peers must trust.
    func testWeakKeysAreRefusedAndInitPrintsTheWord() throws {
        let a = try TestNode("a", .sqlite, folder: folder)
        let b = try TestNode("b", .sqlite, folder: folder)
        try trustAll([a, b])
        let signing = Hex.encode(try NodeIdentity.load(b.db).publicKey)
        for weak in [String(repeating: "0", count: 64), "01" + String(repeating: "0", count: 62)] {
            let r = try CLI.run(["trust", "--db", a.url, "--replace", "b", "dj2-\(signing)-\(weak)"])
            XCTAssertEqual(r.status, 64, r.stderr)
            XCTAssertTrue(r.stderr.contains("the encryption part of that key is a weak (small-order) point"), r.stderr)
        }
        try a.exec(
            "UPDATE ds_trusted_key SET encryption_key = ? WHERE node_id = 'b'",
            [.text(String(repeating: "0", count: 64))])
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('x')")
        let drop = try out("weak")
        let e = try CLI.run(["export", "--db", a.url, "--to", drop.path, "--encrypt"])
        XCTAssertEqual(e.status, 64, e.stderr)
        XCTAssertTrue(e.stderr.contains("weak (small-order) point"), e.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: drop.path), [])
        let fresh = folder.appendingPathComponent("fresh.db").path
        let i = try CLI.ok(["init", "--db", fresh, "--node", "fresh"])
        XCTAssertTrue(i.stdout.contains("public key: dj2-"), i.stdout)
        uncheckedNodes.insert("a")
    }

    /// Nothing to encrypt to (no peer trusted, or the only one revoked) is the node's setup, not
    /// the command line: exit 1 with the cure, nothing written (it was 64, found from outside).
    func testEncryptingWithNoTrustedPeerIsASetupFailureNotAUsageError() throws {
        let a = try TestNode("lone", .sqlite, folder: folder)
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('x')")
        let drop = try out("lone")
        let r = try CLI.run(["export", "--db", a.url, "--to", drop.path, "--encrypt"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(
            r.stderr, "datajoin: error: this node trusts no peer to encrypt to; 'datajoin trust' them first\n")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: drop.path), [])
    }
}
