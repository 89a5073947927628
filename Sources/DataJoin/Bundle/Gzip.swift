import CZlib
import Foundation

/// A gzip stream written through zlib to a file descriptor. The z_stream lives on the heap
/// because zlib keeps pointers into it between calls.
final class GzipWriter {
    private let stream: UnsafeMutablePointer<z_stream>
    private let fd: Int32
    private var out = [UInt8](repeating: 0, count: 256 * 1024)
    private(set) var compressedBytes = 0

    init(fd: Int32, level: Int32 = 6) throws {
        self.fd = fd
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
                if produced > 0 { try writeAll(out, count: produced) }
            } while stream.pointee.avail_out == 0
        }
    }

    private func writeAll(_ buf: [UInt8], count: Int) throws {
        var offset = 0
        while offset < count {
            let n = buf.withUnsafeBytes { Foundation.write(fd, $0.baseAddress! + offset, count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw DataJoinError.io("cannot write bundle: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
        compressedBytes += count
    }
}

/// Decompresses a gzip file in bounded chunks. Refuses output past `maxOutput` bytes, so a
/// decompression bomb stops early (docs/bundle-format.md gives the limits).
final class GzipReader: ByteSource {
    private let stream: UnsafeMutablePointer<z_stream>
    private let file: FileHandle
    private var input: [UInt8] = []
    private var inputOffset = 0
    private var ended = false
    private var sawEnd = false
    private(set) var outputBytes = 0
    private(set) var inputBytes = 0
    let maxOutput: Int
    let path: String

    init(path: String, maxOutput: Int) throws {
        self.path = path
        self.maxOutput = maxOutput
        guard let f = FileHandle(forReadingAtPath: path) else {
            throw DataJoinError.io("cannot open \(path): \(FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file")")
        }
        file = f
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
        try? file.close()
    }

    /// True once the gzip trailer (CRC-32 and length) has been read and checked by zlib.
    var finished: Bool { sawEnd }

    func next(max: Int) throws -> [UInt8] {
        if sawEnd { return [] }
        var out = [UInt8](repeating: 0, count: max)
        var produced = 0
        while produced == 0 {
            if inputOffset >= input.count && !ended {
                input = Array(file.readData(ofLength: 64 * 1024))
                inputOffset = 0
                inputBytes += input.count
                if input.isEmpty { ended = true }
            }
            let available = input.count - inputOffset
            if available == 0 && ended {
                throw DataJoinError.bundle("truncated: the gzip stream ends early")
            }
            let rc: Int32 = input.withUnsafeMutableBufferPointer { inBuf in
                out.withUnsafeMutableBufferPointer { outBuf in
                    stream.pointee.next_in = inBuf.baseAddress! + inputOffset
                    stream.pointee.avail_in = uInt(available)
                    stream.pointee.next_out = outBuf.baseAddress! + produced
                    stream.pointee.avail_out = uInt(max - produced)
                    let rc = inflate(stream, Z_NO_FLUSH)
                    inputOffset = inBuf.count - Int(stream.pointee.avail_in)
                    produced = max - Int(stream.pointee.avail_out)
                    return rc
                }
            }
            switch rc {
            case Z_OK, Z_BUF_ERROR: break
            case Z_STREAM_END:
                sawEnd = true
                // Anything after the gzip member is not ours: refuse rather than ignore it.
                if inputOffset < input.count || !file.readData(ofLength: 1).isEmpty {
                    throw DataJoinError.bundle("unexpected bytes after the end of the gzip stream")
                }
                if produced == 0 { return [] }
            case Z_DATA_ERROR: throw DataJoinError.bundle("corrupt gzip data (\(stream.pointee.msg.map { String(cString: $0) } ?? "bad data"))")
            case Z_MEM_ERROR: throw DataJoinError.io("out of memory while decompressing")
            case Z_NEED_DICT: throw DataJoinError.bundle("corrupt gzip data (asks for a dictionary)")
            default: throw DataJoinError.bundle("corrupt gzip data (zlib code \(rc))")
            }
        }
        outputBytes += produced
        if outputBytes > maxOutput {
            throw DataJoinError.bundle("expands past \(maxOutput >> 20) MiB, the limit for a bundle (a decompression bomb?)")
        }
        out.removeSubrange(produced...)
        return out
    }
}
