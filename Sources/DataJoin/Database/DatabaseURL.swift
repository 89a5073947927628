import Foundation

/// `--db` values: `postgresql://user:pass@host:port/db` (libpq URI), `sqlite:PATH`, or a path
/// ending in .db, .sqlite or .sqlite3.
public enum DatabaseURL: Equatable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(conninfo: String, display: String)
    case mariadb(MariaDBDatabase.Address, display: String)

    public static func parse(_ text: String) throws -> DatabaseURL {
        var t = text.trimmingCharacters(in: .whitespaces)
        // A scheme is one in any case (`SQLITE:x.db` made a file of that name; found from outside).
        if let colon = t.firstIndex(of: ":"),
            schemes.contains(t[..<colon].lowercased())
        {
            t = t[..<colon].lowercased() + t[colon...]
        }
        if t.hasPrefix("postgresql://") || t.hasPrefix("postgres://") {
            if let why = userinfoProblem(t) {
                throw DataJoinError(.badURL, "malformed PostgreSQL URL '\(redactMalformed(t))': \(why)")
            }
            guard let comps = URLComponents(string: t), comps.host != nil || t.contains("@/") || t.contains("///")
            else {
                throw DataJoinError(
                    .badURL,
                    "malformed PostgreSQL URL '\(redactMalformed(t))': expected postgresql://user:pass@host:port/dbname"
                )
            }
            if let port = comps.port, !(1...65535).contains(port) {
                throw DataJoinError(
                    .badURL, "malformed PostgreSQL URL '\(redactMalformed(t))': port \(port) is out of range")
            }
            let db = comps.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            if db.isEmpty {
                throw DataJoinError(
                    .badURL,
                    "malformed PostgreSQL URL '\(redactMalformed(t))': no database name after the host (…/dbname)")
            }
            // A server that accepts the connection and never answers must not hang every command:
            // 10 s unless the URL or PGCONNECT_TIMEOUT says otherwise (docs/cli.md).
            var conninfo = t
            if comps.queryItems?.contains(where: { $0.name == "connect_timeout" }) != true,
                ProcessInfo.processInfo.environment["PGCONNECT_TIMEOUT"] == nil
            {
                conninfo += (comps.query == nil ? "?" : "&") + "connect_timeout=\(defaultConnectTimeoutSeconds)"
            }
            return .postgres(conninfo: conninfo, display: redact(t))
        }
        if t.hasPrefix("mariadb://") || t.hasPrefix("mysql://") {
            return try parseMariaDB(t)
        }
        if t.hasPrefix("sqlite:") {
            var path = String(t.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
            guard !path.isEmpty else {
                throw DataJoinError(.badURL, "malformed SQLite URL '\(t)': expected sqlite:PATH")
            }
            try refuseServerURL(path, given: t)
            return .sqlite(path: path)
        }
        // In any case: `A.DB` is a path as `a.db` is (found from outside: refused).
        for ext in [".db", ".sqlite", ".sqlite3"] where t.lowercased().hasSuffix(ext) && t.count > ext.count {
            try refuseServerURL(t, given: t)
            return .sqlite(path: t)
        }
        throw unrecognised(t)
    }

    /// The schemes of the servers' URLs, and with SQLite's, every scheme taken in any case.
    static let serverSchemes = ["postgresql", "postgres", "mariadb", "mysql"]
    static let schemes = serverSchemes + ["sqlite"]

    static func unrecognised(_ t: String) -> DataJoinError {
        DataJoinError(
            .badURL,
            "unrecognised database URL '\(redactMalformed(t))': use postgresql://user:pass@host:port/db, mariadb://user:pass@host:port/db, sqlite:PATH, or a path ending in .db, .sqlite or .sqlite3"
        )
    }

    /// A SQLite path that is a server's URL with its scheme mistyped (`postgresql:/u:pw@h/x.db`),
    /// or that holds a user and password (`sqlite://u:pw@h`): refused before it is printed as a
    /// path with its password (found from outside), and before a file of that name is made.
    static func refuseServerURL(_ path: String, given: String) throws {
        let lower = path.lowercased()
        let mistyped = serverSchemes.contains {
            lower.hasPrefix($0 + ":") || lower.hasPrefix($0 + "/")
        }
        // A file of such a name that is there is a path (found from outside: refused).
        let userinfo =
            path.range(of: "^[^/@]*:[^@]*@", options: .regularExpression) != nil
            && !FileManager.default.fileExists(atPath: path)
        if mistyped || userinfo || path.contains("://") { throw unrecognised(given) }
    }

    /// `mariadb://user:pass@host:port/db` (or `mysql://`); `?connect_timeout=N` as for PostgreSQL.
    static func parseMariaDB(_ t: String) throws -> DatabaseURL {
        let bad = { (why: String) in
            DataJoinError(.badURL, "malformed MariaDB URL '\(redactMalformed(t))': \(why)")
        }
        if let why = userinfoProblem(t) { throw bad(why) }
        guard let comps = URLComponents(string: t), let host = comps.host, !host.isEmpty else {
            throw bad("expected mariadb://user:pass@host:port/dbname")
        }
        if let port = comps.port, !(1...65535).contains(port) { throw bad("port \(port) is out of range") }
        let db = comps.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if db.isEmpty { throw bad("no database name after the host (…/dbname)") }
        guard let user = comps.user, !user.isEmpty else { throw bad("no user before the host (user@host)") }
        var timeout = UInt32(defaultConnectTimeoutSeconds)
        for item in comps.queryItems ?? [] {
            switch item.name {
            case "connect_timeout":
                guard let v = item.value.flatMap(UInt32.init), v > 0 else {
                    throw bad("connect_timeout takes a number of seconds above 0")
                }
                timeout = v
            default: throw bad("unknown option '\(item.name)' (MariaDB URLs take connect_timeout)")
            }
        }
        // An IPv6 address comes in brackets (`[::1]`); the client library wants it bare.
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let address = MariaDBDatabase.Address(
            host: bare, port: UInt32(comps.port ?? 3306),
            // Decoded once: `user` and `password` of URLComponents are decoded already (decoding
            // again logged `a%2541b` in as `aAb`, found from outside).
            user: comps.percentEncodedUser?.removingPercentEncoding ?? user,
            password: comps.percentEncodedPassword?.removingPercentEncoding,
            database: comps.percentEncodedPath.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
                .removingPercentEncoding ?? db,
            connectTimeout: timeout)
        return .mariadb(address, display: redact(t))
    }

    /// What before the host the client libraries would read otherwise than the URL says. libpq
    /// splits `user:pass@word@host` at the first `@` and MariaDB's client at the last, and a
    /// lone `%` fails to decode: their messages then printed part of the password (found from
    /// outside).
    static func userinfoProblem(_ t: String) -> String? {
        guard let schemeEnd = t.range(of: "://") else { return nil }
        let authority = t[schemeEnd.upperBound...].prefix { $0 != "/" && $0 != "?" }
        let ats = authority.filter { $0 == "@" }.count
        // A URL's fragment starts at '#': the rest of the password and the host were lost to
        // it, and the message said only "expected user:pass@host" (found from outside).
        if let at = authority.lastIndex(of: "@"), authority[..<at].contains("#") {
            return "the user or password has a '#', which a URL reads as the start of a fragment: write '#' as %23"
        }
        if ats > 1 { return "more than one '@' before the host: write an '@' in the user or password as %40" }
        if let at = authority.firstIndex(of: "@"), String(authority[..<at]).removingPercentEncoding == nil {
            return "the user or password has a '%' that is not followed by two hex digits: write '%' as %25"
        }
        return nil
    }

    /// A server's or client library's message with any `password=…` in it masked.
    public static func scrub(_ message: String) -> String {
        guard
            let regex = try? NSRegularExpression(
                // A quoted value may hold \' and an unquoted one a quote: all of it goes (found
                // in review: `password='se\'cret'` printed `***cret'`); a quote that ends the
                // value (`"p1 password=x" does not exist`) is the message's.
                pattern:
                    "((?:password|pwd)\\s*=\\s*)('(?:\\\\.|[^'\\\\])*'|\"(?:\\\\.|[^\"\\\\])*\"|[^&\\s\"]*(?:\"[^&\\s\"]+)*)",
                options: [.caseInsensitive])
        else { return message }
        let range = NSRange(message.startIndex..., in: message)
        return regex.stringByReplacingMatches(in: message, range: range, withTemplate: "$1***")
    }

    /// Seconds libpq waits for a server to answer a connection, unless told otherwise.
    public static let defaultConnectTimeoutSeconds = 10

    /// Replaces the password of a URL with `***`, so it can be printed.
    /// Text that is no URL (a libpq `host=… password=…` string given as one) keeps no password
    /// either (found from outside: it was printed whole in the error that refused it).
    public static func redact(_ text: String) -> String {
        guard let schemeEnd = text.range(of: "://") else { return scrub(text) }
        let rest = text[schemeEnd.upperBound...]
        guard let at = rest.lastIndex(of: "@") else { return redactQuery(text) }
        let userinfo = rest[rest.startIndex..<at]
        guard let colon = userinfo.firstIndex(of: ":") else { return redactQuery(text) }
        let redacted = String(text[..<schemeEnd.upperBound]) + String(userinfo[..<colon]) + ":***" + String(rest[at...])
        return redactQuery(redacted)
    }

    /// `redact`, and more, for text that did not parse as a database URL: a password typed
    /// after a mistyped scheme (`postgresql:/u:pw@h`, `mysql:u:pw@h`) or without its `@`
    /// (`postgresql://u:pw127.0.0.1/db`) is masked too (found from outside: printed whole, and
    /// cron mails what a command prints).
    public static func redactMalformed(_ text: String) -> String {
        let t = redact(text)
        // Its user's password masked already (`sqlite:postgresql://u:pw@h`): nothing more to find.
        if t.contains(":***@") { return t }
        // A scheme as typed: letters, then a colon or slashes or both.
        var prefixEnd = t.startIndex
        if let first = t.first, first.isLetter {
            var i = t.index(after: t.startIndex)
            while i < t.endIndex, t[i].isLetter || t[i].isNumber || "+.-".contains(t[i]) { i = t.index(after: i) }
            var j = i
            if j < t.endIndex, t[j] == ":" { j = t.index(after: j) }
            var slashes = 0
            while j < t.endIndex, t[j] == "/", slashes < 2 {
                j = t.index(after: j)
                slashes += 1
            }
            if j > i { prefixEnd = j }
        }
        var prefix = t[..<prefixEnd], rest = t[prefixEnd...]
        let userLike =
            prefix.hasSuffix(":") && !prefix.contains("/") && !schemes.contains(prefix.dropLast().lowercased())
        if let at = rest.lastIndex(of: "@") {
            // No scheme at all (`alice:pw@host/db`): what looked like one is the user.
            if !rest[..<at].contains(":"), prefix.hasSuffix(":"), !prefix.contains("/") {
                (prefix, rest) = (t[..<t.startIndex], t[...])
            }
            let userinfo = rest[..<at]
            guard let colon = userinfo.firstIndex(of: ":") else {
                // `user/pw@host` (another tool's form): all of it before the `@` may be secret.
                return prefix.hasSuffix("//") || userinfo.isEmpty ? t : String(prefix) + "***" + String(rest[at...])
            }
            return String(prefix + userinfo[..<colon]) + ":***" + String(rest[at...])
        }
        // `user:pw` alone: the user, then nothing.
        if userLike { return String(prefix) + "***" }
        // No `@`: after the user's colon, anything but a port may be the password, and where it
        // ends no one can tell (it may hold a slash): none of the rest is printed.
        let authority = rest[..<(rest.firstIndex { "/?#".contains($0) } ?? rest.endIndex)]
        var hostStart = authority.startIndex
        if authority.first == "[", let close = authority.firstIndex(of: "]") { hostStart = close }
        guard let colon = authority[hostStart...].firstIndex(of: ":") else { return t }
        let after = authority[authority.index(after: colon)...]
        if !after.isEmpty, after.allSatisfy({ $0.isASCII && $0.isNumber }) { return t }
        return String(prefix + authority[..<colon]) + ":***"
    }

    private static func redactQuery(_ text: String) -> String {
        guard let regex = try? NSRegularExpression(pattern: "((?:password|pwd)=)[^&]*", options: [.caseInsensitive])
        else {
            return text
        }
        let range = NSRange(text.startIndex..., in: text)
        return regex.stringByReplacingMatches(in: text, range: range, withTemplate: "$1***")
    }

    public var description: String {
        switch self {
        case .sqlite(let path): return "sqlite:" + path
        case .postgres(_, let display): return display
        case .mariadb(_, let display): return display
        }
    }
}
