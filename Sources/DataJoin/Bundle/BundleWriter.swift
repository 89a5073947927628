import Crypto
import Foundation

/// A change no bundle may carry as it is: larger than `BundleFormat.maxChangeBytes`, or text
/// that is not valid UTF-8. Export holds it, and what follows it (docs/reliability.md).
struct UnsendableChange: Error, CustomStringConvertible {
    var seq: Int64
    var message: String
    /// The section of docs/reliability.md that says what to do.
    var cure = "A change too large for a bundle"
    var description: String { message }
}

/// Writes one bundle: gzip stream of magic, version, header, table and change records, then a
/// trailer with the SHA-256 of everything before it and the sender's Ed25519 signature of that
/// digest. The file is written as `.tmp`, fsynced, renamed, and its folder fsynced.
/// A change whose table definition would take its bundle past what a reader takes
/// (BundleFormat's limits on definitions): the bundle must end before it.
struct DefinitionsFull: Error {}

final class BundleWriter {
    let finalPath: String
    let tempPath: String
    private let fd: Int32
    private let gzip: GzipWriter
    private let digest = Digest()
    /// Hashes, compresses and writes the encoded chunks on a second thread.
    private let background: BackgroundWorker<[UInt8]>
    private var pending = ByteWriter()
    private var tables: [String: (index: Int, columns: [String: Int], keys: [String])] = [:]
    private var nextTableIndex = 0
    /// What the table definitions written so far hold, against the reader's limits.
    private var definedColumns = 0
    private var definitionBytes = 0
    private var origins: [String: Int] = [:]
    /// The origin of the last change: a bundle is mostly one origin's run.
    private var lastOrigin: (origin: String, epoch: String, index: Int)?
    /// The last change's table, key and column names with their indexes: changes of one table
    /// come in runs naming their columns alike, and comparing names is cheaper than hashing them.
    private var lastIndexes: (table: String, keys: [String], names: [String], indexes: [Int])?
    private let signingKey: Curve25519.Signing.PrivateKey
    private(set) var changeCount: Int64 = 0
    private(set) var uncompressedBytes = 0
    private var finished = false

    /// The running SHA-256 of the bundle's bytes, owned by the background thread until it ends.
    private final class Digest { var hasher = SHA256() }

    /// With `recipients`, the file is format v2: this bundle, compressed, encrypted to them
    /// and signed outside too (docs/bundle-format.md, "Version 2: encrypted").
    private let encrypting: EncryptingSink?

