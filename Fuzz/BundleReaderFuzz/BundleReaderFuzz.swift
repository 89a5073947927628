import Crypto
import Foundation

@testable import DataJoin

/// libFuzzer entry for bundles, on six layers picked by the first byte (mod 8; 6 and 7 are 0 and 1):
/// 0. the input is a bundle file as found on disk (gzip layer first), checked as `verify` does;
/// 1. the input is uncompressed content, gzipped here, decoded without the signature check;
/// 2. the input is uncompressed content, re-sealed here (digest and signature by the fuzz key,
///    which the target node trusts for every sender) and ingested into a real SQLite node:
///    mutations of real bundles reach the decoder and the database behind the signature;
/// 3. the input is a program that builds a bundle field by field (`StructuredBundle`): counts,
///    lengths, indexes, strings and numbers chosen from the bytes, with the limits' edges
///    (0, 1, 2^62, 10,000 columns, 64 MiB) among the choices; sealed and ingested as in 2.
/// 4. the input is uncompressed content, sealed as in 2, then encrypted (format v2) to the
///    target node's fuzz encryption key and signed outside: the decrypting path behind both
///    signatures and every tag;
/// 5. the input is an encrypted (v2) file whose outer trailer is signed again here: its header
///    decoder, recipient stanzas and chunk tags see every mutation.
/// Nothing may crash, hang or allocate without bound, whatever the bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func bundleReaderFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    switch data[0] & 7 {
    case 0, 6: _ = BundleInspector.check(bytes: bytes, maxExpandedBytes: 8 << 20)
    case 1, 7: _ = BundleInspector.decodeUnverified(bytes: (try? Gzip.compress(bytes)) ?? [], maxExpandedBytes: 8 << 20)
    case 2: FuzzNode.shared.ingest(content: bytes, reseal: true)
    case 3: FuzzNode.shared.ingest(content: StructuredBundle.build(from: bytes), reseal: false)
    case 4: FuzzNode.shared.ingest(content: bytes, reseal: true, encrypt: true)
    default: FuzzNode.shared.ingestResigned(encrypted: bytes)
    }
    return 0
}

/// The key every fuzzed bundle is signed with; the seed bundles' nodes sign with it too
/// (Scripts/fuzz.sh), so a mutated real bundle is still "from a trusted sender".
enum FuzzKey {
    static let key = try! Curve25519.Signing.PrivateKey(rawRepresentation: [UInt8](repeating: 0x42, count: 32))
    static let senders = ["peer", "office", "laptop-1", "laptop-2", "hub", "a", "b", "c"]
    /// The target node's encryption key: 32 bytes of 0x43 (Scripts/fuzz-seeds.sh encrypts the
    /// seeds to its public half).
    static let encryption = try! Curve25519.KeyAgreement.PrivateKey(
        rawRepresentation: [UInt8](repeating: 0x43, count: 32))
}

/// A SQLite node in a temporary folder that trusts the fuzz key for every seed sender.
final class FuzzNode {
    static let shared = FuzzNode()
    let db: Database
    let folder: String
    var counter = 0
    /// Distinct refusal reasons seen (digits removed), appended to DATAJOIN_FUZZ_REASONS.
    var reasons = Set<String>()
    let reasonsFile = ProcessInfo.processInfo.environment["DATAJOIN_FUZZ_REASONS"]

    init() {
        folder = NSTemporaryDirectory() + "datajoin-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        db = try! DatabaseOpener.open(folder + "/target.db")
        try! db.executeScript(
            """
            CREATE TABLE IF NOT EXISTS sales_order (order_id TEXT PRIMARY KEY NOT NULL, order_type TEXT, description TEXT, product_type_name TEXT,
              customer_id TEXT, quantity TEXT, order_date TEXT, update_datetime TEXT, updated_by_user TEXT, updated_by_server TEXT);
            CREATE TABLE IF NOT EXISTS line (order_id TEXT NOT NULL, line_no INTEGER NOT NULL, product TEXT, qty INTEGER, PRIMARY KEY (order_id, line_no));
            CREATE TABLE IF NOT EXISTS wide (k INTEGER PRIMARY KEY, b BLOB, r REAL, t TEXT, i INTEGER);
            """)
        _ = try! NodeSetup.initialize(db, node: "target")
        _ = try! Tracker.track(db, tables: ["sales_order", "line", "wide"], keyBlocks: false)
        // Written directly: `trust` refuses one key for several nodes, and here every seed
        // sender shares the fuzz key on purpose.
        for s in FuzzKey.senders {
            try! db.execute(
                "INSERT INTO ds_trusted_key (node_id, public_key, trusted_at) VALUES (?, ?, '2026-01-01T00:00:00Z')",
                [.text(s), .text(Hex.encode(Array(FuzzKey.key.publicKey.rawRepresentation)))])
        }
        try! db.execute(
            "INSERT INTO ds_setting (name, value) VALUES ('max_bundle_expanded_bytes', ?)", [.text(String(8 << 20))])
        try! db.execute("DELETE FROM ds_encryption_key")
        try! db.execute(
            "INSERT INTO ds_encryption_key (public_key, private_key, created_at) VALUES (?, ?, '2026-01-01T00:00:00Z')",
            [
                .text(Hex.encode(Array(FuzzKey.encryption.publicKey.rawRepresentation))),
                .text(Hex.encode(Array(FuzzKey.encryption.rawRepresentation))),
            ])
    }

