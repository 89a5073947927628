import ArgumentParser
import DataJoin

/// `datajoin key-blocks`: each node's own block of ids for keys the database generates.
struct KeyBlocksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key-blocks",
        abstract:
            "Give each node its own block of ids for keys the database generates (serial, identity, AUTO_INCREMENT).",
        discussion: helpText(
            """
            Two laptops that each insert an order offline both get id 1 from their database, and
            the two orders would become one row. With key blocks each node draws new ids from its
            own range of 16.7 million, set up in the database itself: the application's INSERTs
            without an id do not change (docs/keys.md).

            Block numbers come from one node, the hub, so no two nodes get the same one:
              datajoin key-blocks authority --db $HUB              # once; takes block 1
              datajoin key-blocks grant --db $HUB --node laptop-7  # prints it, e.g. 2
              datajoin key-blocks add --db $LAPTOP7 2              # on laptop-7

            'track' sets up a block for every table whose key the database generates, when the
            node has one; 'add' moves tables tracked before onto it. SQLite cannot give a node its
            own ids (docs/keys.md explains why): there, give rows their ids in the application.

            Example:
              datajoin key-blocks --db $PG_URL         # the same as 'key-blocks show'
            """),
        subcommands: [Show.self, Authority.self, Grant.self, Add.self],
        defaultSubcommand: Show.self)

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List this node's key blocks and their ids.",
            usage: usage("datajoin key-blocks show [--db <url>]"),
            discussion: "Example:\n  datajoin key-blocks show --db $LAPTOP7")
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try DataJoin_run {
                let db = try database.open()
                let blocks = try KeyBlocks.blocks(db)
                if blocks.isEmpty { print("no key block: ids are the database's own (docs/keys.md)") }
                for b in blocks {
                    let r = KeyBlocks.range(b)
                    print("block \(b): ids \(r.lowerBound)…\(r.upperBound)")
                }
            }
        }
    }

    struct Authority: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make this node (the hub) the one that hands out block numbers; it takes block 1.",
            usage: usage("datajoin key-blocks authority [--db <url>]"),
            discussion: "Example:\n  datajoin key-blocks authority --db $HUB")
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try DataJoin_run {
                let db = try database.open()
                let me = try KeyBlocks.becomeAuthority(db)
                print(
                    db.dialect.keyBlocksPossible
                        ? "\(me) hands out key blocks; it draws from block 1"
                        : "\(me) hands out key blocks (SQLite draws from none itself: docs/keys.md)")
            }
        }
    }

    struct Grant: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Hand out a block number to a node (on the authority); prints the number.",
            usage: usage(
                "datajoin key-blocks grant [--db <url>] --node <name> [--another]"
            ),
            discussion:
                "Example:\n  datajoin key-blocks grant --db $HUB --node laptop-7\n  # a further block, when laptop-7's is used up:\n  datajoin key-blocks grant --db $HUB --node laptop-7 --another"
        )
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions
        @Option(help: ArgumentHelp("The node that gets the block.", valueName: "name"))
        var node: String
        @Flag(help: "A further block for a node whose block is used up.")
        var another = false

        func run() throws {
            try DataJoin_run {
                let db = try database.open()
                Console.result(String(try KeyBlocks.grant(db, node: node, another: another)))
            }
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give this node a block the authority handed out, and move its tracked tables onto it.",
            usage: usage(
                "datajoin key-blocks add [--db <url>] <block>"),
            discussion: "Example:\n  datajoin key-blocks add --db $LAPTOP7 2   # the number 'grant' printed")
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: ArgumentHelp("The block number 'grant' printed.", valueName: "block"))
        var block: Int64

        func run() throws {
            try DataJoin_run {
                let db = try database.open()
                try KeyBlocks.add(db, block)
                let r = KeyBlocks.range(block)
                print("block \(block): new ids \(r.lowerBound)…\(r.upperBound)")
            }
        }
    }
}
