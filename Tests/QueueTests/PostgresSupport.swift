import CorralQueue
import Foundation
import PostgresNIO
import Logging

/// The PostgreSQL server the tests use: `CORRAL_TEST_POSTGRES_URL` (`.ci/run` starts one with
/// Scripts/test-postgres). Tests that need it are skipped, and say so, when it is not set.
enum TestPostgres {
    static let url: String? = ProcessInfo.processInfo.environment["CORRAL_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    static let skipped: Comment = "CORRAL_TEST_POSTGRES_URL is not set: no PostgreSQL to test against (export CORRAL_TEST_POSTGRES_URL=\"$(bash Scripts/test-postgres)\")"

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