    init(
        folder: String, fileName: String, header: BundleHeader, signingKey: Curve25519.Signing.PrivateKey,
        recipients: [Recipient] = [], peers: Set<String> = []
    ) throws {
        finalPath = (folder as NSString).appendingPathComponent(fileName)
        if header.changeCount > 0 { try Self.refuseNarrowing(finalPath, to: recipients, peers: peers) }
        // The writer's pid in the name: a second export at once writes its own, and does not
        // take this one for a crash's leftover (Exporter.removeStaleTemporaries).
        tempPath = (folder as NSString).appendingPathComponent("." + fileName + ".\(getpid()).tmp")
        self.signingKey = signingKey
        // A fresh file, never through a link someone left at that name in a shared folder.
        unlink(tempPath)
        fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644)
        guard fd >= 0 else {
            throw DataJoinError.io("cannot write to \(folder): \(String(cString: strerror(errno)))")
        }
        // A full disk names the file and its folder, not only the system's words.
        let failure = {
            DataJoinError.io("cannot write bundle \(fileName) into \(folder): \(String(cString: strerror(errno)))")
        }
        do {
            if recipients.isEmpty {
                encrypting = nil
                gzip = try GzipWriter(fd: fd, failure: failure)
            } else {
                let sink = try EncryptingSink(
                    fd: fd, sender: header.sender, senderEpoch: header.senderEpoch, createdAt: header.createdAt,
                    signingKey: signingKey, recipients: recipients, failure: failure)
                encrypting = sink
                gzip = try GzipWriter { buf, n in try sink.write(buf[0..<n]) }
            }
        } catch {
            close(fd)
            unlink(tempPath)
            throw error
        }
        background = BackgroundWorker { [gzip, digest] chunk in
            digest.hasher.update(data: chunk)
            try gzip.write(chunk)
        }
        for (i, o) in header.origins.enumerated() { origins[o.origin + "\u{0}" + o.epoch] = i }
        pending.bytes += BundleFormat.magic
        pending.byte(BundleFormat.major)
        pending.byte(BundleFormat.minor)
        pending.data(header.encode())
    }

    deinit {
        background.cancel()
        if !finished {
            close(fd)
            unlink(tempPath)
        }
    }

    private static let chunkBytes = 256 * 1024

    private func flushIfLarge() throws {
        if pending.bytes.count >= Self.chunkBytes { try flush() }
    }

    private func flush() throws {
        guard !pending.bytes.isEmpty else { return }
        uncompressedBytes += pending.bytes.count
        try background.submit(pending.bytes)
        pending.bytes = []
        pending.bytes.reserveCapacity(Self.chunkBytes + 64 * 1024)
    }

    /// Adds a change. The table's definition comes from the registry when there is one, and from
    /// the change itself otherwise (a relayed change of a table this node does not track); a
    /// change naming a column the current definition lacks gets a new, wider definition.
    func add(_ c: Change, table: TableInfo?) throws {
        let keyNames = c.keyNames.isEmpty ? (table?.keyColumns.map(\.name) ?? []) : c.keyNames
        guard keyNames.count == c.key.count, !keyNames.isEmpty else {
            throw DataJoinError(.internalError, "change \(c.origin)#\(c.seq) of \(c.table) has no key column names")
        }
        // Never write what a reader refuses (docs/bundle-format.md, "What a reader checks").
        guard c.seq >= 1, c.hlc >= 0, c.cl >= 1, (c.op == .delete) == (c.cl % 2 == 0) else {
            throw DataJoinError(
                .internalError,
                "change \(c.origin)#\(c.seq) of \(c.table) has an impossible stamp (hlc \(c.hlc), generation \(c.cl))")
        }
        // Each column's index in the table's definition, looked up once (nil: define it again).
        func indexes() -> [Int]? {
            guard let t = tables[c.table], t.keys == keyNames else { return nil }
            var out: [Int] = []
            out.reserveCapacity(c.columns.count)
            for col in c.columns {
                guard let i = t.columns[col.name] else { return nil }
                out.append(i)
            }
            return out
        }
        var columnIndexes: [Int]?
        if let last = lastIndexes, last.table == c.table, last.keys == keyNames,
            c.columns.elementsEqual(last.names, by: { $0.name == $1 })
        {
            columnIndexes = last.indexes
        } else {
            columnIndexes = indexes()
            if let columnIndexes { lastIndexes = (c.table, keyNames, c.columns.map(\.name), columnIndexes) }
        }
        if columnIndexes == nil {
            // Defined again: the indexes of the names seen before may change.
            lastIndexes = nil
            var names = keyNames
            var seen = Set(keyNames)
            for n in (table?.columns.map(\.name) ?? [])
                + (tables[c.table].map { $0.columns.sorted { $0.value < $1.value }.map(\.key) } ?? [])
                + c.columns.map(\.name)
            where seen.insert(n).inserted { names.append(n) }
            // Never write what a reader refuses: past its limits on definitions, the bundle ends
            // before this change and the next one starts with it (found from outside: 90 wide
            // tables made a bundle every peer refused, counted as sent).
            let bytes = c.table.utf8.count + names.reduce(0) { $0 + $1.utf8.count }
            if nextTableIndex > BundleFormat.maxTableIndex
                || definedColumns + names.count
                    > min(Tuning.current.bundleDefinedColumns, BundleFormat.maxDefinedColumns)
                || definitionBytes + bytes > BundleFormat.maxDefinitionBytes
            {
                throw DefinitionsFull()
            }
            definedColumns += names.count
            definitionBytes += bytes
            let index = nextTableIndex
            nextTableIndex += 1
            var cols: [String: Int] = [:]
            for (i, n) in names.enumerated() { cols[n] = i }
            tables[c.table] = (index, cols, keyNames)
            for n in [c.table] + names { _ = try Self.checkedName(n, table: c.table) }
            pending.byte(BundleFormat.Record.table.rawValue)
            pending.varint(UInt64(index))
            pending.string(c.table)
            pending.varint(UInt64(names.count))
            for n in names { pending.string(n) }
            pending.varint(UInt64(keyNames.count))
            for k in keyNames { pending.varint(UInt64(cols[k]!)) }
            columnIndexes = c.columns.map { cols[$0.name]! }
        }
        let t = tables[c.table]!
        let originIndex: Int
        if let last = lastOrigin, last.origin == c.origin, last.epoch == c.epoch {
            originIndex = last.index
        } else {
            guard let i = origins[c.origin + "\u{0}" + c.epoch] else {
                throw DataJoinError(.internalError, "change of \(c.origin) is not in the bundle header")
            }
            originIndex = i
            lastOrigin = (c.origin, c.epoch, i)
        }
        let recordStart = pending.bytes.count
        pending.byte(BundleFormat.Record.change.rawValue)
        pending.varint(UInt64(originIndex))
        pending.varint(UInt64(c.seq))
        pending.varint(UInt64(c.hlc))
        // An application may write any source id into its outbox rows; a negative one is
        // "unknown" (0) in the file, as the format has it.
        pending.varint(UInt64(max(c.txid, 0)))
        pending.byte(UInt8(ascii: c.op.rawValue.unicodeScalars.first!))
        pending.varint(UInt64(t.index))
        // The size limit counts from here (generation, key, values): the same however the
        // change is relayed, whatever its origin's and table's indexes in the file.
        let start = pending.bytes.count
        pending.varint(UInt64(c.cl))
        for v in c.key { pending.value(v) }
        switch c.op {
        case .insert:
            pending.varint(UInt64(c.columns.count))
            for (col, i) in zip(c.columns, columnIndexes ?? []) {
                pending.varint(UInt64(i))
                pending.value(col.value)
            }
        case .update:
            guard let col = c.columns.first, let i = columnIndexes?.first else {
                throw DataJoinError(.internalError, "update without a tracked column")
            }
            pending.varint(UInt64(i))
            pending.value(col.value)
            pending.value(c.oldValue ?? .null)
        case .delete:
            break
        }
        var size = pending.bytes.count - start
        if size > BundleFormat.maxChangeBytes, c.op == .update, let old = c.oldValue, old != .null {
            // An update carries its old value only to tell a concurrent edit in the conflict log;
            // a value of over 32 MiB replaced by another would double the change. The old value
            // is left out (NULL) instead, and the change fits (docs/reliability.md).
            var encoded = ByteWriter()
            encoded.value(old)
            pending.bytes.removeLast(encoded.bytes.count)
            pending.value(.null)
            size = pending.bytes.count - start
        }
        if size > BundleFormat.maxChangeBytes {
            pending.bytes.removeSubrange(recordStart...)
            throw UnsendableChange(
                seq: c.seq,
                message:
                    "change \(c.origin)#\(c.seq) (\(c.table) \(KeyCodec.display(c.key).prefix(60))) holds \(size) bytes (\(size >> 20) MiB), "
                    + "over the \(BundleFormat.maxChangeBytes >> 20) MiB one change may carry in a bundle")
        }
        changeCount += 1
        try flushIfLarge()
    }

    private static func checkedName(_ name: String, table: String) throws -> String {
        do {
            return try BundleReader.identifier(name, "column")
        } catch {
            throw DataJoinError(
                .internalError,
                "table \(table.prefix(60)) has a name no bundle can carry ('\(name.prefix(40))': at most 128 bytes, no control characters)"
            )
        }
    }

    /// A file of this name already there is replaced only by one that every node able to read
    /// it can read: a re-send encrypted to one peer took the file another peer had not read yet,
    /// and that peer never missed it (found from outside).
    /// `peers`: every trusted peer (the readers of a plain file); a reader no longer trusted
    /// loses nothing it may still read.
    static func refuseNarrowing(_ path: String, to recipients: [Recipient], peers: Set<String>) throws {
        guard FileManager.default.fileExists(atPath: path) else { return }
        let old = (try? EncryptedBundleFile(path: path)).map { Set($0.header.recipients.map(\.node)) }
        // Nor is an encrypted one replaced by a plain one: a `--resend` without `--encrypt` put
        // changes that had left encrypted in the clear, in the same place (found from outside).
        if recipients.isEmpty {
            guard EncryptedFormat.isEncrypted(path: path) else { return }
            let readers = old.map { " to " + $0.sorted().joined(separator: ", ") }
            throw DataJoinError(
                .usage,
                "\(path) is already there, encrypted\(readers ?? ""); a plain one in its place would put its changes in the clear, "
                    + "so nothing was written over it: add --encrypt (or --recipient for each reader), or export into another folder (--to)"
            )
        }
        let new = Set(recipients.map(\.node))
        let lost = (old ?? peers).subtracting(new).intersection(peers)
        if lost.isEmpty { return }
        let readers = old.map { "encrypted to " + $0.sorted().joined(separator: ", ") } ?? "readable by every peer"
        let losing = lost.sorted().joined(separator: ", ")
        throw DataJoinError(
            .usage,
            "\(path) is already there, \(readers); one encrypted to \(new.sorted().joined(separator: ", ")) in its place "
                + "would take it from \(losing) before they read it, so nothing was written over it: export into another folder (--to), "
                + "or encrypt to them too (--recipient for each, or --encrypt)")
    }

    /// Writes the trailer, makes the file durable and gives it its final name.
    func finish() throws -> (path: String, sha256: String, bytes: Int) {
        pending.byte(BundleFormat.Record.trailer.rawValue)
        pending.varint(UInt64(changeCount))
        try flush()
        try background.finish()
        let digest = Array(self.digest.hasher.finalize())
        let signature = try Array(signingKey.signature(for: digest))
        var trailer = ByteWriter()
        trailer.bytes += digest
        trailer.bytes += signature
        uncompressedBytes += trailer.bytes.count
        try gzip.write(trailer.bytes)
        try gzip.finish()
        try encrypting?.finish()
        guard fsync(fd) == 0 else {
            throw DataJoinError.io("cannot flush \(tempPath) to disk: \(String(cString: strerror(errno)))")
        }
        close(fd)
        finished = true
        guard rename(tempPath, finalPath) == 0 else {
            let msg = String(cString: strerror(errno))
            unlink(tempPath)
            throw DataJoinError.io("cannot rename \(tempPath) to \(finalPath): \(msg)")
        }
        let dirfd = open((finalPath as NSString).deletingLastPathComponent, O_RDONLY)
        if dirfd >= 0 {
            fsync(dirfd)
            close(dirfd)
        }
        return (finalPath, Hex.encode(digest), encrypting?.writtenBytes ?? gzip.compressedBytes)
    }
}
