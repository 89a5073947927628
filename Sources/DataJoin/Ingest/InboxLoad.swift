import Foundation

/// One attempt at loading a verified bundle into ds_change_inbox, inside the bundle's
/// transaction. A retried transaction makes a new one: its reader, marks and counts are never
/// those of a rolled-back attempt.
struct InboxLoad {
    private static let columns: SQL =
        "origin, origin_epoch, seq, hlc, source_id, object_table, object_id, object_pk_attribute, object_operation, cl, object_value, bundle_id, received_at"

    private let db: Database
    private let file: IncomingFile
    private let reader: BundleReader
    /// This node as the transaction reads it (a restored node has just moved to a new epoch).
    private let me: NodeIdentity
    private let bundleId: Int64
    private let received = nowText()
    private let progress: (_ read: Int64, _ of: Int64) -> Void
    /// Every seq up to an origin's high-water mark is held (or was, before pruning, or came
    /// with a snapshot): those changes are skipped, never applied a second time.
    private var marks: [String: Int64] = [:]
    private var counts = InboxLoadCounts()
    /// Rows go in 200 at a time; a change already in the inbox (through another bundle) is
    /// skipped by the (origin, epoch, seq) key.
    private var pending: [[Value]] = []
    private var pendingBytes = 0
    /// The sender's own changes skipped as held (seq, stamp), for `Forks`: each is compared
    /// with the inbox's copy once the rows are in (no statement may run inside PostgreSQL's
    /// COPY), the first `forkChecks` of them. Not only the first: a re-send of a restored node
    /// starts with changes it had sent before its backup, whose stamps match (found in review).
    private var skippedOwn: [(seq: Int64, hlc: Int64)] = []
    /// The highest seq seen of each origin before this load: above the mark and up to it, a
    /// change may be held already, past a gap.
    private var maxSeqs: [String: Int64] = [:]
    /// A fork of the sender's numbering was seen (and recorded) in this load.
    private var forked = false
    /// Rows go in by the brand's bulk path: nothing of the file's ranges is in the inbox, and no
    /// statement may run until it ends.
    private var bulk = false
    /// The reader's changes, decoded on a second thread while rows are written on this one; a
    /// batch is in reverse order, so that each change leaves it when it is taken.
    private var ahead: ReadAhead<[Change]>?
    private var batch: [Change] = []

    init(
        db: Database, file: IncomingFile, reader: BundleReader, me: NodeIdentity, bundleId: Int64,
        progress: @escaping (_ read: Int64, _ of: Int64) -> Void
    ) {
        self.db = db
        self.file = file
        self.reader = reader
        self.me = me
        self.bundleId = bundleId
        self.progress = progress
    }

    /// Every change of the file that is not skipped, into the inbox: by the brand's bulk path
    /// where it can, else in batches that skip duplicates.
    mutating func loadRows(useCopy: Bool) throws {
        ahead = Self.readAhead(reader)
        // The thread ends before the reader is checked (`finish`) or given up.
        defer {
            ahead?.cancel()
            ahead = nil
        }
        bulk = try canBulkLoad(useCopy: useCopy)
        if bulk,
            try db.bulkLoad(
                into: "ds_change_inbox", columns: Self.columns,
                { send in
                    while let row = try nextRow() { try send(row) }
                })
        {
            counts.loaded = counts.offered
        } else {
            bulk = false
            // A batch is cut by rows and by bytes: memory stays flat with large values.
            while let row = try nextRow() {
                pending.append(row)
                if case .blob(let payload) = row[10] { pendingBytes += payload.count }
                if pending.count >= Tuning.current.inboxLoadBatch || pendingBytes >= Tuning.current.chunkBytes / 4 {
                    try flush()
                }
            }
            try flush()
        }
        counts.skipped += counts.offered - counts.loaded
    }

    /// The brand's bulk path (PostgreSQL's COPY), when no change of the file's ranges is in the
    /// inbox yet (the usual case): it skips no duplicate. The marks are read first: no query
    /// runs while a bulk load is open.
    private mutating func canBulkLoad(useCopy: Bool) throws -> Bool {
        guard useCopy else { return false }
        for o in file.header.origins where !isOwnCurrent(o.origin, o.epoch) {
            let m = try mark(o.origin, o.epoch)
            if try db.firstRow(
                "SELECT 1 FROM ds_change_inbox WHERE origin = ? AND origin_epoch = ? AND seq > ? AND seq <= ? LIMIT 1",
                [.text(o.origin), .text(o.epoch), .integer(max(m, o.first - 1)), .integer(o.last)]) != nil
            {
                return false
            }
        }
        return true
    }

