import ArgumentParser
import DataJoin

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a bundle's header and changes (checks it too).",
        usage: usage("datajoin inspect [--db <url>] <file> [--json] [--limit <n>]", shared: "[--quiet] [--verbose]"),
        discussion: helpText(
            """
            A value longer than 4 KiB is shown by its start and its length ('… (N bytes in all)'),
            so a bundle of large values prints in flat memory; the changes themselves are checked
            whole.

            An encrypted bundle (format v2) shows its sender and recipients, its signature checked;
            with --db on one of its recipients, its content too. With --db, exit status 77 when
            that node would refuse the bundle's sender or key (as 'datajoin verify --db' says).

            Example:
              datajoin inspect --json usb/laptop1_000000000001-000000000040_1a2b3c4d.djb
              datajoin inspect --db laptop.db /media/usb/office~relay_*.djb
            """))

    @OptionGroup var output: OutputOptions

    @Option(help: ArgumentHelp("A node the bundle may be encrypted to: its key opens the content.", valueName: "url"))
    var db: String?

    @Argument(help: ArgumentHelp("Bundle file.", valueName: "file"), completion: .file())
    var file: String

    @Flag(help: "Print JSON.")
    var json = false

    @Option(help: ArgumentHelp("Show at most N changes.", valueName: "n"))
    var limit: Int = 1000

    func run() throws {
        try DataJoin_run {
            let database = try db.map { try DatabaseOptions.open($0) }
            let s: BundleInspector.Summary
            do {
                s = try BundleInspector.read(file, keepChanges: max(0, limit), db: database)
            } catch var e as DataJoinError where !e.message.contains(file) {
                // One line that names its file, as verify's and ingest's do.
                e.message = "\(file): \(e.message)"
                throw e
            }
            print(json ? BundleInspector.json(s) : BundleInspector.text(s))
            // Its signature matches its own key; whether this node trusts that key is another
            // question, answered as `verify --db` does (found from outside: "verified" alone).
            if let database, let refusal = try DataJoin.Trust.refusal(database, header: s.header) {
                Console.error("\(file): intact, but ingest here would refuse it: \(refusal.message)")
                throw Exit.code(for: refusal)
            }
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
            is already held, fills a gap, or leaves one (like 'git bundle verify'). An encrypted bundle is
            checked by its signature, and whole with --db on one of its recipients.

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
            let database = try db.map { try DatabaseOptions.open($0) }
            // This node's name, read once: its own sealed bundles are told apart by it.
            let me = try database.map { try GapReport.nodeName($0) }
            let entries = try BundleFiles.expand(files)
            if entries.isEmpty {
                failed(Exit.noInput)
                Console.error("no bundle files (*.djb, *.DJB) in \(files.joined(separator: ", ")); nothing verified")
            }
            for entry in entries {
                let path = entry.path
                // Printed on one line whatever the name holds (errors are filtered the same way).
                let named = TerminalText.safe(path)
                if let problem = entry.problem {
                    failed(Exit.code(for: DataJoinError(entry.problemKind, problem)))
                    Console.error("\(path): \(problem)")
                    continue
                }
                let verified = BundleInspector.verify(path, db: database)
                // What ingest would do, in its class: the file is intact, but this node refuses it;
                // "signed by" is said only of a key trusted here (found in review).
                if case .success(let checked) = verified, let database,
                    let refusal = try DataJoin.Trust.refusal(database, header: checked.header)
                {
                    failed(Exit.code(for: refusal))
                    Console.error("\(path): intact, but ingest here would refuse it: \(refusal.message)")
                    continue
                }
                switch verified {
                case .success(let checked)
                where try checked.encryptedTo != nil && !checked.decrypted
                    && me == checked.header.sender:
                    // Its own, sealed to its peers: as `ingest` says it (found in review).
                    print(
                        "\(named): OK (encrypted to \(checked.encryptedTo?.joined(separator: ", ") ?? ""), signed by \(checked.header.sender))"
                    )
                    print("  " + GapReport.writtenHereLine)
                case .success(let checked) where checked.encryptedTo != nil && !checked.decrypted:
                    let to = checked.encryptedTo?.joined(separator: ", ") ?? ""
                    print(
                        database == nil
                            ? "\(named): OK (encrypted to \(to), signed as \(checked.header.sender) by the key it carries; "
                                + "--db on one of them checks that key against \(checked.header.sender)'s trusted one and reads its content)"
                            : "\(named): OK (encrypted to \(to), signed by \(checked.header.sender); its content needs a recipient's key, and this node is not one of them)"
                    )
                case .success(let checked):
                    let h = checked.header
                    let ranges = h.origins.map { "\($0.origin) \($0.first)-\($0.last)" }.joined(separator: ", ")
                    // Trusted only where --db said so: without it, any key may sign in any name
                    // (found from outside: a file re-signed by a stranger was "signed by" the node).
                    let signer = database == nil ? Self.unchecked(h.sender) + ")" : "signed by \(h.sender))"
                    print(
                        h.origins.isEmpty && h.relaySpan == nil
                            ? "\(named): OK (no changes: receipts only, \(signer)"
                            : "\(named): OK (\(h.changeCount) change\(h.changeCount == 1 ? "" : "s") from \(ranges), \(signer)"
                    )
                    if let database { for line in try GapReport.describe(database, header: h) { print("  " + line) } }
                case .failure(let e):
                    failed(Exit.code(for: e))
                    // Named once: "cannot open PATH: …" already names it.
                    Console.error(e.message.hasPrefix("cannot open \(path):") ? e.message : "\(named): \(e.message)")
                }
            }
        }
        if bad > 0 { throw status ?? ExitCode.failure }
    }

    /// A signature checked against the key the file carries only (no --db).
    static func unchecked(_ sender: String) -> String {
        "signed as \(sender) by the key it carries; --db checks that key against \(sender)'s trusted one"
    }
}

