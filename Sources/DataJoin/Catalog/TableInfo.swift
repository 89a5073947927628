import Foundation

/// How a column's values are typed when captured as text (PostgreSQL) and bound on apply.
public enum ValueKind: String, Sendable {
    case integer, real, text, blob, boolean
    /// SQLite columns with NUMERIC or no affinity: the captured value keeps its own type.
    case any

    static func forPostgres(_ type: String) -> ValueKind {
        switch type {
        case "smallint", "integer", "bigint": return .integer
        case "real", "double precision": return .real
        case "boolean": return .boolean
        case "bytea": return .blob
        default: return .text
        }
    }

    /// SQLite's affinity rules (https://www.sqlite.org/datatype3.html §3.1).
    static func forSQLite(_ declared: String) -> ValueKind {
        let t = declared.uppercased()
        if t.contains("INT") { return .integer }
        if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") { return .text }
        if t.contains("BLOB") { return .blob }
        if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") { return .real }
        return .any
    }
}

public struct ColumnInfo: Equatable, Sendable {
    public var name: String
    public var dataType: String
    public var kind: ValueKind
    /// 1-based position in the primary key, 0 when not part of it.
    public var pkPosition: Int
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

    /// A PostgreSQL value captured as its text output, typed by the column's kind.
    static func fromPostgresText(_ text: String?, kind: ValueKind) -> Value {
        guard let text else { return .null }
        switch kind {
        case .integer: return Int64(text).map(Value.integer) ?? .text(text)
        case .real: return parseReal(text).map(Value.real) ?? .text(text)
        case .boolean: return .integer(text == "t" || text == "true" ? 1 : 0)
        case .blob:
            if text.hasPrefix("\\x"), let b = Hex.decode(text.dropFirst(2)) { return .blob(b) }
            return .blob(Array(text.utf8))
        case .text, .any: return .text(text)
        }
    }

    /// A SQLite value captured by the triggers as a tagged string: i42, r0.5, tabc, b00ff.
    static func fromSQLiteTagged(_ tagged: String?) -> Value {
        guard let tagged, let tag = tagged.utf8.first else { return .null }
        let body = String(tagged.dropFirst())
        switch tag {
        case UInt8(ascii: "i"): return Int64(body).map(Value.integer) ?? .text(body)
        case UInt8(ascii: "r"): return parseReal(body).map(Value.real) ?? .text(body)
        case UInt8(ascii: "b"): return .blob(Hex.decode(body) ?? [])
        default: return .text(body)
        }
    }

    static func fromCaptured(_ text: String?, brand: Brand, kind: ValueKind) -> Value {
        brand == .sqlite ? normalize(fromSQLiteTagged(text), kind: kind) : fromPostgresText(text, kind: kind)
    }
}
