import Crypto
import Foundation
import XCTest

@testable import DataJoin

/// A bundle may be truncated, corrupted, replayed, crafted, or written by a machine that is not
/// ours: each is refused, nothing from it is loaded (the database is unchanged row for row), and
/// damaged or forged files are moved into quarantine/.
final class HostileBundleTests: ScenarioTestCase {
    var folder: URL!
    var sender: TestNode!
    var target: TestNode!
    var validPath: String!
    var valid: [UInt8]!
    var senderKey: Curve25519.Signing.PrivateKey!

    override func setUpWithError() throws {
        try super.setUpWithError()
        folder = try TestDatabases.tempFolder("hostile")
        sender = try TestNode("sender", .sqlite, folder: folder)
        target = try TestNode("target", .sqlite, folder: folder)
        try trustAll([sender, target])
        try target.exec("INSERT INTO ds_setting (name, value) VALUES ('partial_grace_seconds', '0')")
        // The target already holds one bundle's worth, so "unchanged" is not trivially empty.
        try sender.exec("INSERT INTO sales_order (order_id, description) VALUES ('base', 'before')")
        try target.ingest(try sender.export(to: folder))
        try sender.exec(
            "INSERT INTO sales_order (order_id, description, quantity) VALUES ('ord2', 'it''s''); DROP TABLE sales_order;--', '2')"
        )
        try sender.exec("UPDATE sales_order SET description = 'changed' WHERE order_id = 'ord2'")
        try sender.exec("DELETE FROM sales_order WHERE order_id = 'base'")
        let out = folder.appendingPathComponent("valid")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        validPath = try sender.export(to: out)[0]
        valid = Array(try Data(contentsOf: URL(fileURLWithPath: validPath)))
        senderKey = try NodeIdentity.signingKey(sender.db, node: "sender")
    }

    /// Everything a bundle could change in the target.
    func fingerprint() throws -> [[String]] {
        try target.rows()
            + TestDatabases.dump(target.db, "ds_change_inbox").map { Array($0.dropLast()) }
            + TestDatabases.dump(target.db, "ds_bundle_seen").map { Array($0.dropLast()) }
            + TestDatabases.dump(target.db, "ds_row_version") + TestDatabases.dump(target.db, "ds_node")
    }

