import Foundation

/// One column of a foreign key between tracked tables, as the catalog names it, in the key's
/// column order.
public struct ForeignKeyColumn: Sendable, Equatable {
    public var child: String
    public var parent: String
    public var column: String
    /// The parent's column it references.
    public var parentColumn: String
    /// Names the foreign key among the child's, to group a key of several columns.
    public var constraint: String
    /// What deleting the parent row does to this child.
    public var onDelete: ForeignKeyAction
    /// What changing the parent's referenced columns does to this child (MariaDB's capture of
    /// its cascades needs it).
    public var onUpdate: ForeignKeyAction = .noAction
}

/// A foreign key's `ON DELETE` or `ON UPDATE` action, as the brand's catalog names it.
public enum ForeignKeyAction: String, Sendable, Equatable {
    case cascade, setNull, setDefault, restrict, noAction

    /// From `CASCADE`, `SET NULL`, … (SQLite's and MariaDB's catalogs; the PostgreSQL query
    /// spells its codes the same way); anything else is `NO ACTION`.
    init(sql: String?) {
        switch (sql ?? "").uppercased() {
        case "CASCADE": self = .cascade
        case "SET NULL": self = .setNull
        case "SET DEFAULT": self = .setDefault
        case "RESTRICT": self = .restrict
        default: self = .noAction
        }
    }

    /// The database changes the child rows itself: deletes them or rewrites their reference.
    var changesChildren: Bool { self == .cascade || self == .setNull || self == .setDefault }
}

/// One foreign key, its columns together.
struct ForeignKey {
    var child: String
    /// (child column, parent column), in the key's order.
    var columns: [(child: String, parent: String)]
    var onDelete: ForeignKeyAction
    var onUpdate: ForeignKeyAction

    /// Each parent → its foreign keys, in the catalog's order, from the columns `include` keeps.
    static func byParent(_ columns: [ForeignKeyColumn], _ include: (ForeignKeyColumn) -> Bool) -> [String: [ForeignKey]]
    {
        var keys: [String: ForeignKey] = [:]
        var parents: [String: String] = [:]
        var order: [String] = []
        for fk in columns where include(fk) {
            let id = fk.child + "\u{0}" + fk.constraint
            if keys[id] == nil {
                keys[id] = ForeignKey(child: fk.child, columns: [], onDelete: fk.onDelete, onUpdate: fk.onUpdate)
                parents[id] = fk.parent
                order.append(id)
            }
            keys[id]?.columns.append((fk.column, fk.parentColumn))
        }
        var out: [String: [ForeignKey]] = [:]
        for id in order { out[parents[id]!, default: []].append(keys[id]!) }
        return out
    }
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

    /// Each tracked table → the foreign keys of tracked tables whose `ON DELETE` changes the
    /// rows referencing it (`CascadeWait`).
    var cascading: [String: [ForeignKey]] { ForeignKey.byParent(columns) { $0.onDelete.changesChildren } }

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
