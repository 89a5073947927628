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
    /// The file is the newest the sender wrote of those seen here (`PeerRestore.isNewest`).
    private let senderNewest: Bool
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
    /// Changes at or below their origin's mark, held here already (or pruned): each is compared
    /// with the inbox's copy before it is dropped, a batch at a time (`reconcile`). Not only the
    /// sender's own, nor only the first: a re-send of a restored node starts with changes it
    /// had sent before its backup, whose stamps match (found in review), and a relay brings the
    /// original of a change whose seq a restored node reused (found from outside).
    private var belowMark: [[Value]] = []
    private var belowMarkBytes = 0
    /// The highest seq seen of each origin before this load: above the mark and up to it, a
    /// change may be held already, past a gap.
    private var maxSeqs: [String: Int64] = [:]
    /// Seqs up to an origin's floor left the inbox (pruned, or a snapshot's): compared with the
    /// stamps prune kept and the rows it kept, where there are any.
    private var floors: [String: Int64] = [:]
    /// Per origin and epoch: whether anything up to its floor is here to compare with.
    private var heldBelowFloor: [String: Bool] = [:]
    /// Some origin of the file has a gap here: rows going in may meet held ones past it.
    private var anyGap = false
    /// The (origin, epoch) keys whose fork was recorded in this load.
    private var forked: Set<String> = []
    /// What this load said of copies loaded in a pruned copy's place (`loadInPrunedPlace`).
    private(set) var prunedForks: [String] = []
    /// The sender's spans of this node's relay stream, read once per load when needed.
    private var coverage: RelayCoverage?
    /// Rows go in by the brand's bulk path: nothing of the file's ranges is in the inbox, and no
    /// statement may run until it ends.
    private var bulk = false
    /// The reader's changes, decoded on a second thread while rows are written on this one; a
    /// batch is in reverse order, so that each change leaves it when it is taken.
    private var ahead: ReadAhead<[Change]>?
    private var batch: [Change] = []

    init(
        db: Database, file: IncomingFile, reader: BundleReader, me: NodeIdentity, bundleId: Int64,
        senderNewest: Bool, progress: @escaping (_ read: Int64, _ of: Int64) -> Void
    ) {
        self.db = db
        self.file = file
        self.reader = reader
        self.me = me
        self.bundleId = bundleId
        self.senderNewest = senderNewest
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
            try compareBelowMark()
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
            // Changes at or below the mark are compared with the inbox's copies (`reconcile`),
            // those above its floor, and with the stamps of pruned ones: a joiner reading the
            // relay files its snapshot covers keeps COPY for the rest.
            let floor = floors[Self.key(o.origin, o.epoch)] ?? 0
            if max(o.first, floor + 1) <= min(m, o.last) { return false }
            // Up to the floor: with the stamps of pruned ones and the rows prune kept (held,
            // unrelayed, of a fork), where there are any (Forks.heldCopies).
            if o.first <= min(m, floor), try anyHeld(o.origin, o.epoch, from: o.first, through: min(m, floor, o.last)) {
                return false
            }
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
                if !bulk { try reconcile([row]) }
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
        let admission = try register(c)
        if admission == .skip { return .some(nil) }
        let row: [Value] = [
            .text(c.origin), .text(c.epoch), .integer(c.seq), .integer(c.hlc), .integer(c.txid),
            .text(c.table),
            .blob(KeyCodec.encode(c.key)), .text(KeyNames.encode(c.keyNames)), .text(c.op.rawValue),
            .integer(c.cl), .blob(c.encodedPayload()), .integer(bundleId), .text(received),
        ]
        guard admission == .compare else { return row }
        belowMark.append(row)
        if case .blob(let payload) = row[10] { belowMarkBytes += payload.count }
        if belowMark.count >= Tuning.current.inboxLoadBatch || belowMarkBytes >= Tuning.current.chunkBytes / 4 {
            try compareBelowMark()
        }
        return .some(nil)
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

    private enum Admission { case load, skip, compare }

    /// Counts a change read, and says what becomes of it.
    private mutating func register(_ c: Change) throws -> Admission {
        counts.read += 1
        if counts.read % 2_000 == 0 { progress(counts.read, file.header.changeCount) }
        // This node's own changes of its current epoch never come back (echo prevention); those
        // of an older epoch are accepted, so a node restored from a backup gets back what it
        // had lost.
        if isOwnCurrent(c.origin, c.epoch) {
            counts.skipped += 1
            return .skip
        }
        if c.seq <= (try mark(c.origin, c.epoch)) {
            counts.skipped += 1
            // Held here: is it the same change? Pruned ones too, by their stamps (Forks). Never
            // inside a bulk load, which no file with such changes takes.
            if bulk { return .skip }
            // Below the floor only when pruned rows' stamps, or rows prune kept, are here to
            // compare with (a joiner reading the relay files its snapshot covers has neither, and
            // skips them at no cost).
            let k = Self.key(c.origin, c.epoch)
            if c.seq <= (floors[k] ?? 0) {
                if heldBelowFloor[k] == nil {
                    heldBelowFloor[k] = try anyHeld(c.origin, c.epoch, from: 1, through: floors[k] ?? 0)
                }
                if heldBelowFloor[k] == false { return .skip }
            }
            return .compare
        }
        if !c.epoch.hasPrefix(BundleFormat.snapshotEpochPrefix) { counts.touched.insert([c.origin, c.epoch]) }
        return .load
    }

    /// A copy of the origin's seqs `from...through` is here to compare with: a pruned row's stamp,
    /// or a row prune kept.
    private func anyHeld(_ origin: String, _ epoch: String, from: Int64, through: Int64) throws -> Bool {
        let params: [Value] = [.text(origin), .text(epoch), .integer(from), .integer(through)]
        return try db.firstRow(
            "SELECT 1 FROM ds_change_stamp WHERE origin = ? AND origin_epoch = ? AND seq >= ? AND seq <= ? LIMIT 1",
            params)
            != nil
            || db.firstRow(
                "SELECT 1 FROM ds_change_inbox WHERE origin = ? AND origin_epoch = ? AND seq >= ? AND seq <= ? LIMIT 1",
                params)
                != nil
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
        floors[k] = s.inboxFloor
        if s.maxSeq > s.contiguous { anyGap = true }
        return s.contiguous
    }

    private mutating func flush() throws {
        guard !pending.isEmpty else { return }
        try reconcile(pending)
        let tuples = SQL.placeholderRows(pending.count, width: 13)
        let sql = db.dialect.insertSkippingDuplicates(into: "ds_change_inbox", columns: Self.columns, rows: tuples)
        counts.loaded += Int64(try db.execute(sql, pending.flatMap { $0 }))
        pending.removeAll(keepingCapacity: true)
        pendingBytes = 0
    }

    /// Changes about to be written above their origin's mark at seqs up to the highest seen
    /// here may be held already, past a gap; those at or below the mark are (`belowMark`). One
    /// held with another stamp is a fork of the origin's numbering: a node restored from a
    /// backup reused the seqs of changes it lost. Which copy is the original no stamp tells (a
    /// restored node's clock may be behind or ahead; found from outside and in review, each
    /// rule by stamps lost an original): the other copy is kept aside (`ds_change_forked`)
    /// until the origin's new epoch brings again the one it still has (`Forks.resolve`).
    /// Unchecked, a peer with a gap skipped the reused seq's original for good, and a third node
    /// that had the restored node's change first skipped the original relayed to it (found from
    /// outside: nodes apart for good, `check` OK). Checked before rows go in, a batch at a
    /// time: no limit, no memory.
    private mutating func reconcile(_ rows: [[Value]], belowMark: Bool = false) throws {
        // The usual file: new changes, above marks with no gap behind them.
        if !belowMark && !anyGap { return }
        var groups: [String: [Int]] = [:]
        for (i, row) in rows.enumerated() {
            guard case .text(let origin) = row[0], case .text(let epoch) = row[1], case .integer(let seq) = row[2]
            else { continue }
            let k = Self.key(origin, epoch)
            if belowMark || seq <= (maxSeqs[k] ?? 0) { groups[k, default: []].append(i) }
        }
        var aside: [[Value]] = []
        for (k, indexes) in groups.sorted(by: { $0.key < $1.key }) {
            guard case .text(let origin) = rows[indexes[0]][0], case .text(let epoch) = rows[indexes[0]][1] else {
                continue
            }
            let incoming = indexes.compactMap { i -> (seq: Int64, hlc: Int64, row: Int)? in
                guard case .integer(let seq) = rows[i][2], case .integer(let hlc) = rows[i][3] else { return nil }
                return (seq, hlc, i)
            }
            let held = try Forks.heldCopies(db, origin: origin, epoch: epoch, seqs: incoming.map(\.seq))
            // The restored node's own newest bundle carries its reused copies, never an
            // original: nothing to keep aside.
            let fromRestored = origin == file.header.sender && epoch == file.header.senderEpoch && senderNewest
            var differs = false
            for c in incoming {
                guard let h = held[c.seq], h.hlc != c.hlc else { continue }
                differs = true
                if Forks.isPruned(h.id) {
                    // Pruned here, and applied: this one is another change this node lacks, and
                    // the inbox's place for it is free. Kept aside instead, it waited for the
                    // origin's new epoch, which nothing may ever bring (found from outside).
                    try loadInPrunedPlace(rows[c.row], origin: origin, epoch: epoch, seq: c.seq, prunedId: -h.id)
                } else if !fromRestored {
                    aside.append(rows[c.row])
                }
            }
            if differs, !forked.contains(k) {
                forked.insert(k)
                try noteFork(origin: origin, epoch: epoch, top: incoming.map(\.seq).max() ?? 0)
            }
        }
        for row in aside { try Forks.keepAside(db, row, columns: Self.columns) }
    }

    /// A copy of a seq whose copy here was pruned goes in, and is applied and relayed. The sender
    /// may lack the pruned copy, which no re-send carries: said once, unless the sender confirms
    /// it in this node's relay stream (it has seen both).
    private mutating func loadInPrunedPlace(_ row: [Value], origin: String, epoch: String, seq: Int64, prunedId: Int64)
        throws
    {
        try db.execute(
            "DELETE FROM ds_change_stamp WHERE origin = ? AND origin_epoch = ? AND seq = ?",
            [.text(origin), .text(epoch), .integer(seq)])
        try Forks.insertCopy(db, into: "ds_change_inbox", row, columns: Self.columns)
        counts.loaded += 1
        counts.skipped -= 1
        let sender = file.header.sender
        if coverage == nil { coverage = RelayCoverage(db: db, me: me) }
        guard sender != me.nodeId, try coverage?.covers(sender, first: prunedId, last: prunedId) == false else {
            return
        }
        prunedForks.append(
            "\(origin)'s change \(seq) (epoch \(epoch.prefix(8))) came from \(sender) with another stamp than the copy this node had pruned: "
                + "\(origin) was restored from a backup and gave a new change the seq of one it lost. Both are applied here, but \(sender) may lack the one pruned here, "
                + "and no re-send carries it: compare the rows it touched here and on \(sender) and make that change again there by hand (docs/delivery.md, 'Restored backups and epochs')"
        )
    }

    /// A fork of the sender's numbering is recorded, so its receipts tell it (Forks); so is one
    /// of another origin this node exchanges with directly.
    private func noteFork(origin: String, epoch: String, top: Int64) throws {
        let named =
            file.header.origins.first { $0.origin == origin && $0.epoch == epoch }?.last ?? top
        if try (origin == file.header.sender && epoch == file.header.senderEpoch)
            || Receipts.currentEpoch(db, peer: origin) == epoch
        {
            try Forks.record(db, origin: origin, epoch: epoch, last: named)
        }
    }

    /// The changes at or below their marks gathered so far: each compared, the other copy of a
    /// reused seq kept aside.
    private mutating func compareBelowMark() throws {
        guard !belowMark.isEmpty else { return }
        let rows = belowMark
        belowMark.removeAll(keepingCapacity: true)
        belowMarkBytes = 0
        try reconcile(rows, belowMark: true)
    }

    /// The key of `marks` and `maxSeqs`.
    private static func key(_ origin: String, _ epoch: String) -> String { origin + "\u{0}" + epoch }

    /// Nothing loaded counts unless the whole file verifies: a throw here rolls it all back.
    /// Then the bundle's loaded count, the holdings it advanced, and the sender's receipts.
    func finish() throws -> IngestedFile.Status {
        try reader.finish(publicKey: file.key)
        try db.execute(
            "UPDATE ds_bundle_seen SET loaded_count = ? WHERE id = ?", [.integer(counts.loaded), .integer(bundleId)])
        // Encrypted in, encrypted out: what this node relays of it is encrypted too.
        if case .encrypted = file.source { try BundleEncryption.noteEncryptedReceived(db) }
        try advanceHoldings()
        // After the file's rows and marks: an original taken from aside is written as this
        // bundle's (an origin's new epoch is known by its marks).
        try Forks.resolve(db, me: me, bundleId: bundleId)
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