    /// Ingests `bytes` as a file in a fresh drop folder; returns the file's status.
    @discardableResult
    func ingest(_ bytes: [UInt8], name: String = "sender_000000000002-000000000004_x.djb") throws -> IngestedFile.Status
    {
        let drop = folder.appendingPathComponent("drop-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: drop, withIntermediateDirectories: true)
        let path = drop.appendingPathComponent(name)
        try Data(bytes).write(to: path)
        return try target.ingest([drop.path]).files[0].status
    }

    func assertRefused(
        _ bytes: [UInt8], _ expected: String?, quarantined: Bool = true, _ context: String,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let before = try fingerprint()
        let drop = folder.appendingPathComponent("drop-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: drop, withIntermediateDirectories: true)
        let path = drop.appendingPathComponent("b.djb")
        try Data(bytes).write(to: path)
        let status = try target.ingest([drop.path]).files[0].status
        guard case .refused(let reason) = status else {
            return XCTFail("\(context): not refused: \(status)", file: file, line: line)
        }
        if let expected {
            XCTAssertTrue(
                reason.contains(expected), "\(context): reason '\(reason)' lacks '\(expected)'", file: file, line: line)
        }
        XCTAssertEqual(try fingerprint(), before, "\(context): the database changed", file: file, line: line)
        let inQuarantine = FileManager.default.fileExists(atPath: drop.appendingPathComponent("quarantine/b.djb").path)
        XCTAssertEqual(inQuarantine, quarantined, "\(context): quarantine", file: file, line: line)
        XCTAssertEqual(
            FileManager.default.fileExists(atPath: path.path), !quarantined, "\(context): file left in place",
            file: file, line: line)
    }

    func testTheValidBundleLoads() throws {
        let before = try target.rows()
        guard case .loaded(let n, _) = try ingest(valid) else { return XCTFail("valid bundle refused") }
        XCTAssertEqual(n, 3)
        XCTAssertNotEqual(try target.rows(), before)
        XCTAssertEqual(try target.rows(), try sender.rows())
        XCTAssertEqual(
            try target.db.scalar("SELECT description FROM sales_order WHERE order_id = 'ord2'"), .text("changed"))
    }

    func testEveryTruncationIsRefused() throws {
        for length in 0..<valid.count {
            try assertRefused(Array(valid[0..<length]), nil, "truncating to \(length) of \(valid.count) bytes")
        }
    }

    func testATruncatedFileStillBeingCopiedIsLeftAndRetried() throws {
        try target.exec("UPDATE ds_setting SET value = '3600' WHERE name = 'partial_grace_seconds'")
        let drop = folder.appendingPathComponent("copying")
        try FileManager.default.createDirectory(at: drop, withIntermediateDirectories: true)
        let path = drop.appendingPathComponent("b.djb")
        try Data(valid[0..<(valid.count / 2)]).write(to: path)
        guard case .incomplete = try target.ingest([drop.path]).files[0].status else {
            return XCTFail("a fresh partial file was not left for retry")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: path.path))
        // A copy caught at any length of the 10-byte gzip header, from its first byte on, waits
        // too (one byte was quarantined, and the copy went on into quarantine/: found from
        // outside); a first byte that is not gzip's is no bundle at once.
        let early = folder.appendingPathComponent("copying-early")
        try FileManager.default.createDirectory(at: early, withIntermediateDirectories: true)
        for length in [1, 2, 9, 10, 11, 30] {
            let partial = early.appendingPathComponent("p\(length).djb")
            try Data(valid[0..<length]).write(to: partial)
            let status = try target.ingest([early.path]).files.first { $0.path == partial.path }?.status
            guard case .incomplete = status else { return XCTFail("\(length) bytes: \(String(describing: status))") }
            XCTAssertTrue(FileManager.default.fileExists(atPath: partial.path), "\(length) bytes")
            try FileManager.default.removeItem(at: partial)
        }
        // So does an encrypted bundle's start: its magic and version in the clear, 1 to 9 bytes.
        let v2 = BundleFormat.magic + [EncryptedFormat.major, 0]
        for length in [1, 8, 9] {
            let partial = early.appendingPathComponent("e\(length).djb")
            try Data(v2[0..<length]).write(to: partial)
            let status = try target.ingest([early.path]).files.first { $0.path == partial.path }?.status
            guard case .incomplete = status else {
                return XCTFail("encrypted, \(length) bytes: \(String(describing: status))")
            }
            try FileManager.default.removeItem(at: partial)
        }
        try Data("x".utf8).write(to: early.appendingPathComponent("x.djb"))
        guard case .refused(let why) = try target.ingest([early.path]).files[0].status else {
            return XCTFail("one byte that is not gzip's waited")
        }
        XCTAssertTrue(why.hasPrefix("not a gzip file, so not a bundle"), why)
        // The copy completes; the next run loads it.
        try Data(valid).write(to: path)
        guard case .loaded = try target.ingest([drop.path]).files[0].status else {
            return XCTFail("completed file not loaded")
        }
        // A partial file that stays incomplete past the grace period is quarantined.
        try Data(valid[0..<100]).write(to: drop.appendingPathComponent("c.djb"))
        try FileManager.default.setAttributes(
            [.modificationDate: Date(timeIntervalSinceNow: -7200)],
            ofItemAtPath: drop.appendingPathComponent("c.djb").path)
        // Found in the drop folder (a file the user names is refused where it stands, never moved).
        guard case .refused = try target.ingest([drop.path]).files.first(where: { $0.path.hasSuffix("c.djb") })?.status
        else {
            return XCTFail("stale partial file not refused")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: drop.appendingPathComponent("quarantine/c.djb").path))
    }

