import ArgumentParser
import DataJoin

struct Snapshot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the current state of every tracked table, with its versions, into one bundle.",
        usage: usage(
            "datajoin snapshot [--db <url>] --to <dir> [--encrypt] [--recipient <node> ...] [--leave-out <table> ...]"
        ),
        discussion: helpText(
            """
            A new node joins from a snapshot instead of replaying all history: create the tables,
            'datajoin init', 'datajoin track', trust the sender and have it trust the new node, then
            'datajoin snapshot' there and 'datajoin ingest' the snapshot. An encrypted snapshot (of a
            node set to 'encrypt always', or one that has received encrypted bundles) is for the
            peers trusted when it is written: trust the new node first, or name it with --recipient.
            Later bundles apply on top of it. Into a database that already has rows, a snapshot merges
            by versions like any other bundle (newer values win, tombstones keep deleted rows away).

            A table untracked here that took part in syncing stops the snapshot: its rows may hold
            writes no trigger saw. Run 'datajoin track --backfill' for it, or take the snapshot on a
            node that tracks it; a table no node syncs any more is left out with --leave-out (a
            joiner then gets none of its rows or changes).

            The tables are read in one consistent database snapshot and streamed: memory stays flat
            however many rows they hold (one value of tens of MiB costs several times its size
            while it passes). The file is <node>~snapshot_<time>_<id>.djb, signed like any bundle.

            Example:
              datajoin init   --db new-laptop.db --node laptop3  # tables created first
              datajoin track  --db new-laptop.db sales_order customer
              datajoin trust  --db new-laptop.db office <office key>
              datajoin trust  --db $OFFICE_PG laptop3 <laptop3 key>
              datajoin snapshot --db $OFFICE_PG --to /media/usb
              datajoin ingest --db new-laptop.db /media/usb/office~snapshot_*.djb
            """))

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    @Option(
        name: .customLong("to"), help: ArgumentHelp("Folder to write the snapshot into (must exist).", valueName: "dir")
    )
    var folder: String

    @OptionGroup var encryption: EncryptionOptions

    @Option(
        name: .customLong("leave-out"),
        help: ArgumentHelp(
            "A table untracked here that no node syncs any more: left out (repeatable).", valueName: "table"))
    var leaveOut: [String] = []

    func run() throws {
        try DataJoin_run {
            let db = try database.open()
            let written = try Snapshotter.write(
                db, folder: folder, encrypt: encryption.encrypt, recipients: encryption.recipient,
                leavingOut: leaveOut, reporter: output.reporter())
            print(written.path)
            if !output.quiet {
                // An encrypted snapshot is for the peers trusted now: a node trusted later
                // cannot open it (found in review), so who can is said.
                let readers =
                    written.encryptedTo.isEmpty
                    ? "" : ", encrypted to \(written.encryptedTo.joined(separator: ", ")) (only they can read it)"
                print("snapshot of \(written.changes) record(s), \(written.bytes) bytes\(readers)")
            }
        }
    }
}
