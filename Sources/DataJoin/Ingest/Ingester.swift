import Crypto
import Foundation

public struct IngestOptions {
    public var paths: [String]
    public var importAfter: Bool
    /// Asked between bundles: true stops the run there (each bundle is one transaction).
    public var shouldStop: () -> Bool
    /// Leave refused files where they are (a dry run changes nothing, files included).
    public var quarantine: Bool
    /// Told of each file once it is done, before the import: a run that fails later (a lock,
    /// a lost server) has still said what it loaded and what it refused and moved aside
    /// (found from outside: only the error was printed).
    public var fileDone: ((IngestedFile) -> Void)?
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
        /// Found in a drop folder and gone before it was read: the node that wrote it removed it
        /// (`prune --bundles`) while this run listed the folder. Nothing to do.
        case removed
        /// Found in a shared drop folder, encrypted to other nodes only: left for them. Not a
        /// refusal (found from outside: every ingest of a shared folder exited 2 for good).
        case forOthers(String)
    }
    public var path: String
    public var status: Status
    /// The class of a refusal (a damaged file, an untrusted sender, a path not there): when every
    /// file is refused, the run exits with the first one's, as `verify` does; it exited 2,
    /// "partial success", with nothing loaded (found from outside).
    public var refusal: DataJoinError.Code?
}