    /// A file whose gzip stream is whole but whose data stops short was damaged before it was
    /// compressed, not cut while copied: it is refused at once, even while fresh (found from
    /// outside: such a file waited out the grace as "truncated" and ingest exited 0).
    func testAWholeGzipStreamOfCutDataIsRefusedAtOnce() throws {
        try target.exec("UPDATE ds_setting SET value = '3600' WHERE name = 'partial_grace_seconds'")
        let reader = try GzipReader(source: .memory(valid), maxOutput: 1 << 30)
        var plain: [UInt8] = []
        while true {
            let piece = try reader.next(max: 1 << 16)
            if piece.isEmpty { break }
            plain += piece
        }
        // Too short to hold its magic, version and trailer (96 bytes of digest and signature).
        let least = BundleSeal.trailerBytes + BundleFormat.magic.count + 2
        for keep in [12, 40, least - 1, least] {
            try assertRefused(
                try Gzip.compress(Array(plain[0..<keep])), "damaged: the data ends before its trailer",
                "\(keep) of \(plain.count) bytes")
        }
        // Longer: its last 96 bytes are taken for the trailer, which does not match.
        for keep in [least + 1, 3 * least, plain.count - 97, plain.count - 96, plain.count - 1] {
            try assertRefused(
                try Gzip.compress(Array(plain[0..<keep])), "checksum mismatch", "\(keep) of \(plain.count) bytes")
        }
    }

    func testRandomBitFlipsAreRefused() throws {
        let seed: UInt64 = 5
        var rng = SeededRandom(seed: seed)
        for i in 0..<2500 {
            var bytes = valid!
            let bit = Int.random(in: 0..<(bytes.count * 8), using: &rng)
            bytes[bit / 8] ^= UInt8(1 << (bit % 8))
            try assertRefused(bytes, nil, "seed \(seed) case \(i): bit \(bit) flipped")
        }
    }

    func testRandomByteEditsAreRefused() throws {
        let seed: UInt64 = 7
        var rng = SeededRandom(seed: seed)
        var tested = 0
        while tested < 1000 {
            var bytes = valid!
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            if bytes == valid { continue }
            try assertRefused(bytes, nil, "seed \(seed) edit \(tested)")
            tested += 1
        }
    }

    func testCraftedHeadersAndSignatures() throws {
        let craft = try BundleCrafter(file: validPath)
        let stranger = Curve25519.Signing.PrivateKey()
        // The crafted copy, re-signed by the real key, is accepted: the tests below change one thing each.
        XCTAssertTrue(BundleInspector.check(bytes: try craft.bytes(signWith: senderKey)))

        var h = craft.header
        h.publicKey = Array(stranger.publicKey.rawRepresentation)
        var c = craft
        c.header = h
        try assertRefused(
            try c.bytes(signWith: stranger), "different key than the one trusted for sender",
            "signed by an impostor of a trusted node")

        h = craft.header
        h.sender = "stranger"
        h.publicKey = Array(stranger.publicKey.rawRepresentation)
        c = craft
        c.header = h
        try assertRefused(
            try c.bytes(signWith: stranger), "stranger is not trusted here", quarantined: false, "unknown sender")

        h = craft.header
        h.sender = "target"
        h.publicKey = Array(stranger.publicKey.rawRepresentation)
        c = craft
        c.header = h
        try assertRefused(
            try c.bytes(signWith: stranger), "claims to come from target", "claims to be the ingesting node")

        try assertRefused(try craft.bytes(signWith: stranger), "signature does not verify", "signed by the wrong key")
        // Alter one letter inside a text value, so the records still parse.
        c = craft
        let at = (0..<(c.body.count - 7)).first { Array(c.body[$0..<$0 + 7]) == Array("changed".utf8) }!
        c.body[at] = UInt8(ascii: "C")
        try assertRefused(try c.bytes(), "signature does not verify", "altered, digest recomputed, old signature")
        try assertRefused(
            try c.bytes(digest: Array(SHA256.hash(data: craft.content()))), "checksum mismatch", "altered, old digest")

        h = craft.header
        h.origins[0].first += 1
        h.origins[0].count -= 1
        h.changeCount -= 1
        c = craft
        c.header = h
        try assertRefused(try c.bytes(signWith: senderKey), nil, "header range too narrow")
        h = craft.header
        h.origins[0].last += 1
        h.origins[0].count += 1
        h.changeCount += 1
        c = craft
        c.header = h
        try assertRefused(try c.bytes(signWith: senderKey), "header", "header claims one change more")

        c = craft
        c.major = 2
        try assertRefused(
            try c.bytes(signWith: senderKey), "a newer datajoin wrote it (then upgrade)", "a newer major version")
        c = craft
        c.major = 0
        try assertRefused(try c.bytes(signWith: senderKey), "unknown bundle format version", "major 0")

        var unsigned = ByteWriter()
        for (id, payload) in [(1, "sender"), (2, craft.header.senderEpoch)] {
            unsigned.varint(UInt64(id))
            var p = ByteWriter()
            p.string(payload)
            unsigned.data(p.bytes)
        }
        unsigned.varint(6)
        var cnt = ByteWriter()
        cnt.varint(0)
        unsigned.data(cnt.bytes)
        try assertRefused(
            try craft.bytes(signWith: senderKey, headerBytes: unsigned.bytes), "unsigned", "no public key")

        h = craft.header
        h.sender = "../../etc"
        c = craft
        c.header = h
        try assertRefused(try c.bytes(signWith: senderKey), "sender node name", "path tricks in the sender name")

        try assertRefused(
            try BundleCrafter.gzip((0..<5000).map { _ in UInt8.random(in: 0...255) }), "not a DataJoin bundle",
            "valid gzip holding garbage")
        try assertRefused(Array("not even gzip".utf8), "not a gzip file", "plain text")
        try assertRefused([], "empty", "an empty file")
    }

