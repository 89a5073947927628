import ArgumentParser
import DataJoin

struct Track: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start capturing inserts, updates and deletes of tables into ds_change_outbox.",
        usage: usage(
            "datajoin track [--db <url>] [--no-triggers] [--backfill] [--no-key-blocks] [<tables> ...]"
        ),
        discussion: helpText(
            """
            Installs capture triggers (plpgsql on PostgreSQL, SQL triggers on SQLite and MariaDB). A table needs a
            primary key; composite keys work. After ALTER TABLE of a tracked table, run 'track'
            on it again: its capture is installed again for the columns it has now (export,
            status and check name such a table until then).

            Rows the table already holds are not exported: only changes from now on are, and track
            says how many rows it leaves behind. --backfill captures them too, as inserts (also on a
            table tracked before), so that peers receive them; a peer that holds the same key
            already merges the two rows by the usual rules (docs/conflict-rules.md, rule E).

            A key the database generates (serial, identity, AUTO_INCREMENT) draws new ids from this
            node's key block, so rows inserted on two nodes never get one id ('datajoin key-blocks';
            docs/keys.md). SQLite cannot draw ids from a block: track refuses an INTEGER PRIMARY
            KEY there unless --no-key-blocks says the application gives the ids (or the node never
            inserts rows). Two rows inserted apart with one generated key are reported by 'check'.

            Example:
              datajoin track --db sqlite:testapp1.db sales_order
              datajoin track --db $PG_URL --backfill customer
              # a hub that only relays:
              datajoin track --db sqlite:hub.db --no-key-blocks orders
            """))

    @OptionGroup var database: DatabaseOptions

    @OptionGroup var output: OutputOptions

    @Flag(
        help:
            "Register the tables without capture triggers: the application writes ds_change_outbox rows itself (docs/capture.md)."
    )
    var noTriggers = false

    @Flag(help: "Also capture the rows the tables hold now, as inserts, so that peers receive them.")
    var backfill = false

    @Flag(
        help:
            "Keep the database's own numbering of generated keys (needed for an INTEGER PRIMARY KEY on SQLite): rows inserted on two nodes with one id then merge, column by column, and 'check' reports it (docs/keys.md)."
    )
    var noKeyBlocks = false

    @Argument(help: "Tables to track.")
    var tables: [String] = []

    func run() throws {
        try DataJoin_run {
            if tables.isEmpty { throw DataJoinError(.usage, "name at least one table to track") }
            let db = try database.open()
            for t in try Tracker.track(
                db, tables: tables, triggers: !noTriggers, backfill: backfill, keyBlocks: !noKeyBlocks)
            {
                if !t.wasTracked { print("tracking \(t.table) (key: \(t.keyColumns.joined(separator: ", ")))") }
                if let n = t.backfilled {
                    print("captured \(n) existing row(s) of \(t.table) as inserts; the next export sends them")
                }
                for n in t.notes { print(n) }
                for w in t.warnings { Console.warn(w) }
            }
        }
    }
}

struct Untrack: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop capturing changes of tables (changes already captured still export).",
        usage: usage("datajoin untrack [--db <url>] [<tables> ...]"),
        discussion: helpText(
            """
            Changes of the table that peers send still apply here: its rows keep their
            versions, so 'datajoin track' later goes on where it stopped. A table that was
            never tracked holds them instead, until it is tracked.

            Example:
              datajoin untrack --db sqlite:testapp1.db sales_order
            """))

    @OptionGroup var database: DatabaseOptions

    @OptionGroup var output: OutputOptions

    @Argument(help: "Tables to stop tracking.")
    var tables: [String] = []

    func run() throws {
        try DataJoin_run {
            if tables.isEmpty { throw DataJoinError(.usage, "name at least one table to untrack") }
            let db = try database.open()
            let (names, warnings) = try Tracker.untracking(db, tables: tables)
            for t in names { print("no longer tracking \(t)") }
            for w in warnings { Console.warn(w) }
        }
    }
}
