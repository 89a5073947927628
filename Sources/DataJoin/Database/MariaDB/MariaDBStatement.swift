import CMariaDB
import Foundation

/// One prepared statement, closed in deinit. Values are bound in their own types; results are
/// fetched as bytes and typed from the column's metadata.
final class MariaDBStatement {
    private unowned let db: MariaDBDatabase
    private let stmt: UnsafeMutablePointer<MYSQL_STMT>
    private let paramCount: Int
    private var fields: [Field]
    /// Rows a cursor's fetch brings: about `prefetchBytes` by the size of the largest row read
    /// lately (a large row's size fades by 1 % a row after it), from 16 at first up to 500
    /// (found from outside: 500 rows of 1 MiB values were fetched at once, and an export's
    /// memory grew with its bundle; by the last row alone, a small row between large ones
    /// brought the next 500: 188 MiB for a snapshot). Large rows right after many small ones
    /// still come up to 500 at once.
    private var prefetch = 0
    static let prefetchBytes = 8 << 20

    static func prefetch(forRowBytes bytes: Int) -> Int { max(1, min(500, prefetchBytes / max(bytes, 1))) }

    /// Rows a cursor's next fetch brings from the server: libmariadb reads the attribute at each
    /// fetch, so it follows the rows' size within a run too.
    private func setPrefetch(_ rows: Int) {
        guard rows != prefetch else { return }
        prefetch = rows
        var n = UInt(rows)
        mysql_stmt_attr_set(stmt, STMT_ATTR_PREFETCH_ROWS, &n)
    }

    struct Field {
        var type: enum_field_types
        var binary: Bool
        var unsigned: Bool
    }

    init(_ db: MariaDBDatabase, _ sql: String) throws {
        self.db = db
        guard let s = mysql_stmt_init(db.handle) else { throw db.lastError() }
        if mysql_stmt_prepare(s, sql, UInt(sql.utf8.count)) != 0 {
            let e = Self.error(s)
            mysql_stmt_close(s)
            throw e
        }
        stmt = s
        paramCount = Int(mysql_stmt_param_count(s))
        fields = Self.fields(s)
    }

    /// The result's columns; known at prepare time, except for INSERT … RETURNING (after execute).
    private static func fields(_ s: UnsafeMutablePointer<MYSQL_STMT>) -> [Field] {
        var fields: [Field] = []
        if let meta = mysql_stmt_result_metadata(s) {
            let n = Int(mysql_num_fields(meta))
            if let f = mysql_fetch_fields(meta) {
                for i in 0..<n {
                    fields.append(
                        Field(
                            type: f[i].type, binary: f[i].charsetnr == datajoin_maria_binary_charset(),
                            unsigned: f[i].flags & UInt32(UNSIGNED_FLAG) != 0))
                }
            }
            mysql_free_result(meta)
        }
        return fields
    }

    deinit { mysql_stmt_close(stmt) }

    /// The statement's error, or the connection's where the statement has none (an error
    /// raised while a result is read is the connection's).
    static func error(_ s: UnsafeMutablePointer<MYSQL_STMT>) -> MariaDBError {
        if mysql_stmt_errno(s) == 0, let connection = s.pointee.mysql, mysql_errno(connection) != 0 {
            return MariaDBError(
                number: mysql_errno(connection), sqlState: String(cString: mysql_sqlstate(connection)),
                message: String(cString: mysql_error(connection)))
        }
        return MariaDBError(
            number: mysql_stmt_errno(s), sqlState: String(cString: mysql_stmt_sqlstate(s)),
            message: String(cString: mysql_stmt_error(s)))
    }

    /// Runs the statement; each result row goes to `body`. `cursor`: rows come from a server
    /// cursor a batch at a time (other statements may run meanwhile); otherwise the result is
    /// read as it arrives. Returns the rows changed.
    @discardableResult
    func run(_ params: [Value], cursor: Bool, _ body: (Row) throws -> Void) throws -> Int {
        guard params.count == paramCount else {
            throw DataJoinError(
                .internalError, "statement takes \(paramCount) values, \(params.count) given")
        }
        var cursorType = UInt(cursor ? CURSOR_TYPE_READ_ONLY.rawValue : CURSOR_TYPE_NO_CURSOR.rawValue)
        mysql_stmt_attr_set(stmt, STMT_ATTR_CURSOR_TYPE, &cursorType)
        if cursor { setPrefetch(16) }
        let bound = Bound(params)
        defer { bound.free() }
        if paramCount > 0 {
            guard mysql_stmt_bind_param(stmt, bound.binds) == 0 else { throw Self.error(stmt) }
        }
        guard mysql_stmt_execute(stmt) == 0 else { throw Self.error(stmt) }
        defer { mysql_stmt_free_result(stmt) }
        if fields.isEmpty && mysql_stmt_field_count(stmt) > 0 { fields = Self.fields(stmt) }
        if !fields.isEmpty { try fetchAll(cursor: cursor, body) }
        let changed = mysql_stmt_affected_rows(stmt)
        return changed == UInt64.max ? 0 : Int(changed)
    }

