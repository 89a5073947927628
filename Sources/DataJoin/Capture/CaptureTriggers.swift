import Crypto
import Foundation

/// Generates the capture triggers of one tracked table. Inserts and deletes become one row-level
/// outbox row; an update becomes one outbox row per changed column (old and new value); an update
/// of the key becomes a delete plus an insert. Writes made by DataJoin's importer are skipped
/// (docs/capture.md says how each brand knows).
enum CaptureTriggers {
    static func literal(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "''") + "'" }

    typealias Names = (
        function: String, insert: String, update: String, updateRows: String, delete: String, truncate: String
    )

    /// The names of a table's triggers and functions: a readable prefix of the table's name and
    /// 8 hex digits of its SHA-256, so two tables never share one and every name fits
    /// PostgreSQL's 63 bytes, whatever the table is called (issue 10). Kinds are at most 16
    /// bytes, the prefix 28, the hash 9: 53 in all.
    static func names(_ table: String) -> Names {
        let n = { (kind: String) in generatedName(kind, table) }
        return (
            n("ds_capture_"), n("ds_capture_ins_"), n("ds_capture_upd_"), n("ds_capture_updrows_"),
            n("ds_capture_del_"), n("ds_capture_trunc_")
        )
    }

    /// PostgreSQL: the statement-level functions that capture inserts and deletes.
    static func statementFunctions(_ table: String) -> (insert: String, update: String, delete: String) {
        (
            generatedName("ds_capture_insr_", table), generatedName("ds_capture_updr_", table),
            generatedName("ds_capture_delr_", table)
        )
    }

    static func generatedName(_ kind: String, _ table: String) -> String {
        var prefix = ""
        for ch in table.unicodeScalars where ch.value >= 0x20 && ch.value != 0x7F {
            if prefix.utf8.count + String(ch).utf8.count > 28 { break }
            prefix.unicodeScalars.append(ch)
        }
        let digest = SHA256.hash(data: Array(table.utf8))
        return kind + prefix + "_" + Hex.encode(Array(digest.prefix(4)))
    }

    /// Names of versions before 6 (the table's name after a prefix): dropped when a table is
    /// tracked again or untracked, so an upgraded node keeps no second set of triggers.
    static func legacyNames(_ table: String) -> [String] {
        [
            "ds_capture_", "ds_capture_ins_", "ds_capture_upd_", "ds_capture_updrows_", "ds_capture_del_",
            "ds_capture_trunc_",
        ].map { $0 + table }
    }

    static func legacyFunctions(_ table: String) -> [String] {
        ["ds_capture_ins_rows_", "ds_capture_upd_rows_", "ds_capture_del_rows_"].map { $0 + table }
    }

    /// Names a table whose capture triggers DataJoin installed: their loss is drift
    /// (`CaptureDrift.captureLost`), while a table tracked with `--no-triggers` has none by design.
    static let installedPrefix = "capture_installed:"

    static func install(_ db: Database, _ t: TableInfo) throws {
        // Recorded first: MariaDB commits each trigger statement, and an install cut short must
        // leave a table that `check` names, not one that looks tracked without triggers.
        try Settings.set(db, installedPrefix + t.name, 1)
        try db.dialect.installCapture(db, t)
    }

    static func remove(_ db: Database, table: String) throws {
        try db.dialect.removeCapture(db, table: table)
        try db.execute("DELETE FROM ds_setting WHERE name = ?", [.text(installedPrefix + table)])
    }

    /// Whether DataJoin installed this table's capture (and has not removed it since).
    static func wasInstalled(_ db: Database, table: String) throws -> Bool {
        try Settings.int(db, installedPrefix + table) != nil
    }

    /// The tracked tables that still exist, as registered: what an upgrade writes capture for
    /// again (a tracked table dropped since is skipped; found from outside: every command failed
    /// on it, untrack included).
    static func trackedAndPresent(_ db: Database) throws -> [TableInfo] {
        let tracked = Set(try Tracker.trackedNames(db))
        return try TableRegistry.load(db).values.filter {
            try tracked.contains($0.name) && TableRegistry.introspect(db, table: $0.name) != nil
        }
    }

    /// The capture triggers of an older version written again (SQLite and PostgreSQL). Before
    /// 15 every tracked table's (their form changed); from 15 on, only tables with every trigger
    /// in place: not one tracked with --no-triggers (its application writes its outbox rows, and
    /// triggers would capture each write twice), and a lost trigger stays drift, for `track` to
    /// say what it missed. A table left so keeps triggers that skip every write of an import,
    /// as before 17 (`Dialect.setApplying` still tells them).
    static func rewriteOnUpgrade(_ db: Database, from version: Int, before: Int = 17) throws {
        guard version < before else { return }
        for t in try trackedAndPresent(db)
        where try version < 15 || db.dialect.missingCaptureTriggers(db, t).missing.isEmpty {
            try db.dialect.installCapture(db, t)
        }
    }

    /// `track --backfill`: every row the table holds now, captured as an insert in the form the
    /// insert trigger writes, so peers receive rows that were there before tracking (docs/capture.md).
    static func backfill(_ db: Database, _ t: TableInfo) throws -> Int { try db.dialect.backfill(db, t) }
}

/// Which of the capture triggers `track` installs for a table are there
/// (`Dialect.missingCaptureTriggers`).
public struct CaptureTriggerCheck {
    /// Every trigger name, as the catalog keeps it.
    public var expected: [String]
    public var missing: [String]
    /// A missing one captured deletes or key changes: a backfill sends no delete.
    public var deletesLost: Bool
    /// A missing one captured what the table's foreign keys cascade to (MariaDB): the tables
    /// they reach need a backfill too.
    public var cascadesLost: Bool

    init(expected: [String], present: Set<String>, capturingDeletes: [String], capturingCascades: [String] = []) {
        let missing = expected.filter { !present.contains($0) }
        self.expected = expected
        self.missing = missing
        deletesLost = missing.contains { capturingDeletes.contains($0) }
        cascadesLost = missing.contains { capturingCascades.contains($0) }
    }
}
