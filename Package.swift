// swift-tools-version:5.9
import Foundation
import PackageDescription

let package = Package(
    name: "DataJoin",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "DataJoin", targets: ["DataJoin"]),
        .executable(name: "datajoin", targets: ["datajoin"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CMariaDB", pkgConfig: "libmariadb", providers: [.apt(["libmariadb-dev"])]),
        .systemLibrary(name: "CMalloc"),
        .target(
            name: "DataJoin",
            dependencies: [
                "CSQLite", "CLibPQ", "CZlib", "CMariaDB", "CMalloc",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "datajoin",
            dependencies: [
                "DataJoin",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "datajoin-bench",
            dependencies: ["DataJoin", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Benchmarks/DataJoinBench"
        ),
        .testTarget(
            name: "DataJoinTests",
            dependencies: ["DataJoin"],
            exclude: ["FuzzRegressions"]
        ),
    ]
)

// The fuzz target for the bundle reader, built only by Scripts/fuzz.sh (libFuzzer needs
// -sanitize=fuzzer on every module, and its own main).
if ProcessInfo.processInfo.environment["DATAJOIN_FUZZ"] == "1" {
    package.targets.append(
        .executableTarget(
            name: "datajoin-fuzz",
            dependencies: ["DataJoin"],
            path: "Fuzz/BundleReaderFuzz",
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ))
    package.products.append(.executable(name: "datajoin-fuzz", targets: ["datajoin-fuzz"]))
}