public struct IngestReport: Sendable {
    public var files: [IngestedFile] = []
    /// Things the operator should know (a new epoch was started).
    public var notices: [String] = []
    /// Gaps of origins' changes that have lasted (`LastingGaps`): said by every ingest, and by
    /// `watch` when they change.
    public var gaps: [String] = []
    public var imported: ImportReport?
    public var refused: Int { files.filter { $0.refusal != nil }.count }
    /// The first refusal's class when a file was refused and none loaded: the run failed (65,
    /// 77, 66), not partly succeeded (2). Files already ingested, still copying or for other
    /// nodes load nothing either: beside them a forged file still fails the run (found in review:
    /// a drop folder keeps its old bundles until prune).
    public var allRefused: DataJoinError.Code? {
        files.contains { if case .loaded = $0.status { return true } else { return false } }
            ? nil : files.lazy.compactMap(\.refusal).first
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
            var refusal = DataJoinError.Code.dataError
            if let problem = entry.problem {
                status = .refused(problem)
                refusal = entry.problemKind
            } else if vanished(entry) {
                status = .removed
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
                    case _ where vanished(entry):
                        status = .removed
                    case .truncated where Quarantine.modifiedWithin(path, seconds: limits.partialGraceSeconds):
                        status = .incomplete(
                            "\(e.message); it may still be copying, so it stays and is retried on the next run")
                    case .truncated, .badBundle:
                        // A file the user named is refused where it stands: only files found in a
                        // drop folder are moved aside (a named notes.txt stays notes.txt).
                        if options.quarantine && entry.inFolder && !Quarantine.isQuarantined(path) {
                            let (note, moved) = Quarantine.move(path, reason: e.message)
                            status = .refused(e.message + note)
                            if let moved {
                                // A file moved aside that the database does not record (a user
                                // that may only read) goes back: the run stops, nothing changed.
                                do { try Quarantine.record(db, path: moved.path, reason: e.message) } catch {
                                    if Quarantine.putBack(moved, to: path) { throw error }
                                    guard let e = error as? DataJoinError else { throw error }
                                    throw DataJoinError(
                                        e.code, e.message + "; \(path) was refused and stays in \(moved.path)")
                                }
                            }
                        } else {
                            status = .refused(e.message)
                        }
                    case .forOtherNodes where entry.inFolder:
                        status = .forOthers(e.message)
                    case .untrusted, .io, .noInput, .permission, .notForThisNode, .forOtherNodes:
                        status = .refused(e.message)
                        refusal = e.code
                    case .connection, .locked, .busy:
                        throw e
                    default:
                        // Whatever else went wrong with this one file is this file's refusal;
                        // the run goes on with the next (docs/reliability.md).
                        status = .refused(e.message + "; left in place")
                        refusal = e.code
                    }
                } catch  where DatabaseErrors.isDiskFull(error) {
                    // The run stops (no later file could load either), naming the file it was
                    // loading (found from outside: only the database's words were said).
                    throw DataJoinError(
                        .io,
                        TerminalText.oneLine("\(error)")
                            + " while loading \(path): nothing of it was kept (the files before it were); free space for the database, then run ingest again"
                    )
                } catch
                    where !db.isUnavailable(error) && !DatabaseErrors.isPermissionDenied(error)
                    && !DatabaseErrors.isReadOnly(error)
                {
                    status = vanished(entry) ? .removed : .refused("\(error); left in place")
                    refusal = .io
                }
            }
            if let notice { report.notices.append(notice) }
            let refused: Bool
            if case .refused = status { refused = true } else { refused = false }
            report.files.append(IngestedFile(path: path, status: status, refusal: refused ? refusal : nil))
            options.fileDone?(report.files[report.files.count - 1])
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
        // Said, never the run's failure: the work above is committed (found in review).
        do {
            report.gaps = try LastingGaps.warnings(db, me: me, graceSeconds: limits.partialGraceSeconds)
        } catch  where !db.isUnavailable(error) {
            report.gaps = ["the gaps of origins' changes could not be read: \(error)"]
        }
        do {
            report.gaps += try Forks.warnings(db, me: me)
        } catch  where !db.isUnavailable(error) {
            report.gaps.append("the copies of reused seqs kept aside could not be read: \(error)")
        }
        return report
    }

    /// A file found in a folder that is no longer there (nor a link to nothing).
    static func vanished(_ entry: BundleFiles.Entry) -> Bool {
        var st = stat()
        return entry.inFolder && lstat(entry.path, &st) != 0 && errno == ENOENT
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

    typealias FileStamp = (name: String, size: Int64, mtime: String)

    /// A file's name, size and modification time: a drop folder of thousands of bundles already
    /// ingested is rescanned from these, without reading the files.
    static func fileStamp(_ path: String) -> FileStamp? {
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
        if let status = try seenStatus(seenByStamp(db, stamp), me: me) { return (status, nil) }
        let source: BundleSource
        var outerDigest: String?
        if EncryptedFormat.isEncrypted(path: path) {
            // Format v2: the outer signature first, then the file key; nothing is decrypted
            // from a file its sender did not sign or that is not for this node.
            let outer = try EncryptedBundleFile(path: path)
            try outer.checkSeal()
            let digest = try fileDigest(path)
            if let status = try seenStatus(seenByDigest(db, digest), me: me) { return (status, nil) }
            _ = try trustedKey(
                db, sender: outer.header.sender, headerKey: outer.header.publicKey, verify: outer.verify(with:),
                integrity: outer.verifyIntegrity)
            if outer.header.sender == me.nodeId { return (.ownBundle, nil) }
            source = .encrypted(outer, try outer.fileKey(with: EncryptionKeys.privateKeys(db), node: me.nodeId))
            outerDigest = digest
        } else {
            try EncryptedFormat.checkMajor(path: path)
            source = .plain(path)
        }
        // The container is checked before the whole file is hashed: a 50 GB file of zeros in a
        // drop folder stalled every ingest for minutes (found from outside).
        let seal = try BundleSeal(gzip: try source.gzip(maxOutput: limits.maxExpandedBytes))
        let digest = try outerDigest ?? fileDigest(path)
        if let status = try seenStatus(seenByDigest(db, digest), me: me) { return (status, nil) }
        if case .encrypted(let outer, _) = source, seal.sender != outer.header.sender {
            throw DataJoinError.bundle(
                "encrypted by \(outer.header.sender) but holds a bundle of \(seal.sender): a bundle is never re-wrapped"
            )
        }
        let key = try trustedKey(
            db, sender: seal.sender, headerKey: seal.headerKey, verify: seal.verify(with:),
            integrity: seal.verifyIntegrity)
        // Pass 2: the verified file, decoded; its digest is checked again at the end, so a file
        // changed in between is refused.
        let reader = try openReader(source, limits)
        let h = reader.header
        guard h.sender == seal.sender, h.publicKey == seal.headerKey else {
            throw DataJoinError.bundle("changed while it was being read")
        }
        var file = IncomingFile(path: path, stamp: stamp, digest: digest, key: key, header: h)
        file.source = source
        if h.sender == me.nodeId {
            // Genuinely ours (the signature is checked): nothing to load, echo prevention.
            try reader.finish(publicKey: key)
            try recordOwnBundle(db, file)
            return (.ownBundle, nil)
        }
        let loaded = try loadIntoInbox(db, file, reader: reader, limits: limits, progress: progress)
        me = try NodeIdentity.reload(db)
        return loaded
    }

    /// A file seen before is this node's own or already seen; nil: not seen.
    private static func seenStatus(_ seen: Row?, me: NodeIdentity) -> IngestedFile.Status? {
        guard let seen else { return nil }
        return seen.string(0) == me.nodeId ? .ownBundle : .alreadySeen
    }

    /// Found by name, size and modification time: a rescanned drop folder is not read again.
    private static func seenByStamp(_ db: Database, _ stamp: FileStamp?) throws -> Row? {
        guard let s = stamp else { return nil }
        return try db.firstRow(
            "SELECT origin FROM ds_bundle_seen WHERE file_name = ? AND file_size = ? AND file_mtime = ?",
            [.text(s.name), .integer(s.size), .text(s.mtime)])
    }

    /// Found by content: the same file under another name, or loaded by another ingest meanwhile.
    private static func seenByDigest(_ db: Database, _ digest: String) throws -> Row? {
        try db.firstRow("SELECT origin FROM ds_bundle_seen WHERE sha256 = ?", [.text(digest)])
    }

    /// Pass 1: the file's bytes against its digest and its sender's signature, before any
    /// record is read. Damaged or forged first (quarantined), untrusted only if the file is
    /// intact (left in place: it loads once its sender is trusted).
    private static func trustedKey(
        _ db: Database, sender: String, headerKey: [UInt8], verify: (Curve25519.Signing.PublicKey) throws -> Void,
        integrity: () throws -> Void
    ) throws -> Curve25519.Signing.PublicKey {
        let key: Curve25519.Signing.PublicKey
        switch try Trust.key(db, node: sender) {
        case .success(let k): key = k
        case .failure(let e):
            try integrity()
            throw e
        }
        guard Array(key.rawRepresentation) == headerKey else { throw Trust.differentKey(sender) }
        try verify(key)
        return key
    }

    /// Payloads are read in the inbox's encoding, never decoded.
    private static func openReader(_ source: BundleSource, _ limits: Limits) throws -> BundleReader {
        let reader = try BundleReader(
            gzip: try source.gzip(maxOutput: limits.maxExpandedBytes), path: source.path)
        reader.payloadOnly = true
        return reader
    }

    /// This node's own bundle come back: recorded as seen, so it is not read again.
    private static func recordOwnBundle(_ db: Database, _ file: IncomingFile) throws {
        let h = file.header
        try db.retryingWrite { _ in
            // Checked again inside the transaction: another ingest may have loaded this very file
            // while this one waited for the database.
            if try seenByDigest(db, file.digest) != nil { return }
            try db.execute(
                """
                INSERT INTO ds_bundle_seen (sha256, file_name, origin, origin_epoch, first_seq, last_seq, change_count, loaded_count, ingested_at, file_size, file_mtime)
                VALUES (?, ?, ?, ?, 0, 0, ?, 0, ?, ?, ?)
                """,
                [
                    .text(file.digest), .text(file.name), .text(h.sender),
                    .text(h.senderEpoch), .integer(h.changeCount),
                    .text(nowText()), file.stamp.map { .integer($0.size) } ?? .null,
                    file.stamp.map { .text($0.mtime) } ?? .null,
                ])
        }
    }

    /// One transaction for the whole file. Its body may run more than once (a retried write,
    /// then the fallback without the bulk path): each attempt re-opens the file and starts a new
    /// `InboxLoad`, so nothing of a rolled-back attempt is carried over.
    private static func loadIntoInbox(
        _ db: Database, _ file: IncomingFile, reader first: BundleReader, limits: Limits,
        progress: @escaping (_ read: Int64, _ of: Int64) -> Void
    ) throws -> (IngestedFile.Status, String?) {
        var reader = first
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
                    reader = try openReader(file.source, limits)
                    guard reader.header == file.header else {
                        throw DataJoinError.bundle("changed while it was being read")
                    }
                }
                // Checked again inside the transaction: another ingest may have loaded this very
                // file while this one waited for the database.
                if try seenByDigest(db, file.digest) != nil { return .alreadySeen }
                // A peer holding more of this node's epoch than it issued: restored from a backup.
                // Move to a new epoch before loading, so this node's lost changes come back as
                // foreign ones; a bundle that then fails to verify rolls the switch back too.
                notice = nil
                if let reason = try Epochs.checkRestored(db, receipts: file.header.receipts, from: file.header.sender)
                    ?? Epochs.checkRestoredRelay(db, file.header.relayReceipts, from: file.header.sender)
                {
                    notice = "new epoch: \(reason); all of this node's changes will be exported again"
                }
                let me = try NodeIdentity.reload(db)
                // Before PeerRestore.check records this bundle as the sender's newest.
                let newest = try PeerRestore.isNewest(db, file.header)
                // A snapshot's receipts raise this node's marks with its rows: nothing stays lost.
                if file.header.kind == "changes",
                    let lost = try Epochs.noteLostOwn(
                        db, me: me, receipts: file.header.receipts, from: file.header.sender,
                        newest: newest)
                {
                    notice = notice.map { $0 + "; " + lost } ?? lost
                }
                if let restored = try PeerRestore.check(db, file.header, me: me) {
                    notice = notice.map { $0 + "; " + restored } ?? restored
                }
                if file.header.kind == "snapshot", let ms = file.header.tombstonesPrunedBeforeMs {
                    try Pruner.inheritCutoff(db, ms: ms)
                }
                let bundleId = try recordBundle(db, file)
                var inbox = InboxLoad(
                    db: db, file: file, reader: reader, me: me, bundleId: bundleId, senderNewest: newest,
                    progress: progress)
                try inbox.loadRows(useCopy: useCopy)
                let status = try inbox.finish()
                for said in inbox.prunedForks { notice = notice.map { $0 + "; " + said } ?? said }
                return status
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
        return (status, notice)
    }

    /// The file's row in ds_bundle_seen, loaded_count 0 until the load is finished; its id
    /// marks the inbox rows that came with it.
    private static func recordBundle(_ db: Database, _ file: IncomingFile) throws -> Int64 {
        let h = file.header
        let first = h.origins.map(\.first).min() ?? 0
        let last = h.origins.map(\.last).max() ?? 0
        return try insertReturningId(
            db,
            """
            INSERT INTO ds_bundle_seen (sha256, file_name, origin, origin_epoch, first_seq, last_seq, change_count, loaded_count, ingested_at, file_size, file_mtime)
            VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)
            """,
            [
                .text(file.digest), .text(file.name), .text(h.sender),
                .text(h.senderEpoch),
                .integer(first), .integer(last), .integer(h.changeCount), .text(nowText()),
                file.stamp.map { .integer($0.size) } ?? .null, file.stamp.map { .text($0.mtime) } ?? .null,
            ])
    }

    static func insertReturningId(_ db: Database, _ sql: SQL, _ params: [Value]) throws -> Int64 {
        try db.dialect.insertReturningId(db, sql.binding(params))
    }

    /// From this size a payload is offered to the brand's in-place path (1 MiB).
    static let largeValueBytes = 1 << 20
}
