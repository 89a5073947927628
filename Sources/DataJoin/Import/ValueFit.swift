import Foundation

/// Values a target column would store altered without an error: each is held with a reason
/// instead (docs/types.md). A NUL character in text bound for PostgreSQL is held here too, before
/// the server sees it. Values the database refuses outright (out of range, too long for
/// varchar(n)) are held through the database's own error.
enum ValueFit {
    /// `values`: each value with its column's position in `t.columns`.
    static func problem(_ values: [(Change.ColumnValue, Int)], table t: TableInfo, dialect: Dialect) -> String? {
        for (v, p) in values {
            if let problem = dialect.valueProblem(v.value, t.columns[p]) {
                return "\(t.name).\(v.name): \(problem); held rather than altered"
            }
        }
        return nil
    }

    // MARK: - Number text, for the dialects

    /// The significant digits of a decimal literal as SQLite would read it, or nil if it is not one.
    static func significantDigits(_ s: String) -> Int? {
        let t = s.trimmingCharacters(in: .whitespaces)
        var u = Substring(t)
        if u.hasPrefix("+") || u.hasPrefix("-") { u = u.dropFirst() }
        let mantissa =
            u.split(separator: "e", maxSplits: 1, omittingEmptySubsequences: false).first.map {
                $0.split(separator: "E", maxSplits: 1, omittingEmptySubsequences: false).first ?? $0
            } ?? u
        guard Double(t) != nil, !mantissa.isEmpty, mantissa.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
            mantissa.filter({ $0 == "." }).count <= 1
        else { return nil }
        var digits = Array(mantissa.filter { $0 != "." })
        while digits.first == "0" { digits.removeFirst() }
        if mantissa.contains(".") { while digits.last == "0" { digits.removeLast() } }
        return digits.count
    }

    /// A decimal column of a fixed scale (`numeric(38,10)`, `decimal(10,2)`) would round a value
    /// with more decimal places.
    static func scaleProblem(_ value: Value, _ type: String) -> String? {
        guard let scale = numericScale(type) else { return nil }
        let text: String?
        switch value {
        case .text(let s): text = s
        case .real(let d): text = Value.realText(d)
        default: text = nil
        }
        guard let text, let digits = fractionDigits(text), digits > scale else { return nil }
        return "\(text.prefix(40)) has \(digits) decimal places; \(type) would round it to \(scale)"
    }

    static func numericScale(_ type: String) -> Int? {
        guard let open = type.firstIndex(of: "("), let close = type.firstIndex(of: ")") else { return nil }
        let parts = type[type.index(after: open)..<close].split(separator: ",")
        return parts.count == 2 ? Int(parts[1].trimmingCharacters(in: .whitespaces)) : 0
    }

    /// Digits after the decimal point that are not trailing zeros (exponent taken into account).
    static func fractionDigits(_ s: String) -> Int? {
        let t = s.trimmingCharacters(in: .whitespaces).lowercased()
        guard Double(t) != nil, !t.contains("inf"), !t.contains("nan") else { return nil }
        let parts = t.split(separator: "e", maxSplits: 1)
        // An exponent past any numeric column's range (±10,000 here) is clamped: a text such as
        // "0e-9223372036854775808" must not overflow the subtraction below.
        let exponent = min(10_000, max(-10_000, parts.count == 2 ? Int(parts[1]) ?? 0 : 0))
        var frac = Array(
            parts[0].split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).dropFirst().first ?? "")
        while frac.last == "0" { frac.removeLast() }
        return max(0, frac.count - exponent)
    }
}
