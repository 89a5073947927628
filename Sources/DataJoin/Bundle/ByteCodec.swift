import Foundation

/// Appends the bundle's primitive encodings: LEB128 varints, zigzag integers, typed values.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func byte(_ b: UInt8) { bytes.append(b) }

    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// How many bytes `varint(v)` writes.
    static func varintSize(_ v: UInt64) -> Int {
        var n = 1
        var v = v
        while v >= 0x80 {
            v >>= 7
            n += 1
        }
        return n
    }

    mutating func signed(_ v: Int64) { varint(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }

    mutating func data(_ b: [UInt8]) {
        varint(UInt64(b.count))
        bytes.append(contentsOf: b)
    }

    /// Straight from the string's UTF-8 (no array in between: one allocation per text had been
    /// a tenth of an ingest).
    mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { u in
            varint(UInt64(u.count))
            bytes.append(contentsOf: u)
        }
    }

    mutating func value(_ v: Value) {
        switch v {
        case .null: byte(0)
        case .integer(let i):
            byte(1)
            signed(i)
        case .real(let d):
            byte(2)
            var bits = d.bitPattern.littleEndian
            withUnsafeBytes(of: &bits) { bytes.append(contentsOf: $0) }
        case .text(let s):
            byte(3)
            string(s)
        case .blob(let b):
            byte(4)
            data(b)
        }
    }
}

/// A source of bytes for `ByteReader`: a whole array, or a decompressing stream.
protocol ByteSource {
    /// Fills up to `max` bytes; returns an empty array at the end.
    mutating func next(max: Int) throws -> [UInt8]
}

struct ArraySource: ByteSource {
    let bytes: [UInt8]
    var offset = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    mutating func next(max: Int) throws -> [UInt8] {
        let n = min(max, bytes.count - offset)
        defer { offset += n }
        if offset == 0 && n == bytes.count { return bytes }  // shared, not copied
        return Array(bytes[offset..<offset + n])
    }
}

/// A blob column of one row, read a megabyte at a time (a large inbox payload decoded without
/// ever being whole in memory besides the values it holds).
struct BlobSource: ByteSource {
    let db: Database
    let table: String, column: String, rowid: Int64, length: Int
    var offset = 0
    var piece: [UInt8] = []
    var pieceOffset = 0

    mutating func next(max: Int) throws -> [UInt8] {
        if pieceOffset >= piece.count {
            guard offset < length else { return [] }
            piece = try db.readBlob(
                table: table, column: column, rowid: rowid, offset: offset, count: Swift.min(1 << 20, length - offset))
            pieceOffset = 0
            offset += piece.count
            if piece.isEmpty { return [] }
        }
        let n = Swift.min(max, piece.count - pieceOffset)
        defer { pieceOffset += n }
        return Array(piece[pieceOffset..<pieceOffset + n])
    }
}

/// Reads the primitive encodings with bounds on every length, so a hostile input can neither
/// crash the reader nor make it allocate without limit.
struct ByteReader<Source: ByteSource> {
    var source: Source
    private var buffer: [UInt8] = []
    private var pos = 0
    private(set) var consumed = 0
    /// Every byte read, for the checksum, when a digest is being taken. Fed a buffer at a time
    /// (when the buffer is refilled, and at `flushConsumed()`), not per read: per byte, the
    /// digest calls were a fifth of an ingest.
    var onConsume: ((ArraySlice<UInt8>) -> Void)?
    /// Where in `buffer` the bytes not yet given to `onConsume` start.
    private var undigested = 0
    static var maxField: Int { 64 << 20 }
    /// From this size on, a change's payload buffer is reserved once for the rest of its budget.
    static var largeChangeBytes: Int { 1 << 20 }
    /// Reading stops with an error before a field would take the total consumed past this
    /// (one change record at a time: `BundleFormat.maxChangeBytes`).
    var budgetEnd = Int.max

    private func checkBudget(_ n: Int) throws {
        if n > budgetEnd - consumed {
            throw DataJoinError.bundle(
                "a change holds more than \(BundleFormat.maxChangeBytes >> 20) MiB, the most one change may carry")
        }
    }

    init(_ source: Source) { self.source = source }

    private mutating func fill() throws -> Bool {
        if pos < buffer.count { return true }
        flushConsumed()
        buffer = try source.next(max: 64 * 1024)
        pos = 0
        undigested = 0
        return !buffer.isEmpty
    }

