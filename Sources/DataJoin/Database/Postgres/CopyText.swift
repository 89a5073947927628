import Foundation

/// Rows in PostgreSQL's `COPY … FROM STDIN` text format: tab-separated fields, `\N` for NULL,
/// backslash escapes for the characters that would end a field or a row, bytea in hex.
enum CopyText {
    static func line(_ values: [Value]) -> String {
        var out = ""
        out.reserveCapacity(values.count * 16)
        for (i, v) in values.enumerated() {
            if i > 0 { out.append("\t") }
            field(v, into: &out)
        }
        return out
    }

    static func field(_ v: Value, into out: inout String) {
        switch v {
        case .null: out.append("\\N")
        case .integer(let i): out.append(String(i))
        // The same text a bound parameter carries (Swift's shortest exact form).
        case .real(let d): out.append(Value.realText(d))
        case .text(let s):
            if !s.utf8.contains(where: { $0 == 92 || $0 == 9 || $0 == 10 || $0 == 13 }) { out.append(s); return }
            for ch in s.unicodeScalars {
                switch ch {
                case "\\": out.append("\\\\")
                case "\t": out.append("\\t")
                case "\n": out.append("\\n")
                case "\r": out.append("\\r")
                default: out.unicodeScalars.append(ch)
                }
            }
        case .blob(let b):
            // bytea's hex input `\x…`, its backslash escaped for COPY.
            out.append("\\\\x")
            out.append(Hex.encode(b))
        }
    }
}
