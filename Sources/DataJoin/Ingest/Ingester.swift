import Crypto
import Foundation

public struct IngestOptions {
    public var paths: [String]
    public var importAfter: Bool
    /// Asked between bundles: true stops the run there (each bundle is one transaction).
    public var shouldStop: () -> Bool
    /// Leave refused files where they are (a dry run changes nothing, files included).
    public var quarantine: Bool
    public init(
        paths: [String], importAfter: Bool = true, quarantine: Bool = true, shouldStop: @escaping () -> Bool = { false }
    ) {
        self.paths = paths
        self.importAfter = importAfter
        self.quarantine = quarantine
        self.shouldStop = shouldStop
    }
}

/// What happened to one file.
public struct IngestedFile: Sendable {
    public enum Status: Sendable, Equatable {
        case loaded(changes: Int64, skipped: Int64)
        case alreadySeen
        case ownBundle
        /// Ends early and was modified recently: probably still being copied; retried next run.
        case incomplete(String)
        /// Refused; nothing from it was loaded. Damaged and forged files were moved to quarantine/.
        case refused(String)
    }
    public var path: String
    public var status: Status
}

public struct IngestReport: Sendable {
    public var files: [IngestedFile] = []
    /// Things the operator should know (a new epoch was started).
    public var notices: [String] = []
    public var imported: ImportReport?
    public var refused: Int {
        files.filter { if case .refused = $0.status { return true } else { return false } }.count
    }
}

/// `datajoin ingest`: verifies bundles and loads them into ds_change_inbox, one transaction per
/// bundle, then imports. A bad bundle is refused with its reason; the good ones still load.
public enum Ingester {
    public static func ingest(_ db: Database, _ options: IngestOptions, reporter: Reporter = SilentReporter()) throws
        -> IngestReport
    {
        var me = try NodeIdentity.load(db)
        let limits = try Limits(db)
        var report = IngestReport()
        let entries = try BundleFiles.expand(options.paths)
        let totalBytes = entries.reduce(Int64(0)) { $0 + (fileStamp($1.path)?.size ?? 0) }
        var bytes: Int64 = 0
        var loadedChanges: Int64 = 0
        for (index, entry) in entries.enumerated() {
            if options.shouldStop() { break }
            let path = entry.path
            // Its outcome is the caller's to print (once): verbose says only what is being read.
            reporter.verbose("reading \(path)")
            var status: IngestedFile.Status
            var notice: String?
            if let problem = entry.problem {
                status = .refused(problem)
            } else {
                do {
                    let size = fileStamp(path)?.size ?? 0
                    (status, notice) = try ingestFile(db, path: path, me: &me, limits: limits) { n, of in
                        // Bytes in proportion to the changes read of this file: the rate and
                        // ETA move within one large file too.
                        let within = of > 0 ? Int64(Double(size) * min(1, Double(n) / Double(of))) : 0
                        reporter.progress(
                            WorkProgress(
                                phase: "ingest", changes: loadedChanges + n, bytes: bytes + within,
                                totalBytes: totalBytes))
                    }
                } catch let e as DataJoinError {
                    switch e.code {
                    case .truncated where Quarantine.modifiedWithin(path, seconds: limits.partialGraceSeconds):
                        status = .incomplete(
                            "\(e.message); it may still be copying, so it stays and is retried on the next run")
                    case .truncated, .badBundle:
                        // A file the user named is refused where it stands: only files found in a
                        // drop folder are moved aside (a named notes.txt stays notes.txt).
                        if options.quarantine && entry.inFolder {
                            let (note, dest) = Quarantine.move(path, reason: e.message)
                            status = .refused(e.message + note)
                            if let dest { try Quarantine.record(db, path: dest, reason: e.message) }
                        } else {
                            status = .refused(e.message)
                        }
                    case .untrusted, .io, .noInput, .permission:
                        status = .refused(e.message)
                    case .connection, .locked, .busy:
                        throw e
                    default:
                        // Whatever else went wrong with this one file is this file's refusal;
                        // the run goes on with the next (docs/reliability.md).
                        status = .refused(e.message + "; left in place")
                    }
                } catch  where !db.isUnavailable(error) {
                    status = .refused("\(error); left in place")
                }
            }
            if let notice { report.notices.append(notice) }
            report.files.append(IngestedFile(path: path, status: status))
            bytes += fileStamp(path)?.size ?? 0
            if case .loaded(let n, _) = status { loadedChanges += n }
            reporter.progress(
                WorkProgress(
                    phase: "ingest", changes: loadedChanges, bytes: bytes, totalBytes: totalBytes,
                    final: index == entries.count - 1))
        }
        try db.refreshStatistics(["ds_change_inbox"], after: Int(loadedChanges))
        if options.importAfter {
            Memory.trim()
            report.imported = try Importer.run(db, reporter: reporter, shouldStop: options.shouldStop)
        }
        return report
    }

