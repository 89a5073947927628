import ArgumentParser
import DataJoin
import Foundation

struct Ingest: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify bundle files, load them into ds_change_inbox, then import them.",
        usage: usage(
            "datajoin ingest [--db <url>] [--no-import] [--dry-run] [<path> ...]"
        ),
        discussion: helpText(
            """
            Takes files and folders (a folder's *.djb or *.DJB files, in name order; hidden and temporary files
            are skipped). Each bundle is checked (format, checksum, signature of a trusted sender) and
            loaded in one transaction. A bundle seen before, or changes already loaded, load once; this
            node's own changes are skipped. A bad bundle is refused with its reason, the others still
            load, and the exit status is 2; when one is refused and none loads, the refusal's class
            (65 damaged or forged, 77 sender not trusted, 66 not there).

            Example:
              datajoin ingest --db sqlite:testapp2.db /media/usb/datajoin
              datajoin ingest --db $PG_URL --no-import bundle1.djb bundle2.djb
              datajoin ingest --db sqlite:testapp2.db --dry-run /media/usb/datajoin
            """))

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    @Flag(help: "Only load into the inbox; apply later with 'datajoin import'.")
    var noImport = false

    @Flag(help: "Report what would be loaded and applied (per table) and which conflicts would occur; change nothing.")
    var dryRun = false

    @Argument(help: ArgumentHelp("Bundle files or folders.", valueName: "path"), completion: .file())
    var paths: [String] = []

    func run() throws {
        var partial = false
        var allRefused: DataJoinError.Code?
        try DataJoin_run {
            if paths.isEmpty { throw DataJoinError(.usage, "name at least one bundle file or folder to ingest") }
            let real = try database.open()
            let dry = try dryRun ? DryRunDatabase(real) : nil
            let db: Database = dry ?? real
            let conflictsBefore = try DryRunReport.conflictMark(db)
            var options = IngestOptions(paths: paths, importAfter: !noImport, quarantine: !dryRun)
            options.fileDone = { show($0) }
            let report = try Ingester.ingest(db, options, reporter: output.reporter())
            if let dry {
                DryRunReport.show(
                    report.imported ?? ImportReport(), conflicts: try DryRunReport.conflicts(db, after: conflictsBefore)
                )
                try dry.finish()
            }
            if report.files.isEmpty && !output.quiet { print("no bundle files found") }
            for n in report.notices + report.gaps { Console.warn(n) }
            // Every file refused and nothing earlier to apply: the refusals are the whole story,
            // not a line of zeros before them.
            if let r = report.imported, report.allRefused == nil || !r.isEmpty {
                // A dry run says what it would hold as the real run would (found from outside).
                if !dryRun {
                    ImportSummary.show(r, quiet: output.quiet)
                } else if output.quiet {
                    ImportSummary.warnHeld(r)
                }
            }
            partial = report.refused > 0 || (report.imported?.stillHeld ?? 0) > 0
            allRefused = report.allRefused
        }
        if let allRefused { throw Exit.code(for: DataJoinError(allRefused, "")) }
        if partial { throw Exit.partial }
    }

    /// One file's line, said as soon as the file is done.
    func show(_ f: IngestedFile) {
        // A name with a line break printed raw made two lines of one (found from outside).
        var f = f
        f.path = TerminalText.safe(f.path)
        switch f.status {
        case .loaded(let n, let skipped):
            if !output.quiet {
                // A dry run loads nothing (found from outside: it said "loaded").
                print(
                    "\(f.path): \(dryRun ? "would load" : "loaded") \(n) change(s)"
                        + (skipped > 0 ? ", \(skipped) already here or from this node" : ""))
            }
        case .alreadySeen:
            if !output.quiet { print("\(f.path): already ingested, skipped") }
        case .ownBundle:
            if !output.quiet { print("\(f.path): written by this node, skipped") }
        case .removed:
            if !output.quiet { print("\(f.path): removed from the folder before it was read, skipped") }
        case .forOthers(let why):
            if !output.quiet { print("\(f.path): \(why), skipped") }
        case .incomplete(let reason):
            Console.warn("\(f.path): \(reason)")
        case .refused(let reason):
            Console.error("\(f.path): refused: \(reason)")
        }
        // Out before an error that may follow, also into one file with stderr (found from outside).
        fflush(stdout)
    }
}

enum ImportSummary {
    /// Under --quiet: exit 2 says something is held; the warning says what to look at.
    static func warnHeld(_ r: ImportReport) {
        if r.stillHeld > 0 { Console.warn("\(r.stillHeld) change(s) held (see 'datajoin status')") }
    }

