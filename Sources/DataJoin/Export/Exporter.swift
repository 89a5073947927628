import Foundation

public struct ExportOptions: Sendable {
    public var folder: String
    /// Split into bundles of about this many changes (a source transaction is never split).
    public var maxChanges: Int?
    public init(folder: String, maxChanges: Int? = nil) {
        self.folder = folder
        self.maxChanges = maxChanges
    }
}

public struct ExportedBundle: Sendable {
    public var path: String
    public var first: Int64
    public var last: Int64
    public var changes: Int64
    public var bytes: Int
    public var sha256: String
}

/// `datajoin export`: outbox rows past the export pointer into bundle files.
public enum Exporter {
    public static func export(_ db: Database, _ options: ExportOptions, reporter: Reporter = SilentReporter()) throws -> [ExportedBundle] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: options.folder, isDirectory: &isDir), isDir.boolValue else {
            throw DataJoinError.io("export folder \(options.folder) does not exist; create it first")
        }
        // Probe by writing, not access(2): root passes access() on read-only mounts.
        let probe = (options.folder as NSString).appendingPathComponent(".datajoin-probe-\(getpid())")
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw DataJoinError.io("export folder \(options.folder) is not writable (\(String(cString: strerror(errno))))")
        }
        close(fd)
        unlink(probe)
        if let m = options.maxChanges, m < 1 { throw DataJoinError(.usage, "--max-changes must be at least 1") }
        var me = try NodeIdentity.load(db)
        let tables = try TableRegistry.load(db)
        let key = try NodeIdentity.signingKey(db, node: me.nodeId)
        // Stamp in a short write transaction; reading and writing files holds no write lock.
        try db.inTransaction {
            me = try NodeIdentity.load(db)
            try Stamper.stampPending(db, me: &me, tables: tables)
        }
        let pointer = try ProgramPointer.get(db, Program.export)
        let last = me.nextSeq - 1
        guard last > pointer else { return [] }
        let ranges = try splitRanges(db, from: pointer + 1, to: last, max: options.maxChanges)
        var written: [ExportedBundle] = []
        var done: Int64 = 0
        for range in ranges {
            let count = range.upperBound - range.lowerBound + 1
            let header = BundleHeader(sender: me.nodeId, senderEpoch: me.epoch, createdAt: nowText(),
                                      origins: [OriginRange(origin: me.nodeId, epoch: me.epoch, first: range.lowerBound, last: range.upperBound, count: count)],
                                      changeCount: count, publicKey: me.publicKey)
            let name = BundleFormat.fileName(origin: me.nodeId, epoch: me.epoch, first: range.lowerBound, last: range.upperBound)
            let writer = try BundleWriter(folder: options.folder, fileName: name, header: header, signingKey: key)
            try db.inReadTransaction {
                try db.stream("SELECT \(Outbox.columns) FROM ds_change_outbox WHERE seq >= ? AND seq <= ? ORDER BY seq",
                              [.integer(range.lowerBound), .integer(range.upperBound)]) { r in
                    let change = try Outbox.change(r, me: me, tables: tables, brand: db.brand)
                    guard let table = tables[change.table] else {
                        throw DataJoinError(.notTracked, "outbox holds a change of \(change.table), which is not in the registry; run 'datajoin track' for it")
                    }
                    try writer.add(change, table: table)
                    done += 1
                    if done % 10_000 == 0 { reporter.progress("export", done: done, total: last - pointer) }
                }
            }
            guard writer.changeCount == count else {
                throw DataJoinError(.internalError, "outbox sequence \(range.lowerBound)-\(range.upperBound) has \(writer.changeCount) rows, expected \(count)")
            }
            let result = try writer.finish()
            // The file is durable: only now may the pointer move past it.
            try db.inTransaction { try ProgramPointer.set(db, Program.export, range.upperBound) }
            reporter.verbose("wrote \(result.path) (\(count) changes, \(result.bytes) bytes)")
            written.append(ExportedBundle(path: result.path, first: range.lowerBound, last: range.upperBound, changes: count,
                                          bytes: result.bytes, sha256: result.sha256))
        }
        reporter.progress("export", done: done, total: last - pointer)
        return written
    }

    /// Cuts [from, to] into ranges of about `max` changes, only where the source transaction changes.
    static func splitRanges(_ db: Database, from: Int64, to: Int64, max: Int?) throws -> [ClosedRange<Int64>] {
        guard let max else { return [from...to] }
        var ranges: [ClosedRange<Int64>] = []
        var start = from
        var count = 0
        var lastTx: Value = .null
        var lastSeq = from - 1
        try db.inReadTransaction {
            try db.stream("SELECT seq, source_id FROM ds_change_outbox WHERE seq >= ? AND seq <= ? ORDER BY seq", [.integer(from), .integer(to)]) { r in
                let seq = r.int(0) ?? 0
                let tx = r.values[1]
                if count >= max && (tx.isNull || tx != lastTx) {
                    ranges.append(start...lastSeq)
                    start = seq
                    count = 0
                }
                count += 1
                lastTx = tx
                lastSeq = seq
            }
        }
        if lastSeq >= start { ranges.append(start...lastSeq) }
        return ranges
    }
}
