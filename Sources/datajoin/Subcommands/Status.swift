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
                let items = list.map { e in
                    "{\"table\":\(jsonQuote(e.table)),\"key\":\(jsonQuote(e.key)),\"column\":\(e.column.map(jsonQuote) ?? "null"),"
                        + "\"winner_value\":\(e.winnerValue ?? "null"),\"winner_hlc\":\(e.winner.hlc),\"winner_node\":\(jsonQuote(e.winner.node)),"
                        + "\"loser_value\":\(e.loserValue ?? "null"),\"loser_hlc\":\(e.loser.hlc),\"loser_node\":\(jsonQuote(e.loser.node)),"
                        + "\"reason\":\(jsonQuote(e.reason)),\"recorded_at\":\(jsonQuote(e.recordedAt))}"
                }
                print("[" + items.joined(separator: ",") + "]")
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

func jsonQuote(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        default: if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}
