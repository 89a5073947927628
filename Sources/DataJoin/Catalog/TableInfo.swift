import Foundation

/// How a column's values are typed when captured as text (PostgreSQL) and bound on apply.
public enum ValueKind: String, Sendable {
    case integer, real, text, blob, boolean
    /// SQLite columns with NUMERIC or no affinity: the captured value keeps its own type.
    case any
}

public struct ColumnInfo: Equatable, Sendable {
    public var name: String
    public var dataType: String
    public var kind: ValueKind
    /// 1-based position in the primary key, 0 when not part of it.
    public var pkPosition: Int

    /// The column's name in statements.
    public var identifier: Identifier { Identifier(name) }
}

/// A tracked table as the registry knows it: the only source of identifiers in generated SQL.
public struct TableInfo: Equatable, Sendable {
    public var name: String
    public var columns: [ColumnInfo] { didSet { index() } }
    // Derived once, not per call: the importer asks for them several times per change.
    public private(set) var keyColumns: [ColumnInfo] = []
    public private(set) var valueColumns: [ColumnInfo] = []
    /// Positions in `columns` of the key columns, in key order.
    public private(set) var keyPositions: [Int] = []
    private var positions: [String: Int] = [:]

    public init(name: String, columns: [ColumnInfo]) {
        self.name = name
        self.columns = columns
        index()
    }

    private mutating func index() {
        keyColumns = columns.filter { $0.pkPosition > 0 }.sorted { $0.pkPosition < $1.pkPosition }
        valueColumns = columns.filter { $0.pkPosition == 0 }
        positions = Dictionary(columns.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
        keyPositions = keyColumns.map { k in positions[k.name]! }
    }

    /// The table's name in statements.
    public var identifier: Identifier { Identifier(name) }

    public func column(_ name: String) -> ColumnInfo? { positions[name].map { columns[$0] } }
    public func position(_ name: String) -> Int? { positions[name] }

    /// Brings a key to its canonical typed form, so the same row has the same key bytes on
    /// every brand (an integer key captured as PostgreSQL text "5" becomes integer 5).
    func canonicalKey(_ values: [Value]) -> [Value] {
        zip(keyColumns, values).map { col, v in ValueConversion.normalize(v, kind: col.kind) }
    }
}

enum ValueConversion {
    static func normalize(_ v: Value, kind: ValueKind) -> Value {
        switch (kind, v) {
        case (.integer, .text(let s)): return Int64(s).map(Value.integer) ?? v
        case (.integer, .real(let d)): return Int64(exactly: d).map(Value.integer) ?? v
        case (.real, .integer(let i)): return .real(Double(i))
        case (.real, .text(let s)): return parseReal(s).map(Value.real) ?? v
        case (.boolean, .text(let s)):
            switch s {
            case "t", "true", "1": return .integer(1)
            case "f", "false", "0": return .integer(0)
            default: return v
            }
        default: return v
        }
    }

    static func parseReal(_ s: String) -> Double? {
        switch s {
        case "Infinity", "Inf", "inf": return .infinity
        case "-Infinity", "-Inf", "-inf": return -.infinity
        case "NaN", "nan": return .nan
        default: return Double(s)
        }
    }
}
