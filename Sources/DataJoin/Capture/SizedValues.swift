import Foundation

/// An inserted row's values as MariaDB's capture writes them (schema 25 on): `L`, then for each
/// column `n` (NULL) or the value's byte count, `:` and its text.
/// Nothing is escaped, so building it costs one pass over each value: `JSON_ARRAY` gave NULL
/// for one value of 58 to 100 MiB and then for every later row of the table, and `REPLACE` to
/// escape by hand took minutes, unkillable, on 8 MiB holding many `\` (found from outside).
enum SizedValues {
    static let marker = UInt8(ascii: "L")

    static func parse(_ text: String) throws -> [String?] {
        var text = text
        return try text.withUTF8 { b in
            guard b.first == marker else { throw malformed }
            var values: [String?] = []
            var i = 1
            while i < b.count {
                if b[i] == UInt8(ascii: "n") {
                    values.append(nil)
                    i += 1
                    continue
                }
                var count = 0
                var digits = 0
                while i < b.count, b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9"), digits < 12 {
                    count = count * 10 + Int(b[i] - UInt8(ascii: "0"))
                    digits += 1
                    i += 1
                }
                guard digits > 0, i < b.count, b[i] == UInt8(ascii: ":"), count <= b.count - i - 1 else {
                    throw malformed
                }
                i += 1
                values.append(String(decoding: UnsafeBufferPointer(rebasing: b[i..<(i + count)]), as: UTF8.self))
                i += count
            }
            return values
        }
    }

    private static var malformed: DataJoinError {
        DataJoinError(.internalError, "malformed captured values in ds_change_outbox")
    }
}