    /// A validly signed file that carries one change twice (a peer's bug; the header's ranges
    /// allow it when another seq is missing): the change loads once and the copy is skipped, on
    /// both brands. PostgreSQL loads with COPY, which meets the
    /// copy as a duplicate key and loads the file again the slow way.
    func testAChangeTwiceInOneFileLoadsOnce() throws {
        let source = try BundleReader(path: validPath, maxExpandedBytes: 1 << 30)
        var changes: [Change] = []
        while let c = try source.next() { changes.append(c) }
        // Seqs 2, 2, 4 fit the header's range 2-4 of three changes (3 is simply missing).
        let header = source.header
        XCTAssertEqual(changes.map(\.seq), [2, 3, 4])
        let out = try TestDatabases.subfolder(folder, "twice")
        let name = BundleFormat.fileName(
            origin: header.sender, epoch: header.senderEpoch, first: header.origins[0].first,
            last: header.origins[0].last)
        let writer = try BundleWriter(folder: out.path, fileName: name, header: header, signingKey: senderKey)
        for c in [changes[0], changes[0], changes[2]] { try writer.add(c, table: nil) }
        let file = try writer.finish().path
        for brand in [Brand.sqlite, .postgres] {
            let t = try TestNode("t\(brand)", brand, folder: folder)
            try trustAll([sender, t])
            let report = try t.ingest([file])
            XCTAssertEqual(report.files.map(\.status), [.loaded(changes: 2, skipped: 1)], "\(brand)")
            XCTAssertEqual(try TestDatabases.dump(t.db, "ds_change_inbox").count, 2, "\(brand)")
            XCTAssertEqual(try t.db.scalar("SELECT count(DISTINCT seq) FROM ds_change_inbox").asInt64, 2, "\(brand)")
        }
    }