    public static func fileDigest(_ path: String) throws -> String {
        guard let f = FileHandle(forReadingAtPath: path) else { throw DataJoinError.io("cannot read \(path)") }
        defer { try? f.close() }
        var h = SHA256()
        while true {
            let chunk = f.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            h.update(data: chunk)
        }
        return Hex.encode(Array(h.finalize()))
    }

    /// Tunables from ds_setting (docs/bundle-format.md, docs/reliability.md).
    struct Limits {
        var maxExpandedBytes = BundleFormat.maxExpandedBytes
        var partialGraceSeconds: Double = 900
        init(_ db: Database) throws {
            if let v = try Settings.int(
                db, "max_bundle_expanded_bytes", range: 1...Int64(BundleFormat.maxExpandedBytes))
            {
                maxExpandedBytes = Int(v)
            }
            if let v = try Settings.int(db, "partial_grace_seconds", range: 0...(100 * 365 * 86_400)) {
                partialGraceSeconds = Double(v)
            }
        }
    }

    /// A file's name, size and modification time: a drop folder of thousands of bundles already
    /// ingested is rescanned from these, without reading the files.
    static func fileStamp(_ path: String) -> (name: String, size: Int64, mtime: String)? {
        guard let a = try? FileManager.default.attributesOfItem(atPath: path), let size = a[.size] as? NSNumber,
            let date = a[.modificationDate] as? Date
        else { return nil }
        return (
            (path as NSString).lastPathComponent, size.int64Value, String(format: "%.6f", date.timeIntervalSince1970)
        )
    }

