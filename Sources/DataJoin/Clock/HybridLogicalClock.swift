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
        if let env = ProcessInfo.processInfo.environment["DATAJOIN_TEST_CLOCK_OFFSET_MS"].flatMap({ Int64($0) }) { return env }
        return try Settings.int(db, "test_clock_offset_ms") ?? 0
    }

    static func tick(after last: Int64, physicalMs: Int64) -> Int64 {
        max(last + 1, max(physicalMs, 0) << counterBits)
    }

    static func physicalMs(of stamp: Int64) -> Int64 { stamp >> counterBits }

    public static func describe(_ stamp: Int64) -> String {
        let ms = physicalMs(of: stamp)
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000)) + "+\(stamp & ((1 << counterBits) - 1))"
    }
}
