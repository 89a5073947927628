import Foundation
import XCTest

@testable import DataJoin

/// `datajoin check` names each broken rule of a node's bookkeeping: every damage below is made by
/// hand on a node that checked OK, and must be reported under its rule (and nothing else).
final class CheckTests: ScenarioTestCase {
    var folder: URL!
    override func setUpWithError() throws {
        try super.setUpWithError()
        folder = try TestDatabases.tempFolder("check")
    }

    /// A synced pair: `a` captured, exported and pruned some; `b` ingested everything.
    func pair(_ label: String) throws -> (TestNode, TestNode) {
        let a = try TestNode("a\(label)", .sqlite, folder: folder)
        let b = try TestNode("b\(label)", .sqlite, folder: folder)
        try trustAll([a, b])
        for round in 0..<3 {
            try a.exec(
                "INSERT INTO sales_order (order_id, description) VALUES (?, 'x'), (?, 'y')",
                [.text("o\(round)a"), .text("o\(round)b")])
            try a.exec("UPDATE sales_order SET quantity = '2' WHERE order_id = ?", [.text("o\(round)a")])
            let out = try TestDatabases.subfolder(folder, "\(label)-\(round)")
            try a.export(to: out)
            try b.ingest([out.path])
        }
        XCTAssertEqual(try NodeCheck.run(a.db).violations, [])
        XCTAssertEqual(try NodeCheck.run(b.db).violations, [])
        uncheckedNodes.formUnion([a.name, b.name])
        return (a, b)
    }

    func assertBroken(
        _ node: TestNode, _ rule: String, _ damage: String, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        try node.db.executeScript(damage)
        let rules = try NodeCheck.run(node.db).violations.map(\.rule)
        XCTAssertEqual(Set(rules), [rule], damage, file: file, line: line)
    }

    func testEveryRuleIsReported() throws {
        let damages: [(Bool, String, String)] = [
            (
                true, "outbox-stranded",
                "INSERT INTO sales_order (order_id) VALUES ('late'); UPDATE ds_setting SET value = (SELECT max(id) FROM ds_change_outbox) WHERE name = 'outbox_stamped_through_id'"
            ),
            (true, "seq-gap", "DELETE FROM ds_change_outbox WHERE seq = 3"),
            (true, "seq-ahead", "UPDATE ds_node SET next_seq = 2"),
            (
                false, "inbox-duplicate",
                "DROP INDEX ds_change_inbox_origin_seq; INSERT INTO ds_change_inbox (origin, origin_epoch, seq, hlc, object_table, object_id, object_operation, cl, bundle_id, received_at, status) SELECT origin, origin_epoch, seq, hlc, object_table, object_id, object_operation, cl, bundle_id, received_at, status FROM ds_change_inbox WHERE seq = 2"
            ),
            (false, "inbox-missing", "DELETE FROM ds_change_inbox WHERE seq = 2"),
            (
                false, "held-orphan",
                "INSERT INTO ds_change_held (id, object_table, object_id, reason) VALUES (-1, 'sales_order', x'00', 'r')"
            ),
            (false, "origin-unrecorded", "DELETE FROM ds_origin_state"),
            (false, "bundle-unrecorded", "DELETE FROM ds_bundle_seen"),
            (false, "mark-above-max", "UPDATE ds_origin_state SET max_seq = 1"),
            (
                false, "column-version-orphan",
                "DELETE FROM ds_row_version WHERE object_id IN (SELECT object_id FROM ds_column_version)"
            ),
            (
                true, "export-pointer",
                "UPDATE ds_program_parameter SET fromoutboxpointer = 99 WHERE id = 1000; UPDATE ds_node SET next_seq = 100"
            ),
            (false, "import-pointer", "UPDATE ds_program_parameter SET fromoutboxpointer = -5 WHERE id = 1001"),
            (
                false, "import-ahead",
                "UPDATE ds_program_parameter SET fromoutboxpointer = 2 WHERE id = 1001; INSERT INTO ds_change_held (id, object_table, object_id, reason) SELECT id, object_table, object_id, 'r' FROM ds_change_inbox WHERE id = 3"
            ),
        ]
        for (i, (onSource, rule, damage)) in damages.enumerated() {
            let (a, b) = try pair("\(i)")
            try assertBroken(onSource ? a : b, rule, damage)
        }
    }

    /// Through the CLI: exit 1 and one line per rule; exit 0 and OK on a sound node.
    func testTheCommandExitsOneNamingTheRule() throws {
        let (a, b) = try pair("cli")
        let ok = try CLI.ok(["check", "--db", b.url])
        XCTAssertTrue(ok.stdout.hasPrefix("check: OK"), ok.stdout)
        try b.exec("DELETE FROM ds_change_inbox WHERE seq = 2")
        let broken = try CLI.run(["check", "--db", b.url])
        XCTAssertEqual(broken.status, 1)
        XCTAssertTrue(broken.stderr.hasPrefix("datajoin: error: inbox-missing: "), broken.stderr)
        XCTAssertTrue(broken.stderr.contains("1 change(s) between seq 1 and the mark 9 are missing"), broken.stderr)
        _ = a
    }

    /// A prune that removes the inbox's last rows and keeps earlier ones leaves the pointers past
    /// the last row; the ids are never issued again, so that is no damage (found when receipts-
    /// only bundles let nodes prune more: `check` named both pointers of a healthy node).
    func testAPruneOfTheInboxsLastRowsLeavesTheNodeHealthy() throws {
        let n = try TestNode("n", .sqlite, folder: folder)
        let a = try TestNode("a", .sqlite, folder: folder)
        let b = try TestNode("b", .sqlite, folder: folder)
        try trustAll([n, a, b])
        for x in [a, b] { try x.exec("INSERT INTO sales_order (order_id) VALUES ('\(x.name)1'), ('\(x.name)2')") }
        let fromA = try TestDatabases.subfolder(folder, "from-a"), fromB = try TestDatabases.subfolder(folder, "from-b")
        try a.export(to: fromA)
        try b.export(to: fromB)
        // n relays a's changes (inbox ids 1-2), then b's (3-4).
        let down = try TestDatabases.subfolder(folder, "down")
        for from in [fromA, fromB] {
            try n.ingest([from.path])
            _ = try Exporter.export(n.db, ExportOptions(folder: down.path, relay: true))
        }
        // a confirms b's changes (receipts only); b never hears of a's: only b's rows may go.
        try a.ingest([down.path])
        let receipts = try TestDatabases.subfolder(folder, "receipts-a")
        XCTAssertEqual(try a.export(to: receipts).count, 1)
        try n.ingest([receipts.path])
        let pruned = try CLI.ok(["prune", "--db", n.url])
        XCTAssertTrue(pruned.stdout.contains("2 inbox row(s)"), pruned.stdout)
        XCTAssertEqual(try n.db.rows("SELECT origin FROM ds_change_inbox").compactMap { $0.string(0) }, ["a", "a"])
        XCTAssertEqual(try n.db.scalar("SELECT max(id) FROM ds_change_inbox"), .integer(2))
        XCTAssertEqual(try ProgramPointer.get(n.db, Program.import), 4)
        XCTAssertEqual(try NodeCheck.run(n.db).violations, [])
        // A pointer past every id ever issued is still damage.
        try n.exec("UPDATE ds_program_parameter SET fromoutboxpointer = 5 WHERE id = \(Program.import)")
        XCTAssertEqual(try NodeCheck.run(n.db).violations.map(\.rule), ["import-pointer"])
        try n.exec("UPDATE ds_program_parameter SET fromoutboxpointer = 4 WHERE id = \(Program.import)")
    }
}