    /// `progress` is told how many changes of this file were read so far (a large file takes
    /// seconds).
    static func ingestFile(
        _ db: Database, path: String, me: inout NodeIdentity, limits: Limits,
        progress: @escaping (_ read: Int64, _ of: Int64) -> Void = { _, _ in }
    ) throws -> (IngestedFile.Status, String?) {
        let stamp = fileStamp(path)
        if let s = stamp,
            let seen = try db.firstRow(
                "SELECT origin FROM ds_bundle_seen WHERE file_name = ? AND file_size = ? AND file_mtime = ?",
                [.text(s.name), .integer(s.size), .text(s.mtime)])
        {
            return (seen.string(0) == me.nodeId ? .ownBundle : .alreadySeen, nil)
        }
        let digest = try fileDigest(path)
        if let seen = try db.firstRow("SELECT origin FROM ds_bundle_seen WHERE sha256 = ?", [.text(digest)]) {
            return (seen.string(0) == me.nodeId ? .ownBundle : .alreadySeen, nil)
        }
        // Pass 1: the file's bytes against its digest and its sender's signature, before any
        // record is read. Damaged or forged first (quarantined), untrusted only if the file is
        // intact (left in place: it loads once its sender is trusted).
        let seal = try BundleSeal(path: path, maxExpandedBytes: limits.maxExpandedBytes)
        let key: Curve25519.Signing.PublicKey
        switch try Trust.key(db, node: seal.sender) {
        case .success(let k): key = k
        case .failure(let e):
            try seal.verifyIntegrity()
            throw e
        }
        guard Array(key.rawRepresentation) == seal.headerKey else {
            throw DataJoinError.bundle(
                "claims to come from \(seal.sender) but carries a different key than the one trusted for \(seal.sender)"
            )
        }
        try seal.verify(with: key)
        // Pass 2: the verified file, decoded; its digest is checked again at the end, so a file
        // changed in between is refused.
        var reader = try BundleReader(path: path, maxExpandedBytes: limits.maxExpandedBytes)
        reader.payloadOnly = true
        let h = reader.header
        guard h.sender == seal.sender, h.publicKey == seal.headerKey else {
            throw DataJoinError.bundle("changed while it was being read")
        }
        let seenInside = { () throws -> Bool in
            // Checked again inside the transaction: another ingest may have loaded this very file
            // while this one waited for the database.
            try db.firstRow("SELECT origin FROM ds_bundle_seen WHERE sha256 = ?", [.text(digest)]) != nil
        }
        if h.sender == me.nodeId {
            // Genuinely ours (the signature is checked): nothing to load, echo prevention.
            try reader.finish(publicKey: key)
            try db.retryingWrite { _ in
                if try seenInside() { return }
                try db.execute(
                    """
                    INSERT INTO ds_bundle_seen (sha256, file_name, origin, origin_epoch, first_seq, last_seq, change_count, loaded_count, ingested_at, file_size, file_mtime)
                    VALUES (?, ?, ?, ?, 0, 0, ?, 0, ?, ?, ?)
                    """,
                    [
                        .text(digest), .text((path as NSString).lastPathComponent), .text(h.sender),
                        .text(h.senderEpoch), .integer(h.changeCount),
                        .text(nowText()), stamp.map { .integer($0.size) } ?? .null,
                        stamp.map { .text($0.mtime) } ?? .null,
                    ])
            }
            return (.ownBundle, nil)
        }
        var notice: String?
        var attempt = 0
        // COPY unless it met a change already in the inbox (then the file loads again with
        // `ON CONFLICT DO NOTHING`).
        var useCopy = true
        let load = { () throws -> IngestedFile.Status in
            try db.retryingWrite { _ in
                attempt += 1
                if attempt > 1 {
                    // A retried transaction reads the file again: the first attempt consumed it.
                    reader = try BundleReader(path: path, maxExpandedBytes: limits.maxExpandedBytes)
                    reader.payloadOnly = true
                    guard reader.header == h else { throw DataJoinError.bundle("changed while it was being read") }
                }
                if try seenInside() { return .alreadySeen }
                // A peer holding more of this node's epoch than it issued: restored from a backup.
                // Move to a new epoch before loading, so this node's lost changes come back as
                // foreign ones; a bundle that then fails to verify rolls the switch back too.
                notice = nil
                if let reason = try Epochs.checkRestored(db, receipts: h.receipts, from: h.sender) {
                    notice = "new epoch: \(reason); all of this node's changes will be exported again"
                }
                let me = try NodeIdentity.load(db)
                let first = h.origins.map(\.first).min() ?? 0
                let last = h.origins.map(\.last).max() ?? 0
                let bundleId = try insertReturningId(
                    db,
                    """
                    INSERT INTO ds_bundle_seen (sha256, file_name, origin, origin_epoch, first_seq, last_seq, change_count, loaded_count, ingested_at, file_size, file_mtime)
                    VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)
                    """,
                    [
                        .text(digest), .text((path as NSString).lastPathComponent), .text(h.sender),
                        .text(h.senderEpoch),
                        .integer(first), .integer(last), .integer(h.changeCount), .text(nowText()),
                        stamp.map { .integer($0.size) } ?? .null, stamp.map { .text($0.mtime) } ?? .null,
                    ])
                var loaded: Int64 = 0
                var skipped: Int64 = 0
                let received = nowText()
                var touched = Set<[String]>()
                // Rows go in 200 at a time; a change already in the inbox (through another bundle)
                // is skipped by the (origin, epoch, seq) key.
                var pending: [[Value]] = []
                var pendingBytes = 0
                var offered: Int64 = 0
                let cols: SQL =
                    "origin, origin_epoch, seq, hlc, source_id, object_table, object_id, object_pk_attribute, object_operation, cl, object_value, bundle_id, received_at"
                func flush() throws {
                    guard !pending.isEmpty else { return }
                    let tuples = pending.map { _ in "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" as SQL }.joined(
                        separator: ", ")
                    let sql = db.dialect.insertSkippingDuplicates(into: "ds_change_inbox", columns: cols, rows: tuples)
                    loaded += Int64(try db.execute(sql, pending.flatMap { $0 }))
                    pending.removeAll(keepingCapacity: true)
                    pendingBytes = 0
                }
                // Every seq up to an origin's high-water mark is held (or was, before pruning, or came
                // with a snapshot): those changes are skipped, never applied a second time.
                var marks: [String: Int64] = [:]
                func mark(_ origin: String, _ epoch: String) throws -> Int64 {
                    if epoch.hasPrefix(BundleFormat.snapshotEpochPrefix) { return 0 }
                    let k = origin + "\u{0}" + epoch
                    if let m = marks[k] { return m }
                    let m = try Holdings.state(db, origin: origin, epoch: epoch).contiguous
                    marks[k] = m
                    return m
                }
                var read: Int64 = 0
                func rows(_ body: ([Value]) throws -> Void) throws {
                    // The change is gone (this function returned) before its row is written: a large
                    // value is held once, encoded, not twice (memory, docs/reliability.md).
                    func nextRow() throws -> [Value]?? {
                        guard let c = try reader.next() else { return .none }
                        read += 1
                        if read % 2_000 == 0 { progress(read, h.changeCount) }
                        // This node's own changes of its current epoch never come back (echo
                        // prevention); those of an older epoch are accepted, so a node restored from a
                        // backup gets back what it had lost.
                        if c.origin == me.nodeId && c.epoch == me.epoch {
                            skipped += 1
                            return .some(nil)
                        }
                        if c.seq <= (try mark(c.origin, c.epoch)) {
                            skipped += 1
                            return .some(nil)
                        }
                        if !c.epoch.hasPrefix(BundleFormat.snapshotEpochPrefix) { touched.insert([c.origin, c.epoch]) }
                        return [
                            .text(c.origin), .text(c.epoch), .integer(c.seq), .integer(c.hlc), .integer(c.txid),
                            .text(c.table),
                            .blob(KeyCodec.encode(c.key)), .text(KeyNames.encode(c.keyNames)), .text(c.op.rawValue),
                            .integer(c.cl), .blob(c.encodedPayload()), .integer(bundleId), .text(received),
                        ]
                    }
                    while let next = try nextRow() {
                        guard let row = next else { continue }
                        offered += 1
                        if case .blob(let payload) = row[10], payload.count >= Self.largeValueBytes {
                            // A large payload goes in by the brand's own path where it has one
                            // (SQLite writes it into the row's pages), after the rows before it.
                            try flush()
                            if let inserted = try db.insertWithLargeValue(
                                into: "ds_change_inbox", columns: cols, row, valueIndex: 10)
                            {
                                loaded += Int64(inserted)
                                continue
                            }
                        }
                        try body(row)
                    }
                }
                // The brand's bulk path (PostgreSQL's COPY), when no change of the file's ranges is
                // in the inbox yet (the usual case): it skips no duplicate. The marks are read
                // first: no query runs while a bulk load is open.
                var bulk = useCopy
                if bulk {
                    for o in h.origins where !(o.origin == me.nodeId && o.epoch == me.epoch) {
                        let m = try mark(o.origin, o.epoch)
                        if try db.firstRow(
                            "SELECT 1 FROM ds_change_inbox WHERE origin = ? AND origin_epoch = ? AND seq > ? AND seq <= ? LIMIT 1",
                            [.text(o.origin), .text(o.epoch), .integer(max(m, o.first - 1)), .integer(o.last)]) != nil
                        {
                            bulk = false
                            break
                        }
                    }
                }
                if bulk, try db.bulkLoad(into: "ds_change_inbox", columns: cols, { send in try rows { try send($0) } })
                {
                    loaded = offered
                } else {
                    // A batch is cut by rows and by bytes: memory stays flat with large values.
                    try rows { row in
                        pending.append(row)
                        if case .blob(let payload) = row[10] { pendingBytes += payload.count }
                        if pending.count >= Tuning.current.inboxLoadBatch
                            || pendingBytes >= Tuning.current.chunkBytes / 4
                        {
                            try flush()
                        }
                    }
                    try flush()
                }
                skipped += offered - loaded
                // Nothing loaded counts unless the whole file verifies: a throw here rolls it all back.
                try reader.finish(publicKey: key)
                try db.execute(
                    "UPDATE ds_bundle_seen SET loaded_count = ? WHERE id = ?", [.integer(loaded), .integer(bundleId)])
                let name = (path as NSString).lastPathComponent
                for o in touched { try Holdings.advance(db, origin: o[0], epoch: o[1], bundle: name) }
                for o in h.origins
                where !touched.contains([o.origin, o.epoch]) && !(o.origin == me.nodeId && o.epoch == me.epoch) {
                    try db.execute(
                        "UPDATE ds_origin_state SET last_bundle = ?, last_seen_at = ? WHERE origin = ? AND origin_epoch = ?",
                        [.text(name), .text(nowText()), .text(o.origin), .text(o.epoch)])
                }
                if h.kind == "snapshot" {
                    // The snapshot holds the state of everything its sender held: later bundles go on
                    // from the sender's high-water marks.
                    for r in h.receipts where !(r.origin == me.nodeId && r.epoch == me.epoch) {
                        try Holdings.raiseMark(db, origin: r.origin, epoch: r.epoch, to: r.seq, bundle: name)
                    }
                }
                try Receipts.record(db, peer: h.sender, h.receipts)
                return .loaded(changes: loaded, skipped: skipped)
            }
        }
        let status: IngestedFile.Status
        do {
            status = try load()
        } catch  where useCopy && db.isUniqueViolation(error) {
            // A change twice in one file (a peer's bug): loaded again, duplicates skipped.
            useCopy = false
            status = try load()
        }
        me = try NodeIdentity.load(db)
        return (status, notice)
    }

    static func insertReturningId(_ db: Database, _ sql: SQL, _ params: [Value]) throws -> Int64 {
        try db.dialect.insertReturningId(db, sql.binding(params))
    }

    /// From this size a payload is offered to the brand's in-place path (1 MiB).
    static let largeValueBytes = 1 << 20
}
