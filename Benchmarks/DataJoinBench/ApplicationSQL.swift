import DataJoin

// The benchmark plays the application: it writes their own SQL as text, as any program using the
// database does. DataJoin's library never takes text as a statement without `SQL(raw:)`.

extension SQL.StringInterpolation {
    /// Any value written into the text, as an application's own statement would.
    mutating func appendInterpolation<T>(_ value: T) { appendInterpolation(raw: "\(value)") }
}

extension Database {
    @discardableResult
    func execute(_ text: String, _ params: [Value] = []) throws -> Int { try execute(SQL(raw: text), params) }
    func query(_ text: String, _ params: [Value], _ body: (Row) throws -> Void) throws {
        try query(SQL(raw: text), params, body)
    }
    func stream(_ text: String, _ body: (Row) throws -> Void) throws { try stream(SQL(raw: text), [], body) }
    func rows(_ text: String, _ params: [Value] = []) throws -> [Row] { try rows(SQL(raw: text), params) }
    func firstRow(_ text: String, _ params: [Value] = []) throws -> Row? { try firstRow(SQL(raw: text), params) }
    func scalar(_ text: String, _ params: [Value] = []) throws -> Value { try scalar(SQL(raw: text), params) }
    /// A count or other integer the statement returns.
    func integer(_ text: String) throws -> Int { Int(try scalar(text).description) ?? 0 }
    func executeScript(_ text: String) throws { try executeScript(SQL(raw: text)) }
}
