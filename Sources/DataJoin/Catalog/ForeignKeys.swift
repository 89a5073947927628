import Foundation

/// Foreign keys between tracked tables, for writing parents before their children.
enum ForeignKeys {
    /// The tables with every parent before its children; a self-reference is ignored, a cycle
    /// is broken in name order (the importer checks foreign keys at the end of a bundle anyway).
    static func parentsFirst(_ db: Database, tables: [String]) throws -> [String] {
        let tracked = Set(tables)
        var parents: [String: Set<String>] = [:]
        switch db.brand {
        case .sqlite:
            for t in tables {
                try db.query("SELECT \"table\" FROM pragma_foreign_key_list(?)", [.text(t)]) { r in
                    if let p = r.string(0), p != t, tracked.contains(p) { parents[t, default: []].insert(p) }
                }
            }
        case .postgres:
            try db.query(
                """
                SELECT c.relname, p.relname FROM pg_catalog.pg_constraint k
                JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
                JOIN pg_catalog.pg_class p ON p.oid = k.confrelid
                JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE k.contype = 'f' AND n.nspname = current_schema()
                """, []
            ) { r in
                if let c = r.string(0), let p = r.string(1), c != p, tracked.contains(c), tracked.contains(p) {
                    parents[c, default: []].insert(p)
                }
            }
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
