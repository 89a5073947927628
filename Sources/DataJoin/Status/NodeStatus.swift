import Foundation

/// `datajoin status`: what this node is, what waits, and where its pointers stand.
public struct NodeStatus: Sendable {
    public var nodeId: String
    public var epoch: String
    public var database: String
    public var trackedTables: [String]
    /// Tracked tables altered since `track`: what their capture misses, and the cure.
    public var captureDrift: [String] = []
    public var outboxUnstamped: Int64
    public var outboxWaiting: Int64
    public var oldestUnexported: String?
    public var exportPointer: Int64
    public var lastSeq: Int64
    public var inboxWaiting: Int64
    public var importPointer: Int64
    public var held: [HeldChange]
    public var heldCount: Int64
    public var conflicts: Int64
    /// Rows inserted apart with one generated key (docs/keys.md).
    public var keyCollisions: Int64
    /// Copies of seqs a restored node reused, waiting for its new epoch to tell which is the
    /// original (`ds_change_forked`).
    public var forkedWaiting: Int64 = 0
    public var lastExport: String?
    /// When this node last wrote what it took in without changes (a receipts-only bundle), or nil.
    public var lastReceipts: String? = nil
    /// Why export stops where it does (a change too large for a bundle), or nil.
    public var exportHeld: String?
    public var lastIngest: String?
    public var bundlesIngested: Int64
    public var clock: String
    /// The clock's stamp: wall milliseconds and counter (`clock` is its text).
    public var clockStamp: Int64
    /// How far this node's clock is ahead of its machine's wall clock, in seconds, when that is
    /// past the default window peers accept (24 hours): peers hold its changes (a hybrid clock
    /// never goes back, so one moment of a wrong clock stays; found from outside). Else nil.
    public var clockAheadSeconds: Int64? = nil
    public var origins: [OriginStatus]
    public var peers: [PeerStatus]
    public var quarantined: [QuarantinedFile]
    /// Quarantined files the text lists (the latest); the count says how many there are.
    static let listedQuarantine = 20
    /// Seconds since the oldest change not yet exported was captured.
    public var oldestUnexportedAgeSeconds: Int64?

    public struct QuarantinedFile: Sendable {
        public var path: String
        public var reason: String
        public var at: String
    }

    public struct OriginStatus: Sendable {
        public var origin: String
        public var epoch: String
        public var highWater: Int64
        public var maxSeq: Int64
        public var missing: [ClosedRange<Int64>]
        /// Gaps in all (`missing` lists the first 50).
        public var gapCount: Int
        public var lastBundle: String?
        public var lastSeenAt: String?
    }

    public struct PeerStatus: Sendable {
        public var peer: String
        /// How far the peer has confirmed this node's current epoch.
        public var confirmed: Int64
        public var behind: Int64
    }

    public struct HeldChange: Sendable {
        public var origin: String
        public var seq: Int64
        public var table: String
        /// The row's key as `conflicts` shows it: which row, where the reason does not say.
        public var key: String
        public var reason: String
    }

    /// How many changes are held, and nothing else (a cron run's exit status).
    public static func heldCount(_ db: Database) throws -> Int64 {
        try db.scalar("SELECT count(*) FROM ds_change_held").asInt64 ?? 0
    }