    /// An encrypted file with its outer digest and signature made right again.
    func ingestResigned(encrypted bytes: [UInt8]) {
        var body = bytes
        if body.count >= 96 { body.removeLast(96) }
        let digest = Array(SHA256.hash(data: body))
        guard let signature = try? Array(FuzzKey.key.signature(for: digest)) else { return }
        ingestFile(body + digest + signature)
    }

    func ingest(content: [UInt8], reseal: Bool, encrypt: Bool = false) {
        var content = content
        if reseal {
            // Replace the trailer's digest and signature with correct ones.
            if content.count >= 96 { content.removeLast(96) }
        }
        let digest = Array(SHA256.hash(data: content))
        guard let signature = try? Array(FuzzKey.key.signature(for: digest)),
            let file = try? Gzip.compress(content + digest + signature)
        else { return }
        guard encrypt else { return ingestFile(file) }
        // Encrypted to the target, signed outside by the inner bundle's own sender.
        let path = folder + "/enc.tmp"
        unlink(path)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return }
        defer {
            close(fd)
            unlink(path)
        }
        guard
            let sink = try? EncryptingSink(
                fd: fd, sender: (try? BundleSeal(bytes: file))?.sender ?? "a", senderEpoch: "00aa11bb", createdAt: "",
                signingKey: FuzzKey.key,
                recipients: [
                    Recipient(node: "target", key: Array(FuzzKey.encryption.publicKey.rawRepresentation))
                ]),
            (try? sink.write(file[...])) != nil, (try? sink.finish()) != nil,
            let encrypted = FileManager.default.contents(atPath: path)
        else { return }
        ingestFile(Array(encrypted))
    }

    func ingestFile(_ file: [UInt8]) {
        counter += 1
        let path = folder + "/in-\(counter % 4).djb"
        guard FileManager.default.createFile(atPath: path, contents: Data(file)) else { return }
        defer { unlink(path) }
        do {
            let report = try Ingester.ingest(db, IngestOptions(paths: [path], quarantine: false))
            for f in report.files { if case .refused(let reason) = f.status { note(reason) } }
        } catch {
            note("run failed: \(error)")
        }
    }

    func note(_ reason: String) {
        let shape = String(reason.filter { !$0.isNumber }.prefix(120))
        guard reasons.insert(shape).inserted, let reasonsFile else { return }
        if let h = FileHandle(forWritingAtPath: reasonsFile)
            ?? (FileManager.default.createFile(atPath: reasonsFile, contents: nil)
                ? FileHandle(forWritingAtPath: reasonsFile) : nil)
        {
            h.seekToEndOfFile()
            h.write(Data((shape + "\n").utf8))
            try? h.close()
        }
    }
}

/// Builds a bundle's uncompressed content (without the digest and signature) from fuzz bytes.
/// Every choice is a field of the format, so one mutated byte changes one count, length, index,
/// name or number, and the edges of every limit are among the choices.
struct StructuredBundle {
    private var input: [UInt8]
    private var pos = 0

    static func build(from bytes: [UInt8]) -> [UInt8] {
        var s = StructuredBundle(input: bytes)
        return s.bundle()
    }

    private mutating func byte() -> UInt8 {
        guard pos < input.count else { return 0 }
        defer { pos += 1 }
        return input[pos]
    }

    private mutating func pick<T>(_ choices: [T]) -> T { choices[Int(byte()) % choices.count] }

    /// A number: small, or one of the edges.
    private mutating func number() -> UInt64 {
        let b = byte()
        switch b % 8 {
        case 0, 1, 2, 3: return UInt64(b / 8)
        case 4:
            let edges: [UInt64] = [
                0, 1, 2, 127, 128, 255, 256, 9_999, 10_000, 10_001, 65_535, 65_536, 100_000, 100_001,
            ]
            return pick(edges)
        case 5:
            let edges: [UInt64] = [
                1 << 62, (1 << 62) + 1, UInt64(Int64.max), UInt64(Int64.max) - 1, UInt64.max, 1 << 63,
            ]
            return pick(edges)
        case 6:
            let edges: [UInt64] = [67_108_863, 67_108_864, 67_108_865, 1_048_576, 1_048_577, 200_000, 200_001]
            return pick(edges)
        default:
            let low = UInt64(byte()), middle = UInt64(byte()), high = UInt64(byte())
            return low | middle << 8 | high << 16
        }
    }

