import ArgumentParser
import DataJoin

@main
struct DataJoinCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datajoin",
        abstract: "Keep the rows of PostgreSQL and SQLite databases in sync through change-bundle files.",
        discussion: helpText("""
            Each database (a node) captures its own inserts, updates and deletes. 'export' writes them
            into compressed, checksummed, signed bundle files; any file copy carries them (USB stick,
            rsync drop folder, shared disk); 'ingest' verifies bundles and applies them on the other side.

            A first sync between two SQLite files:
              datajoin init  --db office.db --node office
              datajoin init  --db laptop.db --node laptop
              datajoin trust --db laptop.db office $(datajoin key --db office.db)
              datajoin track --db office.db sales_order
              datajoin track --db laptop.db sales_order
              datajoin export --db office.db --to /media/usb
              datajoin ingest --db laptop.db /media/usb

            --db takes postgresql://user:pass@host:port/db, sqlite:PATH, or a path ending in .db,
            .sqlite or .sqlite3; DATAJOIN_DB is used when --db is absent.

            Exit status: 0 success, 1 failure, 2 partial success (some bundles refused or changes
            held), 64 usage error.
            """),
        version: "0.1.0",
        subcommands: [
            Init.self, Track.self, Untrack.self, Export.self, Ingest.self, Import.self, Status.self,
            Inspect.self, Verify.self, Key.self, TrustCommand.self, Conflicts.self, Watch.self, Snapshot.self, Prune.self, Check.self,
        ]
    )
}