    public static func read(_ db: Database) throws -> NodeStatus {
        let me = try NodeIdentity.load(db)
        let exportPointer = try ProgramPointer.get(db, Program.export)
        let importPointer = try ProgramPointer.get(db, Program.import)
        let unstamped = try Stamper.unstampedCount(db)
        let lastSeq = me.nextSeq - 1
        let oldest = try db.scalar(
            "SELECT min(captured_ms) FROM ds_change_outbox WHERE (seq IS NULL AND id > ?) OR seq > ?",
            [.integer(try Stamper.stampedThrough(db)), .integer(exportPointer)]
        ).asInt64
        let held = try db.rows(
            "SELECT i.origin, i.seq, i.object_table, h.reason, i.object_id FROM ds_change_held AS h JOIN ds_change_inbox AS i ON i.id = h.id ORDER BY h.id LIMIT 20"
        ).map { r in
            var key = "?"
            if case .blob(let bytes) = r.values[4], let values = try? KeyCodec.decode(bytes) {
                key = KeyCodec.display(values)
            }
            return HeldChange(
                origin: r.string(0) ?? "", seq: r.int(1) ?? 0, table: r.string(2) ?? "", key: key,
                reason: r.string(3) ?? "")
        }
        let origins = try Holdings.all(db).map { s in
            let gaps = try Holdings.gaps(db, s)
            return OriginStatus(
                origin: s.origin, epoch: s.epoch, highWater: s.contiguous, maxSeq: s.maxSeq, missing: gaps.ranges,
                gapCount: gaps.total,
                lastBundle: s.lastBundle, lastSeenAt: s.lastSeenAt)
        }
        let peers = try Receipts.peers(db, me: me).map { p -> PeerStatus in
            let c = try Receipts.confirmed(db, peer: p, origin: me.nodeId, epoch: me.epoch)
            return PeerStatus(peer: p, confirmed: c, behind: max(0, lastSeq - c))
        }
        // The last export of either kind: own changes (1000) or relayed ones (1002, `--relay`).
        let exportRow = try db.firstRow(
            "SELECT max(update_datetime) FROM ds_program_parameter WHERE id IN (?, ?) AND fromoutboxpointer > 0",
            [.integer(Program.export), .integer(Program.relay)])
        return NodeStatus(
            nodeId: me.nodeId, epoch: me.epoch, database: db.displayName,
            trackedTables: try Tracker.trackedNames(db), captureDrift: try CaptureDrift.find(db).map(\.message),
            outboxUnstamped: unstamped, outboxWaiting: unstamped + max(0, lastSeq - exportPointer),
            oldestUnexported: oldest.map { HybridLogicalClock.describe(HybridLogicalClock.stamp(ms: $0)) },
            exportPointer: exportPointer, lastSeq: lastSeq,
            inboxWaiting: try db.scalar("SELECT count(*) FROM ds_change_inbox WHERE id > ?", [.integer(importPointer)])
                .asInt64 ?? 0,
            importPointer: importPointer, held: held,
            heldCount: try heldCount(db),
            conflicts: try db.scalar("SELECT count(*) FROM ds_conflict").asInt64 ?? 0,
            keyCollisions: try KeyCollisions.count(db),
            forkedWaiting: try db.scalar("SELECT count(*) FROM ds_change_forked").asInt64 ?? 0,
            lastExport: exportRow?.string(0),
            lastReceipts: try ReceiptsOnly.lastWritten(db).map { UTCText.iso8601(ms: $0 * 1000) },
            exportHeld: try db.scalar(
                "SELECT status FROM ds_program_parameter WHERE id = ?", [.integer(Program.export)]
            )
            .asString.flatMap { $0.hasPrefix("held: ") ? String($0.dropFirst("held: ".count)) : nil },
            lastIngest: try db.scalar("SELECT max(ingested_at) FROM ds_bundle_seen").asString,
            bundlesIngested: try db.scalar("SELECT count(*) FROM ds_bundle_seen").asInt64 ?? 0,
            clock: HybridLogicalClock.describe(me.hlc), clockStamp: me.hlc,
            clockAheadSeconds: try Self.clockAhead(db, me.hlc), origins: origins, peers: peers,
            quarantined: try db.rows("SELECT path, reason, quarantined_at FROM ds_quarantine ORDER BY quarantined_at")
                .compactMap { r in
                    // What is there now: a file moved back out, or ingested since from a copy, is not.
                    guard let p = r.string(0), FileManager.default.fileExists(atPath: p) else { return nil }
                    if let digest = try? Ingester.fileDigest(p),
                        try db.scalar("SELECT count(*) FROM ds_bundle_seen WHERE sha256 = ?", [.text(digest)]).asInt64
                            ?? 0 > 0
                    {
                        return nil
                    }
                    return QuarantinedFile(path: p, reason: r.string(1) ?? "", at: r.string(2) ?? "")
                },
            oldestUnexportedAgeSeconds: oldest.map {
                max(0, (HybridLogicalClock.nowMs() - HybridLogicalClock.clampMs($0)) / 1000)
            })
    }

    static func age(_ seconds: Int64) -> String {
        seconds < 120
            ? "\(seconds) s"
            : seconds < 7200
                ? "\(seconds / 60) min" : seconds < 172_800 ? "\(seconds / 3600) h" : "\(seconds / 86400) days"
    }

