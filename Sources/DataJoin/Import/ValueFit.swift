import Foundation

/// Values a target column would store altered without an error: each is held with a reason
/// instead (docs/types.md). A NUL character in text bound for PostgreSQL is held here too, before
/// the server sees it, and so are text too long for a PostgreSQL varchar(n) and dates and times
/// that name no moment (a statement error per change was the slow path). Values the database
/// refuses otherwise (out of range) are held through the database's own error.
enum ValueFit {
    /// `values`: each value with its column's position in `t.columns`.
    static func problem(_ values: [(Change.ColumnValue, Int)], table t: TableInfo, dialect: Dialect) -> String? {
        for (v, p) in values {
            // Every brand stores an integer in a floating-point column as a double, which holds
            // integers up to 2^53 exactly (`ValueConversion.normalize` leaves larger ones as they are).
            if case .integer(let i) = v.value, t.columns[p].kind == .real {
                return
                    "\(t.name).\(v.name): the integer \(i) would be rounded to a double in a column of type \(t.columns[p].dataType); held rather than altered"
            }
            if let problem = dialect.valueProblem(v.value, t.columns[p]) {
                return "\(t.name).\(v.name): \(problem); held rather than altered"
            }
        }
        return nil
    }

    /// A key value this node would store or compare as another value: an update or a delete
    /// by it would reach another row than the change means (found from outside: a held insert's
    /// delete removed the row its key was rounded to). Checked for every operation.
    static func keyProblem(_ key: [Value], table t: TableInfo, dialect: Dialect) -> String? {
        for (col, raw) in zip(t.keyColumns, key) {
            let v = ValueConversion.normalize(raw, kind: col.kind)
            var why: String?
            if case .integer(let i) = v, col.kind == .real, Double(exactly: i) == nil {
                why = "the integer \(i) would be rounded to a double in a column of type \(col.dataType)"
            } else if col.kind == .real, case .text(let s) = raw, case .real(let d) = v, !isOwnSpelling(s) {
                why =
                    "'\(s.clipped(40))' is one spelling of \(Value.realText(d)), and a column of type \(col.dataType) would take other spellings of it for the same key"
            } else {
                why = dialect.valueProblem(v, col) ?? dialect.keySpellingProblem(raw, col)
            }
            if let why { return "\(t.name): key column \(col.name): \(why); held rather than matched to another row" }
        }
        return nil
    }

    /// A number's own text: digits with an optional minus, no leading zeros, and an optional
    /// fraction (`-5`, `8`, `0.000050`, `12.50`: trailing zeros are a decimal column's
    /// precision), or a double's own text with an exponent (`1e+20`). Other texts of one number
    /// (`05`, `+5`, ` 5`, `5.`, `.5`, `5e0`, `-0`) would be one key where a column turns text
    /// into numbers.
    static func isOwnSpelling(_ s: String) -> Bool {
        let b = Array(s.utf8)
        func digits(from i: Int) -> Int {
            var j = i
            while j < b.count, b[j] >= 48, b[j] <= 57 { j += 1 }
            return j
        }
        let start = b.first == UInt8(ascii: "-") ? 1 : 0
        var i = digits(from: start)
        var plain = i > start && !(i - start > 1 && b[start] == 48)
        var nonzero = b[start..<i].contains { $0 != 48 }
        if plain, i < b.count, b[i] == UInt8(ascii: ".") {
            let f = i + 1
            i = digits(from: f)
            plain = i > f
            nonzero = nonzero || b[f..<i].contains { $0 != 48 }
        }
        if plain, i == b.count { return start == 0 || nonzero }
        guard let d = Double(s), d.isFinite, s.contains("e") else { return false }
        return Value.realText(d) == s
    }

    // MARK: - Text PostgreSQL's input functions read as another value