struct Key: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print this node's public key, for peers to trust (one word: signing and encryption keys).",
        usage: usage("datajoin key [--db <url>] [--rotate]"),
        discussion: helpText(
            """
            The word is dj2-<signing key>-<encryption key>; 'trust' also takes the signing key alone
            (64 hex digits, from an older datajoin), but bundles cannot be encrypted to such a node.

            --rotate makes a new encryption key pair. The old private keys stay, so bundles already
            encrypted to this node still open; peers encrypt to the new one once they trust it again
            ('datajoin trust --replace NODE <new word>'). docs/encryption.md: after a stolen laptop.

            Example:
              datajoin trust --db laptop.db office $(datajoin key --db office.db)
              datajoin key --db laptop.db --rotate
            """))

    @OptionGroup var database: DatabaseOptions

    @OptionGroup var output: OutputOptions

    @Flag(help: "Make a new encryption key pair first (the old ones still open what was sent to them).")
    var rotate = false

    func run() throws {
        try DataJoin_run {
            let db = try database.open()
            if rotate { _ = try EncryptionKeys.rotate(db) }
            Console.result(try DataJoin.Trust.publicKey(db).key)
            if rotate && !output.quiet {
                Console.warn(
                    "new encryption key: give each peer the word above ('datajoin trust --replace \(try DataJoin.Trust.publicKey(db).node) <word>')"
                )
            }
        }
    }
}

struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show or change a node's settings (encrypt).",
        usage: usage(
            "datajoin config [--db <url>] [<setting value> ...]"),
        discussion: helpText(
            """
            Settings:
              encrypt always   every bundle export, snapshot and watch write is
                               encrypted to the trusted peers (as with --encrypt)
              encrypt never    only when --encrypt asks (the default); a node that
                               has received encrypted bundles encrypts everything
                               it writes all the same

            Example:
              datajoin config --db office.db encrypt always
              datajoin config --db office.db
            """))

    @OptionGroup var database: DatabaseOptions

    @OptionGroup var output: OutputOptions

    @Argument(help: ArgumentHelp("Setting and value: encrypt always|never.", valueName: "setting value"))
    var words: [String] = []

    func run() throws {
        try DataJoin_run {
            let db = try database.open()
            switch words.count {
            case 0: break
            case 2 where words[0] == "encrypt" && ["always", "never"].contains(words[1]):
                try BundleEncryption.setAlways(db, words[1] == "always")
            case _ where words[0] == "encrypt":
                let why =
                    words.count == 1
                    ? "needs a value"
                    : "takes 'always' or 'never', not '\(words.dropFirst().joined(separator: " ").prefix(60))'"
                throw DataJoinError(.usage, "encrypt \(why): datajoin config encrypt always (or never)")
            default:
                throw DataJoinError(
                    .usage,
                    "unknown setting '\(words.joined(separator: " ").prefix(60))': use 'encrypt always' or 'encrypt never'"
                )
            }
            let always = try BundleEncryption.always(db)
            let unasked =
                try !always && BundleEncryption.receivedEncrypted(db)
                ? " (but everything it writes is encrypted: this node has received encrypted bundles)" : ""
            print("encrypt \(always ? "always" : "never")\(unasked)")
        }
    }
}

struct TrustCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trust",
        abstract: "Trust a peer's public key, or revoke it; ingest accepts bundles only from trusted senders.",
        usage: usage(
            "datajoin trust [--db <url>] [--revoke] [--replace] <node> [<public-key>]"
        ),
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
                if replace { throw DataJoinError(.usage, "--revoke and --replace ask for opposite things: give one") }
                print(
                    try DataJoin.Trust.revoke(db, node: node)
                        ? "revoked \(node)" : "\(node) was not trusted; nothing changed")
            } else {
                guard let publicKey else {
                    throw DataJoinError(
                        .usage, "give the public key of \(node) (as 'datajoin key' prints it on \(node))")
                }
                let warnings = try DataJoin.Trust.trust(db, node: node, publicKey: publicKey, replace: replace)
                print("trusting \(node)")
                for w in warnings { Console.warn(w) }
            }
        }
    }
}