    /// The next row to offer to the inbox, nil at the file's end. A large payload goes in on its
    /// own here where the brand has a path for it.
    private mutating func nextRow() throws -> [Value]? {
        while let next = try readRow() {
            guard let row = next else { continue }
            counts.offered += 1
            if case .blob(let payload) = row[10], payload.count >= Ingester.largeValueBytes {
                // A large payload goes in by the brand's own path where it has one (SQLite writes
                // it into the row's pages), after the rows before it.
                try flush()
                if !bulk { try checkForFork([row]) }
                if let inserted = try db.insertWithLargeValue(
                    into: "ds_change_inbox", columns: Self.columns, row, valueIndex: 10)
                {
                    counts.loaded += Int64(inserted)
                    continue
                }
            }
            return row
        }
        return nil
    }

    /// The next change read, as an inbox row; `.some(nil)`: skipped. The change is gone (this
    /// function returned) before its row is written: a large value is held once, encoded, not
    /// twice (memory, docs/reliability.md).
    private mutating func readRow() throws -> [Value]?? {
        if batch.isEmpty, let next = try ahead?.next() { batch = next }
        guard let c = batch.popLast() else { return .none }
        guard try register(c) else { return .some(nil) }
        return [
            .text(c.origin), .text(c.epoch), .integer(c.seq), .integer(c.hlc), .integer(c.txid),
            .text(c.table),
            .blob(KeyCodec.encode(c.key)), .text(KeyNames.encode(c.keyNames)), .text(c.op.rawValue),
            .integer(c.cl), .blob(c.encodedPayload()), .integer(bundleId), .text(received),
        ]
    }

    /// Batches of up to 512 changes or a quarter of `Tuning.readAheadBytes`, at most that ahead
    /// of the writer (memory stays flat, docs/reliability.md: a 64 MiB change is read when the
    /// one before it has been written). A change counts its payload and 1 KiB for the rest of
    /// it decoded (key, names, origin, the arrays that hold them).
    private static func readAhead(_ reader: BundleReader) -> ReadAhead<[Change]> {
        let budget = Tuning.current.readAheadBytes
        return ReadAhead(budget: budget) { _ in
            var changes: [Change] = []
            var cost = 0
            while changes.count < 512 && cost < max(1, budget / 4), let c = try reader.next() {
                cost += 1_024 + (c.rawPayload?.count ?? 0)
                changes.append(c)
            }
            return changes.isEmpty ? nil : (changes.reversed(), cost)
        }
    }

    /// Counts a change read; false: it is skipped.
    private mutating func register(_ c: Change) throws -> Bool {
        counts.read += 1
        if counts.read % 2_000 == 0 { progress(counts.read, file.header.changeCount) }
        // This node's own changes of its current epoch never come back (echo prevention); those
        // of an older epoch are accepted, so a node restored from a backup gets back what it
        // had lost.
        if isOwnCurrent(c.origin, c.epoch) {
            counts.skipped += 1
            return false
        }
        if c.seq <= (try mark(c.origin, c.epoch)) {
            counts.skipped += 1
            // The sender's own change at a seq held here: is it the same change?
            if skippedOwn.count < Tuning.current.forkChecks, c.origin == file.header.sender,
                c.epoch == file.header.senderEpoch
            {
                skippedOwn.append((c.seq, c.hlc))
            }
            return false
        }
        if !c.epoch.hasPrefix(BundleFormat.snapshotEpochPrefix) { counts.touched.insert([c.origin, c.epoch]) }
        return true
    }

    private func isOwnCurrent(_ origin: String, _ epoch: String) -> Bool {
        origin == me.nodeId && epoch == me.epoch
    }

    /// The origin's high-water mark, read once per load; 0 for a snapshot's changes.
    private mutating func mark(_ origin: String, _ epoch: String) throws -> Int64 {
        if epoch.hasPrefix(BundleFormat.snapshotEpochPrefix) { return 0 }
        let k = Self.key(origin, epoch)
        if let m = marks[k] { return m }
        let s = try Holdings.state(db, origin: origin, epoch: epoch)
        marks[k] = s.contiguous
        maxSeqs[k] = s.maxSeq
        return s.contiguous
    }

