import Foundation

/// Rows in PostgreSQL's `COPY … FROM STDIN` text format: tab-separated fields, `\N` for NULL,
/// backslash escapes for the characters that would end a field or a row, bytea in hex.
enum CopyText {
    /// Appends one row (and its newline) to the sink, which sends whenever it holds 1 MiB or
    /// more: a large value goes out in pieces, never as one line of twice its size (bytea in hex).
    static func append(_ values: [Value], to sink: CopySink) throws {
        for (i, v) in values.enumerated() {
            if i > 0 { sink.bytes.append(9) }
            switch v {
            case .blob(let b) where b.count >= 1 << 16:
                sink.bytes.append(contentsOf: Array("\\\\x".utf8))
                let digits = Array("0123456789abcdef".utf8)
                var start = 0
                while start < b.count {
                    let end = min(b.count, start + (1 << 19))
                    for byte in b[start..<end] {
                        sink.bytes.append(digits[Int(byte >> 4)])
                        sink.bytes.append(digits[Int(byte & 15)])
                    }
                    start = end
                    try sink.sendIfFull()
                }
            case .text(var s) where s.utf8.count >= 1 << 16:
                // Escaped byte by byte (the characters to escape are ASCII), sent in pieces.
                try s.withUTF8 { u in
                    for (n, c) in u.enumerated() {
                        switch c {
                        case 92:
                            sink.bytes.append(92)
                            sink.bytes.append(92)
                        case 9:
                            sink.bytes.append(92)
                            sink.bytes.append(UInt8(ascii: "t"))
                        case 10:
                            sink.bytes.append(92)
                            sink.bytes.append(UInt8(ascii: "n"))
                        case 13:
                            sink.bytes.append(92)
                            sink.bytes.append(UInt8(ascii: "r"))
                        default: sink.bytes.append(c)
                        }
                        if n & 0xFFFF == 0 { try sink.sendIfFull() }
                    }
                }
            default:
                var field = ""
                Self.field(v, into: &field)
                sink.bytes.append(contentsOf: field.utf8)
            }
            try sink.sendIfFull()
        }
        sink.bytes.append(10)
        try sink.sendIfFull()
    }

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
            if !s.utf8.contains(where: { $0 == 92 || $0 == 9 || $0 == 10 || $0 == 13 }) {
                out.append(s)
                return
            }
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

/// The bytes of a `COPY … FROM STDIN` on their way to the server, sent a megabyte at a time.
final class CopySink {
    var bytes: [UInt8] = []
    let send: ([UInt8]) throws -> Void

    init(send: @escaping ([UInt8]) throws -> Void) {
        self.send = send
        bytes.reserveCapacity(2 << 20)
    }

    func sendIfFull() throws { if bytes.count >= 1 << 20 { try sendAll() } }

    func sendAll() throws {
        guard !bytes.isEmpty else { return }
        try send(bytes)
        bytes.removeAll(keepingCapacity: true)
    }
}
