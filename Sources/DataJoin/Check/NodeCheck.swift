import Foundation

/// One broken rule of a node's bookkeeping, found by `datajoin check`.
public struct CheckViolation: Sendable, Equatable {
    /// A short name scripts can match (`outbox-stranded`, `seq-gap`, …).
    public var rule: String
    public var detail: String
}

public struct CheckReport: Sendable {
    public var violations: [CheckViolation] = []
    /// What was looked at, for the summary line.
    public var outboxRows: Int64 = 0
    public var inboxRows: Int64 = 0
    public var origins = 0
    public var seconds: Double = 0
}

/// `datajoin check`: the invariants of docs/reliability.md ("Invariants"), each a few indexed
/// scans, in one read snapshot. Bookkeeping that drifts is found where it starts, not when a
/// row goes missing three hops later.
public enum NodeCheck {
    public static func run(_ db: Database) throws -> CheckReport {
        let started = Date()
        var report = CheckReport()
        // Loaded (and upgraded, if an older version made it) before the read snapshot.
        _ = try NodeIdentity.load(db)
        try db.read { _ in
            let me = try NodeIdentity.load(db)
            var v: [CheckViolation] = []
            try outbox(db, me: me, report: &report, &v)
            try inbox(db, report: &report, &v)
            try versions(db, &v)
            try pointers(db, &v)
            try collisions(db, &v)
            for t in try CaptureTriggers.trackedAndPresent(db) {
                if let detail = try db.dialect.keysOfSeveralKinds(db, t) {
                    v.append(.init(rule: "key-kinds", detail: detail))
                }
            }
            for d in try CaptureDrift.find(db) {
                v.append(.init(rule: d.triggersUnseen ? "capture-unseen" : "capture-drift", detail: d.message))
            }
            report.violations = v
        }
        report.seconds = Date().timeIntervalSince(started)
        return report
    }

    /// Two rows inserted apart with one generated key, merged (docs/keys.md): not broken
    /// bookkeeping, but data the operator must look at; one line each, up to 20. The fix is made
    /// once, on one node (found from outside: followed on each node, the lost row was entered again
    /// on each); the clearing on each.
    static func collisions(_ db: Database, _ v: inout [CheckViolation]) throws {
        let n = try KeyCollisions.count(db)
        guard n > 0 else { return }
        for e in try KeyCollisions.list(db) {
            v.append(
                .init(
                    rule: "key-collision",
                    detail: e.line
                        + "; the values that lost are in 'datajoin conflicts' (table \(e.table)); give one of the rows a new id on one node only (every node that got both rows reports this collision), then run 'datajoin check --clear-collisions' on each node that reports it"
                ))
        }
        if n > 20 {
            v.append(.init(rule: "key-collision", detail: "… and \(n - 20) more (ds_key_collision)"))
        }
    }

    /// Puts stranded outbox rows back into the backlog (the next export stamps and sends them);
    /// returns how many. The only repair `check` makes: it loses nothing and sends nothing twice.
    public static func repair(_ db: Database) throws -> Int64 {
        try db.retryingWrite { _ in try db.dialect.repairStranded(db) }
    }

    /// Every captured row is stamped or waiting; this node's seqs run without a gap up to the
    /// last one issued.
    static func outbox(_ db: Database, me: NodeIdentity, report: inout CheckReport, _ v: inout [CheckViolation]) throws
    {
        let stranded = try Stamper.strandedCount(db)
        if stranded > 0 {
            v.append(
                .init(
                    rule: "outbox-stranded",
                    detail:
                        "\(stranded) outbox row(s) at or below the stamping cursor have no seq: they would never be exported; 'datajoin check --repair' puts them back in the backlog"
                ))
        }
        guard let r = try db.firstRow("SELECT count(seq), min(seq), max(seq), count(*) FROM ds_change_outbox") else {
            return
        }
        report.outboxRows = r.int(3) ?? 0
        let count = r.int(0) ?? 0
        if let low = r.int(1), let high = r.int(2) {
            if high - low + 1 != count {
                v.append(
                    .init(
                        rule: "seq-gap",
                        detail:
                            "this node's outbox holds \(count) seqs from \(low) to \(high): \(high - low + 1 - count) missing in between"
                            + " (a gap above the export pointer, where an outbox row was deleted, is closed by the next export)"
                    ))
            }
            if high >= me.nextSeq {
                v.append(
                    .init(
                        rule: "seq-ahead", detail: "the outbox holds seq \(high), but ds_node.next_seq is \(me.nextSeq)"
                    ))
            }
        }
        // Pruning empties the outbox, but the pointer remembers: a next_seq at or below it would
        // hand out seqs that peers already hold, and they would skip the new changes.
        let exported = try ProgramPointer.get(db, Program.export)
        if me.nextSeq <= exported {
            v.append(
                .init(
                    rule: "seq-ahead",
                    detail:
                        "ds_node.next_seq is \(me.nextSeq), but seqs up to \(exported) were exported already: new changes would reuse them"
                ))
        }
    }

