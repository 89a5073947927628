import Foundation

/// One column of a foreign key between tracked tables, as the catalog names it.
public struct ForeignKeyColumn: Sendable, Equatable {
    public var child: String
    public var parent: String
    public var column: String
}

/// Foreign keys between tracked tables, read once per run: for writing parents before their
/// children, and for the importer's rule on deletes (`SourceOrder`).
struct ForeignKeys {
    let tables: [String]
    let columns: [ForeignKeyColumn]

    static func load(_ db: Database, tables: [String]) throws -> ForeignKeys {
        ForeignKeys(tables: tables, columns: try db.dialect.foreignKeys(db, among: Set(tables)))
    }

    /// Each tracked table that tracked tables reference → each table referencing it → the
    /// columns that do (a self-reference counts).
    var children: [String: [String: Set<String>]] {
        var out: [String: [String: Set<String>]] = [:]
        for fk in columns { out[fk.parent, default: [:]][fk.child, default: []].insert(fk.column) }
        return out
    }

    /// The tables with every parent before its children; a self-reference is ignored, a cycle
    /// is broken in name order (the importer checks foreign keys at the end of a bundle anyway).
    var parentsFirst: [String] {
        var parents: [String: Set<String>] = [:]
        for fk in columns where fk.child != fk.parent { parents[fk.child, default: []].insert(fk.parent) }
        var out: [String] = []
        var placed = Set<String>()
        var remaining = tables.sorted()
        while !remaining.isEmpty {
            let ready = remaining.filter { parents[$0, default: []].isSubset(of: placed) }
            let next = ready.isEmpty ? [remaining[0]] : ready
            for t in next {
                out.append(t)
                placed.insert(t)
            }
            remaining.removeAll { placed.contains($0) }
        }
        return out
    }
}