    /// Text (from a SQLite TEXT value, say) that a typed PostgreSQL column would store as
    /// something else than the text says: 'now' and 'today' as the moment each node applies
    /// it, 'yes' and 'on' as true, '0x10' as 16 (found from outside: every PostgreSQL node kept
    /// its own value, silently). Held instead; what PostgreSQL refuses outright is held anyway.
    static func postgresReadsAsOther(_ text: String, _ type: String) -> String? {
        // An array's text is its own syntax (`{1.5,2}`), not one value of the element type.
        if type.hasSuffix("]") { return nil }
        // Text into text (the common case) has nothing to look at: trimming and lowercasing every
        // value first cost an import of text columns a share of its time.
        let moment = type.hasPrefix("timestamp") || type.hasPrefix("date") || type.hasPrefix("time")
        guard moment || type == "boolean" || isNumber(type) else { return nil }
        // Only short text can be one of these: a large value is never copied to be looked at
        // (a 64 MiB text went through two copies here, found by the memory test).
        guard text.utf8.count <= 400 else {
            return isNumber(type) || type == "boolean"
                ? "a text of \(text.utf8.count) bytes is no value of \(type)" : nil
        }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let t = trimmed.lowercased()
        if moment {
            if ["now", "today", "tomorrow", "yesterday", "epoch", "allballs"].contains(t) {
                return
                    "'\(text.clipped(20))' is a word PostgreSQL reads as a moment of its own (\(type)), not this text"
            }
        } else if type == "boolean" {
            return booleanText(text)
        } else if isNumber(type) {
            let special = ["infinity", "-infinity", "+infinity", "nan"].contains(t) && !integerTypes.contains(type)
            if !special && !isDecimal(trimmed) {
                return
                    "'\(text.clipped(20))' is not a decimal number (\(type)): PostgreSQL would refuse it or read it as another value"
            }
            if type == "double precision" || type == "real", let rounds = floatRounds(text, single: type == "real") {
                return rounds
            }
        }
        return nil
    }

    private static let integerTypes: Set = ["smallint", "integer", "bigint"]

    /// Text for a boolean column (1 and 0 are numbers by then): the SQLite node that wrote
    /// `'true'` keeps the text, which a condition there reads as 0, and a typed column would
    /// store true (found from outside: applied as 1 everywhere else, the nodes differed).
    static func booleanText(_ text: String) -> String {
        "'\(text.clipped(20))' is text, not the number 1 or 0 a boolean is on every brand: the SQLite node that wrote it "
            + "keeps the text (a condition there reads it as a number, 'true' as 0), and a boolean column would store "
            + "another value; write 1 or 0 (TRUE or FALSE) there"
    }

    // MARK: - Spellings a typed column stores as another text

    /// The kinds of typed column whose own text of a value is one spelling of it.
    enum Spelled { case date, time, timestamp, integer, decimal, uuid }

    /// Text in a spelling the typed column would store and print otherwise: `2024-1-2`,
    /// `02/03/2024` (read by the server's DateStyle), `20240105`, `2024-01-02T03:04:05`, ` 7`,
    /// `07`, `1e2`, `.5`, an upper-case UUID. A SQLite node keeps the text as written and the
    /// typed node its own spelling, so the two differed for good (found from outside). Trailing
    /// zeros of fractional seconds and of decimals are the column's own precision, not another
    /// spelling (`DATETIME(6)` prints `.000000`).
    static func spellingProblem(_ text: String, _ kind: Spelled, typeName: String, brand: String) -> String? {
        guard text.utf8.count <= 64 else {
            return kind == .uuid || kind == .integer || kind == .date
                ? "a text of \(text.utf8.count) bytes is no value of \(typeName)" : nil
        }
        let b = Array(text.utf8)
        if b.elementsEqual("infinity".utf8) || b.elementsEqual("-infinity".utf8) {
            return calendarProblem(text, kind, typeName: typeName, brand: brand)
        }
        // Text with no digit is no value of these types: the database refuses it with its own
        // message (or, for words it reads as values, `postgresReadsAsOther` holds it).
        guard b.contains(where: isDigit) else { return nil }
        let fine: Bool
        switch kind {
        case .date: fine = date(b)
        case .time: fine = time(b[...])
        case .timestamp: fine = timestamp(b)
        case .integer: fine = integer(b[...])
        case .decimal: fine = decimal(b)
        case .uuid: fine = uuid(b)
        }
        if fine { return calendarProblem(text, kind, typeName: typeName, brand: brand) }
        let shown = text.prefix(40)
        switch kind {
        case .date, .time, .timestamp:
            return "'\(shown)' is not written as \(brand) writes a \(typeName) (\(example(kind))); "
                + "\(brand) would store it in its own spelling, read it by its date style, or refuse it"
        case .integer, .decimal:
            return
                "'\(shown)' is not written as \(brand) writes a number (\(typeName)); it would store it in its own spelling"
        case .uuid:
            return
                "'\(shown)' is not a UUID as \(brand) writes it (lower case, 8-4-4-4-12); it would store it in its own spelling"
        }
    }

