import Crypto
import Foundation

public struct ExportOptions: Sendable {
    public var folder: String
    /// Split into bundles of about this many changes (a source transaction is never split).
    public var maxChanges: Int?
    /// Also write the changes received from other nodes (a hub forwards everything to everyone).
    public var relay: Bool
    /// Write again what peers have not confirmed (all peers, or `peer`).
    public var resend: Bool
    public var peer: String?
    /// Encrypt to every trusted peer (format v2); also when `recipients` names some, or the
    /// node's `encrypt` setting is `always` (docs/encryption.md).
    public var encrypt: Bool
    public var recipients: [String]

    public init(
        folder: String, maxChanges: Int? = nil, relay: Bool = false, resend: Bool = false, peer: String? = nil,
        encrypt: Bool = false, recipients: [String] = []
    ) {
        self.folder = folder
        self.maxChanges = maxChanges
        self.relay = relay
        self.resend = resend
        self.peer = peer
        self.encrypt = encrypt
        self.recipients = recipients
    }
}

/// Export stopped before a change no bundle can carry; `bundles` were written before it.
public struct ExportHeld: Error, CustomStringConvertible {
    public var bundles: [ExportedBundle]
    public var message: String
    public var description: String { message }
}

public struct ExportedBundle: Sendable {
    public var path: String
    public var first: Int64
    public var last: Int64
    public var changes: Int64
    public var bytes: Int
    public var sha256: String
    /// No changes: only what this node holds, for its peers (ReceiptsOnly).
    public var receiptsOnly = false
    /// The nodes that can read it, when it is encrypted.
    public var encryptedTo: [String] = []
}

/// `datajoin export`: outbox rows past the export pointer into bundle files; with `relay`, inbox
/// rows past the relay pointer too; with `resend`, what peers have not confirmed.
public enum Exporter {
    /// Runs between stamping and reading: a test stamps there as another export would.
    nonisolated(unsafe) static var afterStamping: (() throws -> Void)?

