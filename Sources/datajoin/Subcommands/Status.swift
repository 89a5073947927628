import ArgumentParser
import DataJoin

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show this node: id, tracked tables, changes waiting, pointers, last export and ingest.",
        discussion: "Example:\n  datajoin status --db sqlite:testapp1.db\n  datajoin status --db sqlite:testapp1.db --json")

    @OptionGroup var database: DatabaseOptions

    @Flag(help: "Print JSON with stable field names (docs/cli.md).")
    var json = false

    func run() throws {
        try DataJoin_run {
            let db = try database.open()
            let s = try NodeStatus.read(db)
            print(json ? s.json : s.text)
        }
    }
}

struct Conflicts: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List values that lost a merge (both values, versions and origins).",
        discussion: "Example:\n  datajoin conflicts --db sqlite:testapp1.db --json")

    @OptionGroup var database: DatabaseOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        try DataJoin_run {
            let db = try database.open()
            let list = try ConflictLog.list(db)
            if json {
                print("[" + list.map(\.json).joined(separator: ",") + "]")
            } else if list.isEmpty {
                print("no conflicts")
            } else {
                for e in list {
                    print("\(e.table) \(e.key)\(e.column.map { "." + $0 } ?? ""): kept \(e.winnerValue ?? "-") (\(e.winner)), lost \(e.loserValue ?? "-") (\(e.loser)): \(e.reason)")
                }
            }
        }
    }
}
