import Foundation

/// A bundle's `created_at`: never earlier than the last one this node wrote, whatever its clock
/// does. Peers order a node's bundles by it (PeerRestore: only the newest bundle's receipts
/// count); a clock that jumped back made a later bundle look older, and the older one read after
/// it looked like a restore from a backup (found from outside: the peer moved to a new epoch and
/// was told it had lost changes it never issued).
enum BundleTime {
    static let setting = "last_bundle_created_ms"

    /// The wall clock (shifted by the stamps' test offset), or one millisecond past the last
    /// bundle's time when that is later; recorded in its own short transaction.
    static func next(_ db: Database) throws -> String {
        let now = HybridLogicalClock.nowMs(offsetMs: try HybridLogicalClock.testOffsetMs(db))
        let ms = try db.retryingWrite { _ -> Int64 in
            let last = try Settings.int(db, setting, range: 0...HybridLogicalClock.maxMs) ?? 0
            // Never past what a stamp can carry: a clock set to the year 9999 once would leave
            // a setting no later export could read (found from outside).
            let t = min(max(now, last + 1), HybridLogicalClock.maxMs)
            try Settings.set(db, setting, t)
            return t
        }
        return UTCText.iso8601(ms: ms)
    }
}