    /// Gives `onConsume` every byte read so far.
    mutating func flushConsumed() {
        if pos > undigested { onConsume?(buffer[undigested..<pos]) }
        undigested = pos
    }

    mutating func atEnd() throws -> Bool { try !fill() }

    mutating func byte() throws -> UInt8 {
        guard try fill() else { throw DataJoinError.bundle("damaged: the data ends in the middle of a record") }
        let b = buffer[pos]
        pos += 1
        consumed += 1
        return b
    }

    mutating func bytes(_ n: Int) throws -> [UInt8] {
        guard n >= 0 && n <= Self.maxField else {
            throw DataJoinError.bundle("a field claims \(n) bytes, over the \(Self.maxField >> 20) MiB limit")
        }
        try checkBudget(n)
        // Exactly n (bounded above and by the change's budget): a large value is never copied
        // while the array grows.
        var out: [UInt8] = []
        out.reserveCapacity(n)
        while out.count < n {
            guard try fill() else {
                throw DataJoinError.bundle("damaged: the data ends in the middle of a record")
            }
            let take = min(n - out.count, buffer.count - pos)
            out.append(contentsOf: buffer[pos..<pos + take])
            pos += take
            consumed += take
        }
        return out
    }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            if shift == 63 && b > 1 { throw DataJoinError.bundle("a number is too large") }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw DataJoinError.bundle("a number is too large") }
        }
    }

    /// `what` names the field in the refusal ("a seq of 18446744073709551615 is over the limit …").
    mutating func int(_ max: Int = Int(Int32.max), what: String = "a count") throws -> Int {
        // An index into an empty list (no origins, no columns): nothing it can refer to.
        guard max >= 0 else { throw DataJoinError.bundle("refers to an entry of an empty list") }
        let v = try varint()
        guard v <= UInt64(max) else { throw DataJoinError.bundle("\(what) of \(v) is over the limit \(max)") }
        return Int(v)
    }

    mutating func signed() throws -> Int64 {
        let u = try varint()
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    mutating func data() throws -> [UInt8] { try bytes(try int(Self.maxField)) }

    mutating func string() throws -> String {
        let n = try int(Self.maxField)
        try checkBudget(n)
        // Straight from the buffer when the text is all there (most are): no array in between.
        if n > 0, try fill(), buffer.count - pos >= n {
            let start = pos
            pos += n
            consumed += n
            let s = buffer.withUnsafeBufferPointer { Self.text(UnsafeBufferPointer(rebasing: $0[start..<start + n])) }
            guard let s else { throw DataJoinError.bundle("a text field is not valid UTF-8") }
            return s
        }
        // A text larger than the buffer: copied once, straight into the string's storage, and
        // validated piece by piece on the way (a byte array and then a string were two copies).
        var validator = UTF8Validator()
        var failure: Error?
        let s = String(unsafeUninitializedCapacity: n) { out -> Int in
            var filled = 0
            do {
                while filled < n {
                    guard try fill() else {
                        throw DataJoinError.bundle("damaged: the data ends in the middle of a record")
                    }
                    let take = min(n - filled, buffer.count - pos)
                    let start = pos
                    buffer.withUnsafeBufferPointer { src in
                        let piece = UnsafeBufferPointer(rebasing: src[start..<start + take])
                        validator.feed(piece)
                        _ = UnsafeMutableBufferPointer(rebasing: out[filled..<filled + take]).initialize(from: piece)
                    }
                    pos += take
                    consumed += take
                    filled += take
                }
            } catch {
                failure = error
            }
            return filled
        }
        if let failure { throw failure }
        guard validator.finish() else { throw DataJoinError.bundle("a text field is not valid UTF-8") }
        return s
    }

    /// ASCII (most text) needs no validation and takes the non-generic decoder; `perf` had the
    /// generic `String(validating:)` at 6 % of an import.
    static func text(_ b: UnsafeBufferPointer<UInt8>) -> String? {
        var high: UInt8 = 0
        for c in b { high |= c }
        if high < 0x80 { return String(decoding: b, as: UTF8.self) }
        return String(validating: b, as: UTF8.self)
    }

    /// Copies one value's encoding into `w` without decoding it (text validated as UTF-8):
    /// the same bytes `ByteWriter.value` writes.
    mutating func copyValue(into w: inout ByteWriter) throws {
        let tag = try byte()
        switch tag {
        case 0: w.byte(0)
        case 1:
            w.byte(1)
            w.varint(try varint())
        case 2:
            w.byte(2)
            w.bytes += try bytes(8)
        case 3, 4:
            let n = try int(Self.maxField)
            try checkBudget(n)
            w.byte(tag)
            w.varint(UInt64(n))
            if w.bytes.capacity - w.bytes.count < n {
                if w.bytes.count + n >= Self.largeChangeBytes {
                    // Once per large change, room for all it may still hold (names add at most a
                    // little): growing value by value would hold the old and the new copy at each
                    // step. Pages never written are never resident.
                    let rest = budgetEnd == Int.max ? n : max(n, budgetEnd - consumed + (2 << 20))
                    w.bytes.reserveCapacity(w.bytes.count + rest)
                } else {
                    // A small change grows by doubling, below a megabyte: reserving the whole
                    // budget for each change mapped and unmapped 66 MiB per change (a fifth of
                    // an import's time went to munmap and page faults, issue 14).
                    w.bytes.reserveCapacity(max(w.bytes.count + n, 2 * w.bytes.capacity, 256))
                }
            }
            var validator = UTF8Validator()
            var left = n
            while left > 0 {
                guard try fill() else {
                    throw DataJoinError.bundle("damaged: the data ends in the middle of a record")
                }
                let take = min(left, buffer.count - pos)
                if tag == 3 {
                    buffer.withUnsafeBufferPointer {
                        validator.feed(UnsafeBufferPointer(rebasing: $0[pos..<pos + take]))
                    }
                }
                w.bytes.append(contentsOf: buffer[pos..<pos + take])
                pos += take
                consumed += take
                left -= take
            }
            if tag == 3 && !validator.finish() { throw DataJoinError.bundle("a text field is not valid UTF-8") }
        case let t: throw DataJoinError.bundle("unknown value type \(t)")
        }
    }

    mutating func value() throws -> Value {
        switch try byte() {
        case 0: return .null
        case 1: return .integer(try signed())
        case 2:
            let b = try bytes(8)
            var bits: UInt64 = 0
            for i in (0..<8).reversed() { bits = bits << 8 | UInt64(b[i]) }
            return .real(Double(bitPattern: bits))
        case 3: return .text(try string())
        case 4: return .blob(try data())
        case let t: throw DataJoinError.bundle("unknown value type \(t)")
        }
    }
}

