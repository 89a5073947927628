import CLibPQ
import Foundation

/// One libpq connection, finished in deinit. Statements are prepared once per connection;
/// parameters travel as text (blobs as binary), results are typed from their column OIDs.
public final class PostgresDatabase: Database, TransactionDriver {
    var transactionDepth = 0
    var applying = ApplyingState.unknown
    public let dialect: Dialect = PostgresDialect()
    public let displayName: String
    let conn: OpaquePointer
    /// Holds the password: never printed (`displayName` is what is).
    private let conninfo: String
    private var prepared: [String: String] = [:]
    /// The parameter types the server inferred, per prepared statement, read only for a
    /// statement that is given a blob.
    private var parameterTypes: [String: [Oid]] = [:]
    private var statementCounter = 0
    private var cursorCounter = 0
    /// While `streamAlone` reads its rows: libpq would drop the rest of them for another statement.
    private var streamingAlone = false

    private func notStreamingAlone() throws {
        if streamingAlone {
            throw DataJoinError(.internalError, "a statement ran on a connection while a stream read its rows")
        }
    }

    public init(conninfo: String, displayName: String) throws {
        self.displayName = displayName
        self.conninfo = conninfo
        guard let c = PQconnectdb(conninfo) else {
            throw DataJoinError(.connection, "cannot connect to \(displayName): out of memory")
        }
        if PQstatus(c) != CONNECTION_OK {
            let msg = String(cString: PQerrorMessage(c)).trimmingCharacters(in: .whitespacesAndNewlines)
            // libpq requires PQfinish even after a failed connect.
            PQfinish(c)
            // libpq indents its hints with a tab ("\n\tIs the server running…"): one line of
            // words, not an escaped control character (found from outside).
            let oneLine = DatabaseURL.scrub(TerminalText.oneLine(msg))
            // libpq gives no SQLSTATE for a failed connection: its message is all there is.
            if msg.contains("invalid connection option") || msg.contains("invalid integer value")
                || msg.contains("invalid sslmode value") || msg.contains("invalid URI query parameter")
                || msg.contains("missing key/value separator") || msg.contains("extra key/value separator")
                || msg.contains("invalid percent-encoded token") || msg.contains("unterminated quoted string")
            {
                throw DataJoinError(.badURL, "bad connection URL \(displayName): \(oneLine)")
            }
            // The server is up and refuses a setting of the URL's options: trying again would
            // not help (found from outside: exit 69, "check that the server runs").
            if msg.contains("unrecognized configuration parameter") || msg.contains("invalid value for parameter")
                || (msg.contains("parameter \"")
                    && (msg.contains("cannot be changed") || msg.contains("cannot be set")))
            {
                throw DataJoinError(
                    .sql,
                    "cannot connect to \(displayName): \(oneLine); the server refuses a setting of the URL's options: fix or remove it"
                )
            }
            if msg.contains("password authentication failed")
                || (msg.contains("role \"") && msg.contains("\" does not exist"))
            {
                throw DataJoinError(
                    .permission, "cannot connect to \(displayName): \(oneLine); check the user and password")
            }
            if msg.contains("database \"") && msg.contains("\" does not exist") {
                throw DataJoinError(
                    .noInput, "no database at \(displayName): \(oneLine) (createdb makes one, then 'datajoin init')")
            }
            throw DataJoinError(
                .connection,
                "cannot connect to \(displayName): \(oneLine); check that the server runs and the URL is right")
        }
        conn = c
        do {
            // Custom plans: DataJoin's tables grow fast between ANALYZE runs, and a generic plan
            // made while they were small seq-scans them for every batch (docs/performance.md).
            // No JIT: with seq scans priced out (import), a one-row table's plan costs 10^10
            // and was compiled for every statement (67 ms each).
            // A lock an application's open transaction holds is waited for --lock-timeout, not
            // for ever (found from outside: an ingest waited silently as long as the application
            // kept its transaction open); the run then stops with exit 75, nothing applied.
            let lockMs = Int(min(86_400, max(0.001, LockWait.timeoutSeconds)) * 1000)
            try executeScript(
                SQL(
                    raw:
                        "SET client_min_messages = warning; SET extra_float_digits = 3; SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'; SET application_name = 'datajoin'; SET plan_cache_mode = force_custom_plan; SET jit = off; SET lock_timeout = \(lockMs)"
                ))
        } catch {
            // Not finished here: the connection is this object's now, and deinit runs for an
            // initializer that throws after every property is set (it was freed twice, and the
            // process aborted, when the server went away during setup; found from outside).
            // Exit 69 (try again) only when the server went away; a refused setting stays refused.
            throw DataJoinError(
                DatabaseErrors.isConnectionLost(error) ? .connection : .sql,
                "cannot set up a session on \(displayName): \(TerminalText.oneLine("\(error)"))")
        }
    }

