import Foundation

/// Where stamping goes on from, in the brand's stamping order.
public struct StampCursor {
    /// The last id read, where the brand stamps in id order (saved by `stampedThrough`).
    public var throughId: Int64
    /// Source transactions still to stamp in this call, in order (source id, rows).
    var transactions: ArraySlice<(source: Int64, rows: Int64)> = []
    /// A transaction larger than a chunk, read in parts: its source id and the last id read.
    var partial: (source: Int64, afterId: Int64)?
    /// Every transaction is stamped; rows without a source transaction come last, in id order.
    var nullPhase = false
    var lastNullId: Int64 = 0

    init(throughId: Int64) { self.throughId = throughId }

    /// True while the last source transaction read is not finished: a step never splits one.
    var inTransaction: Bool { partial != nil }
}
