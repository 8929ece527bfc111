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
        .executableTarget(
            name: "corral",
            dependencies: [
                "Corral",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "corral-bench", dependencies: ["Corral", "CCorral"]),
        // Shared by the test targets: fixture compilation, process checks, a spawner.
        .target(name: "CorralTestSupport", dependencies: ["Corral"], path: "Tests/CorralTestSupport"),
        .testTarget(name: "CorralTests", dependencies: ["Corral"]),
        .testTarget(name: "CorralIntegrationTests", dependencies: ["Corral", "CorralTestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["corral", "Corral", "CorralTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
