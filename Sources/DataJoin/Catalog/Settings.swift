import Foundation

/// ds_setting: the tunables an operator sets and the few positions DataJoin keeps by name
/// (docs/tables.md). Values are stored as text.
enum Settings {
    static func int(_ db: Database, _ name: String) throws -> Int64? {
        try db.scalar("SELECT value FROM ds_setting WHERE name = ?", [.text(name)]).asInt64
    }

    static func set(_ db: Database, _ name: String, _ value: Int64) throws {
        try db.execute("INSERT INTO ds_setting (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                       [.text(name), .text(String(value))])
    }
}
