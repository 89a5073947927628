import Foundation

/// Per-row and per-column versions of synced rows (ds_row_version, ds_column_version).
/// A column without its own entry has the row's version: the insert that made the row.
struct VersionStore {
    let db: Database

    struct RowState {
        var cl: Int64
        var version: Version
    }

    func row(_ table: String, _ key: [UInt8]) throws -> RowState? {
        guard let r = try db.firstRow("SELECT cl, hlc, node FROM ds_row_version WHERE object_table = ? AND object_id = ?", [.text(table), .blob(key)]) else { return nil }
        return RowState(cl: r.int(0) ?? 0, version: Version(hlc: r.int(1) ?? 0, node: r.string(2) ?? ""))
    }

    func setRow(_ table: String, _ key: [UInt8], _ state: RowState) throws {
        try db.execute("""
            INSERT INTO ds_row_version (object_table, object_id, cl, hlc, node) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (object_table, object_id) DO UPDATE SET cl = excluded.cl, hlc = excluded.hlc, node = excluded.node
            """, [.text(table), .blob(key), .integer(state.cl), .integer(state.version.hlc), .text(state.version.node)])
    }

    func columns(_ table: String, _ key: [UInt8]) throws -> [String: Version] {
        var out: [String: Version] = [:]
        try db.query("SELECT object_attribute, hlc, node FROM ds_column_version WHERE object_table = ? AND object_id = ?", [.text(table), .blob(key)]) { r in
            out[r.string(0) ?? ""] = Version(hlc: r.int(1) ?? 0, node: r.string(2) ?? "")
        }
        return out
    }

    func column(_ table: String, _ key: [UInt8], _ column: String) throws -> Version? {
        guard let r = try db.firstRow("SELECT hlc, node FROM ds_column_version WHERE object_table = ? AND object_id = ? AND object_attribute = ?",
                                      [.text(table), .blob(key), .text(column)]) else { return nil }
        return Version(hlc: r.int(0) ?? 0, node: r.string(1) ?? "")
    }

    func setColumn(_ table: String, _ key: [UInt8], _ column: String, _ v: Version) throws {
        try db.execute("""
            INSERT INTO ds_column_version (object_table, object_id, object_attribute, hlc, node) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (object_table, object_id, object_attribute) DO UPDATE SET hlc = excluded.hlc, node = excluded.node
            """, [.text(table), .blob(key), .text(column), .integer(v.hlc), .text(v.node)])
    }

    func clearColumns(_ table: String, _ key: [UInt8]) throws {
        try db.execute("DELETE FROM ds_column_version WHERE object_table = ? AND object_id = ?", [.text(table), .blob(key)])
    }

    func clearColumn(_ table: String, _ key: [UInt8], _ column: String) throws {
        try db.execute("DELETE FROM ds_column_version WHERE object_table = ? AND object_id = ? AND object_attribute = ?", [.text(table), .blob(key), .text(column)])
    }
}
