import Foundation

/// A typed column value as it travels between databases: NULL, integer, real, text and blob
/// stay distinct, and reals compare by bit pattern so -0.0, 0.0 and NaN survive a round trip.
public enum Value: Hashable, Sendable, CustomStringConvertible {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    public static func == (lhs: Value, rhs: Value) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.integer(a), .integer(b)): return a == b
        case let (.real(a), .real(b)): return a.bitPattern == b.bitPattern
        case let (.text(a), .text(b)): return a.utf8.elementsEqual(b.utf8)
        case let (.blob(a), .blob(b)): return a == b
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .integer(let v):
            hasher.combine(1)
            hasher.combine(v)
        case .real(let v):
            hasher.combine(2)
            hasher.combine(v.bitPattern)
        case .text(let v):
            hasher.combine(3)
            hasher.combine(Array(v.utf8))
        case .blob(let v):
            hasher.combine(4)
            hasher.combine(v)
        }
    }

    /// Equal, or both zero: a SQLite node captures -0.0 as 0 (its text rendering has no negative
    /// zero), so an old value of 0 from there matches a -0.0 held here and is no concurrent edit.
    func matchesCaptured(_ other: Value) -> Bool {
        if case let (.real(a), .real(b)) = (self, other), a == 0, b == 0 { return true }
        return self == other
    }

    public var isNull: Bool { if case .null = self { return true } else { return false } }

    public var description: String {
        switch self {
        case .null: return "NULL"
        case .integer(let v): return String(v)
        case .real(let v): return Value.realText(v)
        case .text(let v): return v
        case .blob(let v): return "x'" + Hex.encode(v) + "'"
        }
    }

    /// A JSON rendering for `inspect --json` and the conflict log.
    public var json: String {
        switch self {
        case .null: return "null"
        case .integer(let v): return String(v)
        case .real(let v): return v.isFinite ? Value.realText(v) : JSON.quote(Value.realText(v))
        case .text(let v): return JSON.quote(v)
        case .blob(let v): return "{\"blob\":\"" + Hex.encode(v) + "\"}"
        }
    }

    /// Shortest text that parses back to the same bits (Swift's description is round-trip exact).
    static func realText(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v == .infinity { return "Infinity" }
        if v == -.infinity { return "-Infinity" }
        return "\(v)"
    }

    var asInt64: Int64? {
        switch self {
        case .integer(let v): return v
        case .real(let v): return Int64(exactly: v)
        case .text(let s): return Int64(s)
        default: return nil
        }
    }

    var asString: String? {
        switch self {
        case .text(let s): return s
        case .integer(let v): return String(v)
        case .real: return description
        default: return nil
        }
    }
}

enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)
    static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
    static func decode<S: StringProtocol>(_ s: S) -> [UInt8]? {
        let u = Array(s.utf8)
        return u.withUnsafeBufferPointer { decode($0) }
    }

    static func decode(_ u: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard u.count % 2 == 0 else { return nil }
        var failed = false
        let out = [UInt8](unsafeUninitializedCapacity: u.count / 2) { buf, n in
            var i = 0
            while i < u.count {
                guard let h = nibble(u[i]), let l = nibble(u[i + 1]) else {
                    failed = true
                    break
                }
                buf[i / 2] = h << 4 | l
                i += 2
            }
            n = failed ? 0 : u.count / 2
        }
        return failed ? nil : out
    }
    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        case 65...70: return c - 55
        default: return nil
        }
    }
}

enum JSON {
    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                // Also what a terminal would act on (DEL, C1, bidi marks): escaped here, the
                // JSON stays JSON through `TerminalText.safe` (found in review: `\u{202b}`).
                if TerminalText.actedOn(scalar) {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
