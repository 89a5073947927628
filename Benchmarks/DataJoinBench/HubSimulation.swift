import ArgumentParser
import DataJoin
import Foundation

/// One hub relaying for N SQLite laptops (a PostgreSQL hub when --pg is given): per cycle each
/// laptop inserts 200 rows, updates an integer column of 50 rows other laptops made, and exports
/// into the shared up folder; the hub ingests them all and writes one relay bundle into the down
/// folder, which every laptop ingests. Ends with every node holding the same rows, then times a
/// hub ingest of one-change bundles (the fixed cost per bundle).
struct HubSimulation {
    let b: Bench
    let laptops: Int
    let cycles: Int
    let smallBundles: Int
    var insertsPerCycle = 200
    var updatesPerCycle = 50

    static let columns = ["visit_id", "laptop", "visits", "note"]

    func log(_ s: String) { FileHandle.standardError.write(Data("[hub] \(s)\n".utf8)) }

    func run() throws -> [Measurement] {
        let hubURL: String
        if let pg = b.pg {
            hubURL = try PostgresBench(b, base: pg).newDatabase("hub")
            try DatabaseOpener.open(hubURL).executeScript(
                "CREATE TABLE field_visit (visit_id text PRIMARY KEY, laptop text NOT NULL, visits integer NOT NULL, note text)"
            )
        } else {
            hubURL = try sqliteFile("hub")
        }
        let brand = b.pg == nil ? "hub-sqlite" : "hub-postgres"
        _ = try b.cli("init", "--db", hubURL, "--node", "hub")
        _ = try b.cli("track", "--db", hubURL, "field_visit")
        let hubKey = try b.cli("key", "--db", hubURL).output.trimmingCharacters(in: .whitespacesAndNewlines)
        var urls: [String] = []
        for i in 0..<laptops {
            let name = String(format: "lap%05d", i)
            let url = try sqliteFile(name)
            _ = try b.cli("init", "--db", url, "--node", name)
            _ = try b.cli("track", "--db", url, "field_visit")
            _ = try b.cli("trust", "--db", url, "hub", hubKey)
            let key = try b.cli("key", "--db", url).output.trimmingCharacters(in: .whitespacesAndNewlines)
            _ = try b.cli("trust", "--db", hubURL, name, key)
            urls.append(url)
        }
        log("\(laptops) laptops set up")
        let up = try b.folder("hub-up"), down = try b.folder("hub-down")
        let hub = try DatabaseOpener.open(hubURL)
        let dbs = try urls.map { try DatabaseOpener.open($0) }
        var out: [Measurement] = []
        var upSeen = Set<String>()
        for cycle in 1...cycles {
            var changes = 0
            for (i, db) in dbs.enumerated() {
                try db.write { _ in
                    for k in 0..<insertsPerCycle {
                        try db.execute(
                            "INSERT INTO field_visit (visit_id, laptop, visits, note) VALUES (?, ?, ?, ?)",
                            [
                                .text(String(format: "lap%05d-%03d-%04d", i, cycle, k)),
                                .text(String(format: "lap%05d", i)), .integer(1), .text("visit \(k) of cycle \(cycle)"),
                            ])
                    }
                    changes += insertsPerCycle
                    changes += try db.execute(
                        """
                        UPDATE field_visit SET visits = visits + 1 WHERE visit_id IN (SELECT visit_id FROM field_visit
                        WHERE laptop <> ? ORDER BY visit_id LIMIT ? OFFSET ?)
                        """,
                        [
                            .text(String(format: "lap%05d", i)), .integer(Int64(updatesPerCycle)),
                            .integer(Int64((i * 37 + cycle * 11) % 100)),
                        ])
                }
                _ = try b.cli("export", "--db", urls[i], "--to", up, "--quiet")
            }
            let newFiles = try files(up).filter { !upSeen.contains($0) }
            upSeen.formUnion(newFiles)
            try TableSum.expect(
                try newFiles.reduce(0) { $0 + (try changeCount(in: up, $1)) }, changes,
                "changes exported by the laptops in cycle \(cycle)")
            let upBytes = newFiles.reduce(Int64(0)) { $0 + b.fileSize((up as NSString).appendingPathComponent($1)) }
            let hubIngest = try b.cli("ingest", "--db", hubURL, up, "--quiet")
            let before = Set(try files(down))
            let relay = try b.cli("export", "--db", hubURL, "--relay", "--to", down, "--quiet")
            let relayBytes = try files(down).filter { !before.contains($0) }.reduce(Int64(0)) {
                $0 + b.fileSize((down as NSString).appendingPathComponent($1))
            }
            var laptopSeconds: [Double] = []
            for url in urls { laptopSeconds.append(try b.cli("ingest", "--db", url, down, "--quiet").seconds) }
            // Per-origin marks and spans of the hub's relay stream: grows with N, not N².
            let receipts =
                try hub.integer("SELECT count(*) FROM ds_peer_receipt")
                + hub.integer("SELECT count(*) FROM ds_peer_relay_receipt")
            // Drop folders stay small: the hub removes relay files every laptop confirmed, each
            // laptop its own files the hub confirmed (prune --bundles).
            let filesBefore = try files(up).count + files(down).count
            let hubPrune = try b.cli("prune", "--db", hubURL, "--bundles", down)
            for url in urls { _ = try b.cli("prune", "--db", url, "--bundles", up) }
            let filesAfter = try files(up).count + files(down).count
            log(
                "cycle \(cycle): \(changes) changes, hub ingest \(hubIngest.seconds) s, relay export \(relay.seconds) s, receipts \(receipts)"
            )
            out.append(
                Measurement(
                    brand: brand, step: "cycle \(cycle): hub ingest of \(laptops) bundles", rate: hubIngest.seconds,
                    unit: "s", baseline: "target 3 s at 100 laptops", baselineRate: nil,
                    peakRSSMiB: hubIngest.peakRSSMiB,
                    extra: [
                        "changes": Double(changes), "changes_per_s": Double(changes) / hubIngest.seconds,
                        "relay_export_s": relay.seconds, "relay_bytes": Double(relayBytes),
                        "bytes_per_laptop_bundle": Double(upBytes) / Double(laptops),
                        "laptop_ingest_mean_s": laptopSeconds.reduce(0, +) / Double(laptops),
                        "laptop_ingest_max_s": laptopSeconds.max() ?? 0, "hub_receipt_rows": Double(receipts),
                        "files_before_prune": Double(filesBefore), "files_after_prune": Double(filesAfter),
                        "hub_prune_s": hubPrune.seconds,
                    ]))
        }
        // Every node holds the same rows.
        let want = try TableSum.of(hub, table: "field_visit", columns: Self.columns)
        try TableSum.expect(want.rows, laptops * cycles * insertsPerCycle, "rows on the hub")
        for (i, db) in dbs.enumerated() {
            try TableSum.expectSame(
                try TableSum.of(db, table: "field_visit", columns: Self.columns), want,
                String(format: "lap%05d after the last relay", i))
        }
        log("all \(laptops + 1) nodes hold the same \(want.rows) rows")
        out.append(try smallBundles(hubURL: hubURL, brand: brand, dbs: dbs, urls: urls))
        return out
    }

