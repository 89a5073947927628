import ArgumentParser
import DataJoin

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show this node: id, tracked tables, changes waiting, pointers, last export and ingest.",
        usage: usage("datajoin status [--db <url>] [--json]"),
        discussion:
            "Example:\n  datajoin status --db sqlite:testapp1.db\n  datajoin status --db sqlite:testapp1.db --json")

    @OptionGroup var database: DatabaseOptions

    @OptionGroup var output: OutputOptions

    @Flag(help: "Print JSON with stable field names (docs/cli.md).")
    var json = false

    func run() throws {
        try DataJoin_run {
            let db = try database.open()
            let s = try NodeStatus.read(db)
            Console.result(json ? s.json : s.text)
        }
    }
}

struct Conflicts: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List values that lost a merge (both values, versions and origins).",
        usage: usage(
            "datajoin conflicts [--db <url>] [--json] [--limit <n>]"),
        discussion: "Example:\n  datajoin conflicts --db sqlite:testapp1.db --json")

    @OptionGroup var database: DatabaseOptions

    @OptionGroup var output: OutputOptions

    @Flag(help: "Print JSON.")
    var json = false

    @Option(help: ArgumentHelp("Show at most N entries, oldest first (the rest are counted).", valueName: "n"))
    var limit: Int = 1000

    func run() throws {
        try DataJoin_run {
            guard limit >= 1 else { throw DataJoinError(.usage, "--limit must be at least 1") }
            let db = try database.open()
            let list = try ConflictLog.list(db, limit: limit)
            // Never a silent cut: what is not shown is counted.
            let total = try ConflictLog.count(db)
            if total > Int64(list.count) {
                Console.warn("showing the first \(list.count) of \(total) conflicts; --limit \(total) shows them all")
            }
            if json {
                Console.result("[" + list.map(\.json).joined(separator: ",") + "]")
            } else if list.isEmpty {
                print("no conflicts")
            } else {
                for e in list { print(e.text) }
            }
        }
    }
}
