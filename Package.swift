// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Corral",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Corral", targets: ["Corral"]),
        .executable(name: "corral", targets: ["corral"]),
        .executable(name: "corral-bench", targets: ["corral-bench"]),
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
    ],
    targets: [
        // The child side of the spawn (async-signal-safe only) and thin wrappers over
        // what Swift cannot call directly (prctl, syscall, clone, the W* macros).
        .target(name: "CCorral"),
        .target(
            name: "Corral",
            dependencies: [
                "CCorral",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
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
        .executableTarget(
            name: "corral",
            dependencies: [
                "Corral",
                "CorralServer",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .executableTarget(name: "corral-bench", dependencies: ["Corral", "CCorral", "CorralServer", "CorralQueue", "LoopbackHTTP"]),
        // Shared by the test targets: fixture compilation, process checks, a spawner.
        .target(name: "CorralTestSupport", dependencies: ["Corral", "LoopbackHTTP"], path: "Tests/CorralTestSupport"),
        .testTarget(name: "CorralTests", dependencies: ["Corral"]),
        .testTarget(name: "QueueTests", dependencies: [
            "CorralQueue", "CorralServer", "Corral", "CorralTestSupport", "LoopbackHTTP",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .testTarget(name: "CorralIntegrationTests", dependencies: ["Corral", "CorralTestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["corral", "Corral", "CorralTestSupport", "LoopbackHTTP"]),
        // Every attack that ever worked, performed against the library, the CLI and a server.
        .testTarget(name: "SecurityTests", dependencies: ["corral", "Corral", "CorralTestSupport", "LoopbackHTTP"]),
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
