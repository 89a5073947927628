import Foundation

/// Per-row and per-column versions of synced rows (ds_row_version, ds_column_version).
/// A column without its own entry has the row's version: the insert that made the row. A
/// column whose value here no write carried (added since) has the zero version: any write wins.
struct VersionStore {
    let db: Database

    struct RowState {
        var cl: Int64
        var version: Version
    }

    func row(_ table: String, _ key: [UInt8]) throws -> RowState? {
        guard
            let r = try db.firstRow(
                "SELECT cl, hlc, node FROM ds_row_version WHERE object_table = ? AND object_id = ?",
                [.text(table), .blob(key)])
        else { return nil }
        return RowState(cl: r.int(0) ?? 0, version: Version(hlc: r.int(1) ?? 0, node: r.string(2) ?? ""))
    }

    func columns(_ table: String, _ key: [UInt8]) throws -> [String: Version] {
        var out: [String: Version] = [:]
        try db.query(
            "SELECT object_attribute, hlc, node FROM ds_column_version WHERE object_table = ? AND object_id = ?",
            [.text(table), .blob(key)]
        ) { r in
            out[r.string(0) ?? ""] = Version(hlc: r.int(1) ?? 0, node: r.string(2) ?? "")
        }
        return out
    }

    // MARK: - Many rows at once (the stamper and the importer)

    static var batch: Int { Tuning.current.versionBatch }

    /// `SELECT columns FROM versions WHERE object_table = ? AND object_id IN (keys)`, with one
    /// index descent per key whatever the statistics say.
    func keyed(_ columns: SQL, from versions: SQL, keys: Int) -> SQL {
        db.dialect.keyedVersions(columns, from: versions, keys: keys)
    }

    struct Key: Hashable {
        var table: String
        var key: [UInt8]
        func hash(into hasher: inout Hasher) {
            hasher.combine(table)
            key.withUnsafeBytes { hasher.combine(bytes: $0) }
        }
    }

    /// The row states of many keys, a few statements in all.
    func rows(_ keys: [(String, [UInt8])]) throws -> [Key: RowState] {
        var out: [Key: RowState] = [:]
        let byTable = Dictionary(grouping: keys, by: { $0.0 })
        for (table, list) in byTable {
            for part in stride(from: 0, to: list.count, by: Self.batch) {
                let slice = list[part..<min(part + Self.batch, list.count)]
                try db.query(
                    keyed("object_id, cl, hlc, node", from: "ds_row_version", keys: slice.count),
                    [.text(table)] + slice.map { .blob($0.1) }
                ) { r in
                    guard case .blob(let k) = r.values[0] else { return }
                    out[Key(table: table, key: k)] = RowState(
                        cl: r.int(1) ?? 0, version: Version(hlc: r.int(2) ?? 0, node: r.string(3) ?? ""))
                }
            }
        }
        return out
    }

    /// The column versions of many rows of one table, a few statements in all.
    func columns(table: String, keys: [[UInt8]]) throws -> [Key: [String: Version]] {
        var out: [Key: [String: Version]] = [:]
        for part in stride(from: 0, to: keys.count, by: Self.batch) {
            let slice = keys[part..<min(part + Self.batch, keys.count)]
            try db.query(
                keyed("object_id, object_attribute, hlc, node", from: "ds_column_version", keys: slice.count),
                [.text(table)] + slice.map { .blob($0) }
            ) { r in
                guard case .blob(let k) = r.values[0] else { return }
                out[Key(table: table, key: k), default: [:]][r.string(1) ?? ""] = Version(
                    hlc: r.int(2) ?? 0, node: r.string(3) ?? "")
            }
        }
        return out
    }

    /// `fresh`: none of these rows has a version yet (the caller read them in this transaction,
    /// and only DataJoin writes versions, under its writer lock), so no `ON CONFLICT` is needed.
    func setRows(_ rows: [(String, [UInt8], RowState)], fresh: Bool = false) throws {
        try db.insertMany(
            into: "ds_row_version", columns: ["object_table", "object_id", "cl", "hlc", "node"],
            rows: rows.map {
                [.text($0.0), .blob($0.1), .integer($0.2.cl), .integer($0.2.version.hlc), .text($0.2.version.node)]
            },
            onConflict: fresh
                ? nil
                : db.dialect.upsert(key: ["object_table", "object_id"], overwrite: ["cl", "hlc", "node"])
        )
    }

    /// `fresh`: these rows have no column versions (cleared, or the row had no version).
    func setColumns(_ cols: [(String, [UInt8], String, Version)], fresh: Bool = false) throws {
        try db.insertMany(
            into: "ds_column_version", columns: ["object_table", "object_id", "object_attribute", "hlc", "node"],
            rows: cols.map { [.text($0.0), .blob($0.1), .text($0.2), .integer($0.3.hlc), .text($0.3.node)] },
            onConflict: fresh
                ? nil
                : db.dialect.upsert(
                    key: ["object_table", "object_id", "object_attribute"], overwrite: ["hlc", "node"])
        )
    }

    /// Columns added to a table since its rows were written: their values here (the ALTER's
    /// default) are no write, so every live row gets the zero version for them, and any peer's
    /// write of them wins (found from outside: a node that added a column late kept its
    /// default over the value a peer had written, for good, `check` OK).
    /// A row that holds a version of the column already keeps it: an insert applied here without
    /// its NULL there (the column was not here yet) wrote it (found in review).
    func markUnwritten(_ table: String, columns: [String]) throws {
        for name in columns {
            try db.execute(
                """
                INSERT INTO ds_column_version (object_table, object_id, object_attribute, hlc, node)
                SELECT r.object_table, r.object_id, ?, 0, '' FROM ds_row_version AS r
                WHERE r.object_table = ? AND r.cl % 2 = 1 AND NOT EXISTS (SELECT 1 FROM ds_column_version AS c
                  WHERE c.object_table = r.object_table AND c.object_id = r.object_id AND c.object_attribute = ?)
                """, [.text(name), .text(table), .text(name)])
        }
    }

    /// Columns dropped from a table: their versions.
    func forget(_ table: String, columns: [String]) throws {
        for name in columns {
            try db.execute(
                "DELETE FROM ds_column_version WHERE object_table = ? AND object_attribute = ?",
                [.text(table), .text(name)])
        }
    }

    func clearColumns(_ keys: [(String, [UInt8])]) throws {
        for (table, list) in Dictionary(grouping: keys, by: { $0.0 }) {
            for part in stride(from: 0, to: list.count, by: Self.batch) {
                let slice = list[part..<min(part + Self.batch, list.count)]
                let sql = db.dialect.deleteColumnVersions(keys: slice.count)
                try db.execute(sql, [.text(table)] + slice.map { .blob($0.1) })
            }
        }
    }
}
