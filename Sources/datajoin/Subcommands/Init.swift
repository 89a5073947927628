import ArgumentParser
import DataJoin
import Foundation

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Make a database a DataJoin node: install the ds_ tables, record its node id, create its signing key.",
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
    Interrupt.install()
    try run(body)
}

/// SIGINT and SIGTERM end a command with one line and a status of their own (130, 143): they
/// ended it silently before (found from outside). What was committed stays, the transaction in
/// progress is rolled back by the database, and a bundle being written stays a `.tmp` that the
/// next export removes. `watch` replaces these handlers with its own (it stops between cycles).
enum Interrupt {
    /// Built before the handler can run: a handler may only call async-signal-safe functions.
    /// On a terminal it starts a line of its own (a progress line may be drawn there).
    private static let line = Array(
        ((isatty(2) == 1 ? "\n" : "")
            + "datajoin: interrupted: the step in progress was rolled back, what was done before it is kept; run the command again to finish\n")
            .utf8)

    static func install() {
        _ = line.count
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { sig in
                Interrupt.line.withUnsafeBufferPointer { _ = write(2, $0.baseAddress, $0.count) }
                _exit(128 + sig)
            }
        }
    }
}
