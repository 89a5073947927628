import Foundation

/// Parses the flat JSON the capture triggers write: an array or object whose members are
/// strings or null (both brands' triggers render every value as text first).
enum CapturedJSON {
    // Parsed in place from the string's UTF-8 (no copy into an array: `perf` had the parser at a
    // fifth of an export).
    static func array(_ text: String) throws -> [String?] {
        var text = text
        return try text.withUTF8 { u in
            var p = Parser(u)
            return try p.array()
        }
    }

    static func object(_ text: String) throws -> [(String, String?)] {
        var text = text
        return try text.withUTF8 { u in
            var p = Parser(u)
            return try p.object()
        }
    }

    private struct Parser {
        let b: UnsafeBufferPointer<UInt8>
        var i = 0
        init(_ b: UnsafeBufferPointer<UInt8>) { self.b = b }

        mutating func ws() { while i < b.count, b[i] == 32 || b[i] == 10 || b[i] == 13 || b[i] == 9 { i += 1 } }

        mutating func expect(_ c: UInt8) throws {
            ws()
            guard i < b.count, b[i] == c else {
                throw DataJoinError(.internalError, "malformed captured JSON in ds_change_outbox")
            }
            i += 1
        }

        mutating func peek() -> UInt8? {
            ws()
            return i < b.count ? b[i] : nil
        }

        mutating func member() throws -> String? {
            ws()
            if b.count - i >= 4, b[i] == UInt8(ascii: "n"), b[i + 1] == UInt8(ascii: "u") {
                i += 4
                return nil
            }
            return try string()
        }

        mutating func string() throws -> String {
            try expect(UInt8(ascii: "\""))
            // Most strings have no escape: one slice, decoded once.
            var j = i
            while j < b.count, b[j] != UInt8(ascii: "\""), b[j] != UInt8(ascii: "\\") { j += 1 }
            if j < b.count, b[j] == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeBufferPointer(rebasing: b[i..<j]), as: UTF8.self)
                i = j + 1
                return s
            }
            var out: [UInt8] = []
            while i < b.count {
                let c = b[i]
                i += 1
                if c == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
                if c != UInt8(ascii: "\\") {
                    out.append(c)
                    continue
                }
                guard i < b.count else { break }
                let e = b[i]
                i += 1
                switch e {
                case UInt8(ascii: "n"): out.append(10)
                case UInt8(ascii: "t"): out.append(9)
                case UInt8(ascii: "r"): out.append(13)
                case UInt8(ascii: "b"): out.append(8)
                case UInt8(ascii: "f"): out.append(12)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if scalar >= 0xD800 && scalar < 0xDC00, i + 1 < b.count, b[i] == UInt8(ascii: "\\"),
                        b[i + 1] == UInt8(ascii: "u")
                    {
                        i += 2
                        let low = try hex4()
                        // A high surrogate without its low half stays a replacement character.
                        scalar =
                            low >= 0xDC00 && low < 0xE000
                            ? 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00) : 0xFFFD
                    }
                    out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar) ?? "\u{FFFD}")).utf8))
                default: out.append(e)
                }
            }
            throw DataJoinError(.internalError, "unterminated string in captured JSON")
        }

        mutating func hex4() throws -> UInt32 {
            guard i + 4 <= b.count, let v = UInt32(String(decoding: b[i..<i + 4], as: UTF8.self), radix: 16) else {
                throw DataJoinError(.internalError, "bad \\u escape in captured JSON")
            }
            i += 4
            return v
        }

        mutating func array() throws -> [String?] {
            try expect(UInt8(ascii: "["))
            var out: [String?] = []
            if peek() == UInt8(ascii: "]") {
                i += 1
                return out
            }
            while true {
                out.append(try member())
                if peek() == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                try expect(UInt8(ascii: "]"))
                return out
            }
        }

        mutating func object() throws -> [(String, String?)] {
            try expect(UInt8(ascii: "{"))
            var out: [(String, String?)] = []
            if peek() == UInt8(ascii: "}") {
                i += 1
                return out
            }
            while true {
                let k = try string()
                try expect(UInt8(ascii: ":"))
                out.append((k, try member()))
                if peek() == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                try expect(UInt8(ascii: "}"))
                return out
            }
        }
    }
}
