import CZlib
import Foundation

/// A gzip stream written through zlib to a file descriptor. The z_stream lives on the heap
/// because zlib keeps pointers into it between calls.
final class GzipWriter {
    private let stream: UnsafeMutablePointer<z_stream>
    private let sink: ([UInt8], Int) throws -> Void
    private var out = [UInt8](repeating: 0, count: 256 * 1024)
    private(set) var compressedBytes = 0

    /// `failure`: what could not be written, named for the operator (errno set).
    convenience init(fd: Int32, level: Int32 = 6, failure: @escaping () -> DataJoinError) throws {
        try self.init(level: level) { buf, count in
            try GzipWriter.writeAll(fd: fd, buf, count: count, failure: failure)
        }
    }

    /// `sink` receives each compressed chunk: the first `count` bytes of the buffer.
    init(level: Int32 = 6, sink: @escaping ([UInt8], Int) throws -> Void) throws {
        self.sink = sink
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        stream.pointee.zalloc = nil
        stream.pointee.zfree = nil
        stream.pointee.opaque = nil
        let rc = datajoin_deflate_init_gzip(stream, level)
        guard rc == Z_OK else {
            stream.deallocate()
            throw DataJoinError.io("cannot start gzip compression (zlib code \(rc))")
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    func write(_ bytes: [UInt8]) throws { try run(bytes, flush: Z_NO_FLUSH) }
    func finish() throws { try run([], flush: Z_FINISH) }

    private func run(_ input: [UInt8], flush: Int32) throws {
        try input.withUnsafeBufferPointer { inBuf in
            stream.pointee.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
            stream.pointee.avail_in = uInt(inBuf.count)
            defer { stream.pointee.next_in = nil }
            // zlib's own loop: call deflate until it leaves room in the output buffer.
            repeat {
                let produced: Int = try out.withUnsafeMutableBufferPointer { outBuf in
                    stream.pointee.next_out = outBuf.baseAddress
                    stream.pointee.avail_out = uInt(outBuf.count)
                    let rc = deflate(stream, flush)
                    switch rc {
                    case Z_OK, Z_STREAM_END, Z_BUF_ERROR: break
                    case Z_STREAM_ERROR: throw DataJoinError.io("gzip compression failed: inconsistent stream state")
                    case Z_MEM_ERROR: throw DataJoinError.io("gzip compression failed: out of memory")
                    default: throw DataJoinError.io("gzip compression failed (zlib code \(rc))")
                    }
                    return outBuf.count - Int(stream.pointee.avail_out)
                }
                if produced > 0 {
                    try sink(out, produced)
                    compressedBytes += produced
                }
            } while stream.pointee.avail_out == 0
        }
    }

    /// Writes all of it, again after a signal; `failure` says what could not be written (errno set).
    static func writeAll(
        fd: Int32, _ buf: [UInt8], count: Int,
        failure: () -> DataJoinError
    ) throws {
        var offset = 0
        while offset < count {
            let n = buf.withUnsafeBytes { Foundation.write(fd, $0.baseAddress! + offset, count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure()
            }
            offset += n
        }
    }
}

enum Gzip {
    /// Compresses bytes in memory.
    static func compress(_ bytes: [UInt8]) throws -> [UInt8] {
        final class Sink { var bytes: [UInt8] = [] }
        let sink = Sink()
        let w = try GzipWriter { buf, n in sink.bytes += buf[0..<n] }
        try w.write(bytes)
        try w.finish()
        return sink.bytes
    }
}

/// Where compressed bytes come from: a file read in 64 KiB steps, bytes in memory, or a
/// function that gives the next piece ([] at the end): an encrypted bundle's decryptor.
enum CompressedInput {
    case file(FileHandle)
    case memory([UInt8])
    case stream(() throws -> [UInt8])
}

/// Decompresses one gzip member in bounded chunks. Refuses output past `maxOutput` bytes, so a
/// decompression bomb stops early, and refuses any gzip header other than the one DataJoin
/// writes, so no bit of the file can change without the bundle being refused
/// (docs/bundle-format.md).
final class GzipReader: ByteSource {
    /// The 10-byte gzip header zlib writes for DataJoin: no flags, MTIME 0, XFL 0, OS 3 (Unix).
    static let canonicalHeader: [UInt8] = [0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03]

    private let stream: UnsafeMutablePointer<z_stream>
    private let source: CompressedInput
    private var input: [UInt8] = []
    private var inputOffset = 0
    private var memoryOffset = 0
    private var ended = false
    private var sawEnd = false
    private var headerChecked = false
    private(set) var outputBytes = 0
    private(set) var inputBytes = 0
    let maxOutput: Int

    convenience init(path: String, maxOutput: Int) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw DataJoinError(.noInput, "cannot open \(path): no such file")
        }
        if !isDir.boolValue, let problem = BundleFiles.regularFileProblem(path) {
            throw DataJoinError(.dataError, "cannot read \(path): \(problem)")
        }
        if isDir.boolValue {
            // A folder named as a bundle is input of the wrong kind, as a folder for --db is (66).
            throw DataJoinError(.noInput, "cannot open \(path): it is a folder, not a bundle file")
        }
        guard let f = FileHandle(forReadingAtPath: path) else {
            // This user may not read it: the permission class (77), as for a database file;
            // `verify` exited 1 (found from outside).
            if access(path, R_OK) != 0 {
                throw DataJoinError(.permission, "cannot open \(path): this user may not read it (permission denied)")
            }
            throw DataJoinError.io("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        try self.init(source: .file(f), maxOutput: maxOutput)
    }

    init(source: CompressedInput, maxOutput: Int) throws {
        self.source = source
        self.maxOutput = maxOutput
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let rc = datajoin_inflate_init_gzip(stream)
        guard rc == Z_OK else {
            stream.deallocate()
            throw DataJoinError.io("cannot start gzip decompression (zlib code \(rc))")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
        if case .file(let f) = source { try? f.close() }
    }

    /// True once the gzip trailer (CRC-32 and length) has been read and checked by zlib.
    var finished: Bool { sawEnd }

    private var lastByteTaken: UInt8 = 0
    private var paddingChecked = false

    /// Deflate ignores the bits that pad its last byte, so flipping one changes the file but not
    /// its content or CRC. zlib writes them as zero; anything else is an altered file.
    private func checkFinalPadding() throws {
        let dt = stream.pointee.data_type
        guard !paddingChecked, dt & 64 != 0, dt & 128 != 0 else { return }
        paddingChecked = true
        let unused = Int(dt & 63)
        if unused > 0 && unused < 8 && lastByteTaken >> UInt8(8 - unused) != 0 {
            throw DataJoinError.bundle("altered compressed data (non-zero padding bits after the last block)")
        }
    }

    private func readInput() throws -> [UInt8] {
        switch source {
        case .stream(let next): return try next()
        case .file(let f): return Array(f.readData(ofLength: 64 * 1024))
        case .memory(let bytes):
            let n = min(64 * 1024, bytes.count - memoryOffset)
            defer { memoryOffset += n }
            return Array(bytes[memoryOffset..<memoryOffset + n])
        }
    }

    func next(max: Int) throws -> [UInt8] {
        if sawEnd { return [] }
        var out = [UInt8](repeating: 0, count: max)
        var produced = 0
        while produced == 0 {
            if inputOffset >= input.count && !ended {
                input = try readInput()
                inputOffset = 0
                inputBytes += input.count
                if input.isEmpty { ended = true }
            }
            if !headerChecked {
                // Gather the 10 header bytes even if the source hands them over in pieces.
                while input.count - inputOffset < GzipReader.canonicalHeader.count && !ended {
                    let more = try readInput()
                    inputBytes += more.count
                    if more.isEmpty { ended = true } else { input += more }
                }
                let head = Array(input[inputOffset..<min(input.count, inputOffset + GzipReader.canonicalHeader.count)])
                // An empty file is one whose copy has not started writing yet, as a truncated one
                // is one whose copy has not finished: both wait out the grace period.
                if head.isEmpty { throw DataJoinError(.truncated, "truncated: the file is empty") }
                // One byte, gzip's first, is a copy caught after its first byte (a byte-wise
                // copier): it waits as a longer start does. It was quarantined, and the copy went
                // on into quarantine/ (found from outside).
                if head[0] != 0x1F || (head.count >= 2 && head[1] != 0x8B) {
                    throw DataJoinError.bundle("not a gzip file, so not a bundle")
                }
                if head.count < GzipReader.canonicalHeader.count {
                    throw DataJoinError(.truncated, "truncated or damaged: the gzip stream ends early")
                }
                guard head == GzipReader.canonicalHeader else {
                    throw DataJoinError.bundle("gzip header differs from the one DataJoin writes (altered file)")
                }
                headerChecked = true
            }
            let available = input.count - inputOffset
            if available == 0 && ended {
                throw DataJoinError(.truncated, "truncated or damaged: the gzip stream ends early")
            }
            let rc: Int32 = input.withUnsafeMutableBufferPointer { inBuf in
                out.withUnsafeMutableBufferPointer { outBuf in
                    stream.pointee.next_in = inBuf.baseAddress! + inputOffset
                    stream.pointee.avail_in = uInt(available)
                    stream.pointee.next_out = outBuf.baseAddress! + produced
                    stream.pointee.avail_out = uInt(max - produced)
                    // Z_BLOCK stops at block boundaries, where data_type tells the unused bits.
                    let rc = inflate(stream, Z_BLOCK)
                    inputOffset = inBuf.count - Int(stream.pointee.avail_in)
                    produced = max - Int(stream.pointee.avail_out)
                    if inputOffset > 0 { lastByteTaken = inBuf[inputOffset - 1] }
                    return rc
                }
            }
            try checkFinalPadding()
            switch rc {
            case Z_OK, Z_BUF_ERROR: break
            case Z_STREAM_END:
                sawEnd = true
                // Anything after the gzip member is not ours: refuse rather than ignore it.
                if try inputOffset < input.count || !readInput().isEmpty {
                    throw DataJoinError.bundle("unexpected bytes after the end of the gzip stream")
                }
                if produced == 0 { return [] }
            case Z_DATA_ERROR:
                throw DataJoinError.bundle(
                    "corrupt gzip data (\(stream.pointee.msg.map { String(cString: $0) } ?? "bad data"))")
            case Z_MEM_ERROR: throw DataJoinError.io("out of memory while decompressing")
            case Z_NEED_DICT: throw DataJoinError.bundle("corrupt gzip data (asks for a dictionary)")
            default: throw DataJoinError.bundle("corrupt gzip data (zlib code \(rc))")
            }
        }
        outputBytes += produced
        if outputBytes > maxOutput {
            throw DataJoinError.bundle(
                "expands past \(maxOutput) bytes\(maxOutput >= 1 << 20 ? " (\(maxOutput >> 20) MiB)" : ""), the limit for a bundle (a decompression bomb?)"
            )
        }
        out.removeSubrange(produced...)
        return out
    }
}
