import CorralQueue
import CorralTestSupport
import Foundation
import PostgresNIO
import Logging

/// The PostgreSQL server the tests use: `CORRAL_TEST_POSTGRES_URL` (`.ci/run` starts one with
/// Scripts/test-postgres), else, as root, one that Scripts/test-postgres installs (Debian's
/// package) and starts for this test run and stops at its exit: plain `swift test` needs
/// nothing set up by hand. Tests that need it are skipped, and say so, when neither works.
enum TestPostgres {
    static let url: String? = ProcessInfo.processInfo.environment["CORRAL_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
        ?? startedForThisRun()
    static let skipped: Comment = "no PostgreSQL to test against: CORRAL_TEST_POSTGRES_URL is not set and Scripts/test-postgres could not start one (it needs root)"

    /// Runs Scripts/test-postgres; when the cluster was not running before, stops it at exit.
    private static func startedForThisRun() -> String? {
        guard geteuid() == 0 else { return nil }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Scripts/test-postgres").path
        let wasRunning = FileManager.default.fileExists(atPath: "/tmp/corral-test-postgres/cluster/postmaster.pid")
        // Spawn waits for its own pid. Foundation's Process never saw the script end here: its
        // SIGCHLD handler was gone from this process, the script stayed a zombie and the
        // suite hung at the first queue test. Installing the package may take minutes.
        guard let started = try? Spawn.start("/bin/bash", [script]).wait(timeout: 900), started.status == 0 else { return nil }
        let text = started.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("postgres://") else { return nil }
        if !wasRunning {
            stopScript = script
            atexit {
                guard let script = TestPostgres.stopScript else { return }
                _ = try? Spawn.run("/bin/bash", [script, "stop"])
            }
        }
        return text
    }

    nonisolated(unsafe) private static var stopScript: String?

    /// A database of its own for one test (made, then dropped), and its URL.
    static func withDatabase<T>(_ body: (String) async throws -> T) async throws -> T {
        let base = try #require(url)
        let name = "corral_t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        try await admin(base, "CREATE DATABASE \(name)")
        var components = URLComponents(string: base)!
        components.path = "/" + name
        components.query = "sslmode=disable"
        do {
            let value = try await body(components.string!)
            try await admin(base, "DROP DATABASE \(name) WITH (FORCE)")
            return value
        } catch {
            try? await admin(base, "DROP DATABASE \(name) WITH (FORCE)")
            throw error
        }
    }

    private static func admin(_ base: String, _ sql: String) async throws {
        let components = URLComponents(string: base)!
        let client = PostgresClient(configuration: .init(host: components.host!, port: components.port ?? 5432, username: components.user!,
                                                         password: components.password, database: "postgres", tls: .disable),
                                    backgroundLogger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            try await client.query(PostgresQuery(unsafeSQL: sql))
            group.cancelAll()
        }
    }
}

import Testing
