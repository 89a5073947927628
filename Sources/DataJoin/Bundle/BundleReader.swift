import Crypto
import Foundation

/// Streams a bundle: header first, then one change at a time, then `finish()` checks the
/// trailer (count, SHA-256, signature). Nothing read from a bundle counts until `finish()`
/// returns, so callers load inside a transaction they roll back on any error.
final class BundleReader {
    let path: String
    private var reader: ByteReader<GzipReader>
    private let gzip: GzipReader
    let header: BundleHeader
    private var tables: [Int: (name: String, columns: [String], keys: [Int])] = [:]
    private(set) var changesRead: Int64 = 0
    /// Ingest reads each change's payload as bytes (`Change.rawPayload`), not as values.
    var payloadOnly = false
    private var perOrigin: [Int: (first: Int64, last: Int64, count: Int64)] = [:]
    private var trailerCount: Int64?
    /// Columns and name bytes of every table defined so far (bounded, docs/bundle-format.md).
    private var definedColumns = 0
    private var definitionBytes = 0

    convenience init(path: String, maxExpandedBytes: Int = BundleFormat.maxExpandedBytes) throws {
        try self.init(gzip: try GzipReader(path: path, maxOutput: maxExpandedBytes), path: path)
    }

    /// Reads a bundle held in memory (the fuzz target's entry).
    convenience init(bytes: [UInt8], maxExpandedBytes: Int = BundleFormat.maxExpandedBytes) throws {
        try self.init(gzip: try GzipReader(source: .memory(bytes), maxOutput: maxExpandedBytes), path: "<memory>")
    }

    init(gzip: GzipReader, path: String) throws {
        self.path = path
        let box = DigestBox()
        self.box = box
        self.gzip = gzip
        var r = ByteReader(gzip)
        r.onConsume = { box.hasher.update(data: $0) }
        let magic = try r.bytes(BundleFormat.magic.count)
        guard magic == BundleFormat.magic else {
            throw DataJoinError.bundle("not a DataJoin bundle (wrong magic bytes)")
        }
        let major = try r.byte()
        _ = try r.byte()  // minor: newer minors only add optional fields
        guard major == BundleFormat.major else {
            if major > BundleFormat.major {
                throw DataJoinError.bundle(
                    "says bundle format \(major), which this datajoin (format \(BundleFormat.major)) does not read: the file is damaged, or a newer datajoin wrote it (then upgrade)"
                )
            }
            throw DataJoinError.bundle("unknown bundle format version \(major)")
        }
        let headerBytes = try r.bytes(try r.int(BundleFormat.maxHeaderBytes, what: "the header's length"))
        header = try BundleHeader.decode(headerBytes)
        reader = r
    }

    /// The running SHA-256 of every byte consumed, shared with the reader's callback.
    private final class DigestBox { var hasher = SHA256() }
    private let box: DigestBox

    /// The next change, or nil at the trailer (and after it: what follows is the checksum).
    func next() throws -> Change? {
        if trailerCount != nil { return nil }
        while true {
            let kind = try reader.byte()
            switch BundleFormat.Record(rawValue: kind) {
            case .table:
                let index = try reader.int(BundleFormat.maxTableIndex, what: "a table number")
                let name = try Self.identifier(try reader.string(), "table")
                let n = try reader.int(10_000, what: "a table's column count")
                guard n > 0 else { throw DataJoinError.bundle("table \(name) has no columns") }
                definedColumns += n
                guard definedColumns <= BundleFormat.maxDefinedColumns else {
                    throw DataJoinError.bundle("defines more than \(BundleFormat.maxDefinedColumns) columns in all")
                }
                let cols = try (0..<n).map { _ in try Self.identifier(try reader.string(), "column") }
                definitionBytes += name.utf8.count + cols.reduce(0) { $0 + $1.utf8.count }
                guard definitionBytes <= BundleFormat.maxDefinitionBytes else {
                    throw DataJoinError.bundle(
                        "its table definitions hold more than \(BundleFormat.maxDefinitionBytes >> 20) MiB of names")
                }
                guard Set(cols).count == n else { throw DataJoinError.bundle("table \(name) names a column twice") }
                let k = try reader.int(n, what: "a table's key column count")
                guard k > 0 else { throw DataJoinError.bundle("table \(name) has no primary key") }
                let keys = try (0..<k).map { _ in try reader.int(n - 1, what: "a key column's index") }
                guard tables[index] == nil else { throw DataJoinError.bundle("table index \(index) defined twice") }
                tables[index] = (name, cols, keys)
            case .change:
                defer { reader.budgetEnd = Int.max }
                let c = try readChange()
                changesRead += 1
                if changesRead > header.changeCount {
                    throw DataJoinError.bundle("holds more changes than its header says (\(header.changeCount))")
                }
                return c
            case .trailer:
                trailerCount = Int64(try reader.int(Int.max))
                return nil
            case nil:
                throw DataJoinError.bundle("unknown record type \(kind)")
            }
        }
    }

    /// An insert names each column once; one that names a column twice is a crafted file (which
    /// value would count?).
    static func columnTwice(_ table: String, _ column: String) -> DataJoinError {
        DataJoinError.bundle("an insert into \(table) gives column \(column) twice")
    }

    /// Table and column names are only looked up in the registry, never spliced into SQL; still,
    /// a name no database could have is a sign of a crafted file.
    static func identifier(_ s: String, _ what: String) throws -> String {
        guard !s.isEmpty, s.utf8.count <= 128,
            !s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
        else {
            throw DataJoinError.bundle(
                "invalid \(what) name '\(s.prefix(40).unicodeScalars.map { $0.value < 0x20 ? "?" : String($0) }.joined())'"
            )
        }
        return s
    }