    func testCraftedRecordsAreRefused() throws {
        let craft = try BundleCrafter(file: validPath)
        // A table definition with a control character in its name.
        var bad = craft
        var w = ByteWriter()
        w.byte(BundleFormat.Record.table.rawValue)
        w.varint(7)
        w.string("sales\u{1}order")
        w.varint(1)
        w.string("id")
        w.varint(1)
        w.varint(0)
        bad.body = w.bytes + craft.body
        try assertRefused(try bad.bytes(signWith: senderKey), "invalid table name", "control character in a table name")
        // A change that refers to a table index never defined.
        w = ByteWriter()
        w.byte(BundleFormat.Record.change.rawValue)
        w.varint(0)
        w.varint(2)
        w.varint(1)
        w.varint(0)
        w.byte(UInt8(ascii: "D"))
        w.varint(99)
        w.varint(2)
        bad.body = w.bytes + craft.body
        try assertRefused(try bad.bytes(signWith: senderKey), "undefined table", "undefined table index")
        // A seq, clock stamp or row generation out of range is named (found from outside: "a
        // count of 18446744073709551615 is over the limit …" for each).
        for (field, fields) in [
            ("a change's seq", [UInt64.max, 1, 1]), ("a change's clock stamp", [2, UInt64.max, 1]),
            ("a change's row generation", [2, 1, UInt64.max]),
        ] {
            // A table defined first (its number 7), so that the row generation is read.
            w = ByteWriter()
            w.byte(BundleFormat.Record.table.rawValue)
            w.varint(7)
            w.string("crafted")
            w.varint(1)
            w.string("id")
            w.varint(1)
            w.varint(0)
            w.byte(BundleFormat.Record.change.rawValue)
            w.varint(0)
            w.varint(fields[0])
            w.varint(fields[1])
            w.varint(0)
            w.byte(UInt8(ascii: "D"))
            w.varint(7)
            w.varint(fields[2])
            bad.body = w.bytes + craft.body
            try assertRefused(try bad.bytes(signWith: senderKey), "\(field) of \(UInt64.max) is over the limit", field)
        }
        // An origin's or a column's index past its list is named too (found from outside: "a
        // count of 9 is over the limit 3").
        w = ByteWriter()
        w.byte(BundleFormat.Record.change.rawValue)
        w.varint(9)
        bad.body = w.bytes + craft.body
        try assertRefused(
            try bad.bytes(signWith: senderKey), "an origin's index of 9 is over the limit 0", "origin index")
        // An unknown record type.
        bad.body = [0x51] + craft.body
        try assertRefused(try bad.bytes(signWith: senderKey), "unknown record type", "unknown record")
        // A length field claiming far more than is there.
        w = ByteWriter()
        w.byte(BundleFormat.Record.table.rawValue)
        w.varint(7)
        w.varint(UInt64(1) << 40)
        bad.body = w.bytes + craft.body
        try assertRefused(try bad.bytes(signWith: senderKey), "limit", "a huge length")
    }

    func testDecompressionBombIsStoppedAtTheLimit() throws {
        try target.exec(
            "INSERT INTO ds_setting (name, value) VALUES ('max_bundle_expanded_bytes', ?)", [.text(String(1 << 20))])
        // A valid header, then a table record whose name claims 32 MiB of zeros.
        let craft = try BundleCrafter(file: validPath)
        var w = ByteWriter()
        w.byte(BundleFormat.Record.table.rawValue)
        w.varint(0)
        w.varint(32 << 20)
        var c = craft
        c.body = w.bytes
        let bomb = try BundleCrafter.gzip(c.content() + [UInt8](repeating: 0, count: 32 << 20))
        XCTAssertLessThan(bomb.count, 100_000)
        try assertRefused(bomb, "decompression bomb", "32 MiB of zeros behind a 1 MiB limit")
    }

    func testSymlinkInADropFolderIsNotFollowed() throws {
        let drop = folder.appendingPathComponent("links")
        try FileManager.default.createDirectory(at: drop, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: drop.appendingPathComponent("evil.djb").path, withDestinationPath: validPath)
        let before = try fingerprint()
        let r = try target.ingest([drop.path])
        guard case .refused(let reason) = r.files[0].status else { return XCTFail("symlink followed") }
        XCTAssertTrue(reason.contains("not a regular file"), reason)
        XCTAssertEqual(try fingerprint(), before)
    }

