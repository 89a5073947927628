import Crypto
import Foundation
import XCTest

@testable import DataJoin

/// Every chunk, batch and size limit of the code at size − 1, size, size + 1 and 3 × size, end to
/// end on both brands (issue 10): the sizes are set small through `Tuning`, so each boundary
/// runs in a fraction of a second, and every run compares the rows of both nodes and ends with
/// `check` on each (ScenarioTestCase).
final class BoundaryTests: ScenarioTestCase {
    var folder: URL!
    override func setUpWithError() throws {
        try super.setUpWithError()
        folder = try TestDatabases.tempFolder("bounds")
    }

    static let size = 4
    static var counts: [Int] { [size - 1, size, size + 1, 3 * size] }
    static let pairings: [(Brand, Brand)] = [
        (.sqlite, .postgres), (.postgres, .sqlite), (.mariadb, .sqlite), (.sqlite, .mariadb),
    ]

    func sync(_ from: TestNode, _ to: TestNode, max: Int? = nil) throws {
        let out = try TestDatabases.subfolder(folder, "\(from.name)-\(UUID().uuidString.prefix(6))")
        try from.export(to: out, max: max)
        let report = try to.ingest([out.path])
        XCTAssertEqual(report.refused, 0, "\(report.files)")
        // No statement failed and fell back: a wrong multi-row statement would still converge
        // the slow way, change by change, and hide behind it.
        XCTAssertEqual(report.imported?.retriedChangeByChange ?? 0, 0, "the fast path was refused")
    }

    /// `sync`, returning the changes the target applied.
    func syncCounting(_ from: TestNode, _ to: TestNode) throws -> Int {
        let out = try TestDatabases.subfolder(folder, "\(from.name)-\(UUID().uuidString.prefix(6))")
        try from.export(to: out)
        let report = try to.ingest([out.path])
        XCTAssertEqual(report.refused, 0, "\(report.files)")
        XCTAssertEqual(report.imported?.retriedChangeByChange ?? 0, 0, "the fast path was refused")
        return report.imported?.applied ?? -1
    }

    /// A pair of fresh nodes per count, `body` run for each; rows compared after each sync.
    func eachCount(
        _ label: String, table: String = TestDatabases.salesOrderSQL, track: [String] = ["sales_order"],
        counts: [Int] = BoundaryTests.counts, pairings: [(Brand, Brand)] = BoundaryTests.pairings,
        _ body: (_ a: TestNode, _ b: TestNode, _ n: Int) throws -> Void
    ) throws {
        for (b1, b2) in pairings {
            for n in counts {
                let a = try TestNode("a\(label)\(b1)\(b2)\(n)", b1, folder: folder, table: table, track: track)
                let b = try TestNode("b\(label)\(b1)\(b2)\(n)", b2, folder: folder, table: table, track: track)
                try trustAll([a, b])
                try body(a, b, n)
                for t in track {
                    XCTAssertEqual(try b.rows(t), try a.rows(t), "\(label) \(b1)→\(b2), n = \(n), table \(t)")
                }
            }
        }
    }

    func insert(_ node: TestNode, _ n: Int, from: Int = 0) throws {
        try node.db.retryingWrite { _ in
            for i in from..<(from + n) {
                try node.exec(
                    "INSERT INTO sales_order (order_id, description, quantity) VALUES (?, ?, ?)",
                    [.text("o\(i)"), .text("d\(i)"), .text("\(i)")])
            }
        }
    }

    /// The import chunk (rows per read) on new changes, updates and deletes.
    func testImportChunk() throws {
        Tuning.current.importChunk = Self.size
        try eachCount("import") { a, b, n in
            try insert(a, n)
            try sync(a, b)
            try a.exec("UPDATE sales_order SET description = description || '+'")
            try a.exec("DELETE FROM sales_order WHERE quantity = '0'")
            try sync(a, b)
        }
    }

    /// Keys per multi-row statement (`MultiRow.rowsPerStatement`: 256 rows): the importer
    /// reads, updates and deletes n rows of one chunk in statements of at most 256 keys, for a
    /// key of one column (`IN`) and of two (each brand's `keyIn`). Every brand is a target.
    func testRowsPerStatement() throws {
        let limit = MultiRow.rowsPerStatement(3)
        XCTAssertEqual(limit, 256)
        let counts = [limit - 1, limit, limit + 1, 3 * limit]
        XCTAssertLessThanOrEqual(3 * limit, Tuning.current.importChunk, "all keys in one chunk")
        let table = """
            CREATE TABLE sales_order (order_id VARCHAR(20) PRIMARY KEY NOT NULL, description VARCHAR(40), quantity VARCHAR(20));
            CREATE TABLE pair (k1 INTEGER NOT NULL, k2 VARCHAR(20) NOT NULL, v VARCHAR(40), PRIMARY KEY (k1, k2));
            """
        try eachCount(
            "rows", table: table, track: ["sales_order", "pair"], counts: counts,
            pairings: [(.sqlite, .postgres), (.postgres, .sqlite), (.sqlite, .mariadb)]
        ) { a, b, n in
            try a.db.retryingWrite { _ in
                for i in 0..<n {
                    try a.exec(
                        "INSERT INTO sales_order (order_id, description, quantity) VALUES (?, ?, ?)",
                        [.text("o\(i)"), .text("d\(i)"), .text("\(i)")])
                    try a.exec(
                        "INSERT INTO pair (k1, k2, v) VALUES (?, ?, ?)",
                        [.integer(Int64(i % 7)), .text("k\(i)"), .text("v\(i)")])
                }
            }
            try sync(a, b)
            XCTAssertEqual(try b.db.scalar("SELECT count(*) FROM pair").asInt64, Int64(n))
            // Every row updated (read and written n at a time), then all but the first deleted.
            try a.exec("UPDATE sales_order SET description = description || '+'")
            try a.exec("UPDATE pair SET v = v || '+'")
            try sync(a, b)
            XCTAssertEqual(try b.db.scalar("SELECT count(*) FROM pair WHERE v LIKE '%+'").asInt64, Int64(n))
            try a.exec("DELETE FROM sales_order WHERE order_id <> 'o0'")
            try a.exec("DELETE FROM pair WHERE k2 <> 'k0'")
            try sync(a, b)
            XCTAssertEqual(try b.db.scalar("SELECT count(*) FROM pair").asInt64, 1)
            XCTAssertEqual(try b.db.scalar("SELECT count(*) FROM sales_order").asInt64, 1)
        }
    }

