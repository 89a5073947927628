import ArgumentParser
import DataJoin
import Foundation

/// A table's content as a row count and an order-free checksum (the wrapping sum of each row's
/// FNV-1a hash over its values as text): two databases of any brands that agree hold the same
/// rows. A figure from a step that lost or changed a row is an error, not a figure.
struct TableSum: Equatable, CustomStringConvertible {
    var rows = 0
    var sum: UInt64 = 0

    var description: String { "\(rows) rows, checksum \(String(sum, radix: 16))" }

    static func of(_ db: Database, table: String = "sales_order", columns: [String] = Rows.columns) throws
        -> TableSum
    {
        var t = TableSum()
        // In a read transaction: PostgreSQL streams through a cursor.
        try db.read { tx in
            try tx.stream("SELECT \(columns.joined(separator: ", ")) FROM \(table)") { row in
                var h: UInt64 = 0xcbf2_9ce4_8422_2325
                for v in row.values {
                    for b in v.description.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
                    h = (h ^ 0x1f) &* 0x100_0000_01b3
                }
                t.rows += 1
                t.sum &+= h
            }
        }
        return t
    }

    static func expectSame(_ got: TableSum, _ want: TableSum, _ what: String) throws {
        guard got != want else { return }
        throw ValidationError("\(what): \(got), expected \(want); this run's figures are void")
    }

    static func expect(_ got: Int, _ want: Int, _ what: String) throws {
        guard got != want else { return }
        throw ValidationError("\(what): \(got), expected \(want); this run's figures are void")
    }
}

extension Bench {
    /// Changes in a folder's bundles, as their verified headers count them.
    func changesIn(_ folder: String) throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".djb") }.reduce(0) {
            $0
                + Int(
                    try BundleInspector.read((folder as NSString).appendingPathComponent($1), keepChanges: 0, db: nil)
                        .header.changeCount)
        }
    }
}

/// A loop on another thread: whether it should go on, and what it did (read once it finished).
final class Running: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = true
    var exports = 0
    var error: Error?
    var value: Bool {
        get { lock.withLock { flag } }
        set { lock.withLock { flag = newValue } }
    }
}
