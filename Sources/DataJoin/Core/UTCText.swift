import Foundation

/// Times as ISO 8601 text in UTC with milliseconds ("2026-12-03T11:40:51.376Z"), the form
/// ISO8601DateFormatter writes. Made by hand because a formatter costs ICU set-up on every call:
/// a fifth of a hub's time per small bundle went to formatting `updated_at` (issue 14).
enum UTCText {
    static func iso8601(ms: Int64) -> String {
        let seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
        let millis = Int(ms - seconds * 1000)
        var t = time_t(seconds)
        var parts = tm()
        guard gmtime_r(&t, &parts) != nil else { return "invalid time \(ms) ms" }
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : String(v) }
        let year = Int(parts.tm_year) + 1900
        let y =
            year >= 0 && year < 10000
            ? String(repeating: "0", count: max(0, 4 - String(year).count)) + String(year) : String(year)
        let m = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : String(millis)
        return
            "\(y)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(m)Z"
    }
}
