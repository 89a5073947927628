import ArgumentParser
import DataJoin

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the changes captured since the last export into bundle files.",
        usage: usage(
            "datajoin export [--db <url>] --to <dir> [--max-changes <n>] [--relay] [--resend] [--peer <name>] [--encrypt] [--recipient <node> ...]"
        ),
        discussion: helpText(
            """
            Each bundle is one gzip file, checksummed and signed, written as a hidden .tmp file, flushed
            to disk and renamed; the export pointer (program 1000) moves only then. Prints the path of
            every file written. With no new changes it writes nothing, or, when this node has taken in
            changes since the last bundle it wrote (into any folder), one small receipts-only bundle
            that replaces its last: a node that never edits still confirms what it holds, so its
            peers can prune. It is written again once a day, and by --resend with nothing to resend
            (the cure for a lost one).

            File names say what a bundle holds; a relay's name starts with the relay, so it never
            takes the name of an origin's own bundle:
              laptop-1_000000000001-000000000250_1a2b3c4d.djb
                laptop-1's own changes: first and last seq, its epoch (8 hex digits)
              office~relay_000000000001-000000000900_5e6f7a8b.djb
                --relay: what office received from others, its inbox ids 1-900
                (its relay stream); 'datajoin inspect' lists each origin and its
                seq range. Peers confirm the parts of the stream they hold;
                --relay --resend writes the parts a peer lacks again, named alike
              laptop-2~~receipts_000000000001-000000000001_1a2b3c4d.djb
                no changes: what laptop-2 holds (receipts only)

            Example:
              datajoin export --db sqlite:testapp1.db --to /media/usb/datajoin
              datajoin export --db $PG_URL --to /srv/drop --max-changes 100000
              datajoin export --db $HUB --to /srv/drop --relay   # a hub forwards all
              datajoin export --db laptop.db --to /media/usb --resend --peer office
              # only trusted peers can read it:
              datajoin export --db laptop.db --to /media/usb --encrypt
            """))

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .customLong("to"), help: ArgumentHelp("Folder to write bundles into (must exist).", valueName: "dir"))
    var folder: String

    @Option(
        help: ArgumentHelp(
            "Split into bundles of about N changes; a PostgreSQL source transaction is never split (SQLite and MariaDB record no transaction id: cut anywhere).",
            valueName: "n"))
    var maxChanges: Int?

    @Flag(
        help:
            "Also write the changes received from other nodes, with their original origin (a hub forwards everything to everyone)."
    )
    var relay = false

    @Flag(help: "Write again the changes peers have not confirmed (the cure for a lost USB stick).")
    var resend = false

    @Option(help: ArgumentHelp("With --resend: only what this peer has not confirmed.", valueName: "name"))
    var peer: String?

    @OptionGroup var encryption: EncryptionOptions

    /// Arguments first: a bad count is a usage error whatever the database or folder.
    func validate() throws {
        if let m = maxChanges, m < 1 { throw ValidationError("--max-changes takes a value above 0, not \(m)") }
    }

    func run() throws {
        try DataJoin_run {
            let db = try database.open()
            let options = ExportOptions(
                folder: folder, maxChanges: maxChanges, relay: relay, resend: resend, peer: peer,
                encrypt: encryption.encrypt, recipients: encryption.recipient)
            let written: [ExportedBundle]
            do {
                written = try Exporter.export(db, options, reporter: output.reporter())
            } catch let held as ExportHeld {
                // Partial: what came before the held change is written and its pointer moved.
                if !output.quiet { for b in held.bundles { print(b.path) } }
                Console.error(held.message)
                throw Exit.partial
            }
            // Every relay names the peers that lack what was pruned here, until they re-join.
            for w in try (relay ? RelayStream.laggingWarnings(db) : [])
                + (resend ? PeerRestore.lackingPrunedWarnings(db) : []) + Epochs.lostOwnWarnings(db)
                + Forks.warnings(db)
                + CaptureDrift.find(db).map(\.message)
            {
                Console.warn(w)
            }
            if written.isEmpty {
                if !output.quiet {
                    // A re-send that finds nothing may be asked for what was pruned here (found
                    // from outside: it said "nothing new to export", and the peer waited).
                    print(
                        resend
                            ? "nothing to re-send\(peer.map { " to \($0)" } ?? ""): this node holds nothing it lacks; what was pruned here is not re-sent (if it still lacks changes, re-join it from a snapshot of a node that holds them, docs/snapshot.md)"
                            : "nothing new to export")
                }
                return
            }
            if written.allSatisfy(\.receiptsOnly) {
                if !output.quiet {
                    for b in written { print(b.path) }
                    print("nothing new to export; wrote what this node holds, so its peers can prune (receipts only)")
                }
                return
            }
            let leftOut = try EncryptionKeys.leftOut(db, recipients: encryption.recipient)
            if !leftOut.isEmpty {
                var named = Set<String>()
                let readers = encryption.recipient.filter { named.insert($0).inserted }
                Console.warn(
                    "only \(readers.joined(separator: ", ")) can read these changes, and each change is exported once: "
                        + "\(leftOut.joined(separator: ", ")) can get them only from a hub that received them and relays them, or from 'export --resend --peer NODE' here"
                )
            }
            // --quiet prints nothing but errors and warnings, on every command.
            if output.quiet { return }
            for b in written { print(b.path) }
            if !output.quiet {
                print("exported \(written.reduce(0) { $0 + $1.changes }) change(s) in \(written.count) bundle(s)")
            }
        }
    }
}
