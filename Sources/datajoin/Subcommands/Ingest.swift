import ArgumentParser
import DataJoin

struct Ingest: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify bundle files, load them into ds_change_inbox, then import them.",
        discussion: """
            Takes files and folders (a folder's *.djb files, in name order; hidden and temporary files
            are skipped). Each bundle is checked (format, checksum, signature of a trusted sender) and
            loaded in one transaction. A bundle seen before, or changes already loaded, load once; this
            node's own changes are skipped. A bad bundle is refused with its reason, the others still
            load, and the exit status is 2.

            Example:
              datajoin ingest --db sqlite:testapp2.db /media/usb/datajoin
              datajoin ingest --db $PG_URL --no-import bundle1.djb bundle2.djb
            """)

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    @Flag(help: "Only load into the inbox; apply later with 'datajoin import'.")
    var noImport = false

    @Argument(help: ArgumentHelp("Bundle files or folders.", valueName: "path"), completion: .file())
    var paths: [String] = []

    func run() throws {
        var partial = false
        try DataJoin_run {
            if paths.isEmpty { throw DataJoinError(.usage, "name at least one bundle file or folder to ingest") }
            let db = try database.open()
            let report = try Ingester.ingest(db, IngestOptions(paths: paths, importAfter: !noImport), reporter: output.reporter())
            for f in report.files {
                switch f.status {
                case .loaded(let n, let skipped):
                    if !output.quiet { print("\(f.path): loaded \(n) change(s)" + (skipped > 0 ? ", \(skipped) already here or from this node" : "")) }
                case .alreadySeen:
                    if !output.quiet { print("\(f.path): already ingested, skipped") }
                case .ownBundle:
                    if !output.quiet { print("\(f.path): written by this node, skipped") }
                case .incomplete(let reason):
                    Console.warn("\(f.path): \(reason)")
                case .refused(let reason):
                    Console.error("\(f.path): refused: \(reason)")
                }
            }
            if report.files.isEmpty && !output.quiet { print("no bundle files found") }
            for n in report.notices { Console.warn(n) }
            if let r = report.imported { ImportSummary.print(r, quiet: output.quiet) }
            partial = report.refused > 0 || (report.imported?.held ?? 0) > 0
        }
        if partial { throw Exit.partial }
    }
}

enum ImportSummary {
    static func print(_ r: ImportReport, quiet: Bool) {
        guard !quiet else { return }
        var line = "imported: \(r.applied) applied, \(r.unchanged) unchanged"
        if r.held > 0 { line += ", \(r.held) held (see 'datajoin status')" }
        if r.released > 0 { line += ", \(r.released) earlier held change(s) released" }
        if r.conflicts > 0 { line += ", \(r.conflicts) conflict(s) logged (see 'datajoin conflicts')" }
        Swift.print(line)
    }
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply inbox changes past the import pointer to the application tables.",
        discussion: """
            One bundle per transaction, with the import pointer (program 1001) in the same transaction.
            An older change never overwrites a newer value (docs/conflict-rules.md). Held changes are
            retried.

            Example:
              datajoin import --db sqlite:testapp2.db
            """)

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        var held = false
        try DataJoin_run {
            let db = try database.open()
            let r = try Importer.run(db, reporter: output.reporter())
            ImportSummary.print(r, quiet: output.quiet)
            held = r.held > 0
        }
        if held { throw Exit.partial }
    }
}
