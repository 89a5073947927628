import Foundation

/// Hybrid logical clock stamps packed in 64 bits: milliseconds since 1970 in the high 48 bits,
/// a counter in the low 16. Kulkarni et al.'s rules become integer maxima:
/// a local event takes `max(last + 1, now << 16)`, a received stamp moves `last` to
/// `max(last, received)`. A counter overflow carries into the millisecond part, which keeps the
/// order total and monotonic (docs/conflict-rules.md).
public enum HybridLogicalClock {
    public static let counterBits: Int64 = 16

    /// Wall-clock milliseconds, shifted by `offsetMs`.
    public static func nowMs(offsetMs: Int64 = 0) -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) + offsetMs
    }

    /// The test-only clock offset of a node: DATAJOIN_TEST_CLOCK_OFFSET_MS for the process, or
    /// the `test_clock_offset_ms` setting for one database. It shifts the physical time this
    /// node's stamps and its future-stamp check use, as if its wall clock were wrong.
    static func testOffsetMs(_ db: Database) throws -> Int64 {
        if let text = ProcessInfo.processInfo.environment["DATAJOIN_TEST_CLOCK_OFFSET_MS"] {
            guard let env = Int64(text), env.magnitude <= UInt64(maxMs) else {
                throw DataJoinError(
                    .usage, "DATAJOIN_TEST_CLOCK_OFFSET_MS must be a number of milliseconds, not '\(text.prefix(20))'")
            }
            return env
        }
        return try Settings.int(db, "test_clock_offset_ms", range: -maxMs...maxMs) ?? 0
    }

    /// The largest millisecond count a stamp can carry (the year 6429); a clock past it saturates.
    static let maxMs: Int64 = Int64.max >> counterBits

    /// Milliseconds forced into what a stamp can carry: a value from a database row or a
    /// setting never overflows a shift.
    static func clampMs(_ ms: Int64) -> Int64 { min(max(ms, 0), maxMs) }

    /// The stamp `ms` milliseconds from now, saturating instead of overflowing.
    static func stamp(ms: Int64) -> Int64 { clampMs(ms) << counterBits }

    /// `ms + offset`, saturating: a captured time from a database row never wraps.
    static func shifted(_ ms: Int64, by offset: Int64) -> Int64 {
        let (sum, overflow) = ms.addingReportingOverflow(offset)
        return clampMs(overflow ? (offset > 0 ? Int64.max : 0) : sum)
    }

    static func tick(after last: Int64, physicalMs: Int64) -> Int64 {
        max(last == Int64.max ? last : last + 1, stamp(ms: physicalMs))
    }

    static func physicalMs(of stamp: Int64) -> Int64 { stamp >> counterBits }

    public static func describe(_ stamp: Int64) -> String {
        UTCText.iso8601(ms: physicalMs(of: stamp)) + "+\(stamp & ((1 << counterBits) - 1))"
    }
}
