import Foundation

/// The stamps a change may carry to be applied now: not too far ahead of this node's clock, and
/// not from before this node pruned its tombstones (a snapshot's changes excepted).
struct StampWindow {
    /// Names a change held for its age in `ds_change_held.reason`: such a change is not relayed
    /// either (docs/snapshot.md).
    static let beforeRetention = "before this node pruned its tombstones"

    private let maxAheadMs: Int64
    private let prunedBefore: Int64
    private let aheadLimit: Int64

    init(_ db: Database, maxAheadMs: Int64) throws {
        self.maxAheadMs = maxAheadMs
        prunedBefore = try Pruner.cutoffStamp(db)
        aheadLimit = HybridLogicalClock.stamp(
            ms: HybridLogicalClock.nowMs(offsetMs: try HybridLogicalClock.testOffsetMs(db)) &+ maxAheadMs)
    }

    /// Why `c` is held for its stamp, or nil: it may apply.
    func holdReason(_ c: Change) -> String? {
        if c.hlc > aheadLimit {
            return
                "stamped \(HybridLogicalClock.describe(c.hlc)) by \(c.origin), more than \(maxAheadMs / 1000) s ahead of this node's clock; it applies once this clock catches up"
        }
        if c.hlc < prunedBefore && !c.epoch.hasPrefix(BundleFormat.snapshotEpochPrefix) {
            return
                "stamped \(HybridLogicalClock.describe(c.hlc)) by \(c.origin), \(Self.beforeRetention) (up to \(HybridLogicalClock.describe(prunedBefore))): \(c.origin) has been away longer than the retention, or its clock is behind (check it), and this change could bring back a deleted row; it is not relayed; re-join \(c.origin) from a snapshot (docs/snapshot.md)"
        }
        return nil
    }
}
