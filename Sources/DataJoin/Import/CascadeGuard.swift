import Foundation

/// Which parent rows a chunk deletes while rows here still reference them. The target's own
/// `ON DELETE CASCADE` (or `SET NULL`) acts on the rows as they are here, and they may lag the
/// source: a bundle that moved a child away, arriving after the one that deletes its old parent
/// (out of order, or from another node), found the child cascaded away for good (found from
/// outside). At the source such a child was deleted or moved first, and those changes either
/// are in the same chunk or have not arrived; so the delete waits, held, until no row here
/// references its row (`Merger.applyDelete`), and the held-change retry applies it then.
struct CascadeGuard {
    /// Tracked tables that tracked tables reference → their references.
    var references: [String: [Reference]] = [:]

    static let none = CascadeGuard()

    static func load(_ foreignKeys: ForeignKeys) -> CascadeGuard {
        CascadeGuard(references: foreignKeys.references)
    }

    struct RowRef: Hashable {
        var table: String
        var key: [UInt8]
    }

    /// The rows `changes` delete that rows here still reference, other than rows the chunk
    /// deletes or gives another value of that reference.
    func stillReferenced(
        _ db: Database, _ changes: [Change], canonical: [(key: [Value], bytes: [UInt8])?], tables: [String: TableInfo]
    ) throws -> Set<RowRef> {
        if references.isEmpty { return [] }
        var deleted: [String: [[Value]]] = [:]
        var excused: Set<RowRef> = []
        for (c, k) in zip(changes, canonical) {
            guard let k else { continue }
            if c.op == .delete {
                excused.insert(RowRef(table: c.table, key: k.bytes))
                if references[c.table] != nil { deleted[c.table, default: []].append(k.key) }
            }
        }
        if deleted.isEmpty { return [] }
        // The rows whose updates in the chunk set a column, by column.
        var updated: [String: Set<RowRef>] = [:]
        for (c, k) in zip(changes, canonical) where c.op == .update {
            guard let k else { continue }
            for v in c.columns {
                updated[c.table + "\u{1F}" + v.name, default: []].insert(RowRef(table: c.table, key: k.bytes))
            }
        }
        var out: Set<RowRef> = []
        for (parent, keys) in deleted.sorted(by: { $0.key < $1.key }) {
            guard let p = tables[parent] else { continue }
            for ref in references[parent] ?? [] {
                guard let child = tables[ref.child] else { continue }
                let moved = ref.childColumns.reduce(into: Set<RowRef>()) {
                    $0.formUnion(updated[ref.child + "\u{1F}" + $1] ?? [])
                }
                try referencing(db, parent: p, child: child, ref, keys: keys) { parentKey, childKey in
                    let row = RowRef(table: child.name, key: childKey)
                    if !excused.contains(row) && !moved.contains(row) {
                        out.insert(RowRef(table: parent, key: parentKey))
                    }
                }
            }
        }
        return out
    }

    /// Each row of `child` referencing one of `keys`' rows of `parent`: both keys, encoded.
    private func referencing(
        _ db: Database, parent: TableInfo, child: TableInfo, _ ref: Reference, keys: [[Value]],
        _ body: ([UInt8], [UInt8]) -> Void
    ) throws {
        let p: SQL = "p", c: SQL = "c"
        let pKey = parent.keyColumns.map { "\(p).\($0.identifier)" as SQL }
        let cKey = child.keyColumns.map { "\(c).\($0.identifier)" as SQL }
        let on = zip(ref.childColumns, ref.parentColumns).map { cc, pc in
            "\(c).\(Identifier(cc)) = \(p).\(Identifier(pc))" as SQL
        }.joined(separator: " AND ")
        var start = 0
        for n in MultiRow.pieces(keys.count, max: MultiRow.rowsPerStatement(parent.keyColumns.count)) {
            let slice = keys[start..<start + n]
            start += n
            try db.query(
                """
                SELECT \((pKey + cKey).joined(separator: ", ")) FROM \(parent.identifier) AS \(p)
                JOIN \(child.identifier) AS \(c) ON \(on) WHERE \(db.dialect.keyIn(pKey, count: n))
                """, slice.flatMap { $0 }
            ) { r in
                func key(_ t: TableInfo, from offset: Int) -> [UInt8] {
                    let values = t.keyColumns.enumerated().map { i, col in
                        ValueConversion.normalize(r.values[offset + i], kind: col.kind)
                    }
                    return KeyCodec.encode(t.canonicalKey(values))
                }
                body(key(parent, from: 0), key(child, from: parent.keyColumns.count))
            }
        }
    }
}