    private func fetchAll(cursor: Bool, _ body: (Row) throws -> Void) throws {
        let n = fields.count
        let binds = UnsafeMutablePointer<MYSQL_BIND>.allocate(capacity: n)
        let lengths = UnsafeMutablePointer<UInt>.allocate(capacity: n)
        let nulls = UnsafeMutablePointer<my_bool>.allocate(capacity: n)
        // Numbers land in their own 8 bytes; everything else is fetched as bytes below.
        let numbers = UnsafeMutablePointer<UInt64>.allocate(capacity: n)
        defer {
            binds.deallocate()
            lengths.deallocate()
            nulls.deallocate()
            numbers.deallocate()
        }
        for i in 0..<n {
            binds[i] = MYSQL_BIND()
            binds[i].length = lengths + i
            binds[i].is_null = nulls + i
            lengths[i] = 0
            nulls[i] = 0
            numbers[i] = 0
            switch Self.number(fields[i]) {
            case .integer:
                binds[i].buffer_type = MYSQL_TYPE_LONGLONG
                binds[i].is_unsigned = fields[i].unsigned ? 1 : 0
                binds[i].buffer = UnsafeMutableRawPointer(numbers + i)
                binds[i].buffer_length = 8
            case .float, .double:
                binds[i].buffer_type = fields[i].type
                binds[i].buffer = UnsafeMutableRawPointer(numbers + i)
                binds[i].buffer_length = 8
            case nil:
                binds[i].buffer_type = MYSQL_TYPE_STRING
            }
        }
        guard mysql_stmt_bind_result(stmt, binds) == 0 else { throw Self.error(stmt) }
        var largest = 0.0
        while true {
            let rc = mysql_stmt_fetch(stmt)
            if rc == datajoin_maria_no_data() { return }
            var byteCount = 8 * n
            guard rc == 0 || rc == datajoin_maria_data_truncated() else { throw Self.error(stmt) }
            var values: [Value] = []
            values.reserveCapacity(n)
            for i in 0..<n {
                if nulls[i] != 0 {
                    values.append(.null)
                    continue
                }
                let raw = UnsafeMutableRawPointer(numbers + i)
                switch Self.number(fields[i]) {
                case .integer:
                    let bits = raw.load(as: UInt64.self)
                    // BIGINT UNSIGNED above Int64: kept exact as text.
                    values.append(
                        fields[i].unsigned && bits > UInt64(Int64.max)
                            ? .text(String(bits)) : .integer(Int64(bitPattern: bits)))
                    continue
                case .float:
                    // The float's shortest text, as the capture triggers write it.
                    let f = raw.load(as: Float.self)
                    values.append(.real(Double(String(describing: f)) ?? Double(f)))
                    continue
                case .double:
                    values.append(.real(raw.load(as: Double.self)))
                    continue
                case nil: break
                }
                let length = Int(lengths[i])
                byteCount += length
                var bytes = [UInt8](repeating: 0, count: length)
                if length > 0 {
                    var one = MYSQL_BIND()
                    one.buffer_type = MYSQL_TYPE_STRING
                    var got: UInt = 0
                    let rc = bytes.withUnsafeMutableBytes { buf -> Int32 in
                        one.buffer = buf.baseAddress
                        one.buffer_length = UInt(length)
                        return withUnsafeMutablePointer(to: &got) { g in
                            one.length = g
                            return mysql_stmt_fetch_column(stmt, &one, UInt32(i), 0)
                        }
                    }
                    guard rc == 0 else { throw Self.error(stmt) }
                }
                values.append(Self.typed(bytes, fields[i]))
            }
            if cursor {
                largest = max(Double(byteCount), largest * 0.99)
                setPrefetch(Self.prefetch(forRowBytes: Int(largest)))
            }
            try body(Row(values: values))
        }
    }

    enum Number { case integer, float, double }

