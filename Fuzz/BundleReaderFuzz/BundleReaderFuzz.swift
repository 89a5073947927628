import DataJoin

/// libFuzzer entry for the bundle reader. The first byte picks the layer: even = the input is a
/// bundle file as found on disk (gzip layer first); odd = the rest is the uncompressed content,
/// gzipped here, so the fuzzer mutates headers and records directly. The reader must never
/// crash, hang or allocate without bound, whatever the bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func bundleReaderFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    if data[0] & 1 == 0 {
        _ = BundleInspector.check(bytes: bytes, maxExpandedBytes: 8 << 20)
    } else {
        _ = BundleInspector.checkUncompressed(bytes, maxExpandedBytes: 8 << 20)
    }
    return 0
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
