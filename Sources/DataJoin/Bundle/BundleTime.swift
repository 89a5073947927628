import Foundation

/// A bundle's `created_at`: never earlier than the last one this node wrote, whatever its clock
/// does. Peers order a node's bundles by it (PeerRestore: only the newest bundle's receipts
/// count); a clock that jumped back made a later bundle look older, and the older one read after
/// it looked like a restore from a backup (found from outside: the peer moved to a new epoch and
/// was told it had lost changes it never issued).
enum BundleTime {
    static let setting = "last_bundle_created_ms"

    /// The wall clock (shifted by the stamps' test offset), or one millisecond past the last
    /// bundle's time when that is later; recorded in its own short transaction. A last time
    /// further ahead of the clock than `max_clock_ahead_ms` (a day unless set) is not followed: a clock set to the year 9999 once would otherwise pin every later bundle
    /// there, and peers would never again find this node restored from a backup (found from
    /// outside). Within it, a clock that goes back makes no bundle look older.
    static func next(_ db: Database) throws -> String {
        let now = HybridLogicalClock.nowMs(offsetMs: try HybridLogicalClock.testOffsetMs(db))
        let window = try maxAheadMs(db)
        let ms = try db.retryingWrite { _ -> Int64 in
            let last = try Settings.int(db, setting, range: 0...HybridLogicalClock.maxMs) ?? 0
            // Never past what a stamp can carry: a setting no later export could read.
            let t = min(last <= now &+ window ? max(now, last + 1) : now, HybridLogicalClock.maxMs)
            try Settings.set(db, setting, t)
            return t
        }
        return UTCText.iso8601(ms: ms)
    }

    static func maxAheadMs(_ db: Database) throws -> Int64 {
        try Settings.int(db, "max_clock_ahead_ms", range: 0...HybridLogicalClock.maxMs)
            ?? Importer.defaultMaxClockAheadMs
    }

    /// The latest bundle time a peer's bundle may carry to count as its newest: this node's
    /// clock plus the window (a far-future time would hide every later bundle of the peer).
    static func latestCredible(_ db: Database) throws -> String {
        UTCText.iso8601(
            ms: min(
                HybridLogicalClock.nowMs(offsetMs: try HybridLogicalClock.testOffsetMs(db)) &+ (try maxAheadMs(db)),
                HybridLogicalClock.maxMs))
    }
}