/// Checks UTF-8 a piece at a time (a sequence may span two pieces): the rules of
/// `String(validating:)`, no overlongs, no surrogates, nothing past U+10FFFF.
struct UTF8Validator {
    private var need = 0
    private var low: UInt8 = 0x80, high: UInt8 = 0xBF
    private(set) var valid = true

    mutating func feed(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard valid else { return }
        for b in bytes {
            if need == 0 {
                switch b {
                case 0x00...0x7F: continue
                case 0xC2...0xDF: need = 1
                case 0xE0:
                    need = 2
                    low = 0xA0
                    continue
                case 0xE1...0xEC, 0xEE...0xEF: need = 2
                case 0xED:
                    need = 2
                    high = 0x9F
                    continue
                case 0xF0:
                    need = 3
                    low = 0x90
                    continue
                case 0xF1...0xF3: need = 3
                case 0xF4:
                    need = 3
                    high = 0x8F
                    continue
                default:
                    valid = false
                    return
                }
                low = 0x80
                high = 0xBF
            } else {
                guard b >= low && b <= high else {
                    valid = false
                    return
                }
                low = 0x80
                high = 0xBF
                need -= 1
            }
        }
    }

    func finish() -> Bool { valid && need == 0 }
}

/// Key bytes as a dictionary key, hashed as one block: `[UInt8]`'s own hashing feeds the hasher
/// one byte at a time, which was a tenth of an import's time.
struct KeyBytes: Hashable {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    func hash(into hasher: inout Hasher) { bytes.withUnsafeBytes { hasher.combine(bytes: $0) } }
}

/// The canonical byte form of a primary key: the same row has the same key bytes on every brand.
enum KeyCodec {
    static func encode(_ values: [Value]) -> [UInt8] {
        var w = ByteWriter()
        w.varint(UInt64(values.count))
        for v in values { w.value(v) }
        return w.bytes
    }

    static func decode(_ bytes: [UInt8]) throws -> [Value] {
        var r = ByteReader(ArraySource(bytes))
        let n = try r.int(1000)
        return try (0..<n).map { _ in try r.value() }
    }

    static func display(_ values: [Value]) -> String {
        let text =
            values.count == 1 ? values[0].description : "(" + values.map(\.description).joined(separator: ", ") + ")"
        return TerminalText.safe(text)
    }
}
