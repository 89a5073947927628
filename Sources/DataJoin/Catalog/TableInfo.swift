import Foundation

/// How a column's values are typed when captured as text (PostgreSQL) and bound on apply.
public enum ValueKind: String, Sendable {
    case integer, real, text, blob, boolean
    /// SQLite columns with NUMERIC or no affinity: the captured value keeps its own type.
    case any
}

public struct ColumnInfo: Equatable, Sendable {
    public var name: String
    public var dataType: String { didSet { type = TypeName(dataType) } }
    public var kind: ValueKind
    /// 1-based position in the primary key, 0 when not part of it.
    public var pkPosition: Int
    /// The declared type taken apart once: an import checks every value against it, and taking
    /// it apart per value cost a tenth of a PostgreSQL import (found by `perf`).
    public private(set) var type: TypeName
    /// The character set of a text column that cannot hold every character (MariaDB's
    /// `latin1`, say), from the live catalog: nil where any character fits, and in the registry.
    public var charset: String?

    /// Equal as tracked: the character set is the live catalog's, not part of the registry.
    public static func == (a: ColumnInfo, b: ColumnInfo) -> Bool {
        a.name == b.name && a.dataType == b.dataType && a.kind == b.kind && a.pkPosition == b.pkPosition
    }

    public init(name: String, dataType: String, kind: ValueKind, pkPosition: Int) {
        self.name = name
        self.dataType = dataType
        self.kind = kind
        self.pkPosition = pkPosition
        self.type = TypeName(dataType)
    }

    /// The column's name in statements.
    public var identifier: Identifier { Identifier(name) }
}

/// Parts of a declared type that the brands' value checks read.
public struct TypeName: Equatable, Sendable {
    /// The type in lower case: `int(11) unsigned zerofill`.
    public let lowered: String
    /// Lower case, up to the first parenthesis: `int`, `int unsigned`.
    public let beforeParenthesis: String
    /// Lower case, up to the first parenthesis or space: `int`.
    public let firstWord: String
    /// The first number in parentheses (a length or precision), 0 when none.
    public let size: Int
    /// As declared, every parenthesized part taken out: `timestamp with time zone` of
    /// `timestamp(3) with time zone`.
    public let withoutParentheses: String
    public let zerofill: Bool

    init(_ declared: String) {
        let lowered = declared.lowercased()
        self.lowered = lowered
        let before = lowered.prefix { $0 != "(" }
        beforeParenthesis = String(before)
        firstWord = String(lowered.prefix { $0 != "(" && $0 != " " })
        size = Int(lowered.dropFirst(before.count + 1).prefix { $0.isNumber }) ?? 0
        var name = declared
        while let open = name.firstIndex(of: "("), let close = name[open...].firstIndex(of: ")") {
            name.removeSubrange(open...close)
        }
        withoutParentheses = name
        zerofill = lowered.contains("zerofill")
    }
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

    /// Why a key cannot be looked up here by its values: a key column that holds numbers here
    /// and a key value that is not one. MariaDB compares a number column with text as a number
    /// ('1abc' = 1) and a text column with a number the same way ('05' = 5, '5 kg' = 5): a
    /// delete by such a key removed other rows (found from outside). Nil when the key fits.
    func keyKindProblem(_ values: [Value]) -> String? {
        for (col, raw) in zip(keyColumns, values) {
            let v = ValueConversion.normalize(raw, kind: col.kind)
            switch (col.kind, v) {
            case (.integer, .integer), (.boolean, .integer), (.real, .integer), (.real, .real): continue
            // Text a SQLite node wrote for a boolean key: said as for any boolean column, with
            // what to do with a change of a key that can never be here (found from outside: told
            // to give the column the type it had, and held for good after the cure).
            case (.boolean, .text(let s)):
                return "key column \(col.name): " + ValueFit.booleanText(s)
                    + "; once written so, this change of a key that can never be here goes with "
                    + "'datajoin import --drop-held ORIGIN#SEQ' (see 'datajoin status')"
            case (.integer, _), (.boolean, _), (.real, _):
                return "key column \(col.name) holds numbers here (\(col.dataType)) but this change's key value is "
                    + "\(String(v.description.prefix(60))); it could match another row: give the column the same type on every node"
            default: continue
            }
        }
        return nil
    }

    /// Brings a key to its canonical typed form, so the same row has the same key bytes on
    /// every brand (an integer key captured as PostgreSQL text "5" becomes integer 5).
    func canonicalKey(_ values: [Value]) -> [Value] {
        zip(keyColumns, values).map { col, v in ValueConversion.normalize(v, kind: col.kind) }
    }
}

enum ValueConversion {
    static func normalize(_ v: Value, kind: ValueKind) -> Value {
        switch (kind, v) {
        // Only the canonical spelling: '02', '+1' and '-0' are other keys than 2, 1 and 0 where
        // a column keeps text (SQLite), and two of them landed on one row (found from outside).
        case (.integer, .text(let s)):
            guard let i = Int64(s), String(i) == s else { return v }
            return .integer(i)
        // A number for a text column is its text there (SQLite's TEXT affinity stores it so; a
        // number compared with a MariaDB VARCHAR compares as a number: '05' = 5).
        case (.text, .integer(let i)): return .text(String(i))
        case (.integer, .real(let d)): return Int64(exactly: d).map(Value.integer) ?? v
        // An integer a double holds exactly (up to 2^53); a larger one stays as it is, and is
        // held (`ValueFit`): it was rounded here (found from outside).
        case (.real, .integer(let i)): return Double(exactly: i).map(Value.real) ?? v
        // Only what SQLite's REAL affinity itself reads as a number: '0x1A', '0x1p3' and 'inf'
        // stay text there (they were turned into 26, 8 and Inf; found from outside).
        // Nor a number a double would alter: more than 15 significant digits (SQLite's own
        // guarantee; the target then holds the text, as for an integer column), or one out of a
        // double's range (1e400 became Inf, 1e-400 became 0; found by the second trial).
        case (.real, .text(let s)):
            guard s.utf8.count <= 400, ValueFit.isDecimal(s.trimmingCharacters(in: .whitespaces)),
                let digits = ValueFit.significantDigits(s), digits <= 15, ValueFit.outOfDoubleRange(s) == nil,
                let d = parseReal(s)
            else { return v }
            return .real(d)
        // Only 1 and 0: SQLite keeps 'true' and 't' as text where they were written (a condition
        // reads them as 0 there), and PostgreSQL and MariaDB applied them as 1 while the origin
        // kept the text (found from outside). They stay text, kept so by SQLite and held by a
        // typed column (`ValueFit`).
        case (.boolean, .text(let s)):
            switch s {
            case "1": return .integer(1)
            case "0": return .integer(0)
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