    deinit { PQfinish(conn) }

    public func openReader() throws -> Database? { try PostgresDatabase(conninfo: conninfo, displayName: displayName) }

    private func lastError(_ result: OpaquePointer?) -> PostgresError {
        var state = ""
        var message = String(cString: PQerrorMessage(conn))
        if let result {
            if let s = PQresultErrorField(result, datajoin_pg_diag_sqlstate()) { state = String(cString: s) }
            if let m = PQresultErrorField(result, datajoin_pg_diag_message_primary()) { message = String(cString: m) }
        }
        return PostgresError(sqlState: state, message: message.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// `?` placeholders become `$n`. Skipped: quoted text ('…', E'…' with backslash escapes),
    /// quoted identifiers, dollar-quoted bodies ($tag$…$tag$), and -- and /* */ comments. `??`
    /// stands for a literal `?` (jsonb's operator), as in JDBC.
    static func numberPlaceholders(_ sql: String, substitute: ((Int) -> String?)? = nil) -> (String, Int) {
        let b = Array(sql.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(b.count + 16)
        var n = 0
        var i = 0
        func copy(until end: Int) {
            out.append(contentsOf: b[i..<min(end, b.count)])
            i = min(end, b.count)
        }
        func find(_ needle: [UInt8], from: Int) -> Int? {
            guard !needle.isEmpty, from <= b.count - needle.count else { return nil }
            var k = from
            while k <= b.count - needle.count {
                if b[k] == needle[0] && Array(b[k..<k + needle.count]) == needle { return k }
                k += 1
            }
            return nil
        }
        while i < b.count {
            let c = b[i]
            let next: UInt8? = i + 1 < b.count ? b[i + 1] : nil
            switch c {
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                // E'…' (the E was copied already) lets a backslash escape the quote.
                let escapes =
                    c == UInt8(ascii: "'") && i > 0 && (b[i - 1] == UInt8(ascii: "E") || b[i - 1] == UInt8(ascii: "e"))
                var k = i + 1
                while k < b.count {
                    if escapes && b[k] == UInt8(ascii: "\\") {
                        k += 2
                        continue
                    }
                    if b[k] == c {
                        if k + 1 < b.count && b[k + 1] == c {
                            k += 2
                            continue
                        }  // doubled quote
                        break
                    }
                    k += 1
                }
                copy(until: k + 1)
            case UInt8(ascii: "-") where next == UInt8(ascii: "-"):
                copy(until: (find([UInt8(ascii: "\n")], from: i) ?? b.count) + 1)
            case UInt8(ascii: "/") where next == UInt8(ascii: "*"):
                copy(until: (find(Array("*/".utf8), from: i + 2) ?? b.count) + 2)
            case UInt8(ascii: "$"):
                // $tag$ … $tag$ (a tag is letters, digits and _; $1 is not a tag).
                var k = i + 1
                while k < b.count,
                    b[k] == UInt8(ascii: "_") || (b[k] | 0x20 >= UInt8(ascii: "a") && b[k] | 0x20 <= UInt8(ascii: "z"))
                        || (k > i + 1 && b[k] >= UInt8(ascii: "0") && b[k] <= UInt8(ascii: "9"))
                { k += 1 }
                if k < b.count && b[k] == UInt8(ascii: "$") {
                    let tag = Array(b[i...k])
                    copy(until: (find(tag, from: k + 1).map { $0 + tag.count }) ?? b.count)
                } else {
                    copy(until: i + 1)
                }
            case UInt8(ascii: "?") where next == UInt8(ascii: "?"):
                out.append(c)
                i += 2
            case UInt8(ascii: "?"):
                n += 1
                out.append(contentsOf: Array((substitute?(n) ?? "$\(n)").utf8))
                i += 1
            default:
                out.append(c)
                i += 1
            }
        }
        return (String(decoding: out, as: UTF8.self), n)
    }

    private func statementName(_ sql: String) throws -> String {
        if let name = prepared[sql] { return name }
        statementCounter += 1
        let name = "dj_\(statementCounter)"
        let (text, n) = Self.numberPlaceholders(sql)
        guard let res = PQprepare(conn, name, text, Int32(n), nil) else { throw lastError(nil) }
        defer { PQclear(res) }
        guard PQresultStatus(res) == PGRES_COMMAND_OK else { throw lastError(res) }
        prepared[sql] = name
        return name
    }

    /// Runs a prepared statement; values stay valid only inside this call.
    private func run(_ sql: String, _ params: [Value], _ body: (OpaquePointer) throws -> Void) throws {
        try notStreamingAlone()
        do {
            try runPrepared(sql, params, body)
        } catch let e as PostgresError where Self.isStalePlan(e) {
            // The table changed under a prepared statement (ALTER TABLE while a long-running
            // `watch` holds its session): prepare it again; inside a transaction the error has
            // aborted it, so the caller's transaction runs again (isRetryable).
            prepared[sql] = nil
            parameterTypes[sql] = nil
            guard PQtransactionStatus(conn) == PQTRANS_IDLE else { throw e }
            try runPrepared(sql, params, body)
        }
    }

    /// Values of 1 MiB or more reach the server through COPY into a temporary table, a megabyte
    /// at a time, and the statement reads them from there, cast to the type the server inferred
    /// for the parameter. As parameters, libpq builds them whole into a buffer it grows by
    /// doubling: a 64 MiB value took 128 MiB besides itself.
    private func runStaged(
        _ sql: String, name: String, params: [Value], encoded: EncodedParams, _ body: (OpaquePointer) throws -> Void
    ) throws {
        guard let description = PQdescribePrepared(conn, name) else { throw lastError(nil) }
        let types = (0..<PQnparams(description)).map { PQparamtype(description, $0) }
        PQclear(description)
        try executeScript(
            "CREATE TEMP TABLE IF NOT EXISTS ds_large_value (n integer PRIMARY KEY, t text, b bytea); DELETE FROM ds_large_value"
        )
        try copyInRows("COPY ds_large_value (n, t, b) FROM STDIN") { send in
            for i in encoded.large {
                switch params[i] {
                case .text(let s): try send([.integer(Int64(i + 1)), .text(s), .null])
                default: try send([.integer(Int64(i + 1)), .null, params[i]])
                }
            }
        }
        var typeNames: [Oid: String] = [:]
        for i in encoded.large where i < types.count && types[i] != 0 && typeNames[types[i]] == nil {
            typeNames[types[i]] = try firstRow("SELECT format_type(CAST(? AS oid), NULL)", [.integer(Int64(types[i]))])?
                .string(0)
        }
        let large = Set(encoded.large)
        let (text, _) = Self.numberPlaceholders(sql) { k in
            let i = k - 1
            guard large.contains(i) else { return nil }
            let column = { if case .text = params[i] { return "t" } else { return "b" } }()
            let read = "(SELECT \(column) FROM pg_temp.ds_large_value WHERE n = \(k))"
            return i < types.count ? typeNames[types[i]].map { "CAST(\(read) AS \($0))" } ?? read : read
        }
        // Every parameter typed (the staged ones are passed as NULL and not referenced).
        let result: OpaquePointer? = encoded.withPointers(
            params.enumerated().map { large.contains($0.offset) ? .null : $0.element }
        ) { ptrs in
            PQexecParams(conn, text, Int32(params.count), types, ptrs, encoded.lengths, encoded.formats, 0)
        }
        guard let result else { throw lastError(nil) }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK: try body(result)
        default: throw lastError(result)
        }
    }

    /// A blob goes in binary format, which the server reads in the format of the parameter's
    /// type: bytes bound where it inferred a boolean, an integer or a timestamp were read as one
    /// (`X'01'` as true), or broke the protocol and the connection (`08P01`: every import failed
    /// the same way; found from outside). Such a blob goes as bytea's hex text instead, which the
    /// type refuses with an ordinary error (`ValueFit` holds these values before they are written).
    private func blobsAsTheirType(_ params: [Value], sql: String, name: String) throws -> [Value] {
        guard params.contains(where: { if case .blob = $0 { return true } else { return false } }) else {
            return params
        }
        let types: [Oid]
        if let known = parameterTypes[sql] {
            types = known
        } else {
            guard let description = PQdescribePrepared(conn, name) else { throw lastError(nil) }
            defer { PQclear(description) }
            guard PQresultStatus(description) == PGRES_COMMAND_OK else { throw lastError(description) }
            types = (0..<PQnparams(description)).map { PQparamtype(description, $0) }
            parameterTypes[sql] = types
        }
        let bytea: Oid = 17
        var out = params
        for (i, v) in params.enumerated() {
            guard case .blob(let b) = v, i < types.count, types[i] != bytea, types[i] != 0 else { continue }
            out[i] = .text("\\x" + Hex.encode(b))
        }
        return out
    }

    static func isStalePlan(_ e: PostgresError) -> Bool {
        e.code == .featureNotSupported && e.message.contains("cached plan must not change result type")
    }

    private func runPrepared(_ sql: String, _ params: [Value], _ body: (OpaquePointer) throws -> Void) throws {
        let name = try statementName(sql)
        let params = try blobsAsTheirType(params, sql: sql, name: name)
        let encoded = try Self.encode(params)
        if !encoded.large.isEmpty { return try runStaged(sql, name: name, params: params, encoded: encoded, body) }
        let result: OpaquePointer? = encoded.withPointers(params) { ptrs in
            PQexecPrepared(conn, name, Int32(params.count), ptrs, encoded.lengths, encoded.formats, 0)
        }
        guard let result else { throw lastError(nil) }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK: try body(result)
        default: throw lastError(result)
        }
    }

    /// Parameters as libpq takes them, all in one buffer (an array per value had been a tenth of
    /// an import's client time): text (NUL-terminated) for everything but blobs, which go in
    /// binary format. PostgreSQL text cannot hold NUL, so such a value is refused here.
    struct EncodedParams {
        var storage: [UInt8] = []
        /// Where each value starts in `storage`; -1 for NULL.
        var offsets: [Int] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []

        mutating func append(text: UnsafeBufferPointer<UInt8>) {
            offsets.append(storage.count)
            lengths.append(Int32(text.count))
            formats.append(0)
            storage.append(contentsOf: text)
            storage.append(0)
        }

        /// Values of 1 MiB or more, not copied into `storage`: passed in place (libpq copies
        /// them once into its message).
        var large: [Int] = []
        static let inPlaceBytes = 1 << 20

        func withPointers<R>(_ params: [Value], _ body: ([UnsafePointer<CChar>?]) throws -> R) rethrows -> R {
            try storage.withUnsafeBufferPointer { base in
                // No storage means every value is NULL.
                var pointers = offsets.map { o in
                    base.baseAddress.flatMap {
                        o < 0 ? nil : UnsafeRawPointer($0 + o).assumingMemoryBound(to: CChar.self)
                    }
                }
                return try Self.inPlace(params, large[...], &pointers, body)
            }
        }

        /// Each large value's pointer is valid inside its closure; the call runs in the innermost.
        private static func inPlace<R>(
            _ params: [Value], _ large: ArraySlice<Int>, _ pointers: inout [UnsafePointer<CChar>?],
            _ body: ([UnsafePointer<CChar>?]) throws -> R
        ) rethrows -> R {
            guard let i = large.first else { return try body(pointers) }
            switch params[i] {
            case .text(let s):
                return try s.withCString { p in
                    pointers[i] = p
                    return try inPlace(params, large.dropFirst(), &pointers, body)
                }
            case .blob(let b):
                return try b.withUnsafeBytes { buf in
                    pointers[i] = buf.baseAddress.map { $0.assumingMemoryBound(to: CChar.self) }
                    return try inPlace(params, large.dropFirst(), &pointers, body)
                }
            default:
                return try inPlace(params, large.dropFirst(), &pointers, body)
            }
        }
    }

    static func encode(_ params: [Value]) throws -> EncodedParams {
        var e = EncodedParams()
        e.storage.reserveCapacity(params.count * 16)
        e.offsets.reserveCapacity(params.count)
        e.lengths.reserveCapacity(params.count)
        e.formats.reserveCapacity(params.count)
        for p in params {
            switch p {
            case .null:
                e.offsets.append(-1)
                e.lengths.append(0)
                e.formats.append(0)
            case .integer(let v):
                var t = String(v)
                t.withUTF8 { e.append(text: $0) }
            case .real(let v):
                var t = Value.realText(v)
                t.withUTF8 { e.append(text: $0) }
            case .text(let s):
                var s = s
                let hasNul = s.withUTF8 { u in
                    guard let base = u.baseAddress, !u.isEmpty else { return false }
                    return memchr(base, 0, u.count) != nil
                }
                if hasNul {
                    throw PostgresError(
                        code: .characterNotInRepertoire,
                        message: "text value holds a NUL byte, which PostgreSQL text cannot store")
                }
                if s.utf8.count >= EncodedParams.inPlaceBytes {
                    e.large.append(e.offsets.count)
                    e.offsets.append(-1)
                    e.lengths.append(Int32(s.utf8.count))
                    e.formats.append(0)
                    continue
                }
                s.withUTF8 { e.append(text: $0) }
            case .blob(let b) where b.count >= EncodedParams.inPlaceBytes:
                e.large.append(e.offsets.count)
                e.offsets.append(-1)
                e.lengths.append(Int32(b.count))
                e.formats.append(1)
            case .blob(let b):
                e.offsets.append(e.storage.count)
                e.lengths.append(Int32(b.count))
                e.formats.append(1)
                e.storage.append(contentsOf: b)
            }
        }
        return e
    }

    private func rows(of result: OpaquePointer, _ body: (Row) throws -> Void) throws {
        let nrows = PQntuples(result)
        let ncols = PQnfields(result)
        let types = (0..<ncols).map { PQftype(result, $0) }
        for r in 0..<nrows {
            var values: [Value] = []
            values.reserveCapacity(Int(ncols))
            for c in 0..<ncols {
                if PQgetisnull(result, r, c) == 1 {
                    values.append(.null)
                    continue
                }
                let len = Int(PQgetlength(result, r, c))
                let ptr = PQgetvalue(result, r, c)!
                let raw = UnsafeBufferPointer(
                    start: UnsafeRawPointer(ptr).assumingMemoryBound(to: UInt8.self), count: len)
                // bytea's hex text straight to bytes, with no String in between.
                if types[Int(c)] == 17, len >= 2, raw[0] == 92, raw[1] == UInt8(ascii: "x"),
                    let b = Hex.decode(UnsafeBufferPointer(rebasing: raw[2...]))
                {
                    values.append(.blob(b))
                    continue
                }
                values.append(Self.typed(String(decoding: raw, as: UTF8.self), oid: types[Int(c)]))
            }
            try body(Row(values: values))
        }
    }

    static func typed(_ text: String, oid: Oid) -> Value {
        switch oid {
        case 20, 21, 23, 26: return Int64(text).map(Value.integer) ?? .text(text)
        case 700, 701:
            switch text {
            case "Infinity": return .real(.infinity)
            case "-Infinity": return .real(-.infinity)
            case "NaN": return .real(.nan)
            default: return Double(text).map(Value.real) ?? .text(text)
            }
        case 16: return .integer(text == "t" ? 1 : 0)
        case 17:
            if text.hasPrefix("\\x"), let b = Hex.decode(text.dropFirst(2)) { return .blob(b) }
            return .blob(Array(text.utf8))
        default: return .text(text)
        }
    }

    @discardableResult
    public func execute(_ sql: SQL) throws -> Int {
        var affected = 0
        try run(sql.text, sql.bindings) { res in affected = Int(String(cString: PQcmdTuples(res))) ?? 0 }
        return affected
    }

    public func query(_ sql: SQL, _ body: (Row) throws -> Void) throws {
        try run(sql.text, sql.bindings) { res in try rows(of: res, body) }
    }

    /// A cursor, so that `body` may run statements between fetches. Each fetch's rows come one
    /// at a time (single-row mode) and are kept until they hold `Tuning.streamFetchBytes`; the
    /// rest of that fetch is read off and skipped, and the cursor moved back to the last row
    /// kept (found from outside: a count grown on small rows fetched the large rows after them
    /// at once, 255 MiB for a snapshot of 5,000 small rows and 150 of 1 MiB). The count asks
    /// for about that many bytes by the largest row read lately (its size fades by 1 % a row
    /// after it), from 4 at first, growing at most 8-fold a fetch, up to 256: what a skip
    /// reads for nothing is at most 255 rows, once per change to larger rows.
    public func stream(_ sql: SQL, _ body: (Row) throws -> Void) throws {
        cursorCounter += 1
        let name = "dj_cursor_\(cursorCounter)"
        let params = sql.bindings
        let (text, n) = Self.numberPlaceholders(sql.text)
        guard n == params.count else {
            throw DataJoinError(.internalError, "a statement has \(n) placeholders for \(params.count) values")
        }
        // DECLARE is not preparable; it runs once per stream with the same typed parameters.
        try execUnprepared("DECLARE \(name) SCROLL CURSOR FOR " + text, params)
        defer { _ = try? executeScript("CLOSE \(raw: name)") }
        let budget = Tuning.current.streamFetchBytes
        var want = 4
        var position = 0
        var largest = 0.0
        while true {
            var kept: [Row] = []
            var bytes = 0
            var received = 0
            try singleRows({ PQsendQuery(conn, "FETCH \(want) FROM \(name)") }) { res in
                received += 1
                guard bytes < budget else { return }
                let size = Self.resultBytes(res)
                bytes += size
                largest = max(Double(size), largest * 0.99)
                try rows(of: res) { kept.append($0) }
            }
            position += kept.count
            if kept.count < received {
                try executeScript("MOVE ABSOLUTE \(raw: String(position)) FROM \(raw: name)")
            }
            for row in kept { try body(row) }
            if received < want && kept.count == received { break }
            want = Self.nextFetch(after: want, budget: budget, largest: largest)
        }
    }

    /// Rows the next fetch asks for: about `budget` bytes of rows as large as `largest`, at
    /// most 8 times the last count and 256.
    static func nextFetch(after want: Int, budget: Int, largest: Double) -> Int {
        max(1, min(256, want * 8, Int(Double(budget) / max(largest, 1))))
    }

    private static func resultBytes(_ res: OpaquePointer) -> Int {
        var n = 0
        for r in 0..<PQntuples(res) {
            for c in 0..<PQnfields(res) { n += Int(PQgetlength(res, r, c)) + 8 }
        }
        return n
    }

    /// libpq's single-row mode: each row is its own result, cleared before the next is read,
    /// so memory holds one row whatever came before it. Unprepared, as `DECLARE` is: it runs
    /// once per export.
    public func streamAlone(_ sql: SQL, _ body: (Row) throws -> Void) throws {
        try notStreamingAlone()
        let params = sql.bindings
        let (text, n) = Self.numberPlaceholders(sql.text)
        guard n == params.count else {
            throw DataJoinError(.internalError, "a statement has \(n) placeholders for \(params.count) values")
        }
        let encoded = try Self.encode(params)
        streamingAlone = true
        defer { streamingAlone = false }
        try singleRows({
            encoded.withPointers(params) { ptrs in
                PQsendQueryParams(conn, text, Int32(params.count), nil, ptrs, encoded.lengths, encoded.formats, 0)
            }
        }) { res in try rows(of: res, body) }
    }

    /// Sends a query (`send`) and gives each row of its result to `each` as its own result. A
    /// throw from `each` reads the rest of the result off the connection (a cancel would leave
    /// an ERROR in the server's log), so the next statement finds it ready.
    private func singleRows(_ send: () -> Int32, _ each: (OpaquePointer) throws -> Void) throws {
        guard send() == 1 else { throw lastError(nil) }
        var failure: Error? =
            PQsetSingleRowMode(conn) == 1 ? nil : DataJoinError(.internalError, "libpq refused single-row mode")
        while let result = PQgetResult(conn) {
            defer { PQclear(result) }
            guard failure == nil else { continue }
            switch PQresultStatus(result) {
            case PGRES_SINGLE_TUPLE:
                do { try each(result) } catch { failure = error }
            case PGRES_TUPLES_OK, PGRES_COMMAND_OK: break
            default: failure = lastError(result)
            }
        }
        if let failure { throw failure }
    }

    private func execUnprepared(_ sql: String, _ params: [Value]) throws {
        try notStreamingAlone()
        let encoded = try Self.encode(params)
        let result = encoded.withPointers(params) { ptrs in
            PQexecParams(conn, sql, Int32(params.count), nil, ptrs, encoded.lengths, encoded.formats, 0)
        }
        guard let result else { throw lastError(nil) }
        defer { PQclear(result) }
        let st = PQresultStatus(result)
        guard st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK else { throw lastError(result) }
    }

    /// A megabyte at a time with `substring`: the hex text of one piece, not of the whole value,
    /// is in libpq's result.
    public func readBlob(table: String, column: String, rowid: Int64, offset: Int, count: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        try query(
            "SELECT substring(\(Identifier(column)) FROM ? FOR ?) FROM \(Identifier(table)) WHERE id = ?",
            [.integer(Int64(offset + 1)), .integer(Int64(count)), .integer(rowid)]
        ) { r in
            if case .blob(let b) = r.values[0] { out = b }
        }
        return out
    }

    public func executeScript(_ sql: SQL) throws {
        try notStreamingAlone()
        guard let res = PQexec(conn, sql.text) else { throw lastError(nil) }
        defer { PQclear(res) }
        let st = PQresultStatus(res)
        guard st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY else { throw lastError(res) }
    }

    /// `COPY … FROM STDIN` of rows of values, encoded straight into the send buffer.
    public func copyInRows(_ sql: String, _ produce: (([Value]) throws -> Void) throws -> Void) throws {
        try copyIn(sql) { sink in try produce { row in try CopyText.append(row, to: sink) } }
    }

    /// `COPY … FROM STDIN` in text format: `produce` hands over lines (tab-separated, escaped by
    /// the caller). Used by the benchmark's baseline.
    public func copyIn(_ sql: String, _ produce: ((String) throws -> Void) throws -> Void) throws {
        try copyIn(sql) { sink in
            try produce { line in
                sink.bytes.append(contentsOf: line.utf8)
                sink.bytes.append(10)
                try sink.sendIfFull()
            }
        }
    }

    private func copyIn(_ sql: String, sink produce: (CopySink) throws -> Void) throws {
        try notStreamingAlone()
        guard let start = PQexec(conn, sql) else { throw lastError(nil) }
        let status = PQresultStatus(start)
        PQclear(start)
        guard status == PGRES_COPY_IN else { throw lastError(nil) }
        let conn = self.conn
        let sink = CopySink { [unowned self] bytes in
            let rc = bytes.withUnsafeBufferPointer { p in
                p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) {
                    PQputCopyData(conn, $0, Int32(p.count))
                }
            }
            guard rc == 1 else { throw self.lastError(nil) }
        }
        do {
            try produce(sink)
            try sink.sendAll()
        } catch {
            _ = PQputCopyEnd(conn, "aborted")
            while let r = PQgetResult(conn) { PQclear(r) }
            throw error
        }
        guard PQputCopyEnd(conn, nil) == 1 else { throw lastError(nil) }
        var failure: PostgresError?
        while let r = PQgetResult(conn) {
            if PQresultStatus(r) != PGRES_COMMAND_OK && failure == nil { failure = lastError(r) }
            PQclear(r)
        }
        if let failure { throw failure }
    }

