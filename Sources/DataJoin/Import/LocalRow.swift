import Foundation

/// What this node holds of the row one change is for: the key, the row's version state, and
/// its values, read only when a rule needs them (at most once).
struct LocalRow {
    let table: String
    let key: [Value]
    let keyBytes: [UInt8]
    let rowKey: KeyBytes
    /// The change's version, which every rule weighs against the row's.
    let incoming: Version
    /// nil: no version here (no row, or a row present before tracking started).
    let state: VersionStore.RowState?
    let sql: TableSQL
    private let batch: RowBatch?
    private var values: [Value?]??
    /// The row's generation (causal length): odd alive, even deleted, 0 never seen.
    private(set) var cl: Int64 = 0

    init(
        table: String, key: [Value], keyBytes: [UInt8], incoming: Version, state: VersionStore.RowState?, sql: TableSQL,
        batch: RowBatch?
    ) throws {
        self.table = table
        self.key = key
        self.keyBytes = keyBytes
        rowKey = KeyBytes(keyBytes)
        self.incoming = incoming
        self.state = state
        self.sql = sql
        self.batch = batch
        // A row present before tracking started counts as generation 1 with the zero version.
        cl = try state?.cl ?? (current() == nil ? 0 : 1)
    }

    var version: Version { state?.version ?? .zero }

    /// The local row's values by column position (nil: not set in a row inserted earlier in
    /// this batch); nil: there is no row.
    mutating func current() throws -> [Value?]? {
        if let r = values { return r }
        let r: [Value?]?
        if let batch {
            r = try batch.select(table, key, bytes: rowKey)
        } else {
            r = try sql.select(key).map { $0.map { $0 } }
        }
        values = .some(r)
        return r
    }
}
