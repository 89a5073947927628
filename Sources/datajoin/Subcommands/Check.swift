import ArgumentParser
import DataJoin
import Foundation

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Check a node's bookkeeping: every captured change stamped or waiting, seqs contiguous, nothing twice, pointers true.",
        usage: usage(
            "datajoin check [--db <url>] [--repair] [--clear-collisions]"
        ),
        discussion: helpText(
            """
            Reads only (one snapshot, no lock that writers wait on). Exit status 0 when every rule
            holds; 1 with one line per broken rule otherwise. The rules are in docs/reliability.md
            ("Invariants"); a broken one is a bug worth reporting with the output.

            A key collision (rule key-collision) is not a bug of DataJoin: two nodes inserted
            different rows with one generated key (key blocks off, or a node restored from a
            backup), and the rows merged. Give one of them a new id, then --clear-collisions.

            Example:
              datajoin check --db laptop.db
              datajoin check --db laptop.db --repair
              datajoin check --db postgresql://office.example/sales
            """))

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    @Flag(
        help:
            "First put outbox rows that an older datajoin left unstamped back into the backlog (the next export sends them)."
    )
    var repair = false

    @Flag(
        help:
            "Forget the key collisions reported so far (two rows inserted apart with one generated key), after dealing with them; docs/keys.md."
    )
    var clearCollisions = false

    func run() throws {
        var broken = false
        try DataJoin_run {
            let db = try database.open()
            if clearCollisions {
                let n = try KeyCollisions.clear(db)
                if !output.quiet { print("cleared: \(n) key collision(s)") }
            }
            if repair {
                let n = try NodeCheck.repair(db)
                if !output.quiet { print("repaired: \(n) stranded outbox row(s) back in the backlog") }
            }
            let report = try NodeCheck.run(db)
            for violation in report.violations { Console.error("\(violation.rule): \(violation.detail)") }
            broken = !report.violations.isEmpty
            if !output.quiet {
                let summary =
                    "\(report.outboxRows) outbox and \(report.inboxRows) inbox rows, \(report.origins) origin(s) in "
                    + String(format: "%.2f s", report.seconds)
                print(
                    broken ? "check: \(report.violations.count) rule(s) broken (\(summary))" : "check: OK (\(summary))")
            }
        }
        if broken { throw ExitCode.failure }
    }
}