    /// DataJoin's write transactions run one at a time per database. The lock is taken before
    /// the transaction starts: REPEATABLE READ fixes its snapshot at the first statement, so a
    /// lock taken inside would leave a transaction that waited for another one reading the
    /// state from before that one committed (two `ingest` runs of one folder then loaded the
    /// same bundle twice, and the second failed on a unique key).
    private static let writerLock: SQL = "4242000001"
    private var holdsWriterLock = false

    func beginWrite() throws {
        // Never taken twice: a session lock counts, and a second count would outlive the
        // transaction (and a long-running `watch` would then hold off every other writer).
        if !holdsWriterLock {
            try LockWait.writerLock(on: displayName) {
                try scalar("SELECT pg_try_advisory_lock(\(Self.writerLock))") == .integer(1)
            }
            holdsWriterLock = true
        }
        do {
            // REPEATABLE READ: an application write that commits under an import makes the
            // import fail with a serialization error and run again, so it never overwrites a
            // change it did not see (docs/apply-rules.md).
            try executeScript("BEGIN ISOLATION LEVEL REPEATABLE READ")
        } catch {
            releaseWriterLock()
            throw error
        }
    }

    private func releaseWriterLock() {
        guard holdsWriterLock else { return }
        holdsWriterLock = false
        try? executeScript("SELECT pg_advisory_unlock(\(Self.writerLock))")
    }