    func testReplayChangesNothing() throws {
        try ingest(valid)
        let after = try fingerprint()
        XCTAssertEqual(try ingest(valid), .alreadySeen)
        // The same changes, re-signed into a different file, load nothing new.
        let copy = try BundleCrafter(file: validPath)
        var h = copy.header
        h.createdAt = "2030-01-01T00:00:00Z"
        var c = copy
        c.header = h
        guard case .loaded(0, 3) = try ingest(try c.bytes(signWith: senderKey)) else {
            return XCTFail("replay loaded changes")
        }
        XCTAssertEqual(try fingerprint().filter { !$0.contains("2030-01-01T00:00:00Z") }.count, after.count + 1)
        XCTAssertEqual(try target.rows(), try sender.rows())
    }

    func testRevokedSenderIsRefused() throws {
        XCTAssertTrue(try Trust.revoke(target.db, node: "sender"))
        try assertRefused(valid, "revoked", quarantined: false, "revoked key")
        // Trusting again lets the same file in.
        try target.trust(sender)
        guard case .loaded = try ingest(valid) else { return XCTFail("re-trusted sender refused") }
    }

    func testValuesWithSQLQuotesAndNULAreStoredLiterally() throws {
        let evil = "'); DROP TABLE sales_order; -- \"quoted\" \\ back\u{0}slash"
        try sender.exec("INSERT INTO sales_order (order_id, description) VALUES ('evil', ?)", [.text(evil)])
        try target.ingest(try sender.export(to: folder))
        XCTAssertEqual(try target.db.scalar("SELECT description FROM sales_order WHERE order_id = 'evil'"), .text(evil))
        XCTAssertEqual(
            try target.db.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'sales_order'"), .integer(1))
    }

    func testAChangeForATableNotHereIsHeldNotExecuted() throws {
        let reason = try heldReasonOfADeleteSigned(forTable: "sales_order\"; DROP TABLE sales_order; --")
        XCTAssertTrue(reason.contains("not tracked here"), reason)
        XCTAssertEqual(
            try target.db.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'sales_order'"), .integer(1))
    }

    /// A signed change to one of DataJoin's own tables is held, and its message offers only what
    /// works (found from outside: it said to track ds_trusted_key, which `track` refuses).
    func testAChangeForDataJoinsOwnTableIsHeldWithACureThatWorks() throws {
        let before = try target.db.scalar("SELECT count(*) FROM ds_trusted_key")
        let reason = try heldReasonOfADeleteSigned(forTable: "ds_trusted_key")
        XCTAssertTrue(reason.contains("one of DataJoin's own tables"), reason)
        XCTAssertFalse(reason.contains("datajoin track"), reason)
        XCTAssertEqual(try target.db.scalar("SELECT count(*) FROM ds_trusted_key"), before)
        let dropped = try CLI.ok(["import", "--db", target.url, "--drop-held-table", "ds_trusted_key"])
        XCTAssertTrue(dropped.stdout.contains("dropped 1 held change(s) of ds_trusted_key"), dropped.stdout)
        XCTAssertEqual(try NodeStatus.read(target.db).held.count, 0)
    }

    /// Ingests a bundle signed by the trusted sender holding one delete for `name`; the reason
    /// it is held for.
    private func heldReasonOfADeleteSigned(forTable name: String) throws -> String {
        let craft = try BundleCrafter(file: validPath)
        var w = ByteWriter()
        w.byte(BundleFormat.Record.table.rawValue)
        w.varint(5)
        w.string(name)
        w.varint(1)
        w.string("id")
        w.varint(1)
        w.varint(0)
        var c = craft
        // Replace the first change's table index with the crafted table: rebuild from a known layout
        // instead; simplest is a standalone bundle with one delete for that table.
        var body = w.bytes
        body.append(BundleFormat.Record.change.rawValue)
        var ch = ByteWriter()
        ch.varint(0)
        ch.varint(2)
        ch.varint(1)
        ch.varint(0)
        ch.byte(UInt8(ascii: "D"))
        ch.varint(5)
        ch.varint(2)
        ch.value(.text("x"))
        body += ch.bytes
        body.append(BundleFormat.Record.trailer.rawValue)
        var t = ByteWriter()
        t.varint(1)
        body += t.bytes
        var h = craft.header
        h.origins = [OriginRange(origin: "sender", epoch: h.senderEpoch, first: 2, last: 2, count: 1)]
        h.changeCount = 1
        c.header = h
        c.body = body
        guard case .loaded(1, 0) = try ingest(try c.bytes(signWith: senderKey)) else {
            XCTFail("not loaded")
            return ""
        }
        let held = try NodeStatus.read(target.db).held
        XCTAssertEqual(held.count, 1)
        return held.first?.reason ?? ""
    }
}

/// Trust through relays, and the private key's secrecy.
final class TrustTests: XCTestCase {
    func testRelayedChangesAreAcceptedOnlyFromATrustedRelay() throws {
        let folder = try TestDatabases.tempFolder("trust")
        let origin = try TestNode("origin", .sqlite, folder: folder)
        let hub = try TestNode("hub", .postgres, folder: folder)
        let spoke = try TestNode("spoke", .sqlite, folder: folder)
        try hub.trust(origin)
        try spoke.trust(origin)  // the spoke trusts the origin, not (yet) the hub
        try origin.exec("INSERT INTO sales_order (order_id) VALUES ('relayed')")
        try hub.ingest(try origin.export(to: folder))
        let relayOut = folder.appendingPathComponent("relay")
        try FileManager.default.createDirectory(at: relayOut, withIntermediateDirectories: true)
        let relayed = try Exporter.export(hub.db, ExportOptions(folder: relayOut.path, relay: true)).map(\.path)
        var r = try spoke.ingest(relayed)
        guard case .refused(let reason) = r.files[0].status else {
            return XCTFail("relay bundle from an untrusted hub accepted")
        }
        XCTAssertTrue(reason.contains("hub is not trusted here"), reason)
        XCTAssertEqual(try spoke.rows(), [])
        try spoke.trust(hub)
        r = try spoke.ingest(relayed)
        XCTAssertEqual(try spoke.rows().map { $0[0] }, ["relayed"])
    }

    func testThePrivateKeyNeverLeaves() throws {
        let folder = try TestDatabases.tempFolder("secret")
        let a = try TestNode("a", .sqlite, folder: folder, viaCLI: true)
        let secret = try a.db.scalar("SELECT private_key FROM ds_node_key").asString ?? ""
        XCTAssertEqual(secret.count, 64)
        try a.exec("INSERT INTO sales_order (order_id) VALUES ('x')")
        var outputs: [String] = []
        for args in [
            ["key", "--db", a.url], ["status", "--db", a.url, "--json"], ["status", "--db", a.url],
            ["export", "--db", a.url, "--to", folder.path],
        ] {
            let r = try CLI.ok(args)
            outputs.append(r.stdout + r.stderr)
        }
        let bundle = outputs.last!.split(separator: "\n").first { $0.hasSuffix(".djb") }!
        outputs.append(try CLI.ok(["inspect", String(bundle), "--json"]).stdout)
        let raw = Data(try Data(contentsOf: URL(fileURLWithPath: String(bundle))))
        let content = try BundleCrafter(file: String(bundle)).content()
        let secretBytes = Hex.decode(secret)!
        for o in outputs { XCTAssertFalse(o.contains(secret), o) }
        XCTAssertNil(raw.range(of: Data(secretBytes)))
        XCTAssertNil(Data(content).range(of: Data(secretBytes)))
        XCTAssertNil(Data(content).range(of: Data(secret.utf8)))
    }

    func testThePrivateKeyIsOwnerOnlyOnPostgres() throws {
        let folder = try TestDatabases.tempFolder("acl")
        let a = try TestNode("a", .postgres, folder: folder)
        let acl =
            try a.db.scalar(
                "SELECT coalesce(array_to_string(relacl, ','), '') FROM pg_class WHERE relname = 'ds_node_key'"
            ).asString ?? ""
        XCTAssertFalse(
            acl.contains("=r") && acl.split(separator: ",").contains { $0.hasPrefix("=") },
            "PUBLIC can read the private key: \(acl)")
    }
}
