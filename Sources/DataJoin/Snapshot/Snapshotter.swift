import Crypto
import Foundation

/// `datajoin snapshot`: the current state of every tracked table, with its versions, as one
/// bundle of kind `snapshot` (docs/snapshot.md). A new node ingests it instead of replaying all
/// history; a node that has rows merges it by versions like any other bundle.
///
/// The state is read in one read transaction (one consistent database snapshot), streamed in
/// chunks into a spool file beside the bundle, then written into the bundle: its header must
/// give each origin's count before the records, and the counts are known only at the end.
public enum Snapshotter {
    /// In every snapshot's file name, after its sender's node name: a folder's snapshots are
    /// read first (`BundleFiles`).
    static let fileMarker = "~snapshot_"

    /// Rows read and versions looked up per round trip.
    static var chunk: Int { Tuning.current.snapshotChunk }

    public static func write(
        _ db: Database, folder: String, encrypt: Bool = false, recipients only: [String] = [],
        leavingOut: [String] = [], reporter: Reporter = SilentReporter()
    ) throws -> ExportedBundle {
        try Exporter.checkFolder(folder)
        // A snapshot holds every origin's rows: a node that has received encrypted bundles
        // never writes them in the clear (found from outside).
        let recipients = try BundleEncryption.recipients(db, encrypt: encrypt, only: only)
        var me = try NodeIdentity.load(db)
        let tables = try TableRegistry.load(db)
        let tracked = Set(try Tracker.trackedNames(db))
        guard !tracked.isEmpty else {
            throw DataJoinError(.usage, "no table is tracked in \(db.displayName); run 'datajoin track' first")
        }
        // An untracked table keeps its registry entry and still applies peers' changes, but its
        // rows may hold this node's writes since, uncaptured: sent under their old versions they
        // set a joiner apart for good (found from outside, `check` OK), and left out, the
        // joiner would skip every change of it that the snapshot's marks cover (dropped here too:
        // found in review). One that never synced a change (tracked by mistake) has no changes to
        // cover; one no node syncs any more is left out when the operator says so.
        // The definitions one file may hold, checked before any work (found from outside: the
        // refusal came after a minute of reading); the writer checks again as it goes.
        let kept = tables.values.filter { tracked.contains($0.name) }
        let columns = kept.reduce(0) { $0 + $1.columns.count }
        let nameBytes = kept.reduce(0) { $0 + $1.name.utf8.count + $1.columns.reduce(0) { $0 + $1.name.utf8.count } }
        if columns > min(Tuning.current.bundleDefinedColumns, BundleFormat.maxDefinedColumns)
            || nameBytes > BundleFormat.maxDefinitionBytes
        {
            throw Self.tooWide("\(columns) columns and \(nameBytes) bytes of names")
        }
        for name in leavingOut where tracked.contains(name) || tables[name] == nil {
            throw DataJoinError(
                .usage,
                "--leave-out \(name): \(tracked.contains(name) ? "it is tracked here; a snapshot holds every tracked table" : "no table of that name was ever tracked here")"
            )
        }
        for name in tables.keys.sorted() where !tracked.contains(name) && !leavingOut.contains(name) {
            guard try hasSynced(db, name) else { continue }
            // Dropped here: it cannot be tracked again here (found from outside: the cure failed).
            let dropped = try db.dialect.columns(db, of: name).isEmpty
            throw DataJoinError(
                .usage,
                dropped
                    ? "no snapshot written: table \(name) synced here and is gone, and a node joining from this snapshot "
                        + "would not get its changes; take the snapshot on a node that tracks it, or, if no node syncs \(name) any more, --leave-out \(name)"
                    : "no snapshot written: table \(name) is untracked here, so its rows here may hold writes no peer has, "
                        + "and a node joining from this snapshot would not get its changes; run 'datajoin track --backfill \(name)' "
                        + "(and delete by hand on every peer the rows deleted here meanwhile), take the snapshot on a node that "
                        + "tracks every table it ever tracked, or, if no node syncs \(name) any more, --leave-out \(name)"
            )
        }
        let rowsOf = tables.filter { tracked.contains($0.key) }
        // A snapshot holds the registered columns: a table altered since `track` would give the
        // joining node its rows without the new columns' values (found from outside: exit 0).
        if let drift = try CaptureDrift.find(db).first {
            throw DataJoinError(.captureDrift, "no snapshot written: " + drift.message)
        }
        let key = try NodeIdentity.signingKey(db, node: me.nodeId)
        let snapshotEpoch = BundleFormat.snapshotEpochPrefix + NodeIdentity.newEpoch()
        // An encrypted snapshot's plain spool stays on this machine, never in the drop folder.
        let spoolFolder = recipients.isEmpty ? folder : NSTemporaryDirectory()
        let spoolPath = (spoolFolder as NSString).appendingPathComponent(".\(me.nodeId)~snapshot-\(getpid()).spool")
        // A signal removes it too (`InterruptCleanup`): an encrypted snapshot's is plain text.
        InterruptCleanup.set(spoolPath)
        defer {
            InterruptCleanup.set(nil)
            unlink(spoolPath)
        }
        removeStaleSpools(spoolFolder, node: me.nodeId)

        var spool: Spool!
        var receipts: [Receipt] = []
        var span: RelaySpan?
        var prunedBefore: Int64?
        /// Reads everything, all local writes stamped: the rows and their versions agree.
        func read() throws {
            me = try NodeIdentity.load(db)
            try refuseGaps(db, me: me)
            receipts = try Holdings.receipts(db, me: me, all: true)
            span = try RelayStream.snapshotSpan(db)
            prunedBefore = try Settings.int(db, Pruner.cutoffSetting)
            spool = try Spool(path: spoolPath, inTemporaryFolder: !recipients.isEmpty)
            try readState(db, tables: rowsOf, me: me, snapshotEpoch: snapshotEpoch, spool: spool, reporter: reporter)
            try spool.close()
        }
        func stampPending() throws {
            me = try NodeIdentity.load(db)
            try Stamper.stampPending(db, me: &me, tables: tables)
        }
        if db.dialect.writeTransactionReadsWithoutBlocking {
            // One transaction: stamping sees exactly the outbox rows of the snapshot the reads
            // see; application writers are never blocked.
            try db.retryingWrite { _ in
                try stampPending()
                try read()
            }
        } else {
            // Stamp, then read in a read transaction (WAL: writers go on). A write that commits
            // in between would be in the rows without its version: then read again, and after a
            // few tries do both inside the write transaction (writers wait for the snapshot).
            var done = false
            for _ in 0..<3 where !done {
                try db.retryingWrite { _ in try stampPending() }
                done = try db.read { _ in
                    guard try Stamper.unstampedCount(db) == 0 else { return false }
                    try read()
                    return true
                }
            }
            if !done {
                try db.retryingWrite { _ in
                    try stampPending()
                    try read()
                }
            }
        }

        let origins = spool.origins.map { k, v in
            OriginRange(origin: k.origin, epoch: k.epoch, first: v.first, last: v.last, count: v.count)
        }
        .sorted { ($0.origin, $0.epoch) < ($1.origin, $1.epoch) }
        let header = BundleHeader(
            sender: me.nodeId, senderEpoch: me.epoch, createdAt: try BundleTime.next(db), kind: "snapshot",
            origins: origins,
            changeCount: spool.count, receipts: receipts, publicKey: me.publicKey, relaySpan: span,
            tombstonesPrunedBeforeMs: prunedBefore)
        let name =
            "\(me.nodeId)\(Self.fileMarker)\(Self.stamp())_\(snapshotEpoch.dropFirst(BundleFormat.snapshotEpochPrefix.count).prefix(8)).\(BundleFormat.fileExtension)"
        let writer = try BundleWriter(
            folder: folder, fileName: name, header: header, signingKey: key, recipients: recipients)
        var written: Int64 = 0
        try Spool.read(spoolPath) { change in
            do { try writer.add(change, table: tables[change.table]) } catch is DefinitionsFull {
                // One file holds a snapshot, and a reader takes only so many definitions.
                throw Self.tooWide("more than one file holds")
            }
            written += 1
            if written % 5_000 == 0 {
                reporter.progress(
                    WorkProgress(
                        phase: "snapshot write", changes: written, totalChanges: spool.count,
                        bytes: Int64(writer.uncompressedBytes)))
            }
        }
        guard writer.changeCount == spool.count else {
            throw DataJoinError(
                .internalError, "snapshot spool held \(writer.changeCount) records, expected \(spool.count)")
        }
        let result = try writer.finish()
        reporter.progress(
            WorkProgress(
                phase: "snapshot write", changes: written, totalChanges: spool.count, bytes: Int64(result.bytes),
                final: true))
        var bundle = ExportedBundle(
            path: result.path, first: 0, last: 0, changes: spool.count, bytes: result.bytes, sha256: result.sha256)
        bundle.encryptedTo = recipients.map(\.node)
        return bundle
    }