    static func show(_ r: ImportReport, quiet: Bool) {
        guard !quiet else { return warnHeld(r) }
        var line = "imported: \(r.applied) applied, \(r.unchanged) unchanged"
        if r.held > 0 { line += ", \(r.held) held (see 'datajoin status')" }
        if r.stillHeld > Int64(r.held) {
            line += ", \(r.stillHeld - Int64(r.held)) earlier held change(s) still held (see 'datajoin status')"
        }
        if r.released > 0 { line += ", \(r.released) earlier held change(s) released" }
        if r.conflicts > 0 { line += ", \(r.conflicts) conflict(s) logged (see 'datajoin conflicts')" }
        print(line)
    }
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply inbox changes past the import pointer to the application tables.",
        usage: usage(
            "datajoin import [--db <url>] [--dry-run] [--drop-held <origin#seq> ...] [--drop-held-table <table> ...]"
        ),
        discussion: helpText(
            """
            Each bundle whole in one transaction, with the import pointer (program 1001) in the same
            transaction; small bundles after it join that transaction (up to 10,000 changes), so a
            hub that receives a bundle a minute from each laptop pays a transaction once per group.
            An older change never overwrites a newer value (docs/conflict-rules.md). Held changes are
            retried.

            Example:
              datajoin import --db sqlite:testapp2.db
              datajoin import --db sqlite:testapp2.db --dry-run
            """))

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    @Flag(
        help:
            "Report what would change (inserts, updates, deletes per table) and which conflicts would occur; change nothing."
    )
    var dryRun = false

    @Option(
        help: ArgumentHelp(
            "Give up on a held change that can never apply (as 'status' lists it, e.g. laptop-1#42); it is logged in the conflict log as dropped. Repeatable.",
            valueName: "origin#seq"))
    var dropHeld: [String] = []

    @Option(
        help: ArgumentHelp(
            "Give up on every held change of a table this node does not keep (untracked here); each is logged in the conflict log as dropped. Repeatable.",
            valueName: "table"))
    var dropHeldTable: [String] = []

    func run() throws {
        var held = false
        try DataJoin_run {
            if dryRun && !(dropHeld.isEmpty && dropHeldTable.isEmpty) {
                throw DataJoinError(
                    .usage,
                    "\(dropHeld.isEmpty ? "--drop-held-table" : "--drop-held") changes the node: not with --dry-run "
                        + "('datajoin status' lists the held changes it would give up)")
            }
            let real = try database.open()
            for spec in dropHeld {
                guard let hash = spec.lastIndex(of: "#"), let seq = Int64(spec[spec.index(after: hash)...]), seq > 0,
                    hash > spec.startIndex
                else {
                    throw DataJoinError(
                        .usage, "--drop-held takes ORIGIN#SEQ as 'datajoin status' shows it, not \(spec)")
                }
                print("dropped held change " + (try Importer.dropHeld(real, origin: String(spec[..<hash]), seq: seq)))
            }
            for table in dropHeldTable {
                print("dropped \(try Importer.dropHeld(real, table: table)) held change(s) of \(table)")
            }
            if dryRun {
                let dry = try DryRunDatabase(real)
                let mark = try DryRunReport.conflictMark(dry)
                let r = try Importer.run(dry, reporter: output.reporter())
                DryRunReport.show(r, conflicts: try DryRunReport.conflicts(dry, after: mark))
                try dry.finish()
                // Exit 2 as the real run would (found from outside: a dry run exited 0).
                if output.quiet { ImportSummary.warnHeld(r) }
                held = r.stillHeld > 0
                return
            }
            let r = try Importer.run(real, reporter: output.reporter())
            ImportSummary.show(r, quiet: output.quiet)
            held = r.stillHeld > 0
        }
        if held { throw Exit.partial }
    }
}

/// The report of `--dry-run`: what would change, per table, and the conflicts that would be logged.
enum DryRunReport {
    static func conflictMark(_ db: Database) throws -> Int64 { try ConflictLog.lastId(db) }

    /// The conflicts the dry run would log: all counted, the first 1,000 listed.
    static func conflicts(_ db: Database, after mark: Int64) throws -> (list: [ConflictEntry], total: Int64) {
        (try ConflictLog.list(db, after: mark), try ConflictLog.count(db, after: mark))
    }

    static func show(_ r: ImportReport, conflicts found: (list: [ConflictEntry], total: Int64)) {
        let conflicts = found.list
        print("dry run: nothing was changed")
        if r.perTable.isEmpty {
            print("would apply no changes")
        } else {
            for (table, ops) in r.perTable.sorted(by: { $0.key < $1.key }) {
                let parts = ["insert", "update", "delete"].compactMap { op in
                    ops[op].map { "\($0) \(op)\($0 == 1 ? "" : "s")" }
                }
                print("would apply to \(table): " + parts.joined(separator: ", "))
            }
        }
        if r.unchanged > 0 { print("would leave \(r.unchanged) change(s) unchanged (already there or older)") }
        if r.held > 0 { print("would hold \(r.held) change(s)") }
        if r.stillHeld > Int64(r.held) { print("\(r.stillHeld - Int64(r.held)) change(s) held before would stay held") }
        print(
            "would log \(found.total) conflict(s)"
                + (found.total > Int64(conflicts.count) ? " (the first \(conflicts.count) below)" : ""))
        for e in conflicts {
            print(
                "  \(e.table) \(e.key)\(e.column.map { "." + $0 } ?? ""): would keep \(e.winnerValue ?? "-") (\(e.winner)), lose \(e.loserValue ?? "-") (\(e.loser)): \(e.reason)"
            )
        }
    }
}
