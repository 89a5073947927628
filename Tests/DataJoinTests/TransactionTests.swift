import Foundation
import XCTest

@testable import DataJoin

/// Transactions as values (issue 12): `write` commits or rolls back and rethrows the body's
/// error, a `write` inside a `write` is a savepoint, a failed commit says so, and `retrying` runs
/// a body again only for a retryable error and never inside a transaction. On every brand whose
/// server is there.
final class TransactionTests: XCTestCase {
    struct Boom: Error {}

    func connections() throws -> [Database] {
        let folder = try TestDatabases.tempFolder("tx")
        return try TestDatabases.availableBrands.map { brand in
            let db = try DatabaseOpener.open(try TestDatabases.create(brand, name: "tx", in: folder))
            try db.executeScript(
                TestDatabases.ddl("CREATE TABLE t (k TEXT PRIMARY KEY NOT NULL, v INTEGER)", for: brand))
            return db
        }
    }

    func keys(_ db: Database) throws -> [String] {
        try db.rows("SELECT k FROM t ORDER BY k").compactMap { $0.string(0) }
    }

    func testWriteCommitsOrRollsBackAndNestedWritesAreSavepoints() throws {
        for db in try connections() {
            let brand = "\(db.brand)"
            try db.write { tx in try tx.execute("INSERT INTO t VALUES ('a', 1)") }
            XCTAssertThrowsError(
                try db.write { tx in
                    try tx.execute("INSERT INTO t VALUES ('b', 2)")
                    throw Boom()
                }
            ) { XCTAssertTrue($0 is Boom, "\(brand): the body's own error comes back: \($0)") }
            XCTAssertEqual(try keys(db), ["a"], "\(brand): the failed body left nothing")

            let result = try db.write { tx -> Int in
                try tx.execute("INSERT INTO t VALUES ('c', 3)")
                // A failed inner write undoes its own work only.
                XCTAssertThrowsError(
                    try tx.write { inner in
                        try inner.execute("INSERT INTO t VALUES ('d', 4)")
                        throw Boom()
                    })
                // An inner write that succeeds stays, and a read inside sees it.
                try tx.write { inner in try inner.execute("INSERT INTO t VALUES ('e', 5)") }
                return try tx.read { r in Int(try r.scalar("SELECT count(*) FROM t").asInt64 ?? 0) }
            }
            XCTAssertEqual(result, 3)
            XCTAssertEqual(try keys(db), ["a", "c", "e"], "\(brand)")
            // The connection is out of its transaction: a new one starts normally.
            try db.write { tx in try tx.execute("DELETE FROM t WHERE k = 'e'") }
            XCTAssertEqual(try keys(db), ["a", "c"], "\(brand)")
        }
    }

    /// A commit that fails (SQLite checks a deferred foreign key there) is a TransactionError
    /// naming the commit, and nothing of the transaction stays.
    func testAFailedCommitIsNamedAndRolledBack() throws {
        let folder = try TestDatabases.tempFolder("txc")
        let db = try DatabaseOpener.open(folder.appendingPathComponent("c.db").path)
        try db.executeScript(
            """
            CREATE TABLE parent (id INTEGER PRIMARY KEY);
            CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent (id));
            """)
        XCTAssertThrowsError(
            try db.write { tx in
                try tx.execute("PRAGMA defer_foreign_keys = ON")
                try tx.execute("INSERT INTO child VALUES (1, 42)")
            }
        ) { error in
            guard let e = error as? TransactionError else { return XCTFail("not a TransactionError: \(error)") }
            XCTAssertEqual(e.step, .commit)
            XCTAssertTrue(e.description.hasPrefix("the transaction's commit failed: "), e.description)
            XCTAssertTrue(db.isRefusal(e), "classified through the wrapper")
        }
        XCTAssertEqual(try db.scalar("SELECT count(*) FROM child"), .integer(0))
        try db.write { tx in try tx.execute("INSERT INTO parent VALUES (1)") }
        XCTAssertEqual(try db.scalar("SELECT count(*) FROM parent"), .integer(1))
    }

    /// `retrying` runs the body again for a retryable error only, up to its attempts, and never
    /// inside a transaction (the outer transaction failed as a whole).
    func testRetryingRunsAgainOnlyWhatIsWorthRetrying() throws {
        let folder = try TestDatabases.tempFolder("txr")
        let db = try DatabaseOpener.open(folder.appendingPathComponent("r.db").path)
        let busy = SQLiteError(code: 517, message: "database is locked")  // SQLITE_BUSY_SNAPSHOT
        var runs = 0
        let value = try db.retrying { () -> Int in
            runs += 1
            if runs < 3 { throw busy }
            return runs
        }
        XCTAssertEqual(value, 3)

        runs = 0
        XCTAssertThrowsError(
            try db.retrying {
                runs += 1
                throw Boom()
            })
        XCTAssertEqual(runs, 1, "an error not worth retrying is not retried")

        // A busy database waited up to --lock-timeout in the busy handler already.
        runs = 0
        XCTAssertThrowsError(
            try db.retrying {
                runs += 1
                throw SQLiteError(code: 5, message: "database is locked")
            })
        XCTAssertEqual(runs, 1, "a busy database is not waited for twenty times over")

        // Given up: a temporary error (exit 75) that says why, not the database's raw one
        // (found from outside: exit 1, the retries back to back).
        runs = 0
        XCTAssertThrowsError(
            try db.retrying(attempts: 2) {
                runs += 1
                throw busy
            }
        ) { e in
            XCTAssertEqual((e as? DataJoinError)?.code, .busy)
            XCTAssertTrue(
                "\(e)".hasPrefix(
                    "gave up after 3 attempts (another connection wrote the SQLite database while this step read it (database is locked))"
                ), "\(e)")
            XCTAssertTrue("\(e)".hasSuffix("nothing of the step was kept: run it again"), "\(e)")
        }
        XCTAssertEqual(runs, 3, "the first run and two more")

        runs = 0
        XCTAssertThrowsError(
            try db.write { tx in
                try tx.retrying {
                    runs += 1
                    throw busy
                }
            })
        XCTAssertEqual(runs, 1, "inside a transaction nothing is retried")
    }

    /// The wait before each retry doubles from 5 ms and stops at half a second (attempt 8 is
    /// the first past it), each between half and all of its share.
    func testRetriesWaitLongerEachTimeUpToHalfASecond() {
        for (attempt, full) in [(1, 0.005), (2, 0.01), (7, 0.32), (8, 0.5), (9, 0.5), (24, 0.5), (80, 0.5)] {
            for _ in 0..<20 {
                let w = SQLiteDatabase.backoff(attempt)
                XCTAssertTrue(w >= full / 2 && w <= full, "attempt \(attempt): \(w)")
            }
        }
    }
}
