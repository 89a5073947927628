import Foundation

/// An import's inbox rows, a chunk at a time (`Importer.chunkEnd`). On the fast path through a
/// range of more than two chunks, the chunks after the one being applied are read and decoded
/// on a connection and a thread of their own (the import used one core: reading, decoding and
/// applying one after the other; docs/performance.md).
///
/// Why the reader sees what this connection would: the range's rows are loaded and committed
/// before the import starts (ingest loads one bundle at a time, in its own transaction), and
/// the reader must see the range's last row before it is used (not so in a dry run, whose loads
/// are never committed: no reader there). The import writes nothing to the rows it has not
/// read yet: on the fast path nothing is held before its own change is applied.
final class InboxChunks {
    private struct Chunk {
        var rows: [Row]
        var changes: [Change]
    }

    /// Applies that read ahead, so far: tests see that the boundary holds (more than two chunks).
    nonisolated(unsafe) static var readAheads = 0

    private let db: Database
    private let tables: [String: TableInfo]
    private let inbox: InboxRows
    private let coalesce: Bool
    private var ahead: ReadAhead<Chunk>?
    /// The inbox id after which the next chunk read ahead starts.
    private var aheadAfter: Int64

    init(
        _ db: Database, tables: [String: TableInfo], _ inbox: InboxRows, after: Int64, coalesce: Bool, readAhead: Bool
    ) throws {
        self.db = db
        self.tables = tables
        self.inbox = inbox
        self.coalesce = coalesce
        aheadAfter = after
        guard readAhead, !coalesce, case .through(let last) = inbox,
            last - after > 2 * Int64(Tuning.current.importChunk),
            let reader = try db.openReader(),
            try reader.firstRow("SELECT id FROM ds_change_inbox WHERE id = ?", [.integer(last)]) != nil
        else { return }
        Self.readAheads += 1
        var from = after
        // At most 4 MiB of payload ahead; a chunk of large values is read once the one before
        // it is applied (memory stays flat, docs/reliability.md).
        ahead = ReadAhead(budget: 4 << 20) { [tables] in
            let (end, bytes) = try Importer.chunkEnd(reader, inbox, after: from)
            let (rows, changes) = try Importer.readChunk(
                reader, tables: tables, inbox, after: from, end: end, coalesce: false)
            guard let lastRow = rows.last?.int(0) else { return nil }
            from = lastRow
            return (Chunk(rows: rows, changes: changes), Int(bytes) + 512 * rows.count)
        }
    }

    /// The rows after inbox id `after` and their changes; none at the range's end.
    func next(after: Int64) throws -> (rows: [Row], changes: [Change]) {
        if let ahead {
            // The importer goes on from the last row of the chunk before: anything else is read here.
            if after == aheadAfter {
                guard let chunk = try ahead.next() else { return ([], []) }
                aheadAfter = chunk.rows.last?.int(0) ?? after
                return (chunk.rows, chunk.changes)
            }
            cancel()
        }
        let (end, _) = try Importer.chunkEnd(db, inbox, after: after)
        return try Importer.readChunk(db, tables: tables, inbox, after: after, end: end, coalesce: coalesce)
    }

    /// Ends the reading ahead and its connection (the apply is over, or went another way).
    func cancel() {
        ahead?.cancel()
        ahead = nil
    }
}