    /// The digits after a time's decimal point, trailing zeros left out: more than a column's
    /// precision are rounded (PostgreSQL) or cut (MariaDB) without an error.
    static func significantFractionDigits(_ s: String) -> Int {
        guard let dot = s.lastIndex(of: ".") else { return 0 }
        return s[s.index(after: dot)...].prefix { $0.isNumber }.reversed().drop { $0 == "0" }.count
    }

    /// A value in the column's own spelling that names no moment the column holds: a day the
    /// calendar lacks (`2023-02-29`, MariaDB's zero date `0000-00-00`), a year the brand has no
    /// room for, or a time past the day's end. PostgreSQL does not refuse every one of them: it
    /// moves a leap second to the next minute and `24:00:00` of a timestamp to the next day,
    /// so a SQLite node's `2024-01-01 23:59:60` arrived as `2024-01-02 00:00:00`. The rest failed
    /// on the server, one statement error per change. All are held here, with the reason.
    static func calendarProblem(_ text: String, _ kind: Spelled, typeName: String, brand: String) -> String? {
        guard kind == .date || kind == .time || kind == .timestamp else { return nil }
        let postgres = brand == "PostgreSQL"
        let shown = "'\(text.clipped(40))'"
        var body = Array(text.utf8)[...]
        if body.elementsEqual("infinity".utf8) || body.elementsEqual("-infinity".utf8) {
            return postgres && kind != .time
                ? nil : "\(shown) is no value of \(brand)'s \(typeName), which has no infinity"
        }
        let bc = body.count > 3 && body.suffix(3).elementsEqual(" BC".utf8)
        if bc {
            guard postgres else { return "\(shown) is no value of MariaDB's \(typeName), which holds no year BC" }
            body = body.dropLast(3)
        }
        var clock = body
        if kind != .time {
            let end = body.firstIndex(of: 32) ?? body.endIndex
            if let why = dayProblem(body[..<end], bc: bc, postgres: postgres) {
                return "\(shown) is no value of \(brand)'s \(typeName): \(why)"
            }
            if kind == .date { return nil }
            clock = body[(end + 1)...]
        }
        let negative = clock.first == 45
        if negative { clock = clock.dropFirst() }
        guard let colon = clock.firstIndex(of: 58) else { return nil }
        let hours = number(clock[..<colon]), minutes = number(clock[(colon + 1)..<(colon + 3)])
        let seconds = number(clock[(colon + 4)..<(colon + 6)])
        let afterSeconds = clock[(colon + 6)...].dropFirst()
        let exactHour = minutes == 0 && seconds == 0 && afterSeconds.allSatisfy { $0 == 48 }
        if postgres && seconds == 60 && minutes <= 59 {
            return
                "\(shown) holds a leap second, which PostgreSQL's \(typeName) moves to the next minute"
        }
        if postgres && kind == .timestamp && hours == 24 && exactHour {
            return "\(shown) is midnight of the next day to PostgreSQL's \(typeName)"
        }
        let lastHour = kind == .timestamp ? 23 : postgres ? (exactHour ? 24 : 23) : 838
        if minutes > 59 || seconds > 59 || hours > lastHour || (postgres && negative) {
            return "\(shown) is no value of \(brand)'s \(typeName): no such time"
        }
        return nil
    }

