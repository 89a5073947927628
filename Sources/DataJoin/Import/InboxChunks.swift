import Foundation

/// An import's inbox rows, a chunk at a time (`Importer.chunkEnd`). On the fast path through a
/// range of more than two chunks, the chunks are read and decoded on a connection and a thread
/// of their own while this one applies the chunk before (the import used one core: reading,
/// decoding and applying one after the other; docs/performance.md).
///
/// Why the reader sees what this connection would (docs/architecture.md, "Second threads"):
/// the import's transaction holds the database's writer lock, so every inbox row up to the
/// range's last was committed before it began, in id order, and none is written while it runs;
/// the reader must see that last row before it is used (a dry run's loads are never committed:
/// no reader there). The import writes nothing to the rows it has not read yet: on the fast
/// path a change is held only when it is applied.
final class InboxChunks {
    private struct Chunk {
        var rows: [Row]
        var changes: [Change]
    }

    /// Chunks the reader served, so far: tests see that the boundary holds (more than two
    /// chunks) and that the import took its chunks from it.
    nonisolated(unsafe) static var chunksReadAhead = 0

    private let db: Database
    private let tables: [String: TableInfo]
    private let inbox: InboxRows
    private let coalesce: Bool
    private var ahead: ReadAhead<Chunk>?
    /// Closed here, after the thread has ended (its statistics go back to `db`).
    private var reader: Database?
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
            let reader = Self.openReader(db),
            try reader.firstRow("SELECT id FROM ds_change_inbox WHERE id = ?", [.integer(last)]) != nil
        else { return }
        self.reader = reader
        var from = after
        // A chunk is read only when it fits the budget beside the chunk being applied, or alone:
        // a chunk of large values never beside another (memory, docs/reliability.md). A row
        // counts its payload and 1 KiB for the rest of it decoded (its row, its change), so
        // that chunks of small changes stay a few chunks ahead, not hundreds.
        ahead = ReadAhead(budget: Tuning.current.readAheadBytes) { [tables] admission in
            let (end, bytes, count) = try Importer.chunkEnd(reader, inbox, after: from)
            let cost = Int(bytes) + 1_024 * count
            guard admission.wait(for: cost) else { return nil }
            let (rows, changes) = try Importer.readChunk(
                reader, tables: tables, inbox, after: from, end: end, coalesce: false)
            guard let lastRow = rows.last?.int(0) else { return nil }
            from = lastRow
            return (Chunk(rows: rows, changes: changes), cost)
        }
    }

    /// A second connection, or none when the server will not give one (a connection limit):
    /// the import reads on its own connection then, as before.
    private static func openReader(_ db: Database) -> Database? {
        do { return try db.openReader() } catch { return nil }
    }

    /// The rows after inbox id `after` and their changes; none at the range's end.
    func next(after: Int64) throws -> (rows: [Row], changes: [Change]) {
        if let ahead {
            // The importer goes on from the last row of the chunk before: anything else is read here.
            if after == aheadAfter {
                guard let chunk = try ahead.next() else { return ([], []) }
                aheadAfter = chunk.rows.last?.int(0) ?? after
                Self.chunksReadAhead += 1
                return (chunk.rows, chunk.changes)
            }
            cancel()
        }
        let (end, _, _) = try Importer.chunkEnd(db, inbox, after: after)
        return try Importer.readChunk(db, tables: tables, inbox, after: after, end: end, coalesce: coalesce)
    }

    /// Ends the reading ahead and closes its connection (the apply is over, or went another way).
    func cancel() {
        ahead?.cancel()
        ahead = nil
        if let reader { db.absorb(reader) }
        reader = nil
    }
}
