import Foundation

/// A change checked against the table it is for: its values typed and placed by column
/// position, or why it is held.
enum Placement {
    case placed(TableInfo, [Merger.PlacedValue])
    case held(String)
}