    /// `YYYY-MM-DD`, its spelling already checked: a day of the proleptic Gregorian calendar
    /// (PostgreSQL: no year 0, 1 BC a leap year; MariaDB: four-digit years from 0000).
    private static func dayProblem(_ b: ArraySlice<UInt8>, bc: Bool, postgres: Bool) -> String? {
        guard let dash = b.firstIndex(of: 45) else { return nil }
        let yearDigits = b[..<dash]
        let year = number(yearDigits), month = number(b[(dash + 1)..<(dash + 3)])
        let day = number(b[(dash + 4)..<(dash + 6)])
        if year == 0 && month == 0 && day == 0 { return "the zero date, MariaDB's stand-in for no date (send NULL)" }
        if !postgres && yearDigits.count != 4 { return "a year of more than four digits" }
        if postgres && year == 0 { return "year 0, which PostgreSQL does not count (1 BC comes before 1 AD)" }
        guard (1...12).contains(month) else { return "no month \(month)" }
        let astronomical = bc ? 1 - year : year
        // MariaDB's year 0 has no 29 February (its calendar counts 365 days in it).
        let leap =
            astronomical % 4 == 0 && (astronomical % 100 != 0 || astronomical % 400 == 0) && (postgres || year != 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        guard (1...days).contains(day) else { return "no day \(day) in month \(month) of that year" }
        return nil
    }

    /// Decimal digits, already checked to be digits (at most seven).
    private static func number(_ b: ArraySlice<UInt8>) -> Int { b.reduce(0) { $0 * 10 + Int($1 - 48) } }

    private static func example(_ kind: Spelled) -> String {
        switch kind {
        case .date: return "2024-01-02"
        case .time: return "03:04:05.123"
        default: return "2024-01-02 03:04:05.123"
        }
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }

    private static func digits(_ b: ArraySlice<UInt8>, _ from: Int, _ n: Int) -> Bool {
        from + n <= b.endIndex && b[from..<from + n].allSatisfy(isDigit)
    }

    /// `YYYY-MM-DD` (four to seven year digits), `infinity`, `-infinity`, a ` BC` suffix. Nothing
    /// after it: `2024-01-03 00:00:00` is another spelling in a date column, and two keys on a
    /// SQLite node (found from outside).
    private static func date(_ b: [UInt8]) -> Bool {
        if b.elementsEqual("infinity".utf8) || b.elementsEqual("-infinity".utf8) { return true }
        var body = b[...]
        if body.count > 3, body.suffix(3).elementsEqual(" BC".utf8) { body = body.dropLast(3) }
        guard let dash = body.firstIndex(of: 45), dash - body.startIndex >= 4, dash - body.startIndex <= 7,
            digits(body, body.startIndex, dash - body.startIndex), dash + 6 == body.endIndex,
            digits(body, dash + 1, 2), body[dash + 3] == 45, digits(body, dash + 4, 2)
        else { return false }
        return true
    }

    /// `HH:MM:SS` with up to six fraction digits (MariaDB's TIME: a sign, up to three hour digits).
    private static func time(_ b: ArraySlice<UInt8>) -> Bool {
        var t = b
        if t.first == 45 { t = t.dropFirst() }
        guard let colon = t.firstIndex(of: 58), colon - t.startIndex >= 2, colon - t.startIndex <= 3,
            digits(t, t.startIndex, colon - t.startIndex), colon + 6 <= t.endIndex, digits(t, colon + 1, 2),
            t[colon + 3] == 58, digits(t, colon + 4, 2)
        else { return false }
        let fraction = t[(colon + 6)...]
        if fraction.isEmpty { return true }
        return fraction.first == 46 && (2...7).contains(fraction.count) && fraction.dropFirst().allSatisfy(isDigit)
    }

    static func timestamp(_ b: [UInt8]) -> Bool {
        if b.elementsEqual("infinity".utf8) || b.elementsEqual("-infinity".utf8) { return true }
        var body = b[...]
        if body.count > 3, body.suffix(3).elementsEqual(" BC".utf8) { body = body.dropLast(3) }
        guard let space = body.firstIndex(of: 32) else { return false }
        return date(Array(body[..<space])) && time(body[(space + 1)...])
            && body[(space + 1)...].first != 45
    }

    /// Digits with an optional minus: a whole number of any size.
    static func isWholeNumber(_ s: String) -> Bool {
        let body = s.utf8.first == UInt8(ascii: "-") ? s.utf8.dropFirst() : s.utf8[...]
        return !body.isEmpty && body.allSatisfy { $0 >= 48 && $0 <= 57 }
    }

    /// `-?(0|[1-9][0-9]*)`, not `-0`.
    private static func integer(_ b: ArraySlice<UInt8>) -> Bool {
        var d = b
        if d.first == 45 { d = d.dropFirst() }
        guard !d.isEmpty, d.allSatisfy(isDigit) else { return false }
        if d.first == 48 { return d.count == 1 && b.first != 45 }
        return true
    }

    /// An integer part as above, then a point and at least one digit; not a negative zero.
    /// `NaN`, `Infinity` and `-Infinity` as PostgreSQL prints them.
    private static func decimal(_ b: [UInt8]) -> Bool {
        if ["NaN", "Infinity", "-Infinity"].contains(where: { b.elementsEqual($0.utf8) }) { return true }
        let point = b.firstIndex(of: 46) ?? b.endIndex
        let whole = b[..<point]
        var w = whole
        if w.first == 45 { w = w.dropFirst() }
        guard !w.isEmpty, w.allSatisfy(isDigit), w.first != 48 || w.count == 1 else { return false }
        let fraction = b[point...]
        if !fraction.isEmpty, fraction.count < 2 || !fraction.dropFirst().allSatisfy(isDigit) { return false }
        // A negative zero prints without its sign.
        if whole.first == 45, w.allSatisfy({ $0 == 48 }), fraction.dropFirst().allSatisfy({ $0 == 48 }) { return false }
        return true
    }

    private static func uuid(_ b: [UInt8]) -> Bool {
        b.count == 36
            && b.indices.allSatisfy { i in
                [8, 13, 18, 23].contains(i) ? b[i] == 45 : (isDigit(b[i]) || (b[i] >= 97 && b[i] <= 102))
            }
    }

    /// What PostgreSQL's catalog calls a type, as one of the spelled kinds (nil: not checked).
    /// The whole name with any precision taken out: `timestamp(3) with time zone` is not a
    /// `timestamp`, and an array (`numeric(10,2)[]`) is no scalar (found from outside: both were
    /// held between identical PostgreSQL tables).
    static func postgresSpelled(_ type: TypeName) -> Spelled? {
        switch type.withoutParentheses {
        case "date": return .date
        case "time without time zone", "time": return .time
        case "timestamp without time zone", "timestamp": return .timestamp
        case "smallint", "integer", "bigint": return .integer
        case "numeric": return .decimal
        case "uuid": return .uuid
        default: return nil
        }
    }

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
        return "'\(text.clipped(40))' would be stored as \(stored) (\(single ? "real" : "double precision") rounds it)"
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
        return "\(text.clipped(40)) has \(digits) decimal places; \(type) would round it to \(scale)"
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
