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

    // MARK: - Text PostgreSQL's input functions read as another value

    /// Text (from a SQLite TEXT value, say) that a typed PostgreSQL column would store as
    /// something else than the text says: 'now' and 'today' as the moment each node applies
    /// it, 'yes' and 'on' as true, '0x10' as 16 (found from outside: every PostgreSQL node kept
    /// its own value, silently). Held instead; what PostgreSQL refuses outright is held anyway.
    static func postgresReadsAsOther(_ text: String, _ type: String) -> String? {
        // Only short text can be one of these: a large value is never copied to be looked at
        // (a 64 MiB text went through two copies here, found by the memory test).
        guard text.utf8.count <= 400 else {
            return isNumber(type) || type == "boolean"
                ? "a text of \(text.utf8.count) bytes is no value of \(type)" : nil
        }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let t = trimmed.lowercased()
        if type.hasPrefix("timestamp") || type.hasPrefix("date") || type.hasPrefix("time") {
            if ["now", "today", "tomorrow", "yesterday", "epoch", "allballs"].contains(t) {
                return "'\(text.prefix(20))' is a word PostgreSQL reads as a moment of its own (\(type)), not this text"
            }
        } else if type == "boolean" {
            if !["t", "f", "true", "false", "1", "0"].contains(text) {
                return
                    "'\(text.prefix(20))' is not true or false as every brand spells it; PostgreSQL would read it as a boolean"
            }
        } else if isNumber(type) {
            let special = ["infinity", "-infinity", "+infinity", "nan"].contains(t) && !integerTypes.contains(type)
            if !special && !isDecimal(trimmed) {
                return
                    "'\(text.prefix(20))' is not a decimal number (\(type)): PostgreSQL would refuse it or read it as another value"
            }
            if type == "double precision" || type == "real", let rounds = floatRounds(text, single: type == "real") {
                return rounds
            }
        }
        return nil
    }

    private static let integerTypes: Set = ["smallint", "integer", "bigint"]

    /// PostgreSQL's number types, as its catalog names them.
    private static func isNumber(_ type: String) -> Bool {
        integerTypes.contains(type) || type == "double precision" || type == "real" || type.hasPrefix("numeric")
    }

    /// What a double makes of a decimal text out of its range (Inf for 1e400, 0 for 1e-400), or
    /// nil: the text is not decimal, or a double holds its magnitude.
    static func outOfDoubleRange(_ s: String) -> Double? {
        guard s.utf8.count <= 400 else { return nil }
        let trimmed = s.trimmingCharacters(in: .whitespaces)
        guard isDecimal(trimmed), let d = Double(trimmed) else { return nil }
        return !d.isFinite || (d == 0 && (significantDigits(s) ?? 0) > 0) ? d : nil
    }

    /// A decimal number's digits without leading or trailing zeros and the exponent of the
    /// first of them, with its sign: two spellings of one number are equal here.
    static func canonicalDecimal(_ s: String) -> (negative: Bool, digits: [Character], exponent: Int)? {
        var u = Substring(s.trimmingCharacters(in: .whitespaces).lowercased())
        guard isDecimal(String(u)) else { return nil }
        var negative = false
        if u.first == "+" || u.first == "-" {
            negative = u.first == "-"
            u = u.dropFirst()
        }
        let parts = u.split(separator: "e", maxSplits: 1, omittingEmptySubsequences: false)
        let exp = parts.count == 2 ? Int(parts[1].hasPrefix("+") ? parts[1].dropFirst() : parts[1]) ?? 0 : 0
        let mantissa = parts[0].split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let whole = Array(mantissa[0]), frac = mantissa.count == 2 ? Array(mantissa[1]) : []
        var digits = whole + frac
        var point = whole.count + max(-100_000, min(100_000, exp))
        while digits.first == "0" {
            digits.removeFirst()
            point -= 1
        }
        while digits.last == "0" { digits.removeLast() }
        if digits.isEmpty { return (false, [], 0) }
        return (negative, digits, point)
    }

    /// A decimal text a binary float would not hold as this number ('9007199254740993' is
    /// 9007199254740992 as a double): stored, it would be another value.
    static func floatRounds(_ text: String, single: Bool) -> String? {
        guard text.utf8.count <= 400, let want = canonicalDecimal(text) else { return nil }
        let stored: String
        if single {
            guard let f = Float(text.trimmingCharacters(in: .whitespaces)), f.isFinite else { return nil }
            stored = "\(f)"
        } else {
            guard let d = Double(text.trimmingCharacters(in: .whitespaces)), d.isFinite else { return nil }
            stored = Value.realText(d)
        }
        guard let got = canonicalDecimal(stored), got != want else { return nil }
        return "'\(text.prefix(40))' would be stored as \(stored) (\(single ? "real" : "double precision") rounds it)"
    }

    /// `[+-]digits[.digits][e[+-]digits]`, as SQLite reads a number from text: no hexadecimal,
    /// no 'inf', no underscores.
    static func isDecimal(_ s: String) -> Bool {
        var u = Substring(s)
        if u.first == "+" || u.first == "-" { u = u.dropFirst() }
        let digits = { (x: Substring) in x.allSatisfy { $0.isASCII && $0.isNumber } }
        let e = u.firstIndex { $0 == "e" || $0 == "E" }
        let mantissa = e.map { u[..<$0] } ?? u
        if let e {
            var exp = u[u.index(after: e)...]
            if exp.first == "+" || exp.first == "-" { exp = exp.dropFirst() }
            guard !exp.isEmpty, digits(exp) else { return false }
        }
        let parts = mantissa.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count <= 2, parts.allSatisfy(digits), parts.contains(where: { !$0.isEmpty }) else { return false }
        return true
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
