// swift-tools-version: 6.0
import PackageDescription

/// The Swift runtime, the standard library and FoundationEssentials linked into the binary
/// (`-static-stdlib`; the three libraries FoundationEssentials needs are not named by the
/// driver when only a dependency imports it). Saves the dynamic loader about 19 shared
/// libraries at every start of `corral`.
/// The C++ library the runtime needs is linked from its archive too (`Linker/libstdc++.so`, a
/// linker script, is found first for the driver's `-lstdc++`) and libgcc likewise: loading
/// the shared libstdc++ cost more than half of what `corral --version` ran.
/// Code on the path of every `corral run` names its generic types' metadata by accessor
/// (witness tables passed directly) instead of by mangled name: the runtime otherwise
/// demangles each one on first use and scans every protocol conformance in the binary to
/// check its requirements (about 0.3 million instructions per distinct type).
let directMetadata: [SwiftSetting] = [
    .unsafeFlags(["-Xfrontend", "-disable-concrete-type-metadata-mangled-name-accessors"]),
]
let linkerScripts = Context.packageDirectory + "/Linker"
let staticSwiftRuntime: [LinkerSetting] = [
    .unsafeFlags(["-static-stdlib", "-l_FoundationCShims", "-l_FoundationCollections", "-lswiftSynchronization",
                  "-L" + linkerScripts, "-Xclang-linker", "-static-libgcc",
                  // lld packs the 42,000 relative relocations (DT_RELR: 8 KB instead of 1 MB
                  // that the loader read and applied at every start).
                  "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
                  // No exported symbols (Linker/hidden-symbols.map): a fifth less CPU at start.
                  "-Xlinker", "--version-script=" + linkerScripts + "/hidden-symbols.map",
                  // The functions of the common paths first in .text (Scripts/hot-order writes
                  // the list): a run maps a few hundred KiB of code, not megabytes.
                  "-Xlinker", "--symbol-ordering-file=" + linkerScripts + "/corral-hot.order",
                  "-Xlinker", "--no-warn-symbol-ordering"],
                 .when(platforms: [.linux])),
]

let package = Package(
    name: "Corral",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Corral", targets: ["Corral"]),
        .executable(name: "corral", targets: ["corral"]),
        .executable(name: "corral-server", targets: ["corral-server"]),
        .executable(name: "corral-bench", targets: ["corral-bench"]),
        .executable(name: "corral-init", targets: ["corral-init"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.5.0"),
        .package(url: "https://github.com/vapor/sqlite-nio", from: "1.13.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // HTTPS callbacks (already in the graph through postgres-nio).
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // The child side of the spawn (async-signal-safe only) and thin wrappers over
        // what Swift cannot call directly (prctl, syscall, clone, the W* macros).
        // One section per function, so that corral-init (linked with --gc-sections, without
        // the C library) keeps only the child side it runs, not Corral's helpers around it.
        // Hides a queue password in the command line before main (an .init_array entry): only
        // in the executables that take `--queue` (not in corral-init, which has no C library).
        .target(name: "CCorralArguments"),
        .target(name: "CCorral", cSettings: [.unsafeFlags(["-ffunction-sections", "-fdata-sections"])]),
        // PID 1 of an isolated run, exec'd by the vfork-style spawn instead of a fork of
        // Corral; found next to the running executable (RunnerConfiguration.initExecutable).
        // Plain C, linked statically and without the Swift runtime or the C library
        // (freestanding.c has its entry point and system calls): every isolated run execs it,
        // and the C library's start-up alone cost more than the init's own work.
        .executableTarget(name: "corral-init", dependencies: ["CCorral"],
                          cSettings: [.unsafeFlags(["-ffreestanding", "-fno-stack-protector"])],
                          linkerSettings: [.unsafeFlags(["-static-executable", "-Xclang-linker", "-nostdlib",
                                                          "-Xlinker", "--gc-sections"])]),
        .target(
            name: "Corral",
            dependencies: [
                "CCorral",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: directMetadata
        ),
        // The HTTP API (`corral serve`): routes, admission (parallelism, queue, ceilings),
        // metrics, shutdown.
        .target(
            name: "CorralServer",
            dependencies: [
                "Corral",
                "CorralQueue",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The durable job queue: the `JobQueue` protocol and its two backends, SQLite (the
        // embedded default, a file under the state directory) and PostgreSQL (many machines),
        // with their migrations, applied at start.
        .target(
            name: "CorralQueue",
            dependencies: [
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // A small blocking HTTP/1.1 client for loopback: the server's tests and benchmark.
        .target(name: "LoopbackHTTP"),
        // What both executables share: the containment and user-range options, stdout and
        // stderr, the entry that maps errors to exit 125.
        .target(
            name: "CorralCommandLine",
            dependencies: [
                "CCorral",
                "Corral",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: directMetadata
        ),
        // `corral`: run, doctor, cleanup — started once per run by judges, so it stays small:
        // no server code, no Foundation beyond FoundationEssentials, and the Swift runtime
        // linked in (no dynamic loading of the runtime's shared libraries at every start).
        .executableTarget(
            name: "corral",
            dependencies: [
                "Corral",
                "CCorral",
                "CCorralArguments",
                "CorralCommandLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: directMetadata,
            linkerSettings: staticSwiftRuntime
        ),
        // `corral-server`: `serve`, which `corral serve` execs.
        .executableTarget(
            name: "corral-server",
            dependencies: [
                "Corral",
                "CCorral",
                "CCorralArguments",
                "CorralCommandLine",
                "CorralServer",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "corral-bench", dependencies: ["Corral", "CCorral", "CorralServer", "CorralQueue", "LoopbackHTTP"]),
        // Shared by the test targets: fixture compilation, process checks, a spawner.
        .target(name: "CorralTestSupport", dependencies: ["Corral", "LoopbackHTTP"], path: "Tests/CorralTestSupport"),
        .testTarget(name: "CorralTests", dependencies: ["Corral", "CCorral", "CorralTestSupport"]),
        // The command line's values: ArgumentParser's and the fast path's parse agree.
        .testTarget(
            name: "CommandLineTests",
            dependencies: ["CorralCommandLine", "Corral", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(name: "QueueTests", dependencies: [
            "CorralQueue", "CorralServer", "Corral", "CorralTestSupport", "LoopbackHTTP",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "CorralIntegrationTests", dependencies: ["Corral", "CorralTestSupport"]),
        // The CLI tests start the `corral` and `corral-server` binaries (`swift test` builds every
        // executable); depending on them would link the statically linked runtime into the tests.
        .testTarget(name: "CLITests", dependencies: ["Corral", "CorralTestSupport", "LoopbackHTTP"]),
        // Every attack that ever worked, performed against the library, the CLI and a server.
        .testTarget(name: "SecurityTests", dependencies: ["Corral", "CorralTestSupport", "LoopbackHTTP"]),
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "CorralServer", "Corral", "CorralTestSupport", "LoopbackHTTP",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
