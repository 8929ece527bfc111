import Foundation
import Synchronization

/// The misbehaving C programs under Tests/Fixtures, compiled by the test run itself (once
/// per test process) into a temporary directory.
public enum Fixtures {
    private static let compiled = Mutex<[String: String]>([:])
    private static let sourceDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures").path
    private static let outputDirectory: String = {
        let path = NSTemporaryDirectory() + "corral-fixtures-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        // The compiled fixtures go when the test process does.
        atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "corral-fixtures-\(getpid())") }
        return path
    }()

    /// The path of the compiled fixture `name` (from `Tests/Fixtures/name.c`).
    public static func path(_ name: String) throws -> String {
        try compiled.withLock { cache in
            if let path = cache[name] { return path }
            let source = "\(sourceDirectory)/\(name).c"
            let output = "\(outputDirectory)/\(name)"
            let result = try Spawn.run("/usr/bin/env", ["cc", "-O1", "-Wall", "-o", output, source, "-lpthread"])
            guard result.status == 0 else {
                throw FixtureError("compiling \(source) failed (status \(result.status)): \(result.standardError)")
            }
            cache[name] = output
            return output
        }
    }
}

public struct FixtureError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
