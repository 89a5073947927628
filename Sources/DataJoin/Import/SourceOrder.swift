import Foundation

/// When a chunk of changes must be written in the source's order. The fast path writes each
/// row's final state, all of a chunk's deletes first, then its inserts and updates table by
/// table: that is the source's result only when no write inside the chunk depends on another
/// having gone first. Two cases do, and the chunk's bundle is then applied change by change,
/// in order (`Importer.run`), rather than refused by the database and retried:
/// - a delete of a parent row in a chunk that changes the foreign key of a row referencing its
///   table: the delete's `ON DELETE CASCADE` would remove a child the chunk moved to another
///   parent (found from outside), or its foreign key would refuse. Without such a move the
///   fast path is safe: it deletes children first, and inserts and updates come after every
///   delete (a child that stayed with a deleted parent is deleted at the source too);
/// - a value of a unique index that one row gives up and another takes (a swap through NULL or
///   a third value, a shift of ranks, an insert taking a value another row gave up): the taker
///   may be written first, and the index refuses it.
struct SourceOrder {
    /// Tracked tables that tracked tables reference → the tables referencing each → the columns.
    var children: [String: [String: Set<String>]] = [:]
    var uniques: [String: [UniqueIndex]] = [:]

    static let none = SourceOrder()

    static func load(_ db: Database, tables: [String: TableInfo], foreignKeys: ForeignKeys) throws -> SourceOrder {
        SourceOrder(children: foreignKeys.children, uniques: try UniqueIndexes.of(db, tables: tables))
    }

    /// Why `changes` must go in the source's order, or nil when the fast path gives the same rows.
    func reason(_ changes: [Change]) -> String? {
        if !children.isEmpty {
            var deleted: Set<String> = []
            for c in changes where c.op == .delete && children[c.table] != nil { deleted.insert(c.table) }
            for parent in deleted.sorted() {
                let referencing = children[parent] ?? [:]
                for u in changes where u.op == .update {
                    if let columns = referencing[u.table], u.columns.contains(where: { columns.contains($0.name) }) {
                        return "it deletes rows of \(parent) and moves rows of \(u.table) that reference it"
                    }
                }
            }
        }
        if uniques.isEmpty { return nil }
        var byTable: [String: [Change]] = [:]
        for c in changes where uniques[c.table] != nil && c.op != .delete { byTable[c.table, default: []].append(c) }
        for (table, changes) in byTable.sorted(by: { $0.key < $1.key }) {
            for u in uniques[table] ?? [] where Self.valueMoves(changes, u) {
                return "a value of the unique index \(u.name) of \(table) moves between its rows"
            }
        }
        return nil
    }

    /// True when one row may give up a value of `u` that another row of the chunk takes.
    static func valueMoves(_ changes: [Change], _ u: UniqueIndex) -> Bool {
        func reads(_ column: String) -> Bool { u.columns.map { $0.contains(column) } ?? true }
        if u.plain, let columns = u.columns, columns.count == 1 {
            let column = columns[0]
            // Value → the rows giving it up, and the rows taking it.
            var given: [String: Set<[Value]>] = [:]
            var taken: [String: Set<[Value]>] = [:]
            var givenUnknown: Set<[Value]> = []
            // An update whose old and new values together passed 64 MiB travels with NULL as its
            // old value (BundleWriter), so one of them is at least half of that: where the chunk
            // has such a value, an old NULL may be any value.
            let half = (BundleFormat.maxChangeBytes - 1_024) / 2
            let large = changes.contains { c in
                c.columns.contains { $0.name == column && Merger.size($0.value) >= half }
            }
            for c in changes {
                guard let v = c.columns.first(where: { $0.name == column })?.value else { continue }
                if c.op == .update {
                    if c.oldValue == nil || (c.oldValue == .null && large) {
                        givenUnknown.insert(c.key)
                    } else if let old = c.oldValue, let k = collisionKey(old) {
                        given[k, default: []].insert(c.key)
                    }
                }
                if let k = collisionKey(v) { taken[k, default: []].insert(c.key) }
            }
            if !givenUnknown.isEmpty,
                taken.values.contains(where: { !$0.isSubset(of: givenUnknown) || givenUnknown.count > 1 })
            {
                return true
            }
            for (k, givers) in given {
                guard let takers = taken[k] else { continue }
                if givers.count > 1 || takers.count > 1 || givers != takers { return true }
            }
            return false
        }
        // Several columns, an expression or a prefix: any row that changes what the index reads
        // may give up a value that another row changed or inserted in the chunk takes.
        var givers: Set<[Value]> = []
        var takers: Set<[Value]> = []
        for c in changes {
            switch c.op {
            case .insert: takers.insert(c.key)
            case .update where c.columns.contains(where: { reads($0.name) }):
                givers.insert(c.key)
                takers.insert(c.key)
            default: break
            }
        }
        return !givers.isEmpty && takers.count > 1
    }

    /// Values a unique index may take for one: numbers by value, text without case, accents,
    /// width or trailing spaces (MariaDB's usual collations), a blob as its text. Too many
    /// matches cost only speed; a match missed costs a refusal and a retry.
    static func collisionKey(_ v: Value) -> String? {
        switch v {
        case .null: return nil  // NULLs do not collide in a unique index
        case .integer(let i): return number(Double(i))
        case .real(let d): return number(d)
        case .text(let s): return text(s)
        case .blob(let b): return text(String(decoding: b, as: UTF8.self))
        }
    }

    private static func number(_ d: Double) -> String { "n" + String(d == 0 ? 0 : d) }

    /// Folded before it is read as a number: '１' and '7́' are 1 and 7 to a collation that
    /// ignores width and accents (found from outside). MariaDB's default `utf8mb4_general_ci`
    /// also equates 'ß' with 's' and 'ı' with 'i'.
    /// Texts over 1 KiB share one key: folding megabytes costs seconds, and such values in a
    /// unique index, moved inside one chunk, are rare enough to go in order.
    private static func text(_ s: String) -> String {
        if s.utf8.count > 1_024 { return "t(long)" }
        let general =
            s.contains { "ßẞı".contains($0) } ? String(s.map { $0 == "ı" ? "i" : "ßẞ".contains($0) ? "s" : $0 }) : s
        var folded = general.folding(
            options: [.caseInsensitive, .diacriticInsensitive, .widthInsensitive], locale: nil)
        if let d = Double(folded.trimmingCharacters(in: .whitespaces)) { return number(d) }
        while folded.last == " " { folded.removeLast() }
        return "t" + folded
    }
}