    func beginRead() throws { try executeScript("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") }
    func commitTransaction() throws {
        defer { releaseWriterLock() }
        try executeScript("COMMIT")
    }
    func rollbackTransaction() throws {
        defer { releaseWriterLock() }
        try executeScript("ROLLBACK")
    }
    public func isRetryable(_ error: Error) -> Bool {
        guard let e = TransactionError.unwrap(error) as? PostgresError else { return false }
        return e.code == .serializationFailure || e.code == .deadlockDetected || Self.isStalePlan(e)
    }
    /// A lock timeout is no refusal of a change: the run stops (exit 75) rather than apply the
    /// bundle change by change, waiting again for each.
    public func isRefusal(_ error: Error) -> Bool {
        TransactionError.unwrap(error) is PostgresError && !isRetryable(error) && !isUnavailable(error)
            && !DatabaseErrors.isLocked(error)
    }

    public func isUniqueViolation(_ error: Error) -> Bool {
        (TransactionError.unwrap(error) as? PostgresError)?.code == .uniqueViolation
    }

    /// A large value goes through the statement's own streaming binding.
    public func insertWithLargeValue(into table: SQL, columns: SQL, _ row: [Value], valueIndex: Int) throws
        -> Int?
    { nil }

    /// COPY: no speculative insertion per row (what ON CONFLICT costs, twice the insert).
    public func bulkLoad(
        into table: SQL, columns: SQL, _ rows: (_ send: ([Value]) throws -> Void) throws -> Void
    ) throws -> Bool {
        try copyInRows("COPY \(table) (\(columns)) FROM STDIN", rows)
        return true
    }

