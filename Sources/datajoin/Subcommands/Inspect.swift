import ArgumentParser
import DataJoin

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a bundle's header and changes (checks it too).",
        discussion: helpText(
            """
            A value longer than 4 KiB is shown by its start and its length ('… (N bytes in all)'),
            so a bundle of large values prints in flat memory; the changes themselves are checked
            whole.

            Example:
              datajoin inspect bundles/testapp1_000000000001-000000000001_1a2b3c4d.djb --json
            """))

    @OptionGroup var output: OutputOptions

    @Argument(help: ArgumentHelp("Bundle file.", valueName: "file"), completion: .file())
    var file: String

    @Flag(help: "Print JSON.")
    var json = false

    @Option(help: ArgumentHelp("Show at most N changes.", valueName: "n"))
    var limit: Int = 1000

    func run() throws {
        try DataJoin_run {
            let s = try BundleInspector.read(file, keepChanges: max(0, limit))
            print(json ? BundleInspector.json(s) : BundleInspector.text(s))
        }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check bundle files (format, completeness, checksum, signature) without touching a database.",
        discussion: helpText(
            """
            Exit status 65 when a file is damaged or forged, 66 when a path is missing, 77 when --db
            would refuse its sender (the first problem's class; 'datajoin help exit-codes'). With --db, also says for each origin whether the bundle
            is already held, fills a gap, or leaves one (like 'git bundle verify').

            Example:
              datajoin verify /media/usb/datajoin/*.djb
              datajoin verify --db laptop.db /media/usb/datajoin
            """))

    @OptionGroup var output: OutputOptions

    @Argument(help: ArgumentHelp("Bundle files or folders.", valueName: "file"), completion: .file())
    var files: [String] = []

    @Option(
        help: ArgumentHelp(
            "Also say whether each bundle fills or leaves a gap in what this database holds.", valueName: "url"))
    var db: String?

    func run() throws {
        var bad = 0
        // The first failure's class is the exit status (docs/cli.md).
        var status: ExitCode?
        func failed(_ code: ExitCode) {
            bad += 1
            if status == nil { status = code }
        }
        try DataJoin_run {
            if files.isEmpty { throw DataJoinError(.usage, "name at least one bundle file to verify") }
            let database = try db.map { try DatabaseOpener.open($0, create: false) }
            let entries = try BundleFiles.expand(files)
            if entries.isEmpty {
                failed(Exit.noInput)
                Console.error("no bundle files (*.djb) in \(files.joined(separator: ", ")); nothing verified")
            }
            for entry in entries {
                let path = entry.path
                if let problem = entry.problem {
                    failed(Exit.dataError)
                    Console.error("\(path): \(problem)")
                    continue
                }
                switch BundleInspector.verify(path) {
                case .success(let h):
                    if let database, let refusal = try DataJoin.Trust.refusal(database, header: h) {
                        // What ingest would do: the file is intact, but this node refuses it.
                        failed(Exit.permission)
                        Console.error("\(path): intact, but ingest here would refuse it: \(refusal)")
                        continue
                    }
                    let ranges = h.origins.map { "\($0.origin) \($0.first)-\($0.last)" }.joined(separator: ", ")
                    print("\(path): OK (\(h.changeCount) changes from \(ranges), signed by \(h.sender))")
                    if let database { for line in try GapReport.describe(database, header: h) { print("  " + line) } }
                case .failure(let e):
                    failed(Exit.code(for: e))
                    Console.error("\(path): \(e.message)")
                }
            }
        }
        if bad > 0 { throw status ?? ExitCode.failure }
    }
}

struct Key: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print this node's public key, for peers to trust.",
        discussion: "Example:\n  datajoin trust --db laptop.db office $(datajoin key --db office.db)")

    @OptionGroup var database: DatabaseOptions

    @OptionGroup var output: OutputOptions

    func run() throws {
        try DataJoin_run {
            let db = try database.open()
            print(try DataJoin.Trust.publicKey(db).key)
        }
    }
}

struct TrustCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trust",
        abstract: "Trust a peer's public key, or revoke it; ingest accepts bundles only from trusted senders.",
        discussion: helpText(
            """
            Example:
              datajoin trust --db laptop.db office 3b6a27bc…(64 hex digits)
              datajoin trust --db laptop.db --revoke office
              datajoin trust --db laptop.db --replace office 9c1d…(its new key)

            A node already trusted with another key is refused unless --replace is given, with
            both keys' fingerprints: compare them with 'datajoin key' on that node first.
            """))

    @OptionGroup var database: DatabaseOptions

    @OptionGroup var output: OutputOptions

    @Flag(help: "Stop trusting NODE.")
    var revoke = false

    @Flag(help: "Replace the key NODE is trusted with (after it was set up again or rotated its key).")
    var replace = false

    @Argument(help: "The peer's node name.")
    var node: String

    @Argument(help: "Its public key, as 'datajoin key' prints it.")
    var publicKey: String?

    func run() throws {
        try DataJoin_run {
            let db = try database.open()
            if revoke {
                if publicKey != nil { throw DataJoinError(.usage, "--revoke takes only the node name") }
                print(
                    try DataJoin.Trust.revoke(db, node: node)
                        ? "revoked \(node)" : "\(node) was not trusted; nothing changed")
            } else {
                guard let publicKey else {
                    throw DataJoinError(
                        .usage, "give the public key of \(node) (as 'datajoin key' prints it on \(node))")
                }
                try DataJoin.Trust.trust(db, node: node, publicKey: publicKey, replace: replace)
                print("trusting \(node)")
            }
        }
    }
}