    /// The import reads its chunks ahead on a second connection when its range holds more than
    /// two (`InboxChunks`): n rows with chunks of 4 around 2 × 4 and 3 × that, new rows, updates
    /// and deletes, every brand a target. At 9 changes and more the reader ran, and the rows agree.
    func testImportReadsAheadPastTwoChunks() throws {
        Tuning.current.importChunk = Self.size
        let twice = 2 * Self.size
        // Chunks taken from the reader: every chunk of a range of more than two, none below.
        func chunks(_ changes: Int) -> Int { changes > twice ? (changes + Self.size - 1) / Self.size : 0 }
        try eachCount("ahead", counts: [twice - 1, twice, twice + 1, 3 * twice]) { a, b, n in
            let before = InboxChunks.chunksReadAhead
            try insert(a, n)
            XCTAssertEqual(try syncCounting(a, b), n, "n = \(n): applied")
            XCTAssertEqual(InboxChunks.chunksReadAhead - before, chunks(n), "n = \(n)")
            try a.exec("UPDATE sales_order SET description = description || '+'")
            try a.exec("DELETE FROM sales_order WHERE quantity = '0'")
            XCTAssertEqual(try syncCounting(a, b), n + 1, "n = \(n): n updates and a delete applied")
            XCTAssertEqual(InboxChunks.chunksReadAhead - before, chunks(n) + chunks(n + 1), "n = \(n)")
        }
    }

    /// A change the target refuses in the third of five chunks read ahead: the fast path is
    /// rolled back with its reader (waiting to read the fourth: a budget of one byte lets a
    /// chunk be read only when none is held), the bundle goes change by change, only that
    /// change is held.
    func testAnImportReadingAheadThatIsRefusedGoesChangeByChange() throws {
        provokesRefusals = true
        Tuning.current.importChunk = Self.size
        Tuning.current.readAheadBytes = 1
        for (b1, b2) in Self.pairings {
            let a = try TestNode("aref\(b1)\(b2)", b1, folder: folder)
            let b = try TestNode("bref\(b1)\(b2)", b2, folder: folder)
            try trustAll([a, b])
            try b.exec("CREATE UNIQUE INDEX ahead_unique ON sales_order (description)")
            try b.exec("INSERT INTO sales_order (order_id, description, quantity) VALUES ('local', 'd10', 'x')")
            let before = InboxChunks.chunksReadAhead
            try insert(a, 5 * Self.size)
            let out = try TestDatabases.subfolder(folder, "ref\(b1)\(b2)")
            _ = try a.export(to: out)
            let report = try b.ingest([out.path])
            XCTAssertEqual(report.imported?.retriedChangeByChange, 1, "\(b1)→\(b2)")
            XCTAssertEqual(report.imported?.stillHeld, 1, "\(b1)→\(b2)")
            XCTAssertEqual(InboxChunks.chunksReadAhead - before, 3, "\(b1)→\(b2): read ahead up to the refusal")
            XCTAssertEqual(
                try b.rows().filter { $0[0] != "local" }, try a.rows().filter { $0[0] != "o10" }, "\(b1)→\(b2)")
            uncheckedNodes.insert(b.name)
        }
    }