    public func isUnavailable(_ error: Error) -> Bool {
        guard let e = TransactionError.unwrap(error) as? PostgresError else { return false }
        // No code: the connection itself failed. Classes 08 (connection), 53 (resources), 57
        // (operator intervention: shutdown, cancel).
        return e.sqlState.isEmpty
            || [.connectionException, .insufficientResources, .operatorIntervention].contains(e.code.errorClass)
    }
}

/// A server error with its SQLSTATE; bound values are never part of the message.
public struct PostgresError: Error, CustomStringConvertible {
    public let sqlState: String
    public let message: String

    public init(sqlState: String, message: String) {
        self.sqlState = sqlState
        self.message = message
    }

    init(code: Code, message: String) { self.init(sqlState: code.rawValue, message: message) }

    public var code: Code { Code(rawValue: sqlState) }

    /// SQLSTATE codes by name (PostgreSQL's errcodes.txt), as postgres-nio's PostgresError.Code:
    /// the core matches names, never raw strings.
    public struct Code: RawRepresentable, Hashable, Sendable {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        /// The class: the first two characters, with "000".
        public var errorClass: Code { Code(rawValue: String(rawValue.prefix(2)) + "000") }

        public static let connectionException = Code(rawValue: "08000")
        public static let featureNotSupported = Code(rawValue: "0A000")
        public static let characterNotInRepertoire = Code(rawValue: "22021")
        public static let uniqueViolation = Code(rawValue: "23505")
        public static let foreignKeyViolation = Code(rawValue: "23503")
        public static let serializationFailure = Code(rawValue: "40001")
        public static let deadlockDetected = Code(rawValue: "40P01")
        public static let insufficientResources = Code(rawValue: "53000")
        public static let lockNotAvailable = Code(rawValue: "55P03")
        public static let insufficientPrivilege = Code(rawValue: "42501")
        public static let readOnlySQLTransaction = Code(rawValue: "25006")
        public static let operatorIntervention = Code(rawValue: "57000")
    }
    public var description: String {
        sqlState.isEmpty ? "PostgreSQL error: \(message)" : "PostgreSQL error \(sqlState): \(message)"
    }
}