    static func stamp() -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss"
        return f.string(from: Date())
    }

    /// One file holds a snapshot, and a reader takes only so many definitions (bundle-format.md).
    static func tooWide(_ what: String) -> DataJoinError {
        DataJoinError(
            .needsSetup,
            "no snapshot written: the tables define \(what), and one file holds at most "
                + "\(min(Tuning.current.bundleDefinedColumns, BundleFormat.maxDefinedColumns)) columns and \(BundleFormat.maxDefinitionBytes >> 20) MiB of names "
                + "(docs/snapshot.md, 'Limits')")
    }

    /// A snapshot's marks say which changes of each origin its rows hold: every one up to a
    /// mark. A node holding an origin's later changes past a gap cannot say so; a joiner would
    /// wait for those later changes for good, since they were relayed before it joined, and
    /// hold that origin's next changes behind them (found from outside: a hub that had a
    /// laptop's second bundle and not yet its first). Gaps of an origin's older epochs or of a
    /// revoked node never close, and are no obstacle.
    static func refuseGaps(_ db: Database, me: NodeIdentity) throws {
        for s in try LastingGaps.closable(db, me: me) {
            let first =
                try Holdings.gaps(db, s, limit: 1).ranges.first.map {
                    $0.count == 1 ? " (\($0.lowerBound))" : " (\($0.lowerBound)–\($0.upperBound))"
                } ?? ""
            throw DataJoinError(
                .usage,
                "no snapshot written: this node holds changes of \(s.origin) up to \(s.maxSeq) but lacks earlier ones\(first), "
                    + "and a node joining from this snapshot would wait for the later ones for good; ingest them here first "
                    + "(on \(s.origin), or on a node that relays it, 'datajoin export --db URL --to FOLDER --resend --peer "
                    + "\(me.nodeId)', with --relay on a relay), then take the snapshot; if \(s.origin) is gone for good, "
                    + "'datajoin trust --revoke \(s.origin)' here first")
        }
    }

    /// A version, a held change or a change not yet stamped of `table`: it took part in syncing.
    static func hasSynced(_ db: Database, _ table: String) throws -> Bool {
        let t = Value.text(table)
        return try db.firstRow("SELECT 1 FROM ds_row_version WHERE object_table = ? LIMIT 1", [t]) != nil
            || db.firstRow("SELECT 1 FROM ds_change_held WHERE object_table = ? LIMIT 1", [t]) != nil
            || db.firstRow("SELECT 1 FROM ds_change_outbox WHERE seq IS NULL AND object_table = ? LIMIT 1", [t]) != nil
    }

    /// Every row (an insert with the row's generation and version, then an update per column
    /// that has a newer version of its own), every tombstone (a delete), and the inbox changes
    /// not applied here yet (as they are, so they apply or wait at the new node too), but those
    /// held here for their age (never applied here; the receipts still cover them).
    static func readState(
        _ db: Database, tables: [String: TableInfo], me: NodeIdentity, snapshotEpoch: String, spool: Spool,
        reporter: Reporter
    ) throws {
        let order = try ForeignKeys.load(db, tables: Array(tables.keys)).parentsFirst
        var total: Int64 = 0
        for name in order { total += try db.scalar("SELECT count(*) FROM \(Identifier(name))").asInt64 ?? 0 }
        let store = VersionStore(db: db)
        var rowsDone: Int64 = 0
        func state(_ c: Change) throws {
            var c = c
            c.epoch = snapshotEpoch
            c.seq = spool.nextSeq(origin: c.origin, epoch: snapshotEpoch)
            try spool.add(c)
        }
        for name in order {
            let t = tables[name]!
            let keyNames = t.keyColumns.map(\.name)
            let keyIndexes = t.keyColumns.map { k in t.columns.firstIndex { $0.name == k.name }! }
            // Also by bytes: 500 rows of large values were held at once (found in review, as
            // the export's were from outside).
            var batch = SizedBatch<[Value]>(maxCount: chunk, maxBytes: Tuning.current.encodeBatchBytes)
            func flush() throws {
                let pending = batch.take()
                guard !pending.isEmpty else { return }
                let keys = pending.map { row in KeyCodec.encode(t.canonicalKey(keyIndexes.map { row[$0] })) }
                let rowStates = try store.rows(keys.map { (name, $0) })
                let columnVersions = try store.columns(table: name, keys: keys)
                for (row, keyBytes) in zip(pending, keys) {
                    let k = VersionStore.Key(table: name, key: keyBytes)
                    let rs = rowStates[k]
                    // A row present before tracking started: generation 1 with the lowest version,
                    // this node's. Once updated here it has that version stored as the zero
                    // version (no node), which as an origin refused the whole snapshot on every
                    // node (found from outside).
                    let rowVersion =
                        rs.map(\.version).flatMap { $0.node.isEmpty ? nil : $0 } ?? Version(hlc: 0, node: me.nodeId)
                    let cl = rs.map { $0.cl % 2 == 1 ? $0.cl : $0.cl + 1 } ?? 1
                    let values = zip(t.columns, row).map {
                        Change.ColumnValue(name: $0.name, value: ValueConversion.normalize($1, kind: $0.kind))
                    }
                    let key = t.canonicalKey(keyIndexes.map { row[$0] })
                    var insert = Change(
                        origin: rowVersion.node, epoch: "", seq: 0, hlc: rowVersion.hlc, txid: 0, op: .insert,
                        table: name, cl: cl,
                        key: key, columns: values, oldValue: nil)
                    insert.keyNames = keyNames
                    try state(insert)
                    for (column, v) in (columnVersions[k] ?? [:]).sorted(by: { $0.key < $1.key }) where v > rowVersion {
                        guard let value = values.first(where: { $0.name == column }) else { continue }
                        var update = Change(
                            origin: v.node, epoch: "", seq: 0, hlc: v.hlc, txid: 0, op: .update, table: name, cl: cl,
                            key: key, columns: [value], oldValue: nil)
                        update.keyNames = keyNames
                        try state(update)
                    }
                }
                rowsDone += Int64(pending.count)
                reporter.progress(WorkProgress(phase: "snapshot read", changes: rowsDone, totalChanges: total))
            }
            let select: SQL =
                "SELECT \(db.dialect.selected(t.columns)) FROM \(t.identifier) ORDER BY \(t.keyColumns.map(\.identifier))"
            try db.stream(select, []) { r in
                if batch.add(r.values, size: r.payloadBytes) { try flush() }
            }
            try flush()
        }
        // Tombstones: without them a row deleted here would come back from an older change.
        try db.stream(
            "SELECT object_table, object_id, cl, hlc, node FROM ds_row_version WHERE cl % 2 = 0 ORDER BY object_table, object_id",
            []
        ) { r in
            guard let name = r.string(0), let t = tables[name], case .blob(let keyBytes) = r.values[1] else { return }
            var delete = Change(
                origin: r.string(4) ?? me.nodeId, epoch: "", seq: 0, hlc: r.int(3) ?? 0, txid: 0, op: .delete,
                table: name,
                cl: r.int(2) ?? 2, key: try KeyCodec.decode(keyBytes), columns: [], oldValue: nil)
            delete.keyNames = t.keyColumns.map(\.name)
            guard NodeName.isValid(delete.origin) else { return }
            try state(delete)
        }
        // Changes received but not applied here (held, or not imported yet) travel as they are;
        // not one older than this node's tombstones, held here for its age (or to be held):
        // the joiner applied it, a row the sender lacked, `check` OK (found from outside).
        let pointer = try ProgramPointer.get(db, Program.import)
        try db.stream(
            """
            SELECT \(Importer.streamedInboxColumns(db)) FROM ds_change_inbox
            WHERE (id IN (SELECT id FROM ds_change_held) OR id > ?) AND \(Exporter.notHeldForItsAge)
              AND (hlc >= ? OR \(Exporter.snapshotRecord))
            ORDER BY id
            """,
            [.integer(pointer), .integer(try Pruner.cutoffStamp(db))]
        ) { r in
            try spool.add(try Importer.change(r, db))
        }
        reporter.progress(WorkProgress(phase: "snapshot read", changes: rowsDone, totalChanges: total, final: true))
    }
}