    /// The `status --json` document, schema 1 (docs/status-json.md): within one schema,
    /// fields are only ever added.
    public static let jsonSchema = 1

    public var json: String {
        func s(_ v: String?) -> String { v.map(JSON.quote) ?? "null" }
        let originsJSON = origins.map { o in
            "{\"origin\":\(JSON.quote(o.origin)),\"epoch\":\(JSON.quote(o.epoch)),\"high_water\":\(o.highWater),\"max_seq\":\(o.maxSeq),"
                + "\"missing\":[\(o.missing.map { "[\($0.lowerBound),\($0.upperBound)]" }.joined(separator: ","))],\"gap_count\":\(o.gapCount),"
                + "\"last_bundle\":\(s(o.lastBundle)),\"last_seen_at\":\(s(o.lastSeenAt))}"
        }
        let peersJSON = peers.map {
            "{\"peer\":\(JSON.quote($0.peer)),\"confirmed\":\($0.confirmed),\"behind\":\($0.behind)}"
        }
        let heldJSON = held.map {
            "{\"origin\":\(JSON.quote($0.origin)),\"seq\":\($0.seq),\"table\":\(JSON.quote($0.table)),\"key\":\(JSON.quote($0.key)),\"reason\":\(JSON.quote($0.reason))}"
        }
        let quarantinedJSON = quarantined.map {
            "{\"path\":\(JSON.quote($0.path)),\"reason\":\(JSON.quote($0.reason)),\"at\":\(JSON.quote($0.at))}"
        }
        let counter = clockStamp & ((1 << 16) - 1)
        return """
            {"schema":\(Self.jsonSchema),\
            "node":{"id":\(JSON.quote(nodeId)),"epoch":\(JSON.quote(epoch)),"database":\(JSON.quote(database))},\
            "tracked_tables":[\(trackedTables.map(JSON.quote).joined(separator: ","))],\
            "capture_drift":[\(captureDrift.map(JSON.quote).joined(separator: ","))],\
            "export":{"waiting":\(outboxWaiting),"oldest_unexported":\(s(oldestUnexported)),\
            "oldest_unexported_age_seconds":\(oldestUnexportedAgeSeconds.map(String.init) ?? "null"),\
            "last_seq":\(lastSeq),"pointer":\(exportPointer),"last_export":\(s(lastExport)),"last_receipts":\(s(lastReceipts)),"held":\(s(exportHeld))},\
            "import":{"waiting":\(inboxWaiting),"pointer":\(importPointer),"held_count":\(heldCount),"held":[\(heldJSON.joined(separator: ","))],\
            "last_ingest":\(s(lastIngest)),"bundles_ingested":\(bundlesIngested)},\
            "conflicts":\(conflicts),"key_collisions":\(keyCollisions),"forked_waiting":\(forkedWaiting),\
            "clock":{"text":\(JSON.quote(clock)),"wall_ms":\(clockStamp >> 16),"counter":\(counter),"ahead_seconds":\(clockAheadSeconds.map(String.init) ?? "null")},\
            "origins":[\(originsJSON.joined(separator: ","))],"peers":[\(peersJSON.joined(separator: ","))],\
            "quarantined":[\(quarantinedJSON.joined(separator: ","))]}
            """
    }

    static func clockAhead(_ db: Database, _ hlc: Int64) throws -> Int64? {
        let now = HybridLogicalClock.nowMs(offsetMs: try HybridLogicalClock.testOffsetMs(db))
        let ahead = (hlc >> 16) - now
        return ahead > Importer.defaultMaxClockAheadMs ? ahead / 1000 : nil
    }

