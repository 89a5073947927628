import Foundation

/// Values a target column would store altered without an error: each is held with a reason
/// instead (docs/types.md). A NUL character in text bound for PostgreSQL is held here too, before
/// the server sees it. Values the database refuses outright (out of range, too long for
/// varchar(n)) are held through the database's own error.
enum ValueFit {
    /// `values`: each value with its column's position in `t.columns`.
    static func problem(_ values: [(Change.ColumnValue, Int)], table t: TableInfo, brand: Brand) -> String? {
        for (v, p) in values {
            let col = t.columns[p]
            if brand == .postgres, case .text(let s) = v.value, s.utf8.contains(0) {
                return "\(t.name).\(v.name): a NUL byte, which PostgreSQL text cannot hold; held rather than altered"
            }
            // Only reals and text can be altered.
            switch v.value {
            case .real: break
            case .text where brand == .sqlite || col.dataType.hasPrefix("numeric("): break
            default: continue
            }
            let problem = brand == .sqlite ? sqlite(v.value, col) : postgres(v.value, col)
            if let problem { return "\(t.name).\(v.name): \(problem); held rather than altered" }
        }
        return nil
    }

    // MARK: - SQLite

    /// SQLite's affinity of a declared type (https://www.sqlite.org/datatype3.html §3.1).
    enum Affinity { case integer, text, blob, real, numeric }

    static func affinity(_ declared: String) -> Affinity {
        let t = declared.uppercased()
        if t.contains("INT") { return .integer }
        if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") { return .text }
        if t.contains("BLOB") || t.isEmpty { return .blob }
        if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") { return .real }
        return .numeric
    }

    static func sqlite(_ value: Value, _ col: ColumnInfo) -> String? {
        // Text in a TEXT column (the common case) needs no affinity rules.
        if case .text = value, col.kind == .text { return nil }
        let aff = affinity(col.dataType)
        switch value {
        case .real(let d):
            if d.isNaN { return "NaN, which SQLite stores as NULL" }
            if d == 0 && d.sign == .minus && aff != .blob {
                return
                    "-0.0, which SQLite stores as 0 in a \(col.dataType) column (declare the column without a type to keep the sign)"
            }
        case .text(let s) where aff == .integer || aff == .real || aff == .numeric:
            // SQLite turns numeric-looking text into a number here, keeping 15 significant digits.
            if let digits = significantDigits(s), digits > 15 {
                return
                    "the number \(s.prefix(40)) has \(digits) significant digits; a \(col.dataType) column in SQLite keeps 15 (declare it TEXT to keep exact decimals)"
            }
        default: break
        }
        return nil
    }

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

    // MARK: - PostgreSQL

    static func postgres(_ value: Value, _ col: ColumnInfo) -> String? {
        let type = col.dataType
        // PostgreSQL stores a float4 and prints its shortest text; what comes back must be this value.
        if type == "real", case .real(let d) = value, !d.isNaN, Double(String(describing: Float(d))) != d {
            return
                "\(Value.realText(d)) needs double precision; a real column would round it (declare it double precision)"
        }
        if type.hasPrefix("numeric("), let scale = numericScale(type) {
            let text: String?
            switch value {
            case .text(let s): text = s
            case .real(let d): text = Value.realText(d)
            default: text = nil
            }
            if let text, let digits = fractionDigits(text), digits > scale {
                return "\(text.prefix(40)) has \(digits) decimal places; \(type) would round it to \(scale)"
            }
        }
        return nil
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
