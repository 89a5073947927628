import ArgumentParser
import DataJoin
import Foundation

@main
struct DataJoinCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datajoin",
        abstract: "Keep the rows of SQLite, PostgreSQL and MariaDB databases in sync through change-bundle files.",
        discussion: helpText(
            """
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

            --db takes postgresql://user:pass@host:port/db, mariadb://user:pass@host:port/db (or
            mysql://), sqlite:PATH, or a path ending in .db, .sqlite or .sqlite3; DATAJOIN_DB is
            used when --db is absent.

            Exit status: 0 success, 1 failure, 2 partial success (some bundles refused or changes
            held), 64 usage error, 65 damaged or forged bundle, 66 no such database, file or folder,
            69 server unreachable, 75 locked (try again), 77 not trusted or read-only: see
            'datajoin help exit-codes'.
            """),
        version: "0.1.0",
        subcommands: [
            Init.self, Track.self, Untrack.self, Export.self, Ingest.self, Import.self, Status.self,
            Inspect.self, Verify.self, Key.self, TrustCommand.self, Conflicts.self, Watch.self, Snapshot.self,
            Prune.self, Check.self, KeyBlocksCommand.self, Config.self,
            ExitCodes.self,
        ]
    )

    /// ArgumentParser's own errors in DataJoin's form: one `datajoin: error:` prefix for every
    /// error, and a misspelt command answered with the nearest one (`exprot` → `export`).
    static func main() {
        // First, so that a signal however early is told (found from outside: one in the first
        // 50 ms ended a command with no line), and each line of output goes out as printed: a
        // signal ends the process without flushing, and what was done must not go unreported.
        setvbuf(stdout, nil, _IOLBF, 0)
        Interrupt.install()
        Memory.returnLargeBlocksPromptly()
        // `help nosuchcmd`, `help key-blocks nosuch`: the parser prints the nearest help and
        // exits 0, as if the words were commands.
        if let unknown = unknownHelpTopic(Array(CommandLine.arguments.dropFirst())) {
            FileHandle.standardError.write(Data(("datajoin: error: " + unknown + "\n").utf8))
            Foundation.exit(ExitCode.validationFailure.rawValue)
        }
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { print(message) }
                Foundation.exit(0)
            }
            if !message.isEmpty {
                var lines = message.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                if let first = lines.first, first.hasPrefix("Error: ") {
                    // One line, as every other error: the parser's help and usage lines become a
                    // pointer to the command's --help.
                    let names = configuration.subcommands.map { $0._commandName }
                    let command = CommandLine.arguments.dropFirst().first.flatMap { names.contains($0) ? $0 : nil }
                    lines = [
                        "datajoin: error: " + first.dropFirst("Error: ".count)
                            + " (see 'datajoin \(command.map { $0 + " " } ?? "")--help')"
                    ]
                    // A first word that is no command: say so, whatever the parser tripped on
                    // first (with `exprot --db x` it names the option, not the word).
                    if let typed = CommandLine.arguments.dropFirst().first, !typed.hasPrefix("-"),
                        !(names + ["help"]).contains(typed)
                    {
                        lines = [
                            "datajoin: error: unknown command '\(typed)'"
                                + (nearestCommand(to: typed).map { " (did you mean '\($0)'?)" }
                                    ?? "; see 'datajoin --help'")
                        ]
                    }
                    // `--max-changes -5`: the parser reads -5 as a flag and says the value is missing.
                    if let negative = negativeValue(in: first) {
                        // The same words as the option's own check says for 0 (found from outside).
                        let range =
                            negative.option == "--every"
                            ? "a number of seconds from 0.1 to 86400"
                            : negative.option == "--keep"
                                ? "a duration above 0 and below 290 million years" : "a value above 0"
                        lines = [
                            "datajoin: error: \(negative.option) takes \(range), not \(negative.value)"
                                + " (see 'datajoin \(command.map { $0 + " " } ?? "")--help')"
                        ]
                    }
                }
                FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
            }
            Foundation.exit(code.rawValue)
        }
    }

    /// The error for `help WORDS…` when a word names no command under the one before it.
    static func unknownHelpTopic(_ args: [String]) -> String? {
        guard args.first == "help" else { return nil }
        var command: ParsableCommand.Type = DataJoinCommand.self
        var path: [String] = []
        for word in args.dropFirst() {
            if word == "-h" || word == "--help" { return nil }
            if word.hasPrefix("-") {
                let named = (["datajoin"] + (path == ["help"] ? [] : path)).joined(separator: " ")
                return "'datajoin help' takes command names, not options like '\(TerminalText.safe(word))': "
                    + "see '\(named) --help'"
            }
            // `help help`: the help of `help`, which has no subcommands.
            let subcommands = path == ["help"] ? [] : command.configuration.subcommands
            if path.isEmpty && word == "help" {
                path.append(word)
                continue
            }
            guard let next = subcommands.first(where: { $0._commandName == word }) else {
                if path.isEmpty {
                    return "unknown command '\(TerminalText.safe(word))'"
                        + (nearestCommand(to: word).map { " (did you mean '\($0)'?)" } ?? "; see 'datajoin --help'")
                }
                let parent = (["datajoin"] + path).joined(separator: " ")
                let pointer = path == ["help"] ? "datajoin" : parent
                return subcommands.isEmpty
                    ? "'\(parent)' has no subcommands, so '\(TerminalText.safe(word))' is none (see '\(pointer) --help')"
                    : "unknown command '\(TerminalText.safe(word))' of '\(parent)' (see '\(parent) --help')"
            }
            command = next
            path.append(word)
        }
        return nil
    }

    /// For "Missing value for '--name <n>'" when the argument after --name is a negative number.
    static func negativeValue(in message: String) -> (option: String, value: String)? {
        guard let start = message.range(of: "Missing value for '--") else { return nil }
        let name = "--" + message[start.upperBound...].prefix { $0 != " " && $0 != "'" }
        let args = Array(CommandLine.arguments.dropFirst())
        guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
        let value = args[i + 1]
        // -5, -2.5, -3d: a negative number or duration, not a flag.
        guard value.hasPrefix("-"), value.dropFirst().first.map({ $0.isNumber || $0 == "." }) ?? false else {
            return nil
        }
        return (name, value)
    }

    /// The subcommand within two edits of `typed`, if one is.
    static func nearestCommand(to typed: String) -> String? {
        let names = configuration.subcommands.map { $0._commandName }
        func distance(_ a: String, _ b: String) -> Int {
            let a = Array(a), b = Array(b)
            var row = Array(0...b.count)
            for i in 1...max(a.count, 1) where !a.isEmpty {
                var previous = row[0]
                row[0] = i
                for j in stride(from: 1, through: b.count, by: 1) {
                    let old = row[j]
                    row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                    previous = old
                }
            }
            return a.isEmpty ? b.count : row[b.count]
        }
        return names.map { ($0, distance(typed.lowercased(), $0)) }.filter { $0.1 <= 2 }.min { $0.1 < $1.1 }?.0
    }
}