    public var text: String {
        var lines =
            [
                "node:             \(nodeId) (epoch \(epoch))",
                "database:         \(database)",
                "tracked tables:   \(trackedTables.isEmpty ? "none (run 'datajoin track')" : trackedTables.joined(separator: ", "))",
            ]
            + captureDrift.map {
                // A user that cannot see the triggers does not know that they are out of date.
                ($0.hasPrefix(CaptureDrift.unseenPrefix) ? "  capture unknown: " : "  capture out of date: ") + $0
            } + [
                "waiting export:   \(outboxWaiting) change(s)"
                    + (oldestUnexportedAgeSeconds.map { ", oldest \(Self.age($0)) old" } ?? "")
            ]
        if let exportHeld { lines.append("  export is held: \(exportHeld)") }
        lines += [
            "waiting import:   \(inboxWaiting) change(s)",
            "held:             \(heldCount) change(s)",
        ]
        // The details under their own heading (they were printed after the clock line).
        for h in held { lines.append("  held \(h.origin)#\(h.seq) \(h.table) [\(h.key)]: \(h.reason)") }
        if heldCount > Int64(held.count) {
            // `--json` lists the same first 20 (found from outside: the hint sent people there).
            lines.append("  … and \(heldCount - Int64(held.count)) more (all of them: SELECT * FROM ds_change_held)")
        }
        lines += [
            "conflicts logged: \(conflicts)",
            "pointers:         export (1000) at seq \(exportPointer) of \(lastSeq); import (1001) at inbox id \(importPointer)",
            "last export:      \(lastExport ?? "never")"
                + (lastReceipts.map { "; receipts only at \($0)" } ?? ""),
            "last ingest:      \(lastIngest ?? "never") (\(bundlesIngested) bundle(s) ingested)",
            // A node that has stamped nothing yet has no clock reading, not one of 1970.
            "clock:            \(clockStamp == 0 ? "none yet (nothing stamped)" : clock)",
        ]
        if let ahead = clockAheadSeconds {
            lines.append(
                "  \(String(format: "%.1f", Double(ahead) / 86_400)) day(s) ahead of this machine's clock: peers hold this node's changes until their clocks catch up (docs/conflict-rules.md, 'A node whose clock ran ahead')"
            )
        }
        if forkedWaiting > 0 {
            lines.insert(
                "forked copies:    \(forkedWaiting) waiting: changes at seqs a node restored from a backup reused, kept until its new epoch tells which copy is the original (docs/delivery.md, forks)",
                at: lines.firstIndex { $0.hasPrefix("conflicts logged:") }.map { $0 + 1 } ?? lines.count)
        }
        if keyCollisions > 0 {
            lines.insert(
                "key collisions:   \(keyCollisions): rows inserted apart with one generated key, merged; 'datajoin check' lists them (docs/keys.md)",
                at: lines.firstIndex { $0.hasPrefix("conflicts logged:") }.map { $0 + 1 } ?? lines.count)
        }
        lines.append(
            "quarantined:      \(quarantined.count) file(s)"
                + (quarantined.isEmpty ? "" : " (move a file back out of quarantine/ to retry it)"))
        // The latest 20, as for held changes: 3,000 junk files made a status of 3,016 lines
        // (found from outside); --json lists them all.
        let shown = quarantined.suffix(Self.listedQuarantine)
        if quarantined.count > shown.count {
            lines.append("  … \(quarantined.count - shown.count) earlier (datajoin status --json, or quarantine/)")
        }
        // Each on its line: a file name may hold a line break (the text is printed keeping them).
        for q in shown { lines.append("  \(TerminalText.safe(q.path)): \(TerminalText.safe(q.reason))") }
        if !origins.isEmpty { lines.append("origins:") }
        for o in origins {
            var line = "  \(o.origin) (epoch \(o.epoch.prefix(8))): holds up to \(o.highWater)"
            if !o.missing.isEmpty {
                line +=
                    ", missing "
                    + o.missing.map {
                        $0.lowerBound == $0.upperBound ? "\($0.lowerBound)" : "\($0.lowerBound)–\($0.upperBound)"
                    }.joined(separator: ", ")
                if o.gapCount > o.missing.count { line += " and \(o.gapCount - o.missing.count) more gap(s)" }
            }
            if let b = o.lastBundle { line += "; last bundle \(TerminalText.safe(b)) at \(o.lastSeenAt ?? "?")" }
            lines.append(line)
        }
        if !peers.isEmpty { lines.append("peers (what they confirmed of this node):") }
        for p in peers {
            lines.append("  \(p.peer): up to \(p.confirmed)" + (p.behind > 0 ? " (\(p.behind) behind)" : " (all)"))
        }
        return lines.joined(separator: "\n")
    }
}
