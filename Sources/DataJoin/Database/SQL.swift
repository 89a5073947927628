/// The text of a statement and the values bound to it. Values never become text: an
/// interpolated `Value` is a `?` placeholder with the value bound beside it. A name is written
/// only through an `Identifier`, quoted once. Other text comes from string literals in
/// DataJoin's source or from another `SQL`; text from anywhere else needs the explicit
/// `SQL(raw:)` / `\(raw:)` marker, so a reviewer finds every such place by that word.
///
/// ```swift
/// try db.execute("UPDATE \(table.identifier) SET \(column) = \(value) WHERE id = \(.integer(id))")
/// ```
///
/// Models: GRDB's `SQLInterpolation` (`\(sql:)` for raw text), postgres-nio's `PostgresQuery`
/// (`unescaped:`).
public struct SQL: Sendable, Hashable, ExpressibleByStringInterpolation, CustomStringConvertible {
    /// The statement text, `?` for every bound value.
    public private(set) var text: String
    /// The bound values, in placeholder order.
    public private(set) var bindings: [Value]

    public init(stringLiteral value: String) {
        text = value
        bindings = []
    }

    public init(stringInterpolation: StringInterpolation) {
        text = stringInterpolation.text
        bindings = stringInterpolation.bindings
    }

    /// Text that is not a literal of DataJoin's source: a statement built by a brand's own code
    /// (trigger bodies, DDL scripts) or read from DataJoin's own files. Never a value.
    public init(raw text: String) {
        self.text = text
        bindings = []
    }

    public var description: String { text }
    public var isEmpty: Bool { text.isEmpty }

    /// The statement with `params` bound to its `?` placeholders, for statements written with
    /// positional placeholders. Mixing both forms would bind values to the wrong placeholders,
    /// so a statement that has interpolated values takes no more.
    func binding(_ params: [Value]) throws -> SQL {
        if params.isEmpty { return self }
        guard bindings.isEmpty else {
            throw DataJoinError(
                .internalError, "a statement mixes interpolated values with positional parameters: \(text.prefix(80))")
        }
        var out = self
        out.bindings = params
        return out
    }

    /// `n` placeholders separated by commas: `?, ?, ?`.
    public static func placeholders(_ n: Int) -> SQL {
        SQL(raw: Array(repeating: "?", count: n).joined(separator: ", "))
    }

    /// `n` parenthesized rows of `width` placeholders, `(?, ?), (?, ?)`; a single placeholder
    /// without parentheses per row when `bare` and `width` is 1.
    public static func placeholderRows(_ n: Int, width: Int, bare: Bool = false) -> SQL {
        let one = bare && width == 1 ? "?" : "(" + Array(repeating: "?", count: width).joined(separator: ", ") + ")"
        return SQL(raw: Array(repeating: one, count: n).joined(separator: ", "))
    }

    public mutating func append(_ other: SQL) {
        text += other.text
        bindings += other.bindings
    }

    public static func + (lhs: SQL, rhs: SQL) -> SQL {
        var out = lhs
        out.append(rhs)
        return out
    }

    public static func += (lhs: inout SQL, rhs: SQL) { lhs.append(rhs) }

    public struct StringInterpolation: StringInterpolationProtocol {
        var text = ""
        var bindings: [Value] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            text.reserveCapacity(literalCapacity + interpolationCount * 8)
        }

        public mutating func appendLiteral(_ literal: String) { text += literal }

        /// A value: bound, never written into the text.
        public mutating func appendInterpolation(_ value: Value) {
            text += "?"
            bindings.append(value)
        }

        /// A name, quoted.
        public mutating func appendInterpolation(_ identifier: Identifier) { text += identifier.quoted }

        /// Names, quoted, separated by commas.
        public mutating func appendInterpolation(_ identifiers: [Identifier]) {
            text += identifiers.map(\.quoted).joined(separator: ", ")
        }

        /// Another statement or fragment, with its bindings.
        public mutating func appendInterpolation(_ sql: SQL) {
            text += sql.text
            bindings += sql.bindings
        }

        /// A number that is part of the statement's shape (a `LIMIT`, a column length), not a
        /// value of a row.
        public mutating func appendInterpolation(literal number: Int) { text += String(number) }
        public mutating func appendInterpolation(literal number: Int64) { text += String(number) }

        /// A string constant written into the text, where the brand takes no parameter (DDL,
        /// trigger bodies): quoted and escaped as a standard SQL literal.
        public mutating func appendInterpolation(literal string: String) { text += SQL.literal(string) }

        /// Text that comes from neither a literal nor an `SQL`: the marker makes it visible.
        public mutating func appendInterpolation(raw: String) { text += raw }
    }

    /// `s` as a standard SQL string literal ('' doubles a quote). Every brand's session reads it
    /// so: MariaDB runs with NO_BACKSLASH_ESCAPES.
    public static func literal(_ s: String) -> String {
        "'" + s.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "''") + "'"
    }
}

extension Sequence where Element == SQL {
    /// The fragments in order, with `separator` between them.
    public func joined(separator: String) -> SQL {
        var out = SQL(raw: "")
        var first = true
        for part in self {
            if !first { out.append(SQL(raw: separator)) }
            out.append(part)
            first = false
        }
        return out
    }
}
