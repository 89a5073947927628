import Foundation

/// Per-peer receipts: how far each peer has confirmed holding each origin's changes.
enum Receipts {
    /// Receipts only go up, so that an older bundle arriving late cannot lower them, within
    /// one epoch of the peer. A peer restored from a backup starts a new epoch and holds less
    /// than it confirmed before: its first bundle of a new epoch replaces all its receipts
    /// (what it lost is sent again by `export --resend`, its own lost changes included), and
    /// bundles of its earlier epochs confirm nothing any more (docs/delivery.md): false for those.
    @discardableResult
    static func record(_ db: Database, peer: String, epoch: String, _ receipts: [Receipt]) throws -> Bool {
        let known = try db.rows(
            "SELECT epoch, is_current FROM ds_peer_epoch WHERE peer = \(Value.text(peer))"
        ).map { ($0.string(0) ?? "", $0.int(1) ?? 0) }
        if let seen = known.first(where: { $0.0 == epoch }) {
            if seen.1 == 0 { return false }
        } else {
            if !known.isEmpty {
                try db.execute("UPDATE ds_peer_epoch SET is_current = 0 WHERE peer = \(Value.text(peer))")
                try db.execute("DELETE FROM ds_peer_receipt WHERE peer = \(Value.text(peer))")
                try RelayStream.forgetPeer(db, peer: peer)
            }
            try RelayStream.notePeerStart(db, peer: peer)
            try db.execute(
                """
                INSERT INTO ds_peer_epoch (peer, epoch, is_current, seen_at)
                VALUES (\(Value.text(peer)), \(Value.text(epoch)), 1, \(Value.text(nowText())))
                """)
        }
        // One statement for all of them (a hub's bundle names every origin): highest per
        // origin first, since one statement may not touch a row twice.
        var highest: [String: Receipt] = [:]
        for r in receipts where (highest[r.origin + "\u{0}" + r.epoch]?.seq ?? Int64.min) < r.seq {
            highest[r.origin + "\u{0}" + r.epoch] = r
        }
        guard !highest.isEmpty else { return true }
        let incoming = db.dialect.incoming("seq")
        let now = nowText()
        try db.insertMany(
            into: "ds_peer_receipt", columns: ["peer", "origin", "origin_epoch", "seq", "updated_at"],
            rows: highest.keys.sorted().map { k in
                let r = highest[k]!
                return [.text(peer), .text(r.origin), .text(r.epoch), .integer(r.seq), .text(now)]
            },
            onConflict: db.dialect.upsert(
                key: ["peer", "origin", "origin_epoch"],
                set: [
                    (
                        "seq",
                        "CASE WHEN \(incoming) > ds_peer_receipt.seq THEN \(incoming) ELSE ds_peer_receipt.seq END"
                    ),
                    ("updated_at", db.dialect.incoming("updated_at")),
                ]))
        return true
    }

    /// The epoch a peer's latest bundles came from (nil: none arrived from it directly).
    static func currentEpoch(_ db: Database, peer: String) throws -> String? {
        try db.firstRow("SELECT epoch FROM ds_peer_epoch WHERE peer = ? AND is_current = 1", [.text(peer)])?.string(0)
    }

    /// The peer needs this origin's changes of this epoch from others: it did not make them, or
    /// made them in an earlier epoch it lost (restored from a backup). A peer never heard from
    /// directly counts as needing them.
    static func needs(_ db: Database, peer: String, origin: String, epoch: String) throws -> Bool {
        guard peer == origin else { return true }
        return try currentEpoch(db, peer: peer) != epoch
    }

    static func confirmed(_ db: Database, peer: String, origin: String, epoch: String) throws -> Int64 {
        try db.scalar(
            "SELECT seq FROM ds_peer_receipt WHERE peer = ? AND origin = ? AND origin_epoch = ?",
            [.text(peer), .text(origin), .text(epoch)]
        ).asInt64 ?? 0
    }

    // MARK: - Own changes pruned before a peer lost them

    /// This node's own changes of its epoch pruned so far: "<epoch> <seq>".
    static let prunedSetting = "outbox_pruned_through"

    static func notePruned(_ db: Database, me: NodeIdentity, through seq: Int64) throws {
        let (epoch, before) = try pruned(db)
        if epoch != me.epoch || seq > before { try Settings.set(db, prunedSetting, text: "\(me.epoch) \(seq)") }
    }

    static func pruned(_ db: Database) throws -> (String, Int64) {
        let parts = try Settings.text(db, prunedSetting)?.split(separator: " ") ?? []
        return parts.count == 2 ? (String(parts[0]), Int64(parts[1]) ?? 0) : ("", 0)
    }

    /// The peers this node exchanges with: every trusted node but itself.
    static func peers(_ db: Database, me: NodeIdentity) throws -> [String] {
        try db.rows(
            "SELECT node_id FROM ds_trusted_key WHERE revoked_at IS NULL AND node_id <> ? ORDER BY node_id",
            [.text(me.nodeId)]
        ).compactMap { $0.string(0) }
    }
}
