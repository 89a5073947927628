import Foundation

public enum Operation: String, Sendable {
    case insert = "I"
    case update = "U"
    case delete = "D"
}

/// One captured change as it travels: who made it (origin, epoch, seq), when (HLC stamp),
/// what (table, key, operation, values) and the row generation it belongs to (causal length).
public struct Change: Equatable, Sendable {
    public var origin: String
    public var epoch: String
    public var seq: Int64
    public var hlc: Int64
    /// The source transaction (PostgreSQL txid); 0 when the brand has none.
    public var txid: Int64
    public var op: Operation
    public var table: String
    public var cl: Int64
    public var key: [Value]
    /// Insert: every column; update: the one changed column.
    public var columns: [ColumnValue]
    /// Update only: the value the column held before, at the origin.
    public var oldValue: Value?
    /// The key's column names, as the origin's registry has them.
    public var keyNames: [String] = []
    /// The inbox payload as the reader copied it, when it read for ingest only (`columns` and
    /// `oldValue` are then empty): a large value is never a String and a payload at once.
    var rawPayload: [UInt8]?

    public struct ColumnValue: Equatable, Sendable {
        public var name: String
        public var value: Value
    }

    /// The payload as the inbox stores it (column names, not bundle indexes).
    func encodedPayload() -> [UInt8] {
        if let rawPayload { return rawPayload }
        var w = ByteWriter()
        // Reserved exactly for large values, so a 60 MiB text is not copied while the array grows.
        func size(_ v: Value?) -> Int {
            switch v {
            case .text(let s): return s.utf8.count + 11
            case .blob(let b): return b.count + 11
            default: return 11
            }
        }
        w.bytes.reserveCapacity(columns.reduce(16) { $0 + $1.name.utf8.count + 10 + size($1.value) } + size(oldValue))
        w.varint(UInt64(columns.count))
        for c in columns {
            w.string(c.name)
            w.value(c.value)
        }
        if let old = oldValue {
            w.byte(1)
            w.value(old)
        } else {
            w.byte(0)
        }
        return w.bytes
    }

    static func decodePayload(_ bytes: [UInt8]) throws -> ([ColumnValue], Value?) {
        var r = ByteReader(ArraySource(bytes))
        return try decodePayload(&r)
    }

    static func decodePayload<S: ByteSource>(_ r: inout ByteReader<S>) throws -> ([ColumnValue], Value?) {
        let n = try r.int(100_000)
        var cols: [ColumnValue] = []
        for _ in 0..<n { cols.append(ColumnValue(name: try r.string(), value: try r.value())) }
        let old: Value? = try r.byte() == 1 ? try r.value() : nil
        return (cols, old)
    }
}

/// An HLC stamp plus node id: the total order of changes (stamp first, node id breaks ties).
public struct Version: Comparable, Sendable, CustomStringConvertible {
    public var hlc: Int64
    public var node: String
    public static let zero = Version(hlc: 0, node: "")
    public static func < (a: Version, b: Version) -> Bool {
        a.hlc != b.hlc ? a.hlc < b.hlc : a.node.utf8.lexicographicallyPrecedes(b.node.utf8)
    }
    /// The zero version is a row's as it was before tracking: said so, not as a 1970 stamp.
    public var description: String {
        if hlc == 0 { return "held before tracking" + (node.isEmpty ? "" : " by \(node)") }
        return "\(HybridLogicalClock.describe(hlc))@\(node)"
    }
}

/// Key column names as stored in `object_pk_attribute`: a JSON array, so a name holding a comma
/// survives (issue 10). Rows written by older versions hold the names joined with ",".
enum KeyNames {
    static func encode(_ names: [String]) -> String {
        "[" + names.map { JSON.quote($0) }.joined(separator: ",") + "]"
    }

    static func decode(_ text: String) -> [String] {
        if text.utf8.first == UInt8(ascii: "["), let names = try? CapturedJSON.array(text),
            names.allSatisfy({ $0 != nil })
        {
            return names.map { $0! }
        }
        return text.split(separator: ",").map(String.init).filter { !$0.isEmpty }
    }
}
