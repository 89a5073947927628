import ArgumentParser
import DataJoin
import Foundation

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Make a database a DataJoin node: install the ds_ tables, record its node id, create its signing key.",
        usage: usage("datajoin init [--db <url>] --node <name>"),
        discussion: helpText(
            """
            Idempotent: running it again with the same --node changes nothing; a different name is refused.

            Example:
              datajoin init --db sqlite:testapp1.db --node testapp1
              datajoin init --db postgresql://app@localhost/testapp2 --node testapp2
            """))

    @OptionGroup var database: DatabaseOptions

    @OptionGroup var output: OutputOptions

    @Option(help: ArgumentHelp("This node's unique name (letters, digits, '.', '_', '-').", valueName: "name"))
    var node: String

    func run() throws {
        try DataJoin_run {
            // Every argument is checked before anything is touched: a refused name creates no file.
            guard NodeName.isValid(node) else {
                throw DataJoinError(
                    .usage,
                    "invalid node name '\(node.prefix(80))': 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit"
                )
            }
            let db = try database.open(create: true)
            let r = try NodeSetup.initialize(db, node: node)
            print(
                r.created
                    ? "initialized \(db.displayName) as node \(r.nodeId)"
                    : "\(db.displayName) is already node \(r.nodeId); nothing changed")
            if r.created {
                let word = try DataJoin.Trust.publicKey(db).key
                print("public key: \(word)  (peers run: datajoin trust --db URL \(r.nodeId) \(word))")
            }
        }
    }
}

/// `run` from Support, under a name that does not clash with ParsableCommand.run().
func DataJoin_run(_ body: () throws -> Void) throws {
    // Past a file-size limit, write(2) should fail with EFBIG (reported, pointer unmoved)
    // instead of the process being killed.
    signal(SIGXFSZ, SIG_IGN)
    try run(body)
}