    /// No change twice; every seq of an origin between its floor and its mark is present.
    static func inbox(_ db: Database, report: inout CheckReport, _ v: inout [CheckViolation]) throws {
        report.inboxRows = try db.scalar("SELECT count(*) FROM ds_change_inbox").asInt64 ?? 0
        try db.query(
            "SELECT origin, origin_epoch, seq, count(*) FROM ds_change_inbox GROUP BY origin, origin_epoch, seq HAVING count(*) > 1",
            []
        ) { r in
            v.append(
                .init(
                    rule: "inbox-duplicate",
                    detail:
                        "\(r.string(0) ?? "")#\(r.int(2) ?? 0) (epoch \(r.string(1) ?? "")) is in the inbox \(r.int(3) ?? 0) times"
                ))
        }
        let orphans =
            try db.scalar(
                "SELECT count(*) FROM ds_change_held AS h WHERE NOT EXISTS (SELECT 1 FROM ds_change_inbox AS i WHERE i.id = h.id)"
            ).asInt64 ?? 0
        if orphans > 0 {
            v.append(
                .init(rule: "held-orphan", detail: "\(orphans) held change(s) in ds_change_held refer to no inbox row"))
        }
        try db.query(
            """
            SELECT i.origin, i.origin_epoch, count(*) FROM ds_change_inbox AS i WHERE i.origin_epoch NOT LIKE ? AND NOT EXISTS
              (SELECT 1 FROM ds_origin_state AS o WHERE o.origin = i.origin AND o.origin_epoch = i.origin_epoch)
            GROUP BY i.origin, i.origin_epoch
            """, [.text(BundleFormat.snapshotEpochPrefix + "%")]
        ) { r in
            v.append(
                .init(
                    rule: "origin-unrecorded",
                    detail:
                        "\(r.int(2) ?? 0) inbox row(s) of \(r.string(0) ?? "") (epoch \(r.string(1) ?? "")) but no holdings for it in ds_origin_state"
                ))
        }
        let unseen =
            try db.scalar(
                """
                SELECT count(*) FROM ds_change_inbox AS i WHERE NOT EXISTS (SELECT 1 FROM ds_bundle_seen AS s WHERE s.id = i.bundle_id)
                """
            ).asInt64 ?? 0
        if unseen > 0 {
            v.append(
                .init(
                    rule: "bundle-unrecorded",
                    detail: "\(unseen) inbox row(s) came from a bundle ds_bundle_seen does not record"))
        }
        let states = try db.rows(
            "SELECT origin, origin_epoch, contiguous, max_seq, inbox_floor FROM ds_origin_state ORDER BY origin, origin_epoch"
        )
        report.origins = states.count
        for s in states {
            let origin = s.string(0) ?? "", epoch = s.string(1) ?? ""
            let mark = s.int(2) ?? 0, maxSeq = s.int(3) ?? 0, floor = s.int(4) ?? 0
            if mark > maxSeq {
                v.append(
                    .init(
                        rule: "mark-above-max",
                        detail:
                            "\(origin) (epoch \(epoch)): contiguous mark \(mark) is above the highest seq seen, \(maxSeq)"
                    ))
            }
            guard mark > floor else { continue }
            let present =
                try db.scalar(
                    "SELECT count(*) FROM ds_change_inbox WHERE origin = ? AND origin_epoch = ? AND seq > ? AND seq <= ?",
                    [.text(origin), .text(epoch), .integer(floor), .integer(mark)]
                ).asInt64 ?? 0
            if present < mark - floor {
                v.append(
                    .init(
                        rule: "inbox-missing",
                        detail:
                            "\(origin) (epoch \(epoch)): \(mark - floor - present) change(s) between seq \(floor + 1) and the mark \(mark) are missing from the inbox"
                    ))
            }
        }
    }

    /// Column versions belong to a row version.
    static func versions(_ db: Database, _ v: inout [CheckViolation]) throws {
        try db.query(
            """
            SELECT object_table, count(*), min(object_attribute) FROM ds_column_version AS c WHERE NOT EXISTS
              (SELECT 1 FROM ds_row_version AS r WHERE r.object_table = c.object_table AND r.object_id = c.object_id)
            GROUP BY object_table ORDER BY object_table
            """, []
        ) { r in
            v.append(
                .init(
                    rule: "column-version-orphan",
                    detail:
                        "\(r.int(1) ?? 0) column version(s) of \(r.string(0) ?? "") (column \(r.string(2) ?? "") among them) belong to no row version"
                ))
        }
        // Versions of a table no longer tracked stay (tracking it again goes on from them).
    }

    /// The pointers point at what exists, and the inbox's statuses agree with the import pointer.
    static func pointers(_ db: Database, _ v: inout [CheckViolation]) throws {
        let export = try ProgramPointer.get(db, Program.export)
        let imported = try ProgramPointer.get(db, Program.import)
        let relayed = try ProgramPointer.get(db, Program.relay)
        for (name, p) in [("export", export), ("import", imported), ("relay", relayed)] where p < 0 {
            v.append(.init(rule: "\(name)-pointer", detail: "the \(name) pointer is \(p), below zero"))
        }
        let maxSeq = try db.scalar("SELECT max(seq) FROM ds_change_outbox").asInt64
        if let maxSeq, export > maxSeq {
            v.append(
                .init(
                    rule: "export-pointer",
                    detail: "the export pointer is at seq \(export), past the last stamped change \(maxSeq)"))
        }
        let maxInbox = try db.scalar("SELECT max(id) FROM ds_change_inbox").asInt64 ?? 0
        // A prune may have removed the last rows; their ids are not issued again.
        let top = max(maxInbox, try Settings.int(db, Pruner.inboxPrunedThroughSetting) ?? 0)
        for (name, p) in [("import", imported), ("relay", relayed)] where p > top && maxInbox > 0 {
            v.append(
                .init(
                    rule: "\(name)-pointer",
                    detail: "the \(name) pointer is at inbox id \(p), past the last inbox row \(top)"))
        }
        // Only the importer holds a change, and only one at or below its pointer.
        let early = try db.scalar("SELECT count(*) FROM ds_change_held WHERE id > ?", [.integer(imported)]).asInt64 ?? 0
        if early > 0 {
            v.append(.init(rule: "import-ahead", detail: "\(early) change(s) above the import pointer are marked held"))
        }
    }
}
