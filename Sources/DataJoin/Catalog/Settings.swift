import Foundation

/// ds_setting: the tunables an operator sets and the few positions DataJoin keeps by name
/// (docs/tables.md). Values are stored as text.
enum Settings {
    /// A whole-number setting; a value that is not one (or is outside `range`) is an error
    /// that names the setting, never a silent default.
    static func int(_ db: Database, _ name: String, range: ClosedRange<Int64> = Int64.min...Int64.max) throws -> Int64?
    {
        let v = try db.scalar("SELECT value FROM ds_setting WHERE name = ?", [.text(name)])
        if v.isNull { return nil }
        let text = v.asString ?? ""
        guard let n = v.asInt64 ?? Int64(text.trimmingCharacters(in: .whitespaces)), range.contains(n) else {
            throw DataJoinError(
                .usage,
                "setting \(name) in ds_setting is '\(text.prefix(30))', not a whole number from \(range.lowerBound) to \(range.upperBound); fix it with UPDATE ds_setting"
            )
        }
        return n
    }

    static func set(_ db: Database, _ name: String, _ value: Int64) throws {
        try set(db, name, text: String(value))
    }

    /// Sets a whole-number setting to `value` unless it already holds as much: a mark that only
    /// rises (what was pruned, a peer's floor).
    static func raise(_ db: Database, _ name: String, to value: Int64) throws {
        if try (int(db, name) ?? Int64.min) < value { try set(db, name, value) }
    }

    /// The names of the settings that start with `prefix` (one per peer or epoch), in order.
    static func names(_ db: Database, prefix: String) throws -> [String] {
        try db.rows("SELECT name FROM ds_setting WHERE name LIKE ? ORDER BY name", [.text(prefix + "%")])
            .compactMap { $0.string(0) }.filter { $0.hasPrefix(prefix) }
    }

    static func text(_ db: Database, _ name: String) throws -> String? {
        try db.scalar("SELECT value FROM ds_setting WHERE name = ?", [.text(name)]).asString
    }

    static func set(_ db: Database, _ name: String, text value: String) throws {
        try db.execute(
            "INSERT INTO ds_setting (name, value) VALUES (?, ?) "
                + db.dialect.upsert(key: ["name"], overwrite: ["value"]),
            [.text(name), .text(value)])
    }
}
