import Crypto
import Foundation

/// ds_conflict: every value that lost a merge, with both values, versions and origins, so
/// last-writer-wins never loses what a person typed without a trace.
public struct ConflictLog {
    let db: Database
    private(set) var recorded = 0

    init(db: Database) { self.db = db }

    /// `loggedLoser`: the loser already in the log's JSON form (a dropped change's values).
    mutating func record(
        table: String, key: [Value], column: String?, winner: Value?, winnerVersion: Version,
        loser: Value?, loggedLoser: String? = nil, loserVersion: Version, reason: String
    ) throws {
        try db.execute(
            """
            INSERT INTO ds_conflict (object_table, object_id, object_attribute, winner_value, winner_hlc, winner_node, loser_value, loser_hlc, loser_node, reason, recorded_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .text(table), .text(KeyCodec.display(key)), column.map(Value.text) ?? .null,
                winner.map { .text(Self.logged($0)) } ?? .null,
                .integer(winnerVersion.hlc), .text(winnerVersion.node),
                loser.map { .text(Self.logged($0)) } ?? loggedLoser.map { .text(Self.storable($0)) } ?? .null,
                .integer(loserVersion.hlc), .text(loserVersion.node), .text(Self.storable(reason)), .text(nowText()),
            ])
        recorded += 1
    }

    /// A dropped change's values as one JSON object, each value as `logged` keeps it; a row
    /// past `wholeValueBytes` in all (many wide columns) by its length, SHA-256 and beginning,
    /// as one long value is (found in review: a wide row would log many megabytes).
    static func loggedRow(_ columns: [Change.ColumnValue]) -> String {
        let whole = "{" + columns.map { JSON.quote($0.name) + ":" + logged($0.value) }.joined(separator: ",") + "}"
        return whole.utf8.count > wholeValueBytes ? digested("row", text: whole) : whole
    }

    /// Text every brand stores: a NUL (which PostgreSQL text cannot hold) written as `\u0000`.
    /// A held change whose key held one could not be dropped on PostgreSQL (found from outside).
    static func storable(_ s: String) -> String {
        s.utf8.contains(0) ? s.replacingOccurrences(of: "\u{0}", with: "\\u0000") : s
    }

    /// Values up to this many bytes are logged whole.
    static let wholeValueBytes = 64 << 10

    /// A value as the log keeps it: whole up to `wholeValueBytes`; a longer one by its length,
    /// SHA-256 and first 1,000 characters (or 1,000 bytes). The log is a record of what lost,
    /// not a backup: two whole 64 MiB values per conflict took 420 MiB to import and to list.
    static func logged(_ v: Value) -> String {
        switch v {
        case .text(let s) where s.utf8.count > wholeValueBytes:
            return digested("text", text: s)
        case .blob(let b) where b.count > wholeValueBytes:
            var h = SHA256()
            b.withUnsafeBytes { h.update(bufferPointer: $0) }
            return truncated("blob", bytes: b.count, sha: h.finalize(), first: Hex.encode(Array(b.prefix(1000))))
        default:
            return v.json
        }
    }

    /// A long text (a value, or a row's JSON) by its length, SHA-256 and first 1,000 characters.
    private static func digested(_ type: String, text: String) -> String {
        var s = text
        s.makeContiguousUTF8()
        var h = SHA256()
        _ = s.utf8.withContiguousStorageIfAvailable { h.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        return truncated(type, bytes: s.utf8.count, sha: h.finalize(), first: String(s.prefix(1000)))
    }

    private static func truncated(_ type: String, bytes: Int, sha: SHA256.Digest, first: String) -> String {
        "{\"type\":\"\(type)\",\"bytes\":\(bytes),\"sha256\":\"\(Hex.encode(Array(sha)))\",\"first\":\(JSON.quote(first)),\"truncated\":true}"
    }
}

/// One row of the conflict log.
public struct ConflictEntry: Sendable {
    public var table: String
    public var key: String
    public var column: String?
    public var winnerValue: String?
    public var winner: Version
    public var loserValue: String?
    public var loser: Version
    public var reason: String
    public var recordedAt: String
}

extension ConflictLog {
    /// The highest conflict id so far: `list(after:)` then gives what was logged since.
    public static func lastId(_ db: Database) throws -> Int64 {
        try db.scalar("SELECT max(id) FROM ds_conflict").asInt64 ?? 0
    }

    /// How many entries the log holds in all.
    public static func count(_ db: Database, after: Int64 = 0) throws -> Int64 {
        try db.scalar("SELECT count(*) FROM ds_conflict WHERE id > ?", [.integer(after)]).asInt64 ?? 0
    }

    public static func list(_ db: Database, after: Int64 = 0, limit: Int = 1000) throws -> [ConflictEntry] {
        try db.rows(
            "SELECT object_table, object_id, object_attribute, winner_value, winner_hlc, winner_node, loser_value, loser_hlc, loser_node, reason, recorded_at FROM ds_conflict WHERE id > ? ORDER BY id LIMIT ?",
            [.integer(after), .integer(Int64(limit))]
        ).map { r in
            ConflictEntry(
                table: r.string(0) ?? "", key: r.string(1) ?? "", column: r.string(2), winnerValue: r.string(3),
                winner: Version(hlc: r.int(4) ?? 0, node: r.string(5) ?? ""), loserValue: r.string(6),
                loser: Version(hlc: r.int(7) ?? 0, node: r.string(8) ?? ""), reason: r.string(9) ?? "",
                recordedAt: r.string(10) ?? "")
        }
    }
}

extension ConflictEntry {
    /// A held change the operator dropped (`import --drop-held`): nothing won, it was given up.
    public var dropped: Bool {
        winner.hlc == 0 && winner.node.isEmpty && winnerValue == nil && reason.contains(") dropped by the operator; ")
    }

    /// One line of `datajoin conflicts`. A dropped change has no winner to show (found from
    /// outside: "kept - (1970-01-01T00:00:00.000Z+0@)").
    public var text: String {
        let place = "\(table) \(key)\(column.map { "." + $0 } ?? "")"
        if dropped { return "\(place): dropped\(loserValue.map { " " + $0 } ?? "") (\(loser)): \(reason)" }
        return "\(place): kept \(winnerValue ?? "-") (\(winner)), lost \(loserValue ?? "-") (\(loser)): \(reason)"
    }

    /// The `conflicts --json` form (docs/cli.md); values are already JSON.
    public var json: String {
        "{\"table\":\(JSON.quote(table)),\"key\":\(JSON.quote(key)),\"column\":\(column.map(JSON.quote) ?? "null"),"
            + "\"winner_value\":\(winnerValue ?? "null"),"
            + (dropped
                ? "\"winner_hlc\":null,\"winner_node\":null,"
                : "\"winner_hlc\":\(winner.hlc),\"winner_node\":\(JSON.quote(winner.node)),")
            + "\"loser_value\":\(loserValue ?? "null"),\"loser_hlc\":\(loser.hlc),\"loser_node\":\(JSON.quote(loser.node)),"
            + "\"reason\":\(JSON.quote(reason)),\"recorded_at\":\(JSON.quote(recordedAt))}"
    }
}