    /// The number a column's type holds, if it holds one.
    static func number(_ f: Field) -> Number? {
        switch f.type {
        case MYSQL_TYPE_TINY, MYSQL_TYPE_SHORT, MYSQL_TYPE_LONG, MYSQL_TYPE_INT24, MYSQL_TYPE_LONGLONG, MYSQL_TYPE_YEAR:
            return .integer
        case MYSQL_TYPE_FLOAT: return .float
        case MYSQL_TYPE_DOUBLE: return .double
        default: return nil
        }
    }

    /// A column's bytes as the value its type says.
    static func typed(_ bytes: [UInt8], _ f: Field) -> Value {
        switch f.type {
        case MYSQL_TYPE_TINY, MYSQL_TYPE_SHORT, MYSQL_TYPE_LONG, MYSQL_TYPE_INT24, MYSQL_TYPE_LONGLONG, MYSQL_TYPE_YEAR:
            let text = String(decoding: bytes, as: UTF8.self)
            // BIGINT UNSIGNED above Int64: kept exact as text.
            return Int64(text).map(Value.integer) ?? .text(text)
        case MYSQL_TYPE_FLOAT, MYSQL_TYPE_DOUBLE:
            let text = String(decoding: bytes, as: UTF8.self)
            return ValueConversion.parseReal(text).map(Value.real) ?? .text(text)
        case MYSQL_TYPE_NULL:
            return .null
        case MYSQL_TYPE_BIT:
            // Big-endian bytes of the number.
            return .integer(Int64(bitPattern: bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }))
        case MYSQL_TYPE_TINY_BLOB, MYSQL_TYPE_MEDIUM_BLOB, MYSQL_TYPE_LONG_BLOB, MYSQL_TYPE_BLOB, MYSQL_TYPE_STRING,
            MYSQL_TYPE_VAR_STRING, MYSQL_TYPE_VARCHAR, MYSQL_TYPE_GEOMETRY:
            return f.binary ? .blob(bytes) : .text(String(decoding: bytes, as: UTF8.self))
        case MYSQL_TYPE_DATETIME, MYSQL_TYPE_TIMESTAMP, MYSQL_TYPE_TIME, MYSQL_TYPE_DATETIME2, MYSQL_TYPE_TIMESTAMP2,
            MYSQL_TYPE_TIME2:
            // As captured: no trailing zeros in the fraction (MariaDBDialect.trimFraction).
            return .text(MariaDBDialect.trimFraction(String(decoding: bytes, as: UTF8.self)))
        default:
            // DECIMAL, dates, JSON: their exact text.
            return .text(String(decoding: bytes, as: UTF8.self))
        }
    }

    /// Parameter bindings and the memory they point at, freed after the statement ran.
    private final class Bound {
        let binds: UnsafeMutablePointer<MYSQL_BIND>
        private var buffers: [UnsafeMutableRawPointer] = []
        private let count: Int

        init(_ params: [Value]) {
            count = params.count
            binds = UnsafeMutablePointer<MYSQL_BIND>.allocate(capacity: max(1, count))
            for (i, v) in params.enumerated() {
                var b = MYSQL_BIND()
                switch v {
                case .null:
                    b.buffer_type = MYSQL_TYPE_NULL
                case .integer(let n):
                    let p = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
                    p.storeBytes(of: n, as: Int64.self)
                    buffers.append(p)
                    b.buffer_type = MYSQL_TYPE_LONGLONG
                    b.buffer = p
                case .real(let d):
                    let p = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
                    p.storeBytes(of: d, as: Double.self)
                    buffers.append(p)
                    b.buffer_type = MYSQL_TYPE_DOUBLE
                    b.buffer = p
                case .text(let s):
                    b.buffer_type = MYSQL_TYPE_STRING
                    b.buffer = copy(Array(s.utf8), &b)
                case .blob(let bytes):
                    b.buffer_type = MYSQL_TYPE_BLOB
                    b.buffer = copy(bytes, &b)
                }
                binds[i] = b
            }
        }

        private func copy(_ bytes: [UInt8], _ b: inout MYSQL_BIND) -> UnsafeMutableRawPointer {
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes.count), alignment: 1)
            bytes.withUnsafeBytes { src in
                if let base = src.baseAddress { p.copyMemory(from: base, byteCount: bytes.count) }
            }
            buffers.append(p)
            b.buffer_length = UInt(bytes.count)
            b.length_value = UInt(bytes.count)
            return p
        }

        func free() {
            for p in buffers { p.deallocate() }
            buffers = []
            binds.deallocate()
        }
    }
}