/// `close(2)`, which `Spool.close()` hides by name inside the class.
private func closeDescriptor(_ fd: Int32) -> Int32 { close(fd) }

/// The snapshot's records on disk between reading the database and writing the bundle; also
/// counts each origin's records for the bundle header.
final class Spool {
    struct OriginKey: Hashable {
        var origin: String
        var epoch: String
    }
    private var fd: Int32
    private let path: String
    /// An encrypted snapshot's spool, in TMPDIR: its failures say so.
    private let inTemporaryFolder: Bool
    private var buffer = ByteWriter()
    private(set) var origins: [OriginKey: (first: Int64, last: Int64, count: Int64)] = [:]
    private(set) var count: Int64 = 0
    private var seqs: [OriginKey: Int64] = [:]

    init(path: String, inTemporaryFolder: Bool = false) throws {
        unlink(path)
        self.path = path
        self.inTemporaryFolder = inTemporaryFolder
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            // A TMPDIR that does not exist is a missing folder (66), as a missing --to is.
            if errno == ENOENT {
                throw DataJoinError(
                    .noInput,
                    "cannot write \(path): no such folder"
                        + (inTemporaryFolder
                            ? "; an encrypted snapshot spools in the temporary folder: set TMPDIR to one that exists"
                            : ""))
            }
            throw DataJoinError.io("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    deinit { if fd >= 0 { _ = closeDescriptor(fd) } }

    func nextSeq(origin: String, epoch: String) -> Int64 {
        let k = OriginKey(origin: origin, epoch: epoch)
        let n = (seqs[k] ?? 0) + 1
        seqs[k] = n
        return n
    }

    func add(_ c: Change) throws {
        let k = OriginKey(origin: c.origin, epoch: c.epoch)
        if let o = origins[k] {
            origins[k] = (min(o.first, c.seq), max(o.last, c.seq), o.count + 1)
        } else {
            origins[k] = (c.seq, c.seq, 1)
        }
        count += 1
        buffer.string(c.origin)
        buffer.string(c.epoch)
        buffer.varint(UInt64(c.seq))
        buffer.varint(UInt64(c.hlc))
        buffer.varint(UInt64(c.txid))
        buffer.string(c.op.rawValue)
        buffer.string(c.table)
        buffer.varint(UInt64(c.cl))
        buffer.string(KeyNames.encode(c.keyNames))
        buffer.data(KeyCodec.encode(c.key))
        buffer.data(c.encodedPayload())
        if buffer.bytes.count >= 1 << 20 { try flush() }
    }

    /// A full disk is one line naming the spool, not Foundation's error object (found from
    /// outside: "Error Domain=NSCocoaErrorDomain Code=640 …").
    private func flush() throws {
        try GzipWriter.writeAll(fd: fd, buffer.bytes, count: buffer.bytes.count, failure: failed)
        buffer.bytes.removeAll(keepingCapacity: true)
    }

    private func failed() -> DataJoinError {
        DataJoinError.io(
            "cannot write the snapshot's spool \(path): \(String(cString: strerror(errno))) "
                + "(it needs several times the snapshot's size free while it is written"
                + (inTemporaryFolder
                    ? "; an encrypted snapshot spools in the temporary folder: set TMPDIR to a folder with room)" : ")")
        )
    }

    func close() throws {
        try flush()
        let result = closeDescriptor(fd)
        fd = -1
        if result != 0 { throw failed() }
    }

    static func read(_ path: String, _ body: (Change) throws -> Void) throws {
        guard let h = FileHandle(forReadingAtPath: path) else { throw DataJoinError.io("cannot read \(path)") }
        defer { try? h.close() }
        var r = ByteReader(FileSource(handle: h))
        while try !r.atEnd() {
            let origin = try r.string(), epoch = try r.string(), seq = Int64(try r.varint()),
                hlc = Int64(try r.varint())
            let txid = Int64(try r.varint())
            guard let op = Operation(rawValue: try r.string()) else {
                throw DataJoinError(.internalError, "snapshot spool is damaged")
            }
            let table = try r.string(), cl = Int64(try r.varint())
            let keyNames = KeyNames.decode(try r.string())
            let key = try KeyCodec.decode(try r.data())
            let (columns, old) = try Change.decodePayload(try r.data())
            var c = Change(
                origin: origin, epoch: epoch, seq: seq, hlc: hlc, txid: txid, op: op, table: table, cl: cl, key: key,
                columns: columns, oldValue: old)
            c.keyNames = keyNames
            try body(c)
        }
    }
}

struct FileSource: ByteSource {
    let handle: FileHandle
    mutating func next(max: Int) throws -> [UInt8] {
        Array(try handle.read(upToCount: max) ?? Data())
    }
}

extension Snapshotter {
    /// Spools of this node's snapshots whose process is gone (killed: its `defer` never ran).
    /// They stayed for good, 2–29 MB each at 100,000 rows (found from outside); a spool whose
    /// process still runs a snapshot is another snapshot's, and stays. A pid taken since by
    /// another program (after a reboot, say) does not keep a spool (found by the second trial).
    static func removeStaleSpools(_ folder: String, node: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        let prefix = "." + node + "~snapshot-"
        for n in names where n.hasPrefix(prefix) && n.hasSuffix(".spool") {
            guard let pid = Int32(n.dropFirst(prefix.count).dropLast(".spool".count)), pid > 0, pid != getpid()
            else { continue }
            if !runsSnapshot(pid) { unlink((folder as NSString).appendingPathComponent(n)) }
        }
    }

    /// Whether process `pid` exists and, where the system says what it runs (`/proc`), runs a
    /// snapshot.
    static func runsSnapshot(_ pid: Int32) -> Bool {
        if kill(pid, 0) != 0 && errno == ESRCH { return false }
        guard let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return true }
        let words = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return words.contains("snapshot")
    }
}
