import Foundation
import ArgumentParser
import DataJoin

struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove sync history no node needs any more.",
        usage: usage(
            "datajoin prune [--db <url>] [--keep <duration>] [--bundles <folder> ...] [--files-only] [--no-relay]"
        ),
        discussion: helpText(
            """
            Removes, in one transaction:
              - outbox rows every trusted peer has confirmed (a peer that never
                answers keeps them: revoke a retired node with
                'datajoin trust --revoke NODE');
              - applied inbox rows (on a relaying hub, only once every peer has
                confirmed them; a node that has not run 'export --relay' yet keeps
                each row a peer may lack (neither its origin nor its sender, and
                unconfirmed by the peer's receipts), as a hub must send them first:
                --no-relay says this node never forwards); each removed row's stamp
                stays for --keep, so a copy of it that comes again is still compared
                (a restored node that reused its seq, docs/delivery.md);
              - tombstones of deleted rows older than --keep (default 30d).

            Then, with --bundles FOLDER: the bundle files this node wrote (and signed)
            into FOLDER that every trusted peer has confirmed holding, by the receipts in
            the peers' bundles. Other nodes' files, snapshots and files some peer still
            needs stay. A drop folder then stays small, and each ingest scans only what
            is new (docs/delivery.md, "Drop folders").

            From then on, a change stamped before the retention is held, not applied: it comes from a
            node that has been away longer than --keep, and could bring a deleted row back. That node
            re-joins from a snapshot ('datajoin snapshot', docs/snapshot.md).

            Example:
              datajoin prune --db $OFFICE_PG --keep 90d
              datajoin prune --db $OFFICE_PG --bundles /srv/datajoin/down
              datajoin prune --db laptop.db --bundles /media/usb/datajoin --files-only
            """))

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    @Option(
        help: ArgumentHelp(
            "How long tombstones are kept: 30d, 12h, 90m, 2w, 1y (365 days; a bare number is days).",
            valueName: "duration"))
    var keep: String = "30d"

    @Option(
        name: .customLong("bundles"),
        help: ArgumentHelp(
            "A folder this node exports into: remove its files every peer has confirmed (repeatable).",
            valueName: "folder"), completion: .directory)
    var bundleFolders: [String] = []

    @Flag(help: "With --bundles: remove the confirmed files only, and leave the database's history as it is.")
    var filesOnly = false

    @Flag(
        help:
            "This node never forwards changes (every node sends to every other): prune its applied inbox rows although it has several peers and has not relayed."
    )
    var noRelay = false

    func validate() throws {
        if filesOnly && bundleFolders.isEmpty {
            throw ValidationError(
                "--files-only goes with --bundles FOLDER (the folders to remove confirmed files from)")
        }
    }

    func run() throws {
        try DataJoin_run {
            let seconds = try Pruner.parseDuration(keep)
            // A folder named twice is pruned once (it was pruned twice, and reported twice).
            var seen = Set<String>()
            let folders = bundleFolders.filter {
                seen.insert(URL(fileURLWithPath: $0).standardizedFileURL.path).inserted
            }
            for folder in folders { try BundleFolderPruner.checkFolder(folder) }
            let db = try database.open()
            if !filesOnly {
                let r = try Pruner.run(db, keepSeconds: seconds, noRelay: noRelay)
                print(
                    "pruned \(r.outboxRows) outbox row(s), \(r.inboxRows) inbox row(s), \(r.tombstones) tombstone(s)")
                if !output.quiet {
                    print("changes stamped before \(r.cutoff) are held from now on")
                    if !r.waitingFor.isEmpty {
                        print("outbox rows kept for: \(r.waitingFor.joined(separator: ", ")) (not confirmed yet)")
                    }
                }
                if r.keptForRelay > 0 {
                    Console.warn(
                        "kept \(r.keptForRelay) applied inbox row(s) that a peer may lack (neither their origin nor the node that sent them here, and its receipts do not confirm them): "
                            + "they go once it confirms them; a hub that has not run 'export --relay' yet must relay them before they go (run 'datajoin export --relay' before 'prune'), "
                            + "and only a node that never forwards, whose peers each hear from every origin themselves, prunes them with --no-relay"
                    )
                }
                for w in try RelayStream.laggingWarnings(db) + PeerRestore.lackingPrunedWarnings(db)
                    + Epochs.lostOwnWarnings(db) + Forks.warnings(db)
                {
                    Console.warn(w)
                }
            }
            for folder in folders {
                let f = try BundleFolderPruner.run(db, folder: folder)
                print(
                    "removed \(f.removed) bundle file(s) (\(f.removedBytes) bytes) from \(folder); kept \(f.kept) that some peer has not confirmed"
                        + (f.waitingFor.isEmpty ? "" : " (waiting for: \(f.waitingFor.joined(separator: ", ")))")
                        + (f.notOurs > 0
                            ? "; left \(f.notOurs) named as this node's that it did not sign or that hold other changes than their name says"
                            : ""))
            }
        }
    }
}
