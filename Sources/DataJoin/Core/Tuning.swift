import Foundation

/// Every chunk, batch and step size of the code, in one place. The defaults are what runs in
/// production; tests set small ones (`DATAJOIN_TEST_SIZES=exportStep=10,stampChunk=3`) so each
/// boundary (size − 1, size, size + 1, 3 × size) runs end to end in seconds. A name or number
/// that does not parse is an error, never a silent default.
public struct Tuning: Equatable, Sendable {
    /// Changes stamped per export transaction (PostgreSQL analyzes in between).
    public var exportStep = 100_000
    /// Outbox rows read per stamping chunk.
    public var stampChunk = 2_000
    /// Rows per multi-row stamp UPDATE on SQLite.
    public var stampBatch = 400
    /// Inbox rows read per import chunk (new and held changes alike).
    public var importChunk = 1_000
    /// Inbox rows of small bundles applied in one import transaction: a hub that receives a
    /// bundle a minute from each laptop pays a transaction's fixed statements once per group.
    public var importGroup = 10_000
    /// Inbox rows per multi-row INSERT when a bundle is loaded.
    public var inboxLoadBatch = 200
    /// From this many rows on, PostgreSQL writes new rows with COPY.
    public var copyThreshold = 32
    /// Keys per version lookup and write.
    public var versionBatch = 400
    /// Rows per snapshot read.
    public var snapshotChunk = 500
    /// Inbox seqs read per page when an origin's mark advances.
    public var holdingsPage = 5_000
    /// Columns per json_object() in SQLite's insert trigger (127 arguments at most).
    public var sqliteCaptureSplit = 60
    /// Values per json_build_array() in PostgreSQL's insert trigger (100 arguments at most).
    public var postgresCaptureSplit = 90
    /// Expanded bytes after which the exporter starts a new bundle at the next transaction.
    public var bundleTargetBytes = 256 << 20
    /// Payload bytes one import or load chunk may hold before it is cut short.
    public var chunkBytes = 32 << 20
    /// Bytes a second thread may read ahead of the one that writes (`ReadAhead`): an ingest's
    /// decoded changes (in batches of a quarter of it), an import's next chunks.
    public var readAheadBytes = 4 << 20
    /// Bytes of values after which rows read for a second thread or a flush go as a batch
    /// (`SizedBatch`: an export's rows for its encoder, a snapshot's rows per read).
    public var encodeBatchBytes = 4 << 20
    /// Bytes of rows one fetch of a PostgreSQL cursor keeps (`Database.stream`).
    public var streamFetchBytes = 8 << 20
    /// Columns the table definitions of one written bundle may hold in all (a reader takes at
    /// most BundleFormat.maxDefinedColumns; a test sets fewer to reach the cut in seconds).
    public var bundleDefinedColumns = BundleFormat.maxDefinedColumns

    public init() {}

    /// The sizes in force: the defaults, or the test sizes of `DATAJOIN_TEST_SIZES`.
    nonisolated(unsafe) public static var current = Tuning()

    static let names: [String: WritableKeyPath<Tuning, Int>] = [
        "exportStep": \.exportStep, "stampChunk": \.stampChunk, "stampBatch": \.stampBatch,
        "importChunk": \.importChunk, "importGroup": \.importGroup, "inboxLoadBatch": \.inboxLoadBatch,
        "copyThreshold": \.copyThreshold,
        "versionBatch": \.versionBatch, "snapshotChunk": \.snapshotChunk, "holdingsPage": \.holdingsPage,
        "sqliteCaptureSplit": \.sqliteCaptureSplit, "postgresCaptureSplit": \.postgresCaptureSplit,
        "bundleTargetBytes": \.bundleTargetBytes, "chunkBytes": \.chunkBytes, "readAheadBytes": \.readAheadBytes,
        "encodeBatchBytes": \.encodeBatchBytes, "streamFetchBytes": \.streamFetchBytes,
        "bundleDefinedColumns": \.bundleDefinedColumns,
    ]

    /// Parses `name=value,name=value`. Capture splits stay within the SQL functions' limits.
    public static func parse(_ text: String) throws -> Tuning {
        var t = Tuning()
        for part in text.split(separator: ",") where !part.trimmingCharacters(in: .whitespaces).isEmpty {
            let kv = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, let path = names[kv[0]] else {
                throw DataJoinError(
                    .usage,
                    "DATAJOIN_TEST_SIZES: unknown entry '\(part.prefix(40))' (known: \(names.keys.sorted().joined(separator: ", ")))"
                )
            }
            guard let n = Int(kv[1]), n >= 1, n <= 1 << 40 else {
                throw DataJoinError(
                    .usage,
                    "DATAJOIN_TEST_SIZES: \(kv[0]) must be a whole number from 1 to 2^40, not '\(kv[1].prefix(20))'")
            }
            t[keyPath: path] = n
        }
        guard t.sqliteCaptureSplit <= 60, t.postgresCaptureSplit <= 90 else {
            throw DataJoinError(
                .usage, "DATAJOIN_TEST_SIZES: capture splits are at most 60 (SQLite) and 90 (PostgreSQL)")
        }
        return t
    }

    /// Reads `DATAJOIN_TEST_SIZES` once, at the start of a command.
    public static func loadFromEnvironment() throws {
        if let text = ProcessInfo.processInfo.environment["DATAJOIN_TEST_SIZES"] { current = try parse(text) }
    }
}