    public static func export(_ db: Database, _ options: ExportOptions, reporter: Reporter = SilentReporter()) throws
        -> [ExportedBundle]
    {
        try checkFolder(options.folder)
        if let m = options.maxChanges, m < 1 { throw DataJoinError(.usage, "--max-changes must be at least 1") }
        // One export of a node at a time; another waits for it (`LockPurpose.export`).
        let lock = try InstanceLock.waiting(db, for: .export)
        defer { lock.release() }
        var me = try NodeIdentity.load(db)
        if let peer = options.peer {
            guard options.resend else { throw DataJoinError(.usage, "--peer goes with --resend") }
            guard try Receipts.peers(db, me: me).contains(peer) else {
                throw DataJoinError(.usage, "\(peer) is not a trusted peer of \(me.nodeId) (see 'datajoin status')")
            }
        }
        // Whom to encrypt to is settled before anything is stamped or written.
        let recipients = try BundleEncryption.recipients(
            db, encrypt: options.encrypt, only: options.recipients)
        let tables = try TableRegistry.load(db)
        // Stamp in a short write transaction; reading and writing files holds no write lock.
        // In transactions of about 100,000 changes: on PostgreSQL the tables are analyzed in
        // between, so a backlog of millions is not planned on the statistics of an empty table.
        let step = Tuning.current.exportStep
        var stampedBefore = 0
        if let restored = try Epochs.checkOwnFiles(db, folder: options.folder) {
            reporter.notice("new epoch: \(restored); all of this node's changes will be exported again")
        }
        _ = try db.retryingWrite { _ in try Stamper.closeUnsentGaps(db) }
        while true {
            let stamped = try db.retryingWrite { _ -> Int in
                me = try NodeIdentity.load(db)
                return try Stamper.stampPending(db, me: &me, tables: tables, limit: step) { n in
                    reporter.progress(WorkProgress(phase: "stamping", changes: Int64(stampedBefore + n)))
                }
            }
            stampedBefore += stamped
            try db.refreshStatistics(["ds_change_outbox", "ds_row_version"], after: stamped)
            if stamped < step { break }
        }
        try afterStamping?()
        removeStaleTemporaries(options.folder, node: me.nodeId)
        // A hold from an earlier run is said again below if it still holds.
        _ = try db.retryingWrite { _ in
            try db.execute(
                "UPDATE ds_program_parameter SET status = 'ok' WHERE id = ? AND status LIKE 'held:%'",
                [.integer(Program.export)])
        }
        let ctx = Context(
            db: db, me: me, key: try NodeIdentity.signingKey(db, node: me.nodeId), folder: options.folder,
            tables: tables, receipts: try Holdings.receipts(db, me: me),
            relayReceipts: try RelayStream.heldReceipts(db), reporter: reporter, recipients: recipients,
            peers: Set(
                try db.rows(
                    "SELECT node_id FROM ds_trusted_key WHERE revoked_at IS NULL AND node_id <> ?", [.text(me.nodeId)]
                ).compactMap { $0.string(0) }))
        var written: [ExportedBundle] = []
        let pointer = try ProgramPointer.get(db, Program.export)
        let from =
            options.resend
            ? min(pointer, try confirmed(db, me: me, origin: me.nodeId, epoch: me.epoch, peer: options.peer)) : pointer
        do {
            // Through what this run stamped and its receipts name, not what another export stamped
            // since: a file whose own receipt is below its changes looks like a node restored
            // from a backup, and its peers' answer made it start a new epoch and send all its
            // history again (found from outside: two SQLite exports at once).
            written += try exportOwn(ctx, after: from, max: options.maxChanges, through: me.nextSeq - 1)
        } catch var held as ExportHeld {
            // A held change stops the export, not this node's receipts: peers would keep every
            // file for it until the cure (found from outside). Best effort: the hold is what the
            // operator must see, and the next export writes them if this one cannot.
            if let receipts = try? ReceiptsOnly.afterExport(ctx, options, written: held.bundles) {
                held.bundles.append(receipts)
            }
            throw held
        }
        if options.relay {
            // From now on this node is a relay, whether or not this run finds anything to send:
            // prune keeps what it has not relayed (an `ingest; prune; export --relay` night
            // that found nothing never became one, and pruned every night's changes unsent).
            // A re-send is a repair, not a role: a laptop or mesh node told to re-send its inbox
            // to a restored peer became a relay, and kept its inbox for good (found from outside).
            if !options.resend { try RelayStream.startRelaying(db) }
            written +=
                options.resend
                ? try resendRelayed(ctx, peer: options.peer, max: options.maxChanges)
                : try exportRelayed(ctx, max: options.maxChanges)
        }
        if let receipts = try ReceiptsOnly.afterExport(ctx, options, written: written) { written.append(receipts) }
        return written
    }

    struct Context {
        let db: Database
        let me: NodeIdentity
        let key: Curve25519.Signing.PrivateKey
        let folder: String
        let tables: [String: TableInfo]
        let receipts: [Receipt]
        let relayReceipts: [RelayReceipt]
        let reporter: Reporter
        /// Empty: plain bundles (format v1).
        var recipients: [Recipient] = []
        /// Every trusted peer a bundle can be encrypted to: the readers a plain file has.
        var peers: Set<String> = []
    }

    /// A crash mid-write leaves `.<name>.<pid>.tmp`; it was never renamed, so nothing refers to
    /// it. One whose writer still runs is another export's, busy (found from outside: two
    /// exports at once, and one removed the other's file before its rename).
    static func removeStaleTemporaries(_ folder: String, node: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for n in names where (n.hasPrefix("." + node + "_") || n.hasPrefix("." + node + "~")) && n.hasSuffix(".tmp") {
            guard let mark = n.range(of: ".djb.", options: .backwards) else { continue }
            let pid = Int32(n[mark.upperBound...].dropLast(".tmp".count))
            if let pid, pid > 0, kill(pid, 0) == 0 || errno == EPERM { continue }
            unlink((folder as NSString).appendingPathComponent(n))
        }
    }

