import Foundation

/// How far applying a range of the inbox has come: the last inbox id read, and the highest
/// stamp applied (or found already there), which the node's clock moves past at the end.
struct ImportCursor {
    var afterId: Int64
    var clock: Int64
}