    private mutating func name() -> String {
        switch byte() % 10 {
        case 0: return "sales_order"
        case 1: return "line"
        case 2: return "wide"
        case 3: return pick(["order_id", "description", "quantity", "line_no", "qty", "k", "b", "r", "t", "i"])
        case 4: return pick(FuzzKey.senders)
        case 5:
            return pick([
                "", "\u{0}", "a\u{0}b", "x\n", String(repeating: "n", count: 129), "🙂", "ds_node",
                "sales_order\"; DROP TABLE x;--",
            ])
        case 6: return "00aa11bb"
        case 7: return "snap-" + pick(["00aa11bb", "", "\u{0}"])
        default:
            let n = Int(byte() % 12)
            return String(decoding: (0..<n).map { _ in byte() }, as: UTF8.self)
        }
    }

    private mutating func value(_ w: inout ByteWriter) {
        switch byte() % 8 {
        case 0: w.byte(0)
        case 1:
            w.byte(1)
            w.signed(Int64(bitPattern: number()))
        case 2:
            w.byte(2)
            w.bytes += (0..<8).map { _ in byte() }
        case 3:
            w.byte(3)
            w.string(name())
        case 4:
            w.byte(4)
            w.data((0..<Int(byte() % 16)).map { _ in byte() })
        case 5:
            w.byte(pick([3, 4]))
            w.varint(number())  // a declared length, no bytes behind it
        case 6: w.byte(byte())  // an unknown tag
        default:
            w.byte(3)
            w.string("order-\(byte())")
        }
    }

    private mutating func bundle() -> [UInt8] {
        var w = ByteWriter()
        w.bytes += BundleFormat.magic
        w.byte(byte() % 16 == 0 ? byte() : BundleFormat.major)
        w.byte(BundleFormat.minor)
        w.data(header())
        var records = 0
        while pos < input.count && records < 64 {
            records += 1
            switch byte() % 6 {
            case 0: table(&w)
            case 1, 2, 3: change(&w)
            case 4: w.bytes += (0..<Int(byte() % 8)).map { _ in byte() }  // raw bytes
            default:
                w.byte(BundleFormat.Record.trailer.rawValue)
                w.varint(number())
            }
        }
        w.byte(BundleFormat.Record.trailer.rawValue)
        w.varint(number())
        return w.bytes
    }

    private mutating func header() -> [UInt8] {
        var h = ByteWriter()
        let fields = Int(byte() % 10) + 4
        for _ in 0..<fields {
            let id = byte() % 10
            var f = ByteWriter()
            switch id {
            case 1: f.string(byte() % 4 == 0 ? name() : pick(FuzzKey.senders))
            case 2, 3, 4: f.string(id == 4 ? pick(["changes", "snapshot", "other", ""]) : name())
            case 5:
                let n = Int(byte() % 5)
                f.varint(byte() % 8 == 0 ? number() : UInt64(n))
                for _ in 0..<n {
                    f.string(name())
                    f.string(name())
                    f.varint(number())
                    f.varint(number())
                    f.varint(number())
                }
            case 6: f.varint(number())
            case 7:
                let n = Int(byte() % 4)
                f.varint(UInt64(n))
                for _ in 0..<n {
                    f.string(name())
                    f.string(name())
                    f.varint(number())
                }
            case 8:
                f.data(
                    byte() % 8 == 0
                        ? (0..<Int(byte() % 40)).map { _ in byte() } : Array(FuzzKey.key.publicKey.rawRepresentation))
            default: f.bytes += (0..<Int(byte() % 6)).map { _ in byte() }
            }
            h.varint(UInt64(id))
            h.data(f.bytes)
        }
        return h.bytes
    }

    private mutating func table(_ w: inout ByteWriter) {
        w.byte(BundleFormat.Record.table.rawValue)
        w.varint(number() % 4)
        w.string(name())
        let n = byte() % 8 == 0 ? number() : UInt64(byte() % 6)
        w.varint(n)
        for _ in 0..<min(n, 12) { w.string(name()) }
        let k = UInt64(byte() % 3)
        w.varint(k)
        for _ in 0..<k { w.varint(number() % 8) }
    }

    private mutating func change(_ w: inout ByteWriter) {
        w.byte(BundleFormat.Record.change.rawValue)
        w.varint(number() % 4)  // origin index
        w.varint(number())  // seq
        w.varint(byte() % 4 == 0 ? number() : UInt64(1_700_000_000_000) << 16)  // hlc
        w.varint(number())  // txid
        w.byte(pick([UInt8(ascii: "I"), UInt8(ascii: "U"), UInt8(ascii: "D"), byte()]))
        w.varint(number() % 4)  // table index
        w.varint(number() % 5)  // generation
        for _ in 0..<Int(byte() % 3) { value(&w) }  // key
        let m = Int(byte() % 4)
        w.varint(byte() % 8 == 0 ? number() : UInt64(m))
        for _ in 0..<m {
            w.varint(number() % 12)
            value(&w)
        }
    }
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

/// SwiftPM links an executable target's entry as `<target>_main`; hand control to libFuzzer.
@_cdecl("datajoin_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, bundleReaderFuzz)
}