    /// A dry run loads the bundle in a transaction it never commits, so a second connection
    /// would read none of it: `ingest --dry-run` and `import --dry-run` of a range of more than
    /// two chunks (the CLI, chunks of 4) report every change, on every brand, and change nothing.
    func testADryRunOfManyChunksReportsEveryChange() throws {
        for brand in [Brand.sqlite, .postgres, .mariadb] {
            let a = try TestNode("adry\(brand)", .sqlite, folder: folder)
            let b = try TestNode("bdry\(brand)", brand, folder: folder)
            let dry = try DryRunDatabase(b.db)
            XCTAssertNil(try dry.openReader(), "\(brand): a dry run opens no reader")
            try dry.finish()
            try trustAll([a, b])
            try insert(a, 25)
            let out = try TestDatabases.subfolder(folder, "dry\(brand)")
            _ = try a.export(to: out)
            let sizes = ["DATAJOIN_TEST_SIZES": "importChunk=4"]
            var r = try CLI.run(["ingest", "--db", b.url, "--dry-run", out.path], env: sizes)
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("would apply to sales_order: 25 inserts"), "\(brand): \(r.stdout)")
            try CLI.ok(["ingest", "--db", b.url, "--no-import", out.path])
            r = try CLI.run(["import", "--db", b.url, "--dry-run"], env: sizes)
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("would apply to sales_order: 25 inserts"), "\(brand): \(r.stdout)")
            XCTAssertEqual(try b.rows(), [], "\(brand)")
            try CLI.ok(["import", "--db", b.url], env: sizes)
            XCTAssertEqual(try b.rows(), try a.rows(), "\(brand)")
        }
    }

    /// Small bundles applied in one import transaction (a hub's many laptops): bundles of one
    /// change and of n changes, so groups end below, at and above the limit; a bundle larger
    /// than the group is applied alone, whole. Every bundle is counted once.
    func testImportGroup() throws {
        Tuning.current.importGroup = Self.size
        try eachCount("group") { a, b, n in
            // n bundles of one change each, then one of n changes, then one more of one.
            for i in 0..<n { try insert(a, 1, from: i) }
            let out = try TestDatabases.subfolder(folder, "group-\(UUID().uuidString.prefix(6))")
            var files = try a.export(to: out, max: 1)
            try insert(a, n, from: 100)
            files += try a.export(to: out)
            try insert(a, 1, from: 200)
            try a.exec("UPDATE sales_order SET description = description || '+' WHERE order_id = 'o0'")
            files += try a.export(to: out)
            XCTAssertEqual(files.count, n + 2)
            let report = try b.ingest([out.path])
            XCTAssertEqual(report.refused, 0)
            XCTAssertEqual(report.imported?.bundles, n + 2, "every bundle counted once")
            XCTAssertEqual(report.imported?.applied, 2 * n + 2)
            XCTAssertEqual(
                try b.db.scalar("SELECT fromoutboxpointer FROM ds_program_parameter WHERE id = 1001").asInt64,
                try b.db.scalar("SELECT max(id) FROM ds_change_inbox").asInt64)
        }
    }

    /// Rows per multi-row INSERT into the inbox (SQLite, and PostgreSQL when a bundle repeats a
    /// change, where COPY is not used).
    func testInboxLoadBatch() throws {
        Tuning.current.inboxLoadBatch = Self.size
        try eachCount("load") { a, b, n in
            try insert(a, n)
            let out = try TestDatabases.subfolder(folder, "twice-\(UUID().uuidString.prefix(6))")
            try a.export(to: out)
            try b.ingest([out.path])
            // A resend carries the same changes again: loaded as duplicates, skipped.
            let again = try TestDatabases.subfolder(folder, "again-\(UUID().uuidString.prefix(6))")
            try Exporter.export(a.db, ExportOptions(folder: again.path, resend: true))
            let report = try b.ingest([again.path])
            XCTAssertEqual(report.refused, 0)
            XCTAssertEqual(try b.db.scalar("SELECT count(*) FROM ds_change_inbox").asInt64, Int64(n))
        }
    }

    /// From this many new rows PostgreSQL writes with COPY (rows and versions), below it INSERT.
    func testCopyThreshold() throws {
        Tuning.current.copyThreshold = Self.size
        try eachCount("copy") { a, b, n in
            try insert(a, n)
            try sync(a, b)
        }
    }

    /// Keys per version lookup and write: inserts, then updates of every row.
    func testVersionBatch() throws {
        Tuning.current.versionBatch = Self.size
        try eachCount("versions") { a, b, n in
            try insert(a, n)
            try sync(a, b)
            try b.exec("UPDATE sales_order SET quantity = quantity || '!'")
            try a.exec("UPDATE sales_order SET description = 'a'")
            try sync(b, a)
            try sync(a, b)
        }
    }

    /// Rows per snapshot read: a third node joins from a snapshot.
    func testSnapshotChunk() throws {
        Tuning.current.snapshotChunk = Self.size
        try eachCount("snap") { a, b, n in
            try insert(a, n)
            try a.exec("DELETE FROM sales_order WHERE quantity = '1'")
            let out = try TestDatabases.subfolder(folder, "snap-\(UUID().uuidString.prefix(6))")
            try Snapshotter.write(a.db, folder: out.path)
            try b.ingest([out.path])
        }
    }

    /// Inbox seqs per page when an origin's mark advances: bundles of one change arrive in
    /// reverse order, so the last one moves the mark over all of them.
    func testHoldingsPage() throws {
        Tuning.current.holdingsPage = Self.size
        try eachCount("page") { a, b, n in
            // One transaction per row: a bundle never splits one.
            for i in 0..<n { try a.exec("INSERT INTO sales_order (order_id) VALUES (?)", [.text("o\(i)")]) }
            let out = try TestDatabases.subfolder(folder, "one-\(UUID().uuidString.prefix(6))")
            let paths = try Exporter.export(a.db, ExportOptions(folder: out.path, maxChanges: 1)).map(\.path)
            XCTAssertEqual(paths.count, n)
            for p in paths.reversed() { try b.ingest([p]) }
            let inbox = try b.db.rows("SELECT origin, seq FROM ds_change_inbox ORDER BY seq").map { $0.values }
            XCTAssertEqual(
                try b.db.scalar("SELECT contiguous FROM ds_origin_state WHERE origin = ?", [.text(a.name)]).asInt64,
                Int64(n),
                "\(a.brand)→\(b.brand): \(inbox)")
        }
    }

    /// The expanded size after which export starts a new bundle (at a transaction boundary).
    func testBundleTargetBytes() throws {
        Tuning.current.bundleTargetBytes = 40
        try eachCount("target") { a, b, n in
            for i in 0..<n {
                try a.exec(
                    "INSERT INTO sales_order (order_id, description) VALUES (?, ?)",
                    [.text("o\(i)"), .text(String(repeating: "d", count: 36))])
            }
            let out = try TestDatabases.subfolder(folder, "sized-\(UUID().uuidString.prefix(6))")
            XCTAssertEqual(try a.export(to: out).count, n, "one change per bundle once each passes the target")
            try b.ingest([out.path])
        }
    }

    /// Payload bytes per import chunk and per inbox load batch: one large row at a time.
    func testChunkBytes() throws {
        Tuning.current.chunkBytes = 4 * 1024
        try eachCount("bytes") { a, b, n in
            try a.db.retryingWrite { _ in
                for i in 0..<n {
                    try a.exec(
                        "INSERT INTO sales_order (order_id, description) VALUES (?, ?)",
                        [.text("o\(i)"), .text(String(repeating: "x", count: 1024 * (i + 1)))])
                }
            }
            try sync(a, b)
        }
    }

    /// The insert trigger's split of wide rows (SQLite 60 columns per json_object, PostgreSQL 90
    /// values per array): tables of size − 1 to 3 × size value columns, both ways.
    func testCaptureSplits() throws {
        Tuning.current.sqliteCaptureSplit = Self.size
        Tuning.current.postgresCaptureSplit = Self.size
        for width in Self.counts {
            // The key is a column too: `width` columns in all.
            let columns = (1..<width).map { "c\($0) TEXT" }
            let ddl =
                "CREATE TABLE wide (k TEXT PRIMARY KEY\(columns.isEmpty ? "" : ", " + columns.joined(separator: ", ")))"
            for (b1, b2) in Self.pairings {
                let a = try TestNode("wa\(b1)\(b2)\(width)", b1, folder: folder, table: ddl, track: ["wide"])
                let b = try TestNode("wb\(b1)\(b2)\(width)", b2, folder: folder, table: ddl, track: ["wide"])
                try trustAll([a, b])
                let values = (1..<width).map { Value.text("v\($0)") }
                try a.exec(
                    "INSERT INTO wide VALUES (?\(String(repeating: ", ?", count: width - 1)))", [.text("k1")] + values)
                try b.exec(
                    "INSERT INTO wide VALUES (?\(String(repeating: ", ?", count: width - 1)))",
                    [.text("k2")] + values.reversed())
                try sync(a, b)
                try sync(b, a)
                XCTAssertEqual(try a.rows("wide").count, 2)
                XCTAssertEqual(try a.rows("wide"), try b.rows("wide"), "\(width) columns, \(b1)")
            }
        }
    }

    // MARK: - Format limits

    /// A field of the largest size is read; one byte more is refused before it is allocated.
    func testFieldLimit() throws {
        for (n, ok) in [
            (ByteReader<ArraySource>.maxField - 1, true), (ByteReader<ArraySource>.maxField, true),
            (ByteReader<ArraySource>.maxField + 1, false), (3 * ByteReader<ArraySource>.maxField, false),
        ] {
            var w = ByteWriter()
            w.varint(UInt64(n))
            var r = ByteReader(ArraySource(w.bytes + (ok ? [UInt8](repeating: 0x61, count: n) : [])))
            if ok { XCTAssertEqual(try r.data().count, n) } else { XCTAssertThrowsError(try r.data()) }
        }
    }

    /// A header of 1 MiB − 1, 1 MiB, 1 MiB + 1 and 3 MiB (padded with an optional field a newer
    /// minor version might add): the first two load, the others are refused.
    func testHeaderLimit() throws {
        let node = try TestNode("t", .sqlite, folder: folder)
        let key = Curve25519.Signing.PrivateKey()
        try Trust.trust(node.db, node: "peer", publicKey: Hex.encode(Array(key.publicKey.rawRepresentation)))
        let base = OutsideInputTests.header(
            sender: "peer", key: key,
            origins: [OriginRange(origin: "peer", epoch: "00aa11bb", first: 1, last: 1, count: 1)], count: 1)
        let plain = base.encode().count
        for (size, ok) in [
            (BundleFormat.maxHeaderBytes - 1, true), (BundleFormat.maxHeaderBytes, true),
            (BundleFormat.maxHeaderBytes + 1, false), (3 * BundleFormat.maxHeaderBytes, false),
        ] {
            // Field 99: varint id (1 byte), varint length (3 bytes up to 2 MiB, then 4), payload.
            let payload = size - plain - 1 - (size - plain - 4 >= 1 << 21 ? 4 : 3)
            var w = ByteWriter()
            w.bytes = base.encode()
            w.varint(99)
            w.data([UInt8](repeating: 0, count: payload))
            XCTAssertEqual(w.bytes.count, size)
            var content = ByteWriter()
            content.bytes += BundleFormat.magic
            content.byte(BundleFormat.major)
            content.byte(BundleFormat.minor)
            content.data(w.bytes)
            content.bytes += OutsideInputTests.table + OutsideInputTests.change(seq: 1)
            content.byte(BundleFormat.Record.trailer.rawValue)
            content.varint(1)
            let digest = Array(SHA256.hash(data: content.bytes))
            let bytes = try BundleCrafter.gzip(content.bytes + digest + Array(key.signature(for: digest)))
            let drop = try TestDatabases.subfolder(folder, "h\(size)")
            try Data(bytes).write(to: drop.appendingPathComponent("h.djb"))
            let report = try node.ingest([drop.path])
            if ok {
                guard case .loaded(let n, let skipped) = report.files[0].status, n + skipped == 1 else {
                    return XCTFail("header of \(size) bytes: \(report.files[0].status)")
                }
            } else {
                guard case .refused = report.files[0].status else {
                    return XCTFail("header of \(size) bytes: \(report.files[0].status)")
                }
            }
        }
        XCTAssertEqual(try node.db.scalar("SELECT count(*) FROM sales_order"), .integer(1))
    }

    /// Columns of one table definition (10,000) and of all definitions (200,000).
    func testColumnLimits() throws {
        let key = Curve25519.Signing.PrivateKey()
        func definitions(_ tables: Int, columns: Int) -> [UInt8] {
            var w = ByteWriter()
            for t in 0..<tables {
                w.byte(BundleFormat.Record.table.rawValue)
                w.varint(UInt64(t))
                w.string("t\(t)")
                w.varint(UInt64(columns))
                for c in 0..<columns { w.string("c\(c)") }
                w.varint(1)
                w.varint(0)
            }
            return w.bytes
        }
        for (columns, ok) in [(9_999, true), (10_000, true), (10_001, false), (30_000, false)] {
            let bytes = try OutsideInputTests.bundle(
                header: OutsideInputTests.header(sender: "p", key: key), records: definitions(1, columns: columns),
                key: key)
            XCTAssertEqual(BundleInspector.check(bytes: bytes), ok, "\(columns) columns")
        }
        // 20 tables of 10,000 columns is the most in all; one column more is refused.
        for (tables, extra, ok) in [(20, -1, true), (20, 0, true), (20, 1, false), (60, 0, false)] {
            var records = definitions(tables, columns: 10_000)
            if extra < 0 {
                // The last table with one column fewer.
                records = definitions(tables - 1, columns: 10_000)
                var w = ByteWriter()
                w.byte(BundleFormat.Record.table.rawValue)
                w.varint(UInt64(tables))
                w.string("last")
                w.varint(9_999)
                for c in 0..<9_999 { w.string("c\(c)") }
                w.varint(1)
                w.varint(0)
                records += w.bytes
            } else if extra > 0 {
                // One more table of one column.
                var w = ByteWriter()
                w.byte(BundleFormat.Record.table.rawValue)
                w.varint(UInt64(tables))
                w.string("last")
                w.varint(1)
                w.string("c0")
                w.varint(1)
                w.varint(0)
                records += w.bytes
            }
            let bytes = try OutsideInputTests.bundle(
                header: OutsideInputTests.header(sender: "p", key: key), records: records, key: key)
            XCTAssertEqual(
                BundleInspector.check(bytes: bytes, maxExpandedBytes: 1 << 30), ok, "\(tables) tables, \(extra)")
        }
    }

    /// The columns the table definitions of one bundle may hold (`bundleDefinedColumns`, 2 per
    /// table here: 4 tables a bundle): an export of changes to size − 1 … 3 × size tables cuts
    /// before the table that does not fit, and so does the hub's relay of them; every file is
    /// read, both ways. Found from outside: 90 wide tables made one bundle every reader refused.
    func testBundleDefinedColumns() throws {
        Tuning.current.bundleDefinedColumns = 2 * Self.size
        let tables = (0..<(3 * Self.size)).map { "t\($0)" }
        let ddl = tables.map { "CREATE TABLE \($0) (id VARCHAR(64) PRIMARY KEY NOT NULL, v TEXT)" }.joined(
            separator: ";\n")
        for (b1, b2) in [(Brand.sqlite, Brand.postgres), (.mariadb, .sqlite), (.postgres, .mariadb)] {
            for n in Self.counts {
                let a = try TestNode("wa\(b1)\(b2)\(n)", b1, folder: folder, table: ddl, track: tables)
                let hub = try TestNode("wh\(b1)\(b2)\(n)", b2, folder: folder, table: ddl, track: tables)
                let c = try TestNode("wc\(b1)\(b2)\(n)", .sqlite, folder: folder, table: ddl, track: tables)
                try trustAll([a, hub, c])
                try a.db.retryingWrite { _ in
                    for t in tables.prefix(n) {
                        try a.exec("INSERT INTO \(t) (id, v) VALUES (?, ?)", [.text("k"), .text("\(t) from a")])
                    }
                }
                let out = try TestDatabases.subfolder(folder, "wide-\(UUID().uuidString.prefix(6))")
                let expected = (n + Self.size - 1) / Self.size
                XCTAssertEqual(try a.export(to: out).count, expected, "\(b1) n = \(n)")
                XCTAssertEqual(try hub.ingest([out.path]).refused, 0)
                let down = try TestDatabases.subfolder(folder, "down-\(UUID().uuidString.prefix(6))")
                let relayed = try Exporter.export(hub.db, ExportOptions(folder: down.path, relay: true))
                XCTAssertEqual(relayed.count, expected, "\(b2) relay n = \(n)")
                XCTAssertEqual(try c.ingest([down.path]).refused, 0)
                for t in tables {
                    XCTAssertEqual(try hub.rows(t), try a.rows(t), "\(b1)→\(b2) n = \(n) \(t)")
                    XCTAssertEqual(try c.rows(t), try a.rows(t), "\(b1)→\(b2)→sqlite n = \(n) \(t)")
                }
                XCTAssertEqual(try c.db.scalar("SELECT count(*) FROM t0"), .integer(1))
            }
        }
    }

    /// A PostgreSQL source transaction stays whole when the definitions cut falls inside it and
    /// it began inside the bundle: the bundle ends before it. One that fills a bundle alone is
    /// cut where the definitions stop fitting, and said.
    func testTheDefinitionsCutKeepsAPostgresTransactionWhole() throws {
        Tuning.current.bundleDefinedColumns = 8
        let tables = (0..<6).map { "t\($0)" }
        let ddl = tables.map { "CREATE TABLE \($0) (id VARCHAR(64) PRIMARY KEY NOT NULL, v TEXT)" }.joined(
            separator: ";\n")
        let a = try TestNode("txa", .postgres, folder: folder, table: ddl, track: tables)
        let b = try TestNode("txb", .sqlite, folder: folder, table: ddl, track: tables)
        try trustAll([a, b])
        for group in [tables.prefix(3), tables.suffix(3)] {
            try a.db.retryingWrite { _ in
                for t in group { try a.exec("INSERT INTO \(t) (id, v) VALUES ('k', 'one')") }
            }
        }
        let reporter = NoticeCollector()
        let out = try TestDatabases.subfolder(folder, "tx")
        let written = try Exporter.export(a.db, ExportOptions(folder: out.path), reporter: reporter)
        XCTAssertEqual(written.map { [$0.first, $0.last] }, [[1, 3], [4, 6]])
        XCTAssertEqual(reporter.notices, [])
        // One transaction over five tables: cut after the fourth, and said.
        try a.db.retryingWrite { _ in
            for t in tables.prefix(5) { try a.exec("UPDATE \(t) SET v = 'two'") }
        }
        let cut = try Exporter.export(a.db, ExportOptions(folder: out.path), reporter: reporter)
        XCTAssertEqual(cut.map { [$0.first, $0.last] }, [[7, 10], [11, 11]])
        XCTAssertTrue(reporter.notices.joined().contains("cut where a transaction may go on"), "\(reporter.notices)")
        XCTAssertEqual(try b.ingest([out.path]).refused, 0)
        for t in tables { XCTAssertEqual(try b.rows(t), try a.rows(t), t) }
        // b relays them on (inbox ids 1-11): the same cuts, by the origin's transactions.
        let c = try TestNode("txc", .mariadb, folder: folder, table: ddl, track: tables)
        try c.trust(b)
        try b.trust(c)
        let relayNotices = NoticeCollector()
        let down = try TestDatabases.subfolder(folder, "tx-down")
        let relayed = try Exporter.export(b.db, ExportOptions(folder: down.path, relay: true), reporter: relayNotices)
        XCTAssertEqual(relayed.map { [$0.first, $0.last] }, [[1, 3], [4, 6], [7, 10], [11, 11]])
        XCTAssertEqual(relayNotices.notices.count, 1, "\(relayNotices.notices)")
        XCTAssertEqual(try c.ingest([down.path]).refused, 0)
        for t in tables { XCTAssertEqual(try c.rows(t), try a.rows(t), t) }
    }

    /// A snapshot is one file: tables of 3 × 2 columns against a limit of 5, 6 and 7 columns
    /// (size − 1: refused before any work, with the counts; size and size + 1: written, and a
    /// new node joins from it).
    func testASnapshotPastTheDefinitionsLimitIsRefusedFirst() throws {
        let tables = ["s0", "s1", "s2"]
        let ddl = tables.map { "CREATE TABLE \($0) (id VARCHAR(64) PRIMARY KEY NOT NULL, v TEXT)" }.joined(
            separator: ";\n")
        for limit in [5, 6, 7] {
            Tuning.current.bundleDefinedColumns = limit
            let a = try TestNode("sa\(limit)", .sqlite, folder: folder, table: ddl, track: tables)
            let b = try TestNode("sb\(limit)", .postgres, folder: folder, table: ddl, track: tables)
            try trustAll([a, b])
            for t in tables { try a.exec("INSERT INTO \(t) (id, v) VALUES ('k', 'v')") }
            let out = try TestDatabases.subfolder(folder, "snap-\(limit)")
            if limit < 6 {
                XCTAssertThrowsError(try Snapshotter.write(a.db, folder: out.path)) { e in
                    XCTAssertTrue("\(e)".contains("the tables define 6 columns and"), "\(e)")
                }
                XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path), [])
                XCTAssertEqual(try a.db.scalar("SELECT count(*) FROM ds_change_outbox WHERE seq IS NULL"), .integer(3))
                continue
            }
            _ = try Snapshotter.write(a.db, folder: out.path)
            XCTAssertEqual(try b.ingest([out.path]).refused, 0)
            for t in tables { XCTAssertEqual(try b.rows(t), try a.rows(t), "\(t), limit \(limit)") }
        }
    }

    /// The writer against the reader's own limits on definitions (200,000 columns, 8 MiB of
    /// names): everything up to the limit is written and read; the change past it is refused
    /// by the writer before a byte of it is written, and the file so far reads whole.
    func testTheWriterStopsAtTheReadersLimitsOnDefinitions() throws {
        let key = Curve25519.Signing.PrivateKey()
        let out = try TestDatabases.subfolder(folder, "defs")
        /// A change of table `t` whose definition is "id" and `names`.
        func change(_ seq: Int64, table t: String, _ names: [String]) -> Change {
            Change(
                origin: "p", epoch: "00aa11bb", seq: seq, hlc: 1 << 16, txid: 0, op: .insert, table: t, cl: 1,
                key: [.text("k")], columns: names.map { .init(name: $0, value: .null) }, oldValue: nil, keyNames: ["id"]
            )
        }
        /// Writes `tables` in order; how many the writer took before it refused one (all: nil).
        func write(_ tables: [(String, [String])], fits: Int) throws -> Int? {
            let header = OutsideInputTests.header(
                sender: "p", key: key,
                origins: [OriginRange(origin: "p", epoch: "00aa11bb", first: 1, last: Int64(fits), count: Int64(fits))],
                count: Int64(fits))
            let writer = try BundleWriter(
                folder: out.path, fileName: "p_\(UUID().uuidString.prefix(8)).djb", header: header, signingKey: key)
            var refusedAt: Int?
            for (i, (t, names)) in tables.enumerated() {
                do { try writer.add(change(Int64(i + 1), table: t, names), table: nil) } catch is DefinitionsFull {
                    refusedAt = i
                    break
                }
            }
            let path = try writer.finish().path
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            XCTAssertTrue(BundleInspector.check(bytes: bytes, maxExpandedBytes: 1 << 30), "the file reads whole")
            return refusedAt
        }
        let wide = (1..<10_000).map { "c\($0)" }  // with "id", 10,000 columns a table
        // Columns: 20 tables of 10,000 is the limit.
        for (label, refused) in [("-1", nil), ("0", nil), ("+1", 20), ("3x", 20)] as [(String, Int?)] {
            var tables = (0..<(label == "3x" ? 60 : 20)).map { ("t\($0)", wide) }
            if label == "-1" { tables[19].1.removeLast() }
            if label == "+1" { tables.append(("x", [])) }
            XCTAssertEqual(try write(tables, fits: refused ?? tables.count), refused, "columns \(label)")
        }
        // Names: 8 tables "tN" of "id" and 9,999 names of 100 bytes, then a ninth whose names
        // (100 bytes each, the last shorter) reach 8 MiB in all exactly at "0".
        let long = (1..<10_000).map { "c\($0)" + String(repeating: "n", count: 100 - "c\($0)".utf8.count) }
        XCTAssertEqual(Set(long.map(\.utf8.count)), [100])
        let perTable = 2 + 2 + 9_999 * 100
        let rest = (8 << 20) - 8 * perTable - 4
        for (label, extra, refused) in [("-1", -1, nil), ("0", 0, nil), ("+1", 1, 8), ("3x", 0, 8)]
            as [(String, Int, Int?)]
        {
            var tables = (0..<8).map { ("t\($0)", long) }
            var last = Array(long.prefix(rest / 100))
            last.append("z" + String(repeating: "z", count: rest % 100 + extra - 1))
            tables.append(("t8", last))
            if label == "3x" {
                tables[8].1 = long
                tables += (9..<26).map { ("t\($0)", long) }
            }
            XCTAssertEqual(try write(tables, fits: refused ?? tables.count), refused, "names \(label)")
        }
    }

    /// The expanded-size limit (`max_bundle_expanded_bytes`, at most 4 GiB) at a real bundle's
    /// size − 1, size, size + 1: refused, loaded, loaded.
    func testExpandedSizeLimit() throws {
        for (delta, ok) in [(-1, false), (0, true), (1, true), (Int.min, false)] {
            let a = try TestNode("ea\(delta)", .sqlite, folder: folder)
            let b = try TestNode("eb\(delta)", .postgres, folder: folder)
            try trustAll([a, b])
            try insert(a, 20)
            let out = try TestDatabases.subfolder(folder, "e\(delta)")
            let path = try a.export(to: out)[0]
            let expanded = try BundleSeal(path: path).expandedBytes
            // Int.min: a limit of a third of the bundle (the bundle is 3 × the size).
            let limit = delta == Int.min ? expanded / 3 : expanded + delta
            try b.exec(
                "INSERT INTO ds_setting (name, value) VALUES ('max_bundle_expanded_bytes', ?)", [.text(String(limit))])
            try b.exec("INSERT INTO ds_setting (name, value) VALUES ('partial_grace_seconds', '0')")
            let status = try b.ingest([out.path]).files[0].status
            if ok {
                guard case .loaded(20, _) = status else { return XCTFail("limit \(limit): \(status)") }
            } else {
                guard case .refused(let reason) = status else { return XCTFail("limit \(limit): \(status)") }
                XCTAssertTrue(reason.contains("expands past"), reason)
            }
        }
        XCTAssertThrowsError(try BundleSeal(bytes: [], maxExpandedBytes: 1))
    }

    /// A batch of rows for the encoder or a snapshot's flush is full at its count or once its
    /// values hold `maxBytes` or more: at size − 1 bytes it takes the next row, at size and
    /// size + 1 it is full, and 3 × size in rows of a third each makes three full batches.
    func testABatchIsFullAtItsByteBound() {
        let size = Tuning().encodeBatchBytes
        func batches(_ sizes: [Int], maxCount: Int = 256) -> (full: [Int], rest: Int) {
            var batch = SizedBatch<Int>(maxCount: maxCount, maxBytes: size)
            var full: [Int] = []
            for n in sizes where batch.add(n, size: n) { full.append(batch.take().count) }
            return (full, batch.take().count)
        }
        XCTAssertTrue(batches([size - 2, 1]) == ([], 2), "size - 1 bytes: not full")
        XCTAssertTrue(batches([size - 2, 1, 1]) == ([3], 0), "size bytes with the third row")
        XCTAssertTrue(batches([size - 1, 1, 1]) == ([2], 1), "size bytes with the second row")
        XCTAssertTrue(batches([size - 1, 2, 1]) == ([2], 1), "size + 1 bytes")
        XCTAssertTrue(batches([size, 1]) == ([1], 1), "one row of size bytes")
        XCTAssertTrue(batches(Array(repeating: size / 3 + 1, count: 9)) == ([3, 3, 3], 0), "3 × size")
        XCTAssertTrue(batches([1, 1, 1, 1, 1], maxCount: 4) == ([4], 1), "by count")
    }

    /// The export's encoder batches cut by bytes at 4 rows' worth: n rows around it go in
    /// batches of 4 and the rest, and arrive whole and once, every pairing of brands.
    func testAnExportCutIntoBatchesByBytesLosesNoRow() throws {
        var batches: [Int] = []
        Exporter.onEncodeBatch = { batches.append($0) }
        defer { Exporter.onEncodeBatch = nil }
        try eachCount("bytes") { a, b, n in
            let expected =
                Array(repeating: Self.size, count: n / Self.size) + (n % Self.size > 0 ? [n % Self.size] : [])
            for step in ["insert", "update"] {
                let seen = try a.db.scalar("SELECT coalesce(max(id), 0) FROM ds_change_outbox").asInt64 ?? 0
                if step == "insert" {
                    try insert(a, n, from: 10)
                } else {
                    try a.exec("UPDATE sales_order SET description = 'x' || description")
                }
                let sizes = try a.db.rows(
                    "SELECT \(Outbox.columns) FROM ds_change_outbox WHERE id > ? ORDER BY id", [.integer(seen)]
                ).map(\.payloadBytes)
                XCTAssertEqual(Set(sizes).count, 1, "\(step): rows of one size, the cut after the fourth")
                Tuning.current.encodeBatchBytes = Self.size * sizes[0]
                defer { Tuning.current.encodeBatchBytes = Tuning().encodeBatchBytes }
                batches = []
                XCTAssertEqual(try syncCounting(a, b), n, step)
                XCTAssertEqual(batches, expected, "\(step), n = \(n)")
            }
        }
    }

    /// A stream whose body throws part-way leaves its connection ready: the rest of the result
    /// is read off (PostgreSQL's single-row mode, MariaDB's read without a cursor), and the next
    /// statement and the commit run. A statement inside such a stream is refused, not run.
    func testAStreamLeftPartWayLeavesItsConnectionReady() throws {
        struct Stop: Error {}
        for brand in TestDatabases.availableBrands {
            let node = try TestNode("alone\(brand)", brand, folder: folder)
            try insert(node, 10)
            try node.db.retryingWrite { db in
                var seen: [String] = []
                XCTAssertThrowsError(
                    try db.streamAlone("SELECT order_id FROM sales_order ORDER BY order_id", []) { r in
                        seen.append(r.string(0) ?? "")
                        if seen.count == 2 { throw Stop() }
                    }
                ) { XCTAssertTrue($0 is Stop, "\(brand): \($0)") }
                XCTAssertEqual(seen, ["o0", "o1"], "\(brand)")
                XCTAssertEqual(try db.scalar("SELECT count(*) FROM sales_order"), .integer(10), "\(brand)")
                try db.execute("DELETE FROM sales_order WHERE order_id = 'o9'")
                var all: [String] = []
                try db.streamAlone("SELECT order_id FROM sales_order ORDER BY order_id", []) {
                    all.append($0.string(0) ?? "")
                }
                XCTAssertEqual(all, (0..<9).map { "o\($0)" }, "\(brand)")
                if brand != .sqlite {
                    XCTAssertThrowsError(
                        try db.streamAlone("SELECT order_id FROM sales_order", []) { _ in
                            _ = try db.scalar("SELECT 1")
                        }, "\(brand): a statement inside the stream")
                    XCTAssertEqual(try db.scalar("SELECT count(*) FROM sales_order"), .integer(9), "\(brand)")
                }
            }
            XCTAssertEqual(try node.db.scalar("SELECT count(*) FROM sales_order"), .integer(9), "\(brand): committed")
            XCTAssertEqual(try NodeCheck.run(node.db).violations, [], "\(brand)")
        }
    }

    /// A hub's relay streams its inbox with payloads of `Importer.streamedInlineBytes` and more
    /// left apart (read a piece at a time): payloads of size − 1, size, size + 1 and about
    /// 3 × size bytes relay whole through a hub of each brand.
    func testARelayReadsPayloadsAroundTheInlineSizeWhole() throws {
        let size = Importer.streamedInlineBytes
        let schema = TestDatabases.docSchema(.sqlite)
        let origin = try TestNode(
            "inlineorigin", .sqlite, folder: folder, table: schema, track: ["doc"], keyBlocks: false)
        // The payload's bytes besides its value, from a probe of 5,000 bytes (its length takes
        // two bytes, as the lengths around the size do).
        try origin.exec("INSERT INTO doc VALUES (0, ?)", [.text(String(repeating: "p", count: 5_000))])
        let probe = try TestDatabases.subfolder(folder, "inline-probe")
        _ = try origin.export(to: probe)
        let first = try TestNode(
            "inlinefirst", .sqlite, folder: folder, table: schema, track: ["doc"], keyBlocks: false)
        try trustAll([origin, first])
        _ = try first.ingest([probe.path])
        let overhead = Int(try first.db.scalar("SELECT length(object_value) FROM ds_change_inbox").asInt64 ?? 0) - 5_000
        XCTAssertGreaterThan(overhead, 0)
        let payloads = [size - 1, size, size + 1, 3 * size]
        for (i, p) in payloads.enumerated() {
            try origin.exec(
                "INSERT INTO doc VALUES (?, ?)",
                [.integer(Int64(i + 1)), .text(String(repeating: "\(i)", count: p - overhead))])
        }
        let drop = try TestDatabases.subfolder(folder, "inline-values")
        _ = try origin.export(to: drop)
        for brand in TestDatabases.availableBrands {
            let hub = try TestNode(
                "inlinehub\(brand)", brand, folder: folder,
                table: TestDatabases.docSchema(brand),
                track: ["doc"], keyBlocks: false)
            let leaf = try TestNode(
                "inlineleaf\(brand)", .sqlite, folder: folder, table: schema, track: ["doc"], keyBlocks: false)
            try trustAll([origin, hub, leaf])
            _ = try hub.ingest([probe.path, drop.path])
            let lengths = try hub.db.rows("SELECT length(object_value) FROM ds_change_inbox ORDER BY id").map {
                Int($0.int(0) ?? 0)
            }
            XCTAssertEqual(
                Array(lengths.dropFirst().prefix(3)), Array(payloads.prefix(3)), "\(brand): payloads around the size")
            XCTAssertGreaterThanOrEqual(lengths.last ?? 0, 3 * size, "\(brand)")
            let out = try TestDatabases.subfolder(folder, "inline-relay-\(brand)")
            try CLI.ok(["export", "--db", hub.url, "--to", out.path, "--relay", "-q"])
            try CLI.ok(["ingest", "--db", leaf.url, out.path, "-q"])
            XCTAssertEqual(try leaf.rows("doc"), try origin.rows("doc"), "\(brand)")
            for n in [hub, leaf] { XCTAssertEqual(try NodeCheck.run(n.db).violations, [], "\(brand) \(n.name)") }
        }
        XCTAssertEqual(try NodeCheck.run(origin.db).violations, [])
    }

    /// PostgreSQL's cursor keeps each fetch's rows up to `Tuning.streamFetchBytes`, reads the
    /// rest of the fetch off and moves back to the last row kept: with small rows (20 bytes as
    /// it counts them) before large ones (120 bytes), a limit of 119, 120, 121 and 360 bytes and
    /// of 1 (every row over it), results of 0, 1, 19, 20, 21, 22 and 40 rows come whole, once and in
    /// order.
    func testAPostgresCursorStopsAtItsBytesAndLosesNoRow() throws {
        guard TestDatabases.availableBrands.contains(.postgres) else { return }
        let node = try TestNode("cursorbytes", .postgres, folder: folder)
        try insert(node, 40)
        let sql: SQL = """
            SELECT lpad(order_id, 4, '_'), repeat('x', CASE WHEN quantity::int >= 20 THEN 100 ELSE 0 END)
            FROM sales_order WHERE quantity::int < ? ORDER BY quantity::int
            """
        for budget in [119, 120, 121, 360, 1] {
            Tuning.current.streamFetchBytes = budget
            defer { Tuning.current.streamFetchBytes = Tuning().streamFetchBytes }
            for n in [0, 1, 19, 20, 21, 22, 40] {
                let expected = try node.db.rows(sql, [.integer(Int64(n))]).map(\.values)
                XCTAssertEqual(expected.count, n)
                XCTAssertEqual(try streamed(node, sql, n), expected, "a limit of \(budget) bytes, \(n) rows")
            }
        }
        XCTAssertEqual(try NodeCheck.run(node.db).violations, [])
    }

    /// The rows `sql` gives for the limit `n`, through `Database.stream` (or `streamAlone`).
    private func streamed(_ node: TestNode, _ sql: SQL, _ n: Int, alone: Bool = false) throws -> [[Value]] {
        var rows: [[Value]] = []
        try node.db.read { db in
            let each: (Row) -> Void = { rows.append($0.values) }
            if alone {
                try db.streamAlone(sql, [.integer(Int64(n))], each)
            } else {
                try db.stream(sql, [.integer(Int64(n))], each)
            }
        }
        return rows
    }

    /// MariaDB's sized capture of a row: each value's byte count, exactly; a count one past
    /// the text, a missing `:`, a count split inside a character or of 13 digits is refused as
    /// a malformed row, never read past its end.
    func testSizedValuesReadExactlyTheirCounts() throws {
        let good: [(String, [String?])] = [
            ("L", []), ("Ln", [nil]), ("L0:", [""]), ("L3:abc", ["abc"]), ("L3:abcn", ["abc", nil]),
            ("L2:é", ["é"]), ("L4:😀n0:", ["😀", nil, ""]), ("L5:a:2:bn1:x", ["a:2:b", nil, "x"]),
        ]
        for (text, values) in good { XCTAssertEqual(try SizedValues.parse(text), values, text) }
        for text in ["", "[]", "L3:ab", "L2:abc", "L1:é", "L:", "L3", "Lx", "L999999999999:", "L0000000000001:a"] {
            XCTAssertThrowsError(try SizedValues.parse(text), text)
        }
        // Read from the outbox, a malformed row stops the export naming its row and seq.
        let node = try TestNode("sized", .sqlite, folder: folder)
        try insert(node, 2)
        // Neither a sized nor a JSON array: read as the older JSON object, and named the same way.
        for (value, message) in [("L1:12:abc", "malformed captured values"), ("x", "malformed captured JSON")] {
            try node.exec(
                "UPDATE ds_change_outbox SET object_value = ? WHERE id = (SELECT min(id) FROM ds_change_outbox)",
                [.text(value)])
            let out = try TestDatabases.subfolder(folder, "sized-out-" + UUID().uuidString.prefix(6))
            let r = try CLI.run(["export", "--db", node.url, "--to", out.path])
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains("outbox row ") && r.stderr.contains(message), r.stderr)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path), [])
        }
        uncheckedNodes.insert(node.name)
    }

    /// The count caps of a stream's reads: PostgreSQL's cursor asks for at most 256 rows a
    /// fetch (4, 32, then 256: fetches end after 4, 36, 292, 548 and 804 rows), MariaDB's
    /// prefetch brings at most 500 rows and at least one. Results around each count come whole.
    func testAStreamReadsResultsAroundItsCountCapsWhole() throws {
        let budget = Tuning().streamFetchBytes
        let perRow = Double(budget)
        for (largest, want) in [(perRow / 255, 255), (perRow / 256, 256), (perRow / 257, 256), (perRow / 768, 256)] {
            XCTAssertEqual(PostgresDatabase.nextFetch(after: 256, budget: budget, largest: largest), want)
        }
        XCTAssertEqual(PostgresDatabase.nextFetch(after: 4, budget: budget, largest: 1), 32)
        XCTAssertEqual(PostgresDatabase.nextFetch(after: 32, budget: budget, largest: 1), 256)
        XCTAssertEqual(PostgresDatabase.nextFetch(after: 256, budget: budget, largest: perRow * 3), 1)
        let prefetchBytes = MariaDBStatement.prefetchBytes
        for (bytes, rows) in [
            (prefetchBytes / 499, 499), (prefetchBytes / 500, 500), (prefetchBytes / 501, 500),
            (prefetchBytes / 1500, 500), (1, 500), (prefetchBytes - 1, 1), (prefetchBytes, 1),
            (prefetchBytes + 1, 1), (prefetchBytes * 3, 1),
        ] {
            XCTAssertEqual(MariaDBStatement.prefetch(forRowBytes: bytes), rows, "a row of \(bytes) bytes")
        }
        for brand in TestDatabases.availableBrands where brand != .sqlite {
            let node = try TestNode("countcaps", brand, folder: folder)
            try insert(node, 1_510)
            let number = brand == .postgres ? "quantity::int" : "CAST(quantity AS SIGNED)"
            let sql: SQL =
                "SELECT order_id, description FROM sales_order WHERE \(raw: number) < ? ORDER BY \(raw: number)"
            for n in [0, 255, 256, 257, 291, 292, 293, 499, 500, 501, 548, 804, 805, 1_500, 1_510] {
                let expected = try node.db.rows(sql, [.integer(Int64(n))]).map(\.values)
                XCTAssertEqual(expected.count, n)
                XCTAssertEqual(try streamed(node, sql, n), expected, "\(brand): \(n) rows streamed")
                XCTAssertEqual(
                    try streamed(node, sql, n, alone: true), expected, "\(brand): \(n) rows streamed alone")
            }
            XCTAssertEqual(try NodeCheck.run(node.db).violations, [])
        }
    }
}
