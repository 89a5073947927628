import Foundation

/// Per-peer receipts: how far each peer has confirmed holding each origin's changes.
enum Receipts {
    static func record(_ db: Database, peer: String, _ receipts: [Receipt]) throws {
        for r in receipts {
            let incoming = db.dialect.incoming("seq")
            try db.execute(
                "INSERT INTO ds_peer_receipt (peer, origin, origin_epoch, seq, updated_at) VALUES (?, ?, ?, ?, ?) "
                    + db.dialect.upsert(
                        key: ["peer", "origin", "origin_epoch"],
                        set: [
                            (
                                "seq",
                                "CASE WHEN \(incoming) > ds_peer_receipt.seq THEN \(incoming) ELSE ds_peer_receipt.seq END"
                            ),
                            ("updated_at", db.dialect.incoming("updated_at")),
                        ]), [.text(peer), .text(r.origin), .text(r.epoch), .integer(r.seq), .text(nowText())])
        }
    }

    static func confirmed(_ db: Database, peer: String, origin: String, epoch: String) throws -> Int64 {
        try db.scalar(
            "SELECT seq FROM ds_peer_receipt WHERE peer = ? AND origin = ? AND origin_epoch = ?",
            [.text(peer), .text(origin), .text(epoch)]
        ).asInt64 ?? 0
    }

    /// The peers this node exchanges with: every trusted node but itself.
    static func peers(_ db: Database, me: NodeIdentity) throws -> [String] {
        try db.rows(
            "SELECT node_id FROM ds_trusted_key WHERE revoked_at IS NULL AND node_id <> ? ORDER BY node_id",
            [.text(me.nodeId)]
        ).compactMap { $0.string(0) }
    }
}