    private mutating func flush() throws {
        guard !pending.isEmpty else { return }
        try checkForFork(pending)
        let tuples = SQL.placeholderRows(pending.count, width: 13)
        let sql = db.dialect.insertSkippingDuplicates(into: "ds_change_inbox", columns: Self.columns, rows: tuples)
        counts.loaded += Int64(try db.execute(sql, pending.flatMap { $0 }))
        pending.removeAll(keepingCapacity: true)
        pendingBytes = 0
    }

    /// The sender's own changes about to be written above its mark at seqs up to the highest
    /// seen here may be held already, past a gap: one held with another stamp is a fork. A peer
    /// with a gap loaded the restored node's first reused seq into it, skipped the next as a
    /// duplicate, and the two nodes stayed apart for good (found from outside). Checked before
    /// the rows go in, a batch at a time: no limit, no memory.
    private mutating func checkForFork(_ rows: [[Value]]) throws {
        guard !forked else { return }
        let (sender, epoch) = (file.header.sender, file.header.senderEpoch)
        let k = Self.key(sender, epoch)
        guard let top = maxSeqs[k], top > (marks[k] ?? 0) else { return }
        let candidates = rows.compactMap { row -> (seq: Int64, hlc: Int64)? in
            guard case .integer(let seq) = row[2], seq <= top, case .integer(let hlc) = row[3],
                row[0] == .text(sender), row[1] == .text(epoch)
            else { return nil }
            return (seq, hlc)
        }
        guard !candidates.isEmpty else { return }
        forked = try Forks.check(
            db, origin: sender, epoch: epoch, candidates, bundleLast: senderLast(or: candidates.map(\.seq).max() ?? 0))
    }

    /// The key of `marks` and `maxSeqs`.
    private static func key(_ origin: String, _ epoch: String) -> String { origin + "\u{0}" + epoch }

    /// The highest seq of the sender's own epoch the file names.
    private func senderLast(or fallback: Int64) -> Int64 {
        file.header.origins.first { $0.origin == file.header.sender && $0.epoch == file.header.senderEpoch }?.last
            ?? fallback
    }

    /// Nothing loaded counts unless the whole file verifies: a throw here rolls it all back.
    /// Then the bundle's loaded count, the holdings it advanced, and the sender's receipts.
    func finish() throws -> IngestedFile.Status {
        try reader.finish(publicKey: file.key)
        try db.execute(
            "UPDATE ds_bundle_seen SET loaded_count = ? WHERE id = ?", [.integer(counts.loaded), .integer(bundleId)])
        // Encrypted in, encrypted out: what this node relays of it is encrypted too.
        if case .encrypted = file.source { try BundleEncryption.noteEncryptedReceived(db) }
        if !forked, !skippedOwn.isEmpty {
            try Forks.check(
                db, origin: file.header.sender, epoch: file.header.senderEpoch, skippedOwn,
                bundleLast: senderLast(or: skippedOwn.map(\.seq).max() ?? 0))
        }
        try advanceHoldings()
        let h = file.header
        if try Receipts.record(db, peer: h.sender, epoch: h.senderEpoch, h.receipts), h.sender != me.nodeId {
            if let span = h.relaySpan {
                try RelayStream.noteHeld(db, relayer: h.sender, epoch: h.senderEpoch, span)
            }
            try RelayStream.recordPeer(db, peer: h.sender, me: me, h.relayReceipts)
        }
        return .loaded(changes: counts.loaded, skipped: counts.skipped)
    }

    private func advanceHoldings() throws {
        let h = file.header
        let name = file.name
        for o in counts.touched { try Holdings.advance(db, origin: o[0], epoch: o[1], bundle: name) }
        for o in h.origins where !counts.touched.contains([o.origin, o.epoch]) && !isOwnCurrent(o.origin, o.epoch) {
            try db.execute(
                "UPDATE ds_origin_state SET last_bundle = ?, last_seen_at = ? WHERE origin = ? AND origin_epoch = ?",
                [.text(name), .text(nowText()), .text(o.origin), .text(o.epoch)])
        }
        if h.kind == "snapshot" {
            // The snapshot holds the state of everything its sender held: later bundles go on
            // from the sender's high-water marks.
            for r in h.receipts where !isOwnCurrent(r.origin, r.epoch) {
                try Holdings.raiseMark(db, origin: r.origin, epoch: r.epoch, to: r.seq, bundle: name)
            }
        }
    }
}
