import Crypto
import Foundation

public struct IngestOptions: Sendable {
    public var paths: [String]
    public var importAfter: Bool
    public init(paths: [String], importAfter: Bool = true) {
        self.paths = paths
        self.importAfter = importAfter
    }
}

/// What happened to one file.
public struct IngestedFile: Sendable {
    public enum Status: Sendable, Equatable {
        case loaded(changes: Int64, skipped: Int64)
        case alreadySeen
        case ownBundle
        case refused(String)
    }
    public var path: String
    public var status: Status
}

public struct IngestReport: Sendable {
    public var files: [IngestedFile] = []
    public var imported: ImportReport?
    public var refused: Int { files.filter { if case .refused = $0.status { return true } else { return false } }.count }
}

/// `datajoin ingest`: verifies bundles and loads them into ds_change_inbox, one transaction per
/// bundle, then imports. A bad bundle is refused with its reason; the good ones still load.
public enum Ingester {
    public static func ingest(_ db: Database, _ options: IngestOptions, reporter: Reporter = SilentReporter()) throws -> IngestReport {
        let me = try NodeIdentity.load(db)
        var report = IngestReport()
        for path in try BundleFiles.expand(options.paths) {
            let status: IngestedFile.Status
            do {
                status = try ingestFile(db, path: path, me: me)
            } catch let e as DataJoinError where e.code == .badBundle || e.code == .untrusted {
                status = .refused(e.message)
            } catch let e as DataJoinError where e.code == .io {
                status = .refused(e.message)
            }
            report.files.append(IngestedFile(path: path, status: status))
            reporter.verbose("\(path): \(status)")
        }
        if options.importAfter {
            report.imported = try Importer.run(db, reporter: reporter)
        }
        return report
    }

    static func fileDigest(_ path: String) throws -> String {
        guard let f = FileHandle(forReadingAtPath: path) else { throw DataJoinError.io("cannot read \(path)") }
        defer { try? f.close() }
        var h = SHA256()
        while true {
            let chunk = f.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            h.update(data: chunk)
        }
        return Hex.encode(Array(h.finalize()))
    }

    static func ingestFile(_ db: Database, path: String, me: NodeIdentity) throws -> IngestedFile.Status {
        let digest = try fileDigest(path)
        if try db.firstRow("SELECT id FROM ds_bundle_seen WHERE sha256 = ?", [.text(digest)]) != nil { return .alreadySeen }
        let reader = try BundleReader(path: path)
        let h = reader.header
        let key: Curve25519.Signing.PublicKey
        switch try Trust.key(db, node: h.sender) {
        case .success(let k): key = k
        case .failure(let e): throw e
        }
        guard Array(key.rawRepresentation) == h.publicKey else {
            throw DataJoinError(.untrusted, "claims to come from \(h.sender) but carries a different key than the one trusted for \(h.sender)")
        }
        if h.sender == me.nodeId {
            // Genuinely ours (the signature is checked): nothing to load, echo prevention.
            try reader.finish(publicKey: key)
            return .ownBundle
        }
        return try db.inTransaction {
            let first = h.origins.map(\.first).min() ?? 0
            let last = h.origins.map(\.last).max() ?? 0
            let bundleId = try insertReturningId(db, """
                INSERT INTO ds_bundle_seen (sha256, file_name, origin, origin_epoch, first_seq, last_seq, change_count, loaded_count, ingested_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)
                """, [.text(digest), .text((path as NSString).lastPathComponent), .text(h.sender), .text(h.senderEpoch),
                      .integer(first), .integer(last), .integer(h.changeCount), .text(nowText())])
            var loaded: Int64 = 0
            var skipped: Int64 = 0
            let received = nowText()
            let insert = db.brand == .sqlite
                ? "INSERT OR IGNORE INTO ds_change_inbox (origin, origin_epoch, seq, hlc, source_id, object_table, object_id, object_operation, cl, object_value, bundle_id, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                : "INSERT INTO ds_change_inbox (origin, origin_epoch, seq, hlc, source_id, object_table, object_id, object_operation, cl, object_value, bundle_id, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
            while let c = try reader.next() {
                if c.origin == me.nodeId { skipped += 1; continue }
                let n = try db.execute(insert, [.text(c.origin), .text(c.epoch), .integer(c.seq), .integer(c.hlc), .integer(c.txid), .text(c.table),
                                                .blob(KeyCodec.encode(c.key)), .text(c.op.rawValue), .integer(c.cl), .blob(c.encodedPayload()),
                                                .integer(bundleId), .text(received)])
                if n > 0 { loaded += 1 } else { skipped += 1 }
            }
            // Nothing loaded counts unless the whole file verifies: a throw here rolls it all back.
            try reader.finish(publicKey: key)
            try db.execute("UPDATE ds_bundle_seen SET loaded_count = ? WHERE id = ?", [.integer(loaded), .integer(bundleId)])
            return .loaded(changes: loaded, skipped: skipped)
        }
    }

    static func insertReturningId(_ db: Database, _ sql: String, _ params: [Value]) throws -> Int64 {
        switch db.brand {
        case .sqlite:
            try db.execute(sql, params)
            return try db.scalar("SELECT last_insert_rowid()").asInt64 ?? 0
        case .postgres:
            return try db.scalar(sql + " RETURNING id", params).asInt64 ?? 0
        }
    }
}

/// Expands ingest arguments: files as given, folders to their bundle files in name order.
/// Hidden files (rsync's `.name.XXXXXX` temporaries, DataJoin's own `.tmp`) are skipped.
public enum BundleFiles {
    public static func expand(_ paths: [String]) throws -> [String] {
        var out: [String] = []
        for p in paths {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
                throw DataJoinError.io("\(p): no such file or folder")
            }
            if isDir.boolValue {
                let names = try FileManager.default.contentsOfDirectory(atPath: p)
                for n in names.sorted() where !n.hasPrefix(".") && n.hasSuffix("." + BundleFormat.fileExtension) {
                    out.append((p as NSString).appendingPathComponent(n))
                }
            } else {
                out.append(p)
            }
        }
        return out
    }
}
