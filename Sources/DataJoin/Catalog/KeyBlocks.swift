import Foundation

/// Per-node blocks of ids for keys the database generates (docs/keys.md). Block `b` is the ids
/// `[b·2^24, (b+1)·2^24)`: 16.7 million new rows per table and node, blocks 1 to 127 inside a
/// 32-bit key, up to `2^29 − 1` below 2^53 in a 64-bit one. Block 0 holds the rows a table had
/// before and is never handed out. Block numbers come from one authority (the hub), never from
/// a name: two nodes cannot get the same one.
public enum KeyBlocks {
    public static let size: Int64 = 1 << 24
    /// The words of `track`'s warning about a key from a local sequence.
    static let sameIdsWarning = "two nodes will hand out the same ids"
    /// The highest block whose ids stay below 2^53 (JavaScript clients).
    public static let maxBlock: Int64 = (1 << 29) - 1

    /// The ids of block `b`.
    public static func range(_ b: Int64) -> ClosedRange<Int64> { (b * size)...((b + 1) * size - 1) }

    /// The blocks this node draws from, oldest first.
    public static func blocks(_ db: Database) throws -> [Int64] {
        _ = try NodeIdentity.load(db)
        return try db.rows("SELECT block FROM ds_key_block ORDER BY added_at, block").compactMap { $0.int(0) }
    }

    /// The block new ids come from: the last one added.
    public static func current(_ db: Database) throws -> Int64? { try blocks(db).last }

    /// The same, without loading the node first: for a caller that has (once per command, not
    /// per table), and for the schema upgrade itself, which loading would start again.
    static func latest(_ db: Database) throws -> Int64? {
        try db.scalar("SELECT block FROM ds_key_block ORDER BY added_at DESC, block DESC LIMIT 1").asInt64
    }

    static let authoritySetting = "key_block_authority"
    static let nextSetting = "key_block_next"

    /// Makes this node the one that hands out block numbers, and gives it block 1 (its tracked
    /// tables move onto it); its name. Run again, it changes nothing.
    @discardableResult
    public static func becomeAuthority(_ db: Database) throws -> String {
        let node = try NodeIdentity.load(db).nodeId
        try db.retryingWrite { _ in
            if (try Settings.int(db, authoritySetting, range: 0...1) ?? 0) == 1 { return }
            guard try blocks(db).isEmpty else {
                throw DataJoinError(
                    .usage,
                    "this node has key block(s) from another authority already; the authority is the node that handed them out"
                )
            }
            try Settings.set(db, authoritySetting, 1)
            try Settings.set(db, nextSetting, 2)
            try record(db, block: 1, node: node)
        }
        // A SQLite hub hands out blocks to the others, and draws from none itself.
        if db.dialect.keyBlocksPossible { try add(db, 1) }
        return node
    }

    /// Hands out the next block number to `node` (the authority only): the same number again
    /// for a node that has one, unless `another` (its block ran out).
    public static func grant(_ db: Database, node: String, another: Bool = false) throws -> Int64 {
        guard NodeName.isValid(node) else {
            throw DataJoinError(.usage, "invalid node name '\(node.prefix(64))'")
        }
        _ = try NodeIdentity.load(db)
        return try db.retryingWrite { _ in
            guard try isAuthority(db) else {
                throw DataJoinError(
                    .usage,
                    "this node does not hand out key blocks; run this on the hub (made the authority by 'datajoin key-blocks authority')"
                )
            }
            if !another,
                let had = try db.scalar(
                    "SELECT max(block) FROM ds_key_grant WHERE node_id = ?", [.text(node)]
                ).asInt64
            {
                return had
            }
            let next = try Settings.int(db, nextSetting, range: 2...(maxBlock + 1)) ?? 2
            guard next <= maxBlock else {
                throw DataJoinError(.usage, "every key block up to \(maxBlock) is handed out")
            }
            try record(db, block: next, node: node)
            try Settings.set(db, nextSetting, next + 1)
            return next
        }
    }

    private static func record(_ db: Database, block: Int64, node: String) throws {
        try db.execute(
            "INSERT INTO ds_key_grant (block, node_id, granted_at) VALUES (?, ?, ?)",
            [.integer(block), .text(node), .text(nowText())])
    }

