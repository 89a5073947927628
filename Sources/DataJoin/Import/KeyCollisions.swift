import Foundation

/// ds_key_collision: two different rows inserted with one generated key (key blocks turned
/// off, set up wrongly by hand, or a node restored from a backup). They merged column by
/// column like rows of a natural key, which is never what the application meant: `check` and
/// `status` report each one (docs/keys.md, "Found, not hidden").
public enum KeyCollisions {
    /// One collision: the row's insert as this node held it, and the insert that met it.
    public struct Entry: Sendable, Equatable {
        public var table: String
        public var key: String
        public var row: Version
        public var insert: Version
        public var recordedAt: String
    }

    static func record(_ db: Database, table: String, key: [Value], row: Version, insert: Version) throws {
        try db.execute(
            """
            INSERT INTO ds_key_collision (object_table, object_id, row_node, row_hlc, insert_node, insert_hlc, recorded_at)
            VALUES (\(Value.text(table)), \(Value.text(ConflictLog.storable(KeyCodec.display(key)))),
              \(Value.text(row.node)), \(Value.integer(row.hlc)), \(Value.text(insert.node)), \(Value.integer(insert.hlc)),
              \(Value.text(nowText())))
            """)
    }

    public static func count(_ db: Database) throws -> Int64 {
        try db.scalar("SELECT count(*) FROM ds_key_collision").asInt64 ?? 0
    }

    public static func list(_ db: Database, limit: Int = 20) throws -> [Entry] {
        try db.rows(
            """
            SELECT object_table, object_id, row_node, row_hlc, insert_node, insert_hlc, recorded_at
            FROM ds_key_collision ORDER BY id LIMIT \(literal: limit)
            """
        ).map { r in
            Entry(
                table: r.string(0) ?? "", key: r.string(1) ?? "",
                row: Version(hlc: r.int(3) ?? 0, node: r.string(2) ?? ""),
                insert: Version(hlc: r.int(5) ?? 0, node: r.string(4) ?? ""), recordedAt: r.string(6) ?? "")
        }
    }

    /// Forgets every collision reported so far (the operator has dealt with them); how many.
    public static func clear(_ db: Database) throws -> Int64 {
        try db.retryingWrite { _ in
            let n = try count(db)
            try db.execute("DELETE FROM ds_key_collision")
            return n
        }
    }
}

extension KeyCollisions.Entry {
    /// One line: which row, and which two inserts made it.
    public var line: String {
        // A row held before tracking has the zero version, of no node when it was written here.
        func by(_ v: Version) -> String {
            v.hlc == 0
                ? "held \(v.node.isEmpty ? "here" : "by \(v.node)") before tracking"
                : "inserted by \(v.node) (at \(HybridLogicalClock.describe(v.hlc)))"
        }
        return "\(table) \(key): \(by(row)) and \(by(insert)) as two different rows, merged column by column"
    }
}
