import XCTest

@testable import DataJoin

/// The statement type: values become placeholders, names are quoted once, and a statement can
/// not mix interpolated values with positional ones.
final class SQLTests: XCTestCase {
    func testValuesAreBoundAndNamesQuoted() throws {
        let table = Identifier("sales \"order\"")
        let hostile = Value.text("x'); DROP TABLE sales_order; --")
        let sql: SQL = "UPDATE \(table) SET \(Identifier("note")) = \(hostile) WHERE id = \(.integer(7))"
        XCTAssertEqual(sql.text, "UPDATE \"sales \"\"order\"\"\" SET \"note\" = ? WHERE id = ?")
        XCTAssertEqual(sql.bindings, [hostile, .integer(7)])
    }

    func testFragmentsKeepTheirBindingsInOrder() {
        let a: SQL = "a = \(.integer(1))"
        let b: SQL = "b = \(.integer(2))"
        let both: SQL = "SELECT 1 WHERE \([a, b].joined(separator: " AND ")) AND c = \(.integer(3))"
        XCTAssertEqual(both.text, "SELECT 1 WHERE a = ? AND b = ? AND c = ?")
        XCTAssertEqual(both.bindings, [.integer(1), .integer(2), .integer(3)])
        XCTAssertEqual(SQL.placeholderRows(2, width: 3).text, "(?, ?, ?), (?, ?, ?)")
        XCTAssertEqual(SQL.placeholderRows(3, width: 1, bare: true).text, "?, ?, ?")
        XCTAssertEqual(SQL.placeholders(1).text, "?")
    }

    func testLiteralsAreEscapedAndNumbersWrittenAsShape() {
        let sql: SQL = "SELECT \(literal: "it's") LIMIT \(literal: 20)"
        XCTAssertEqual(sql.text, "SELECT 'it''s' LIMIT 20")
        XCTAssertTrue(sql.bindings.isEmpty)
    }

    func testMixingInterpolatedAndPositionalValuesIsRefused() throws {
        let sql: SQL = "SELECT \(.integer(1)) WHERE x = ?"
        XCTAssertThrowsError(try sql.binding([.integer(2)])) { error in
            XCTAssertEqual((error as? DataJoinError)?.code, .internalError)
        }
        let positional: SQL = "SELECT ? WHERE x = ?"
        XCTAssertEqual(try positional.binding([.integer(1), .integer(2)]).bindings, [.integer(1), .integer(2)])
    }

    /// PostgreSQL keeps 63 bytes of a name, MariaDB 64 characters: size-1, size, size+1, 3x.
    func testNameLimitsAtTheBoundary() {
        let cases: [(Dialect, Int, String)] = [
            (PostgresDialect(), 63, "a"), (PostgresDialect(), 31, "é"), (MariaDBDialect(), 64, "a"),
            (MariaDBDialect(), 64, "é"),
        ]
        for (dialect, limit, unit) in cases {
            for n in [limit - 1, limit] {
                XCTAssertNoThrow(try dialect.identifier(String(repeating: unit, count: n)), "\(dialect.brand) \(n)")
            }
            for n in [limit + 1, 3 * limit] {
                XCTAssertThrowsError(try dialect.identifier(String(repeating: unit, count: n)), "\(dialect.brand) \(n)")
            }
        }
        XCTAssertNoThrow(try SQLiteDialect().identifier(String(repeating: "a", count: 3 * 64)))
        for dialect in [SQLiteDialect(), PostgresDialect(), MariaDBDialect()] as [Dialect] {
            XCTAssertThrowsError(try dialect.identifier(""))
            XCTAssertThrowsError(try dialect.identifier("a\u{0}b"))
        }
    }
}

/// The seam, checked in the source: the core (everything outside `Database/`) names no brand
/// and writes no statement text except through literals, `Identifier`s and `SQL` fragments.
final class SeamTests: XCTestCase {
    func testTheCoreHasNoBrandBranchAndNoRawStatementText() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/DataJoin")
        let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)!
            .compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" && !$0.path.contains("/Database/") }
        XCTAssertGreaterThan(files.count, 30)
        let forbidden = [
            "SQL(raw:", "(raw:", "db.quote(", ".brand ==", "case .sqlite", "case .postgres", "case .mariadb",
            "SQLiteDatabase", "PostgresDatabase", "MariaDBDatabase", "import CSQLite", "import CLibPQ",
            "import CMariaDB",
        ]
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            for word in forbidden where text.contains(word) {
                XCTFail("\(file.lastPathComponent) contains \(word)")
            }
        }
    }
}