    /// Gives this node block `b` (from the authority's `grant`) and moves every tracked table
    /// with a generated key onto it.
    public static func add(_ db: Database, _ b: Int64, setUp: Bool = true) throws {
        _ = try NodeIdentity.load(db)
        guard (1...maxBlock).contains(b) else {
            throw DataJoinError(.usage, "a key block is a number from 1 to \(maxBlock), not \(b)")
        }
        guard db.dialect.keyBlocksPossible else {
            throw DataJoinError(
                .usage,
                "\(db.displayName): SQLite cannot hand out new rows' ids from a block (docs/keys.md); "
                    + "give rows their ids in the application, or use UUIDs")
        }
        if b == 1, !(try isAuthority(db)) {
            throw DataJoinError(
                .usage, "block 1 belongs to the node that hands out blocks (the hub); use the number 'grant' printed")
        }
        // The authority knows whom each number went to: it takes only its own (found from
        // outside: the hub added a laptop's block and handed out the laptop's ids).
        if try isAuthority(db) {
            let me = try NodeIdentity.load(db).nodeId
            let holder = try db.scalar("SELECT node_id FROM ds_key_grant WHERE block = \(Value.integer(b))").asString
            guard holder == me else {
                throw DataJoinError(
                    .usage,
                    holder.map { "block \(b) was granted to \($0), not to this node; nothing changed" }
                        ?? "block \(b) is not granted yet; on the authority, take one with 'datajoin key-blocks grant --node \(me) --another'; nothing changed"
                )
            }
        }
        // Every table must fit the block before anything is written: MariaDB commits each DDL
        // statement, so a refusal half way left a table on the new block (found from outside).
        for t in try blockedTables(db) { try checkFits(db, t, block: b) }
        try db.retryingWrite { _ in
            if try blocks(db).contains(b) { return }
            try db.execute(
                "INSERT INTO ds_key_block (block, added_at) VALUES (?, ?)", [.integer(b), .text(nowText())])
            guard setUp else { return }
            for t in try blockedTables(db) { _ = try KeyBlocks.setUp(db, t) }
        }
    }

    /// Moves every generator above the highest id of this node's block its table holds, never
    /// back. A node restored from a backup hands out ids it had handed out before; its own rows
    /// come back from its peers (docs/delivery.md, epochs), and every import then moves its
    /// generators past them (docs/keys.md).
    static func raise(_ db: Database) throws {
        guard let b = try current(db) else { return }
        let r = range(b)
        let tracked = Set(try Tracker.trackedNames(db))
        for t in try TableRegistry.load(db).values where tracked.contains(t.name) {
            guard try !optedOut(db, t.name), let key = try db.dialect.generatedKey(db, t), fits(key, r) else {
                continue
            }
            guard let top = try highestId(db, t, key, in: r), top < r.upperBound else { continue }
            try db.dialect.raiseKeyBlock(db, key, above: top)
        }
    }

    /// A node restored from a backup learns (docs/delivery.md, epochs) that it lost `count`
    /// changes made after the backup. Each may have been an insert that took the next id, so
    /// every generator moves `count` ids past where it stands (at most to its block's end): ids
    /// handed out from then on were not handed out before the restore. The lost rows, when
    /// they come back, move it past themselves too (`raise`). Inside the ingest's transaction.
    static func skipLost(_ db: Database, changes count: Int64) throws {
        guard count > 0, let b = try current(db) else { return }
        let r = range(b)
        for t in try blockedTables(db) {
            guard let key = try db.dialect.generatedKey(db, t), fits(key, r) else { continue }
            let next = try next(db, t, key, in: r)
            try db.dialect.raiseKeyBlock(db, key, above: min(next - 1 + count, r.upperBound))
        }
    }

    static func isAuthority(_ db: Database) throws -> Bool {
        (try Settings.int(db, authoritySetting, range: 0...1) ?? 0) == 1
    }

    /// Tracked tables that draw from the node's block (the registry also remembers untracked
    /// ones, for changes captured before).
    static func blockedTables(_ db: Database) throws -> [TableInfo] {
        let tracked = Set(try Tracker.trackedNames(db))
        return try TableRegistry.load(db).values.sorted(by: { $0.name < $1.name }).filter {
            tracked.contains($0.name)
        }.filter { try !optedOut(db, $0.name) }
    }