    static func checkFolder(_ folder: String) throws {
        // "Output": `snapshot --to` comes here too (it said "export folder"; found from outside).
        try requireFolder(folder, "output folder")
        // Probe by writing, not access(2): root passes access() on read-only mounts.
        let probe = (folder as NSString).appendingPathComponent(".datajoin-probe-\(getpid())")
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            let denied = errno == EACCES || errno == EPERM || errno == EROFS
            throw DataJoinError(denied ? .permission : .io, "output folder \(folder) is not writable (\(reason))")
        }
        close(fd)
        unlink(probe)
    }

    /// The highest seq of `origin` that `peer` (or every peer, when nil) has confirmed.
    static func confirmed(_ db: Database, me: NodeIdentity, origin: String, epoch: String, peer: String?) throws
        -> Int64
    {
        let peers = try peer.map { [$0] } ?? Receipts.peers(db, me: me)
        return try peers.map { try Receipts.confirmed(db, peer: $0, origin: origin, epoch: epoch) }.min() ?? 0
    }

    // MARK: - This node's own changes

    /// Outbox rows handed to the encoding thread at a time, or fewer by their bytes
    /// (`Tuning.encodeBatchBytes`).
    static let encodeBatch = 256

    /// The rows of each batch handed to the encoder: a test sees where the batches were cut.
    nonisolated(unsafe) static var onEncodeBatch: ((Int) -> Void)?

    static func exportOwn(_ ctx: Context, after pointer: Int64, max: Int?, through: Int64 = Int64.max) throws
        -> [ExportedBundle]
    {
        let db = ctx.db, me = ctx.me
        guard
            let range = try db.firstRow(
                "SELECT min(seq), max(seq) FROM ds_change_outbox WHERE seq > ? AND seq <= ?",
                [.integer(pointer), .integer(through)]),
            let first = range.int(0), let last = range.int(1)
        else { return [] }
        var out: [ExportedBundle] = []
        var done: Int64 = 0
        var bytes: Int64 = 0
        let total = try db.scalar(
            "SELECT count(*) FROM ds_change_outbox WHERE seq >= ? AND seq <= ?", [.integer(first), .integer(last)]
        ).asInt64
        // Cut by count (--max-changes) and by size (the captured text's length estimates the
        // encoded size), only where the source transaction changes.
        let sizeSQL: SQL =
            "SELECT seq, source_id, coalesce(length(object_value), 0) + coalesce(length(object_value_old), 0) + length(object_id) "
            + "FROM ds_change_outbox WHERE seq >= ? AND seq <= ? ORDER BY seq"
        var ranges = try splitRanges(db, sql: sizeSQL, from: first, to: last, max: max)
        // Without transaction ids a cut may fall inside a transaction: said, since a peer that
        // ingests only some of the files applies part of it until the rest arrive (found from
        // outside: documented only).
        if ranges.count > 1, !db.dialect.recordsSourceTransactions {
            ctx.reporter.notice(
                Self.cutNotice(
                    "these \(total ?? 0) changes go into \(ranges.count) bundles, cut where a transaction may go on "
                        + "(SQLite and MariaDB record no transaction ids)"))
        }
        while !ranges.isEmpty {
            let r = ranges.removeFirst()
            let count =
                try db.scalar(
                    "SELECT count(*) FROM ds_change_outbox WHERE seq >= ? AND seq <= ?",
                    [.integer(r.lowerBound), .integer(r.upperBound)]
                ).asInt64 ?? 0
            let origins = [
                OriginRange(origin: me.nodeId, epoch: me.epoch, first: r.lowerBound, last: r.upperBound, count: count)
            ]
            let name = BundleFormat.fileName(
                origin: me.nodeId, epoch: me.epoch, first: r.lowerBound, last: r.upperBound)
            let names = Outbox.ColumnNames()
            let doneBefore = done
            let bundle: ExportedBundle
            do {
                bundle = try write(ctx, name: name, origins: origins, first: r.lowerBound, last: r.upperBound) { add in
                    // Rows are read here and encoded on a second thread, in order.
                    let dialect = db.dialect, tables = ctx.tables
                    try withoutActuallyEscaping(add) { add in
                        let encoder = BackgroundWorker<[Row]> { rows in
                            for row in rows {
                                let change = try Outbox.change(
                                    row, me: me, tables: tables, dialect: dialect, names: names)
                                do { try add(change) } catch is DefinitionsFull { throw BundleCut(at: change.seq) }
                            }
                        }
                        defer { encoder.cancel() }
                        var batch = SizedBatch<Row>(
                            maxCount: Self.encodeBatch, maxBytes: Tuning.current.encodeBatchBytes)
                        _ = db.takeInvalidTextColumn()
                        // The body runs no statement: rows one at a time, whatever their sizes.
                        try db.streamAlone(
                            "SELECT \(Outbox.columns) FROM ds_change_outbox WHERE seq >= ? AND seq <= ? ORDER BY seq",
                            [.integer(r.lowerBound), .integer(r.upperBound)]
                        ) { read in
                            var row = read
                            if row.values[5].isNull, row.string(3) == Operation.insert.rawValue {
                                throw Self.insertWithoutValues(row, me: me)
                            }
                            if let column = db.takeInvalidTextColumn() {
                                // The old value only tells a concurrent edit in the conflict
                                // log: left out (NULL), as for a value too large to send twice.
                                if column == 6 {
                                    row.values[6] = .null
                                } else {
                                    throw Self.invalidText(row, column: column, me: me)
                                }
                            }
                            if batch.add(row, size: row.payloadBytes) {
                                let rows = batch.take()
                                Self.onEncodeBatch?(rows.count)
                                try encoder.submit(rows)
                            }
                            done += 1
                            if done % 5_000 == 0 {
                                ctx.reporter.progress(
                                    WorkProgress(phase: "export", changes: done, totalChanges: total, bytes: bytes))
                            }
                        }
                        if !batch.items.isEmpty {
                            let rows = batch.take()
                            Self.onEncodeBatch?(rows.count)
                            try encoder.submit(rows)
                        }
                        try encoder.finish()
                    }
                }
            } catch let cut as BundleCut {
                // The bundle ends before the change whose table definition did not fit, at the
                // start of its source transaction when that is in the bundle (as cuts by size
                // are), and the next one starts there (BundleWriter): nothing was written or moved.
                done = doneBefore
                let start = try transactionStart(db, seq: cut.at, notBefore: r.lowerBound)
                ranges.insert(
                    contentsOf: try cutByDefinitions(
                        ctx, r, at: cut.at, transactionStart: start,
                        mayGoOn: start < cut.at || !db.dialect.recordsSourceTransactions, what: "changes"),
                    at: 0)
                continue
            } catch let e as UnsendableChange {
                // Held: what comes before its transaction is written; it and the rest wait.
                done = doneBefore
                let start = try transactionStart(db, seq: e.seq, notBefore: r.lowerBound)
                if start > r.lowerBound {
                    out += try exportOwn(ctx, after: r.lowerBound - 1, max: max, through: start - 1)
                }
                let held = ExportHeld(
                    bundles: out,
                    message: e.message + "; it and the changes after it wait, nothing is skipped "
                        + "(docs/reliability.md, '\(e.cure)')")
                // `status` says so until an export gets past it.
                _ = try db.retryingWrite { _ in
                    try db.execute(
                        "UPDATE ds_program_parameter SET status = ? WHERE id = ?",
                        [.text("held: " + held.message), .integer(Program.export)])
                }
                throw held
            }
            // The file is durable: only now may the pointer move past it.
            try db.retryingWrite { _ in
                if try ProgramPointer.get(db, Program.export) < r.upperBound {
                    try ProgramPointer.set(db, Program.export, r.upperBound)
                }
            }
            out.append(bundle)
            bytes += Int64(bundle.bytes)
            ctx.reporter.progress(
                WorkProgress(
                    phase: "export", changes: done, totalChanges: total, bytes: bytes, final: r.upperBound == last))
        }
        return out
    }

    /// An outbox row whose captured text SQLite holds as bytes that are not UTF-8: sent, it
    /// would arrive altered (U+FFFD), and two such keys as one (found from outside).
    static func invalidText(_ row: Row, column: Int, me: NodeIdentity) -> UnsendableChange {
        let seq = row.int(9) ?? 0
        let place = column == 2 ? "its key" : "a value"
        return UnsendableChange(
            seq: seq,
            message:
                "change \(me.nodeId)#\(seq) (\(Tracker.printable(row.string(1) ?? "").prefix(60))) holds text in \(place) that is not valid UTF-8, "
                + "which no bundle carries as text (it would arrive altered)",
            cure: "Text that is not UTF-8")
    }

    /// An insert whose captured values are NULL: MariaDB's `JSON_ARRAY` gave NULL, with no
    /// error, for some values of tens of MiB (found from outside: a 60 MiB text, a 40 MiB blob),
    /// and the row reached peers with every column NULL, `check` OK on both. Its capture no
    /// longer uses it for rows (`MariaDBDialect.rowValues`, schema 25); a
    /// value above `max_allowed_packet` still gives NULL.
    static func insertWithoutValues(_ row: Row, me: NodeIdentity) -> UnsendableChange {
        let seq = row.int(9) ?? 0
        return UnsendableChange(
            seq: seq,
            message:
                "change \(me.nodeId)#\(seq) (an insert into \(Tracker.printable(row.string(1) ?? "").prefix(60)), key \(Tracker.printable(row.string(2) ?? "").prefix(60))) carries no values: "
                + "the database's capture gave NULL for them (MariaDB does for a value above max_allowed_packet, "
                + "and its JSON_ARRAY did for some values of tens of MiB before schema 25)",
            cure: "An insert captured without its values")
    }

    /// The first seq of the source transaction that holds `seq` (its changes are consecutive).
    static func transactionStart(_ db: Database, seq: Int64, notBefore: Int64) throws -> Int64 {
        guard let tx = try db.scalar("SELECT source_id FROM ds_change_outbox WHERE seq = ?", [.integer(seq)]).asInt64
        else { return seq }
        var start = seq
        try db.query(
            "SELECT seq, source_id FROM ds_change_outbox WHERE seq >= ? AND seq < ? ORDER BY seq DESC",
            [.integer(notBefore), .integer(seq)]
        ) { r in
            if start == (r.int(0) ?? 0) + 1 && r.int(1) == tx { start -= 1 }
        }
        return start
    }

    /// The first inbox id, at or above `notBefore`, of the origin's source transaction that
    /// holds row `id` (the rows before it in the relay stream of one origin, epoch and non-zero
    /// source id), and whether a transaction may go on across a cut before `id`: the row before
    /// it is of that transaction, or of that origin with no transaction id (SQLite, MariaDB).
    static func relayTransactionStart(_ db: Database, id: Int64, notBefore: Int64) throws -> (Int64, Bool) {
        guard
            let row = try db.firstRow(
                "SELECT origin, origin_epoch, coalesce(source_id, 0) FROM ds_change_inbox WHERE id = ?", [.integer(id)])
        else { return (id, false) }
        let (origin, epoch, tx) = (row.string(0), row.string(1), row.int(2) ?? 0)
        var start = id
        var stopped = false
        var inside = false
        var first = true
        try db.query(
            "SELECT id, origin, origin_epoch, coalesce(source_id, 0) FROM ds_change_inbox WHERE id >= ? AND id < ? AND \(Self.notSnapshot) ORDER BY id DESC",
            [.integer(notBefore), .integer(id)]
        ) { r in
            guard !stopped else { return }
            let same = r.string(1) == origin && r.string(2) == epoch
            if first {
                // The row before: of this transaction, or of this origin without transaction ids.
                inside = same && (tx == 0 || r.int(3) == tx)
                first = false
            }
            if same && tx != 0 && r.int(3) == tx {
                start = r.int(0) ?? start
            } else {
                stopped = true
            }
        }
        return (start, inside)
    }

    // MARK: - Relayed changes

    /// A snapshot's records are state for joining nodes, not changes to forward (nor rows of the
    /// relay stream that peers confirm).
    static let notSnapshot: SQL = "origin_epoch NOT LIKE \(literal: BundleFormat.snapshotEpochPrefix + "%")"
    static let snapshotRecord: SQL = "origin_epoch LIKE \(literal: BundleFormat.snapshotEpochPrefix + "%")"

    /// A change this node holds because it is older than its retention is not relayed: peers
    /// applied it while this node never would, and the fleet differed for good (found from
    /// outside). Its origin re-joins from a snapshot, as the hold says.
    static let notHeldForItsAge: SQL =
        "id NOT IN (SELECT id FROM ds_change_held WHERE reason LIKE \(literal: "%" + StampWindow.beforeRetention + "%"))"

    static func exportRelayed(_ ctx: Context, max: Int?) throws -> [ExportedBundle] {
        let db = ctx.db
        let pointer = try ProgramPointer.get(db, Program.relay)
        guard
            let range = try db.firstRow(
                "SELECT min(id), max(id) FROM ds_change_inbox WHERE id > ? AND \(Self.notSnapshot)", [.integer(pointer)]
            ),
            let first = range.int(0), let last = range.int(1)
        else { return [] }
        let claimAbove = try RelayStream.claimFloor(db, me: ctx.me)
        return try writeStream(
            ctx, RelaySpan(after: pointer, last: last), from: first, max: max, claimAbove: claimAbove
        ) { upTo in
            try db.retryingWrite { _ in try ProgramPointer.set(db, Program.relay, upTo) }
        }
    }

    /// The relay stream's rows in `span` (the first at `first`), as bundles that each say which
    /// part of the stream they carry, so that consecutive ones join into one span at the peer.
    /// A span whose rows were all pruned is one bundle of no changes: the peer's spans still
    /// join over it (else its holes would stay, and fill the spans it may send).
    /// `claimAbove`: the bundles say they carry only ids above it (a re-send to a peer that may
    /// lack pruned changes below it must not say it holds them).
    static func writeStream(
        _ ctx: Context, _ span: RelaySpan, from first: Int64, max: Int?, claimAbove: Int64 = 0,
        written: (Int64) throws -> Void = { _ in }
    ) throws -> [ExportedBundle] {
        var ranges = try splitRanges(
            ctx.db,
            sql:
                // A PostgreSQL origin's transaction stays in one relay file, as in its own
                // (found in review: relays were cut anywhere); 0 is none (SQLite, MariaDB).
                "SELECT id, NULLIF(source_id, 0), coalesce(length(object_value), 0) + length(object_id) FROM ds_change_inbox WHERE id >= ? AND id <= ? AND \(Self.notSnapshot) ORDER BY id",
            from: first, to: span.last, max: max)
        let empty = ranges.isEmpty
        if empty { ranges = [(span.after + 1)...span.last] }
        // A SQLite or MariaDB origin's transaction may go on across the cut, as in its own
        // export (found from outside: said there, not here).
        if try Self.cutsWithoutTransactionIds(ctx.db, ranges) {
            ctx.reporter.notice(
                Self.cutNotice(
                    "these relayed changes go into \(ranges.count) bundles, cut where a transaction of a SQLite or MariaDB origin "
                        + "may go on (they record no transaction ids)"))
        }
        var out: [ExportedBundle] = []
        var after = span.after
        while !ranges.isEmpty {
            let r = ranges.removeFirst()
            // The last bundle reaches the span's end: the ids past its last row hold nothing.
            let whole = RelaySpan(after: after, last: ranges.isEmpty ? span.last : r.upperBound)
            let piece =
                whole.last > claimAbove ? RelaySpan(after: Swift.max(whole.after, claimAbove), last: whole.last) : nil
            if empty && piece == nil {
                after = whole.last
                continue
            }
            let name = relayName(ctx, "relay", first: r.lowerBound, last: r.upperBound, epoch: ctx.me.epoch)
            do {
                out.append(
                    try writeInbox(
                        ctx, name: name,
                        where_: "id >= ? AND id <= ? AND \(Self.notSnapshot) AND \(Self.notHeldForItsAge)",
                        params: [.integer(r.lowerBound), .integer(r.upperBound)], order: "id", first: r.lowerBound,
                        last: r.upperBound, span: piece))
            } catch let cut as BundleCut {
                // As for its own changes: the bundle ends before the origin's transaction that
                // holds the row that did not fit, when it began in the bundle, else at the row.
                let (start, inside) = try relayTransactionStart(ctx.db, id: cut.at, notBefore: r.lowerBound)
                ranges.insert(
                    contentsOf: try cutByDefinitions(
                        ctx, r, at: cut.at, transactionStart: start, mayGoOn: inside, what: "relayed changes"),
                    at: 0)
                continue
            }
            after = whole.last
            try written(r.upperBound)
        }
        return out
    }

    /// The parts of the relay stream the peer(s) have not confirmed holding: every inbox id that
    /// the spans of some peer leave out, up to the last row held. A peer that confirmed no span
    /// yet (a late joiner, a node that was restored, a fleet just upgraded) gets the whole
    /// stream this node still holds; its spans then start at the beginning.
    static func resendRelayed(_ ctx: Context, peer: String?, max: Int?) throws -> [ExportedBundle] {
        let db = ctx.db
        guard let top = try db.scalar("SELECT max(id) FROM ds_change_inbox WHERE \(Self.notSnapshot)").asInt64 else {
            return []
        }
        var gaps: [RelaySpan] = []
        let peers = try peer.map({ [$0] }) ?? Receipts.peers(db, me: ctx.me)
        for p in peers {
            gaps += RelayStream.gaps(try RelayStream.peerSpans(db, peer: p, epoch: ctx.me.epoch), upTo: top)
        }
        // A peer that may lack what was pruned before it joined is not told it holds it.
        let claimAbove = try RelayStream.claimFloor(db, me: ctx.me, peers: peers)
        var out: [ExportedBundle] = []
        for gap in RelayStream.merged(gaps) {
            let first = try db.scalar(
                "SELECT min(id) FROM ds_change_inbox WHERE id > ? AND id <= ? AND \(Self.notSnapshot)",
                [.integer(gap.after), .integer(gap.last)]
            ).asInt64
            out += try writeStream(ctx, gap, from: first ?? gap.after + 1, max: max, claimAbove: claimAbove)
        }
        return out
    }

    /// A folder that exists: one that does not is created by the operator, and a file in its
    /// place is named as one (it was reported as missing; found from outside).
    static func requireFolder(_ folder: String, _ what: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir) else {
            if FileAccess.denied(folder) { throw FileAccess.deniedError(what, folder) }
            throw DataJoinError(.noInput, "\(what) \(folder) does not exist; create it first")
        }
        guard isDir.boolValue else {
            throw DataJoinError(.noInput, "\(what) \(folder) is a file, not a folder; give a folder")
        }
    }

    /// `<sender>~<what>_<first>-<last>_<epoch8>.djb`: never the name of an origin's own bundle.
    static func relayName(_ ctx: Context, _ what: String, first: Int64, last: Int64, epoch: String) -> String {
        ctx.me.nodeId + "~" + BundleFormat.fileName(origin: what, epoch: epoch, first: first, last: last)
    }

    static func writeInbox(
        _ ctx: Context, name: String, where_: SQL, params: [Value], order: SQL, first: Int64, last: Int64,
        span: RelaySpan?
    ) throws -> ExportedBundle {
        let db = ctx.db
        let origins = try db.rows(
            "SELECT origin, origin_epoch, min(seq), max(seq), count(*) FROM ds_change_inbox WHERE \(where_) GROUP BY origin, origin_epoch ORDER BY origin, origin_epoch",
            params
        ).map {
            OriginRange(
                origin: $0.string(0) ?? "", epoch: $0.string(1) ?? "", first: $0.int(2) ?? 0, last: $0.int(3) ?? 0,
                count: $0.int(4) ?? 0)
        }
        return try write(ctx, name: name, origins: origins, first: first, last: last, span: span) { add in
            try db.stream(
                "SELECT \(Importer.streamedInboxColumns(db)) FROM ds_change_inbox WHERE \(where_) ORDER BY \(order)",
                params
            ) { row in
                do { try add(try Importer.change(row, db)) } catch is DefinitionsFull {
                    throw BundleCut(at: row.int(0) ?? 0)
                }
            }
        }
    }

    /// The two ranges a bundle cut by definitions leaves of `r`: before the source transaction
    /// that holds `cut` when it began inside `r` (as cuts by size are), else before `cut` itself,
    /// said when a transaction may go on across it (`mayGoOn`). The first change of a range
    /// always fits (a table's definition alone is far below the limits).
    static func cutByDefinitions(
        _ ctx: Context, _ r: ClosedRange<Int64>, at cut: Int64, transactionStart start: Int64, mayGoOn: Bool,
        what: String
    ) throws -> [ClosedRange<Int64>] {
        let at = start > r.lowerBound ? start : cut
        guard at > r.lowerBound else {
            throw DataJoinError(
                .internalError,
                "the change at \(cut) of \(what) \(r.lowerBound)–\(r.upperBound): its table's definition alone passes what one bundle may hold"
            )
        }
        if at == cut && mayGoOn {
            ctx.reporter.notice(
                Self.cutNotice(
                    "\(what) \(r.lowerBound)–\(r.upperBound) go into more than one bundle, cut where a transaction may go on "
                        + "(their tables' definitions do not fit one bundle)"))
        }
        return [r.lowerBound...(at - 1), at...r.upperBound]
    }

    /// A bundle must end before the change at `at` (an outbox seq, or an inbox id in a relay):
    /// its table definition did not fit (DefinitionsFull).
    struct BundleCut: Error { let at: Int64 }

    // MARK: - Writing

    /// Writes one bundle from the changes `produce` hands over, inside a read snapshot.
    static func write(
        _ ctx: Context, name: String, origins: [OriginRange], first: Int64, last: Int64, span: RelaySpan? = nil,
        produce: (_ add: (Change) throws -> Void) throws -> Void
    ) throws -> ExportedBundle {
        let count = origins.reduce(0) { $0 + $1.count }
        let header = BundleHeader(
            sender: ctx.me.nodeId, senderEpoch: ctx.me.epoch, createdAt: try BundleTime.next(ctx.db), origins: origins,
            changeCount: count, receipts: ctx.receipts, publicKey: ctx.me.publicKey, relaySpan: span,
            relayReceipts: ctx.relayReceipts)
        let writer = try BundleWriter(
            folder: ctx.folder, fileName: name, header: header, signingKey: ctx.key, recipients: ctx.recipients,
            peers: ctx.peers)
        try ctx.db.read { _ in
            try produce { change in try writer.add(change, table: ctx.tables[change.table]) }
        }
        guard writer.changeCount == count else {
            throw DataJoinError(.internalError, "\(name): read \(writer.changeCount) changes, expected \(count)")
        }
        let result = try writer.finish()
        ctx.reporter.verbose("wrote \(result.path) (\(count) change(s), \(result.bytes) bytes)")
        return ExportedBundle(
            path: result.path, first: first, last: last, changes: count, bytes: result.bytes, sha256: result.sha256)
    }

    /// What an export or a relay cut where a transaction may go on says, after what it cut.
    static func cutNotice(_ what: String) -> String {
        what + ": deliver the files together, "
            + "or a peer that ingests only some of them applies part of a transaction until the rest arrive"
    }

    /// True when a cut between two of `ranges` falls between two changes of one SQLite or
    /// MariaDB origin (no transaction id), where a transaction may go on; two lookups per cut.
    static func cutsWithoutTransactionIds(_ db: Database, _ ranges: [ClosedRange<Int64>]) throws -> Bool {
        for (before, after) in zip(ranges, ranges.dropFirst()) {
            let rows = try db.rows(
                "SELECT origin, origin_epoch, source_id FROM ds_change_inbox WHERE id = ? OR id = ?",
                [.integer(before.upperBound), .integer(after.lowerBound)])
            if rows.count == 2, rows.allSatisfy({ $0.int(2) == 0 }), rows[0].string(0) == rows[1].string(0),
                rows[0].string(1) == rows[1].string(1)
            {
                return true
            }
        }
        return false
    }

    /// Cuts [from, to] into ranges of at most `max` rows and about `Tuning.bundleTargetBytes`
    /// (the third column, when there is one, estimates each row's size), only where the second
    /// column (the source transaction) changes; NULL there allows a cut anywhere. A transaction
    /// that would take a range past either goes to the next one, so only a transaction larger
    /// than `max` by itself makes a larger range (found from outside: transactions of 2 and 3
    /// with `--max-changes 3` went into one bundle of 5). One transaction is looked at a time.
    static func splitRanges(_ db: Database, sql: SQL, from: Int64, to: Int64, max: Int?) throws -> [ClosedRange<
        Int64
    >] {
        let max = max ?? Int.max
        let targetBytes = Int64(Tuning.current.bundleTargetBytes)
        var ranges: [ClosedRange<Int64>] = []
        // The range being filled (`start` through the last transaction taken), and the
        // transaction being read, not yet taken.
        var start = from, count = 0, bytes: Int64 = 0, takenThrough = from - 1
        var txFirst = from, txCount = 0, txBytes: Int64 = 0
        var lastTx: Value = .null
        var lastSeq = from - 1
        func take() {
            guard txCount > 0 else { return }
            if count > 0 && (count + txCount > max || bytes + txBytes > targetBytes) {
                ranges.append(start...takenThrough)
                start = txFirst
                count = 0
                bytes = 0
            }
            count += txCount
            bytes += txBytes
            takenThrough = lastSeq
            txCount = 0
            txBytes = 0
        }
        try db.read { _ in
            try db.streamAlone(sql, [.integer(from), .integer(to)]) { r in
                let seq = r.int(0) ?? 0
                let tx = r.values[1]
                if tx.isNull || tx != lastTx {
                    take()
                    txFirst = seq
                }
                txCount += 1
                if r.values.count > 2 { txBytes += r.int(2) ?? 0 }
                lastTx = tx
                lastSeq = seq
            }
        }
        take()
        if takenThrough >= start { ranges.append(start...takenThrough) }
        return ranges
    }
}
