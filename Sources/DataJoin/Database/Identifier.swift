/// A table, column or index name in a statement: quoted once, when made. Every brand quotes
/// with double quotes (MariaDB's sessions run with ANSI_QUOTES). Names of application tables
/// come only from the tracked-table registry; `Dialect.identifier(_:)` checks a name against
/// the brand's limits where a name is first accepted (`track`).
public struct Identifier: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    /// The name in double quotes, an inner double quote doubled.
    public let quoted: String

    public init(_ name: String) {
        self.name = name
        if !name.utf8.contains(UInt8(ascii: "\"")) {
            quoted = "\"" + name + "\""
        } else {
            quoted =
                "\"" + name.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
        }
    }

    public var description: String { name }

    /// This name after `prefix.` (a table alias), as one fragment.
    public func qualified(by alias: String) -> SQL { SQL(raw: alias + "." + quoted) }
}