    private func readChange() throws -> Change {
        let originIndex = try reader.int(header.origins.count - 1, what: "an origin's index")
        let o = header.origins[originIndex]
        let seq = Int64(try reader.int(BundleFormat.maxSeq, what: "a change's seq"))
        // Any stamp a clock makes: one past the last millisecond saturates up to Int64.max, and
        // a limit below it refused every bundle of that node as damaged (found from outside).
        let hlc = Int64(try reader.int(Int(Int64.max), what: "a change's clock stamp"))
        let txid = Int64(try reader.int(Int.max, what: "a change's transaction id"))
        guard let op = Operation(rawValue: String(UnicodeScalar(try reader.byte()))) else {
            throw DataJoinError.bundle("unknown operation")
        }
        let tableIndex = try reader.int(BundleFormat.maxTableIndex, what: "a table number")
        guard let t = tables[tableIndex] else {
            throw DataJoinError.bundle("change refers to undefined table \(tableIndex)")
        }
        // From the generation on, one change holds at most `maxChangeBytes` (BundleWriter).
        reader.budgetEnd = reader.consumed + BundleFormat.maxChangeBytes
        let cl = Int64(try reader.int(BundleFormat.maxSeq, what: "a change's row generation"))
        guard cl >= 1, (op == .delete) == (cl % 2 == 0) else {
            throw DataJoinError.bundle("change has an impossible row generation \(cl) for \(op)")
        }
        let key = try t.keys.map { _ in try reader.value() }
        var columns: [Change.ColumnValue] = []
        var old: Value?
        var raw: [UInt8]?
        if payloadOnly {
            // The payload in the inbox's encoding (Change.encodedPayload), values copied as they
            // are (text validated on the way), never decoded.
            var w = ByteWriter()
            switch op {
            case .insert:
                let n = try reader.int(t.columns.count, what: "a change's column count")
                w.varint(UInt64(n))
                var seen = Set<Int>()
                for _ in 0..<n {
                    let i = try reader.int(t.columns.count - 1, what: "a column's index")
                    guard seen.insert(i).inserted else { throw Self.columnTwice(t.name, t.columns[i]) }
                    w.string(t.columns[i])
                    try reader.copyValue(into: &w)
                }
                w.byte(0)
            case .update:
                w.varint(1)
                w.string(t.columns[try reader.int(t.columns.count - 1, what: "a column's index")])
                try reader.copyValue(into: &w)
                w.byte(1)
                try reader.copyValue(into: &w)
            case .delete:
                w.varint(0)
                w.byte(0)
            }
            raw = w.bytes
        } else {
            switch op {
            case .insert:
                let n = try reader.int(t.columns.count, what: "a change's column count")
                var seen = Set<Int>()
                for _ in 0..<n {
                    let i = try reader.int(t.columns.count - 1, what: "a column's index")
                    guard seen.insert(i).inserted else { throw Self.columnTwice(t.name, t.columns[i]) }
                    columns.append(.init(name: t.columns[i], value: try reader.value()))
                }
            case .update:
                let i = try reader.int(t.columns.count - 1, what: "a column's index")
                columns.append(.init(name: t.columns[i], value: try reader.value()))
                old = try reader.value()
            case .delete: break
            }
        }
        guard seq >= o.first && seq <= o.last else {
            throw DataJoinError.bundle("change \(o.origin)#\(seq) lies outside the header's range \(o.first)-\(o.last)")
        }
        var p = perOrigin[originIndex] ?? (seq, seq, 0)
        p.first = min(p.first, seq)
        p.last = max(p.last, seq)
        p.count += 1
        perOrigin[originIndex] = p
        var change = Change(
            origin: o.origin, epoch: o.epoch, seq: seq, hlc: hlc, txid: txid, op: op, table: t.name, cl: cl,
            key: key, columns: columns, oldValue: old)
        change.keyNames = t.keys.map { t.columns[$0] }
        change.rawPayload = raw
        return change
    }

    /// Checks the trailer. With `publicKey` nil the key in the header is used (verify without a
    /// database proves integrity, not trust).
    func finish(publicKey: Curve25519.Signing.PublicKey? = nil) throws {
        if trailerCount == nil { while try next() != nil {} }
        reader.flushConsumed()
        reader.onConsume = nil
        let digest = Array(box.hasher.finalize())
        let storedDigest = try reader.bytes(32)
        let signature = try reader.bytes(64)
        guard try reader.atEnd(), gzip.finished else { throw DataJoinError.bundle("unexpected data after the trailer") }
        guard storedDigest == digest else {
            throw DataJoinError.bundle("checksum mismatch: the content was altered or damaged")
        }
        guard changesRead == header.changeCount else {
            throw DataJoinError.bundle("holds \(changesRead) changes but its header says \(header.changeCount)")
        }
        guard trailerCount == changesRead else {
            throw DataJoinError.bundle(
                "holds \(changesRead) changes but its trailer says \(trailerCount.map(String.init) ?? "none")")
        }
        for (i, o) in header.origins.enumerated() {
            let p = perOrigin[i]
            guard let p, p.first == o.first, p.last == o.last, p.count == o.count else {
                throw DataJoinError.bundle(
                    "header lies about \(o.origin)'s range: says \(o.first)-\(o.last) (\(o.count)), holds \(p.map { "\($0.first)-\($0.last) (\($0.count))" } ?? "none")"
                )
            }
        }
        let key = try publicKey ?? Curve25519.Signing.PublicKey(rawRepresentation: header.publicKey)
        guard key.isValidSignature(signature, for: digest) else {
            throw DataJoinError.bundle("signature does not verify for sender \(header.sender) (forged or altered)")
        }
    }
}
