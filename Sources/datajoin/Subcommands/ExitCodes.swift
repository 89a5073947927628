import ArgumentParser

/// `datajoin help exit-codes` (and `datajoin exit-codes`): the exit statuses scripts can test.
struct ExitCodes: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exit-codes",
        abstract: "List the exit statuses every command uses, by class (as sysexits does).",
        discussion: "Every command exits with one of these:\n\n" + Exit.table
            + "\n\nA script can retry on 75 and 69, alert on 65 and 77, and fix its arguments on 64 and 66.")

    @OptionGroup var output: OutputOptions

    func run() throws {
        print(Exit.table)
    }
}
