import Foundation

/// Foreign keys between tracked tables, for writing parents before their children.
enum ForeignKeys {
    /// The tables with every parent before its children; a self-reference is ignored, a cycle
    /// is broken in name order (the importer checks foreign keys at the end of a bundle anyway).
    /// The tracked tables other tracked tables reference (a self-reference counts).
    static func parents(_ db: Database, tables: [String]) throws -> Set<String> {
        Set(try db.dialect.foreignKeys(db, among: Set(tables)).map(\.parent))
    }

    static func parentsFirst(_ db: Database, tables: [String]) throws -> [String] {
        let tracked = Set(tables)
        var parents: [String: Set<String>] = [:]
        for fk in try db.dialect.foreignKeys(db, among: tracked) where fk.child != fk.parent {
            parents[fk.child, default: []].insert(fk.parent)
        }
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