    /// One change per bundle, at least `smallBundles` of them: the hub's fixed cost per bundle.
    func smallBundles(hubURL: String, brand: String, dbs: [Database], urls: [String]) throws -> Measurement {
        let small = try b.folder("hub-small")
        let rounds = max(1, (smallBundles + laptops - 1) / laptops)
        for r in 0..<rounds {
            for (i, db) in dbs.enumerated() {
                try db.execute(
                    "INSERT INTO field_visit (visit_id, laptop, visits, note) VALUES (?, ?, 1, 'small')",
                    [.text(String(format: "lap%05d-small-%03d", i, r)), .text(String(format: "lap%05d", i))])
                _ = try b.cli("export", "--db", urls[i], "--to", small, "--quiet")
            }
        }
        let count = try files(small).count
        try TableSum.expect(count, rounds * laptops, "one-change bundles written")
        let ingest = try b.cli("ingest", "--db", hubURL, small, "--quiet")
        let rows = try DatabaseOpener.open(hubURL).integer("SELECT count(*) FROM field_visit WHERE note = 'small'")
        try TableSum.expect(rows, count, "one-change rows on the hub")
        log("\(count) one-change bundles: \(ingest.seconds) s")
        return Measurement(
            brand: brand, step: "hub ingest of \(count) one-change bundles",
            rate: ingest.seconds * 1000 / Double(count),
            unit: "ms/bundle", baseline: "target 5 ms", baselineRate: nil, peakRSSMiB: ingest.peakRSSMiB)
    }

    func sqliteFile(_ name: String) throws -> String {
        let p = (b.work as NSString).appendingPathComponent("hub-\(name).db")
        for suffix in ["", "-wal", "-shm"] { unlink(p + suffix) }
        try DatabaseOpener.open(p).executeScript(
            "CREATE TABLE field_visit (visit_id TEXT PRIMARY KEY NOT NULL, laptop TEXT NOT NULL, visits INTEGER NOT NULL, note TEXT)"
        )
        return p
    }

    func files(_ folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".djb") }
    }

    func changeCount(in folder: String, _ name: String) throws -> Int {
        Int(
            try BundleInspector.read((folder as NSString).appendingPathComponent(name), keepChanges: 0, db: nil).header
                .changeCount)
    }
}