    /// Refuses a block that `t`'s key column cannot hold (a smallint), or that `t` has used up,
    /// before anything is written (MariaDB commits each DDL statement).
    static func checkFits(_ db: Database, _ t: TableInfo, block: Int64? = nil) throws {
        guard let key = try db.dialect.generatedKey(db, t), let b = try block ?? current(db) else { return }
        let r = range(b)
        guard fits(key, r) else {
            throw DataJoinError(
                .usage,
                "\(t.name).\(key.column) holds ids up to \(key.maxValue), below key block \(b) (\(r.lowerBound)…); "
                    + "widen the column (BIGINT) or track it with --no-key-blocks")
        }
        guard try next(db, t, key, in: r) <= r.upperBound else {
            throw DataJoinError(
                .usage,
                "\(t.name): this node's key block \(r.lowerBound)…\(r.upperBound) is used up; "
                    + "get another from the hub ('datajoin key-blocks grant --another') and add it")
        }
    }

    /// `t`'s generated key should draw from this node's key block and does not.
    static func lost(_ db: Database, _ t: TableInfo) throws -> Bool {
        guard let b = try latest(db), try !optedOut(db, t.name), let key = try db.dialect.generatedKey(db, t) else {
            return false
        }
        return try db.dialect.keyBlockLost(db, t, key, range: range(b))
    }

    /// A key too small for the block was never set up on it (`checkFits` refused it): a table
    /// rebuilt with a SMALLINT key stays on its own numbering until the operator's cure, and
    /// imports meanwhile do not stop at it (PostgreSQL 22003 on every import, found from outside).
    private static func fits(_ key: GeneratedKey, _ r: ClosedRange<Int64>) -> Bool { r.upperBound <= key.maxValue }

    /// The id `t` hands out next in block `r`: above every id of the block the table holds, and
    /// never back (a block set up again, after untrack and track, goes on after the ids it gave).
    private static func next(_ db: Database, _ t: TableInfo, _ key: GeneratedKey, in r: ClosedRange<Int64>) throws
        -> Int64
    {
        var next = (try highestId(db, t, key, in: r) ?? (r.lowerBound - 1)) + 1
        if let pending = try db.dialect.generatorNext(db, key), r.contains(pending) { next = max(next, pending) }
        return next
    }

    /// Refuses, before anything is written, a generated key the brand cannot draw from a block
    /// (SQLite): tracked as it is, two nodes inserting without an id would merge their rows.
    static func checkPossible(_ db: Database, _ t: TableInfo) throws {
        guard !db.dialect.keyBlocksPossible, let key = try db.dialect.generatedKey(db, t) else { return }
        throw DataJoinError(
            .usage,
            "\(t.name).\(key.column) is an INTEGER PRIMARY KEY that SQLite fills in with max(\(key.column)) + 1, "
                + "and SQLite cannot draw new ids from this node's own key block: rows inserted without an id on two nodes "
                + "would get one id and merge. If the application gives every id itself, or this node never inserts rows, "
                + "track it with --no-key-blocks (a collision is then reported by 'datajoin check' and 'status'); "
                + "otherwise give the table a UUID or natural key (docs/keys.md)")
    }

    /// Tables tracked with `--no-key-blocks` keep the database's numbering when a block is added.
    static func optOut(_ db: Database, _ table: String) throws {
        try Settings.set(db, "no_key_blocks:" + table, 1)
    }

    static func optedOut(_ db: Database, _ table: String) throws -> Bool {
        (try Settings.int(db, "no_key_blocks:" + table, range: 0...1) ?? 0) == 1
    }

    /// Moves `t`'s generator onto this node's current block, above any id of that block the
    /// table holds; the range set up, or nil when the key is not generated or the node has no
    /// block. Inside the caller's transaction.
    static func setUp(_ db: Database, _ t: TableInfo) throws -> ClosedRange<Int64>? {
        guard let key = try db.dialect.generatedKey(db, t), let b = try current(db) else { return nil }
        try checkFits(db, t, block: b)
        let r = range(b)
        try db.dialect.setUpKeyBlock(db, t, key, range: r, next: try next(db, t, key, in: r))
        return r
    }

    /// The highest id of `r` that `t` holds.
    private static func highestId(_ db: Database, _ t: TableInfo, _ key: GeneratedKey, in r: ClosedRange<Int64>)
        throws -> Int64?
    {
        let column = Identifier(key.column)
        return try db.scalar(
            "SELECT max(\(column)) FROM \(t.identifier) WHERE \(column) BETWEEN ? AND ?",
            [.integer(r.lowerBound), .integer(r.upperBound)]
        ).asInt64
    }
}

/// A key column the database fills in: the generator it draws from, and the largest value the
/// column holds.
public struct GeneratedKey: Sendable, Equatable {
    public var column: String
    /// The brand's name for what hands out the ids (a PostgreSQL sequence).
    public var generator: String
    public var maxValue: Int64
}
