import Foundation

/// Key blocks on MariaDB (docs/keys.md). AUTO_INCREMENT always goes on above the largest id in
/// the table, so a peer's rows would pull it into the peer's block. A SEQUENCE does not look at
/// the table: a BEFORE INSERT trigger takes the next id from the node's own sequence when the
/// insert gives none. The client is told the id the trigger set (measured with SQLAlchemy).
extension MariaDBDialect {
    public func generatedKey(_ db: Database, _ t: TableInfo) throws -> GeneratedKey? {
        guard t.keyColumns.count == 1, let k = t.keyColumns.first else { return nil }
        guard
            let r = try db.firstRow(
                """
                SELECT extra, column_type FROM information_schema.columns
                WHERE table_schema = DATABASE() AND table_name = ? AND BINARY table_name = BINARY ? AND BINARY column_name = BINARY ?
                """, [.text(t.name), .text(t.name), .text(k.name)]),
            (r.string(0) ?? "").lowercased().contains("auto_increment")
        else { return nil }
        let type = (r.string(1) ?? "").lowercased()
        let unsigned = type.contains("unsigned")
        let max: Int64
        switch String(type.prefix { $0.isLetter }) {
        case "tinyint": max = unsigned ? 255 : 127
        case "smallint": max = unsigned ? 65_535 : 32_767
        case "mediumint": max = unsigned ? 16_777_215 : 8_388_607
        case "int", "integer": max = unsigned ? 4_294_967_295 : 2_147_483_647
        case "bigint": max = Int64.max
        default: return nil
        }
        return GeneratedKey(
            column: k.name, generator: CaptureTriggers.generatedName("ds_keys_", t.name), maxValue: max)
    }

    public var keyBlocksPossible: Bool { true }

    /// MariaDB's SETVAL never moves a sequence back.
    public func raiseKeyBlock(_ db: Database, _ key: GeneratedKey, above id: Int64) throws {
        // SETVAL takes numbers written in the statement, not parameters.
        try db.execute("SELECT SETVAL(\(Identifier(key.generator)), \(literal: id))")
    }

    /// A sequence's next value past its cache, where the sequence exists already.
    public func generatorNext(_ db: Database, _ key: GeneratedKey) throws -> Int64? {
        let exists =
            try db.scalar(
                """
                SELECT count(*) FROM information_schema.tables
                WHERE table_schema = DATABASE() AND table_type = 'SEQUENCE' AND table_name = ? AND BINARY table_name = BINARY ?
                """, [.text(key.generator), .text(key.generator)]
            ).asInt64 ?? 0
        guard exists > 0 else { return nil }
        return try db.scalar("SELECT next_not_cached_value FROM \(try identifier(key.generator))").asInt64
    }

    /// Its trigger dropped: the table's own AUTO_INCREMENT hands out ids again, the same on
    /// every node (also for a table tracked with `--no-triggers`, found from outside).
    public func keyBlockLost(_ db: Database, _ t: TableInfo, _ key: GeneratedKey, range: ClosedRange<Int64>) throws
        -> Bool
    {
        try db.scalar(
            """
            SELECT count(*) FROM information_schema.TRIGGERS
            WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME = ? AND EVENT_OBJECT_TABLE = ?
              AND BINARY EVENT_OBJECT_TABLE = BINARY ?
            """, [.text(Self.keyBlockTrigger(t.name)), .text(t.name), .text(t.name)]
        ).asInt64 == 0
    }

    /// Not the importer's own statement on `table` (`Dialect.setApplying`): what an import
    /// causes there (an application's trigger) is this node's, and draws its ids from the block.
    static func notImporting(_ table: String) -> String {
        "(@datajoin_applying IS NULL OR BINARY @datajoin_applying <> BINARY \(CaptureTriggers.literal(table)))"
    }

    /// The trigger that draws `table`'s new ids from the node's block.
    static func keyBlockTrigger(_ table: String) -> String { CaptureTriggers.generatedName("ds_keyblock_", table) }

    public func setUpKeyBlock(
        _ db: Database, _ t: TableInfo, _ key: GeneratedKey, range: ClosedRange<Int64>, next: Int64
    ) throws {
        let sequence = try identifier(key.generator)
        // DDL takes no parameters: the numbers are written. Each statement commits on MariaDB.
        try db.executeScript(
            """
            CREATE OR REPLACE SEQUENCE \(sequence) START WITH \(literal: next) MINVALUE \(literal: range.lowerBound) \
            MAXVALUE \(literal: range.upperBound) INCREMENT BY 1 CACHE 100 NOCYCLE
            """)
        try installKeyBlockTrigger(db, t, key)
    }

    /// The trigger alone, its sequence as it is: also what the upgrade to 17 writes again.
    func installKeyBlockTrigger(_ db: Database, _ t: TableInfo, _ key: GeneratedKey) throws {
        let sequence = try identifier(key.generator)
        let trigger = try identifier(Self.keyBlockTrigger(t.name))
        let column = Identifier(key.column)
        // Replaced in place: each statement commits on MariaDB, and an insert between a drop
        // and its create took an id from the table's own counter (found in review). One of the
        // same name on another table (renamed away) cannot be replaced from here: dropped.
        let elsewhere =
            try db.scalar(
                """
                SELECT count(*) FROM information_schema.TRIGGERS
                WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME = ? AND BINARY EVENT_OBJECT_TABLE <> BINARY ?
                """, [.text(Self.keyBlockTrigger(t.name)), .text(t.name)]
            ).asInt64 ?? 0
        if elsewhere > 0 { try db.executeScript("DROP TRIGGER IF EXISTS \(trigger)") }
        try db.executeScript(
            """
            CREATE OR REPLACE TRIGGER \(trigger) BEFORE INSERT ON \(t.identifier) FOR EACH ROW
            SET NEW.\(column) = IF(
              (NEW.\(column) IS NULL OR NEW.\(column) = 0) AND \(raw: Self.notImporting(t.name)),
              NEXT VALUE FOR \(sequence), NEW.\(column))
            """)
    }
}
