import Foundation
import Logging
import NIOCore
import PostgresNIO

/// The queue of many machines: PostgreSQL (postgres-nio's pooled client). Workers claim with
/// `SELECT … FOR UPDATE SKIP LOCKED`, so any number claim at once without waiting on each
/// other; leases are measured by the database's clock (`now()`), so the machines' clocks do
/// not matter. Every operation is one statement. The connection string is never logged nor
/// put in an error: errors say what failed, not where.
public final class PostgresJobQueue: JobQueue {
    private let client: PostgresClient
    private let running: Task<Void, Never>
    private let listening: Task<Void, Never>
    private let logger: Logger
    /// Fed by `LISTEN corral_jobs`: every enqueue (and job given back), from any machine,
    /// `NOTIFY`s it in the same statement.
    public let workSignal: WorkSignal

    static let channel = "corral_jobs"

    /// Claims and heartbeats committed without waiting for the disk (see PostgresClaim.swift);
    /// false only to measure what that saves (the queue benchmark).
    let relaxedClaims: Bool

    private init(client: PostgresClient, logger: Logger, relaxedClaims: Bool) {
        self.client = client
        self.relaxedClaims = relaxedClaims
        self.logger = logger
        running = Task { await client.run() }
        let signal = WorkSignal()
        workSignal = signal
        // One connection of the pool listens for as long as the queue is open, and listens
        // again after a lost connection (then wakes the workers: a job may have come meanwhile).
        listening = Task {
            // After run() has started (a lease before it is logged as a warning).
            try? await Task.sleep(for: .milliseconds(100))
            while !Task.isCancelled {
                do {
                    try await client.withConnection { connection in
                        try await connection.listen(on: Self.channel) { notifications in
                            signal.signal()
                            for try await _ in notifications { signal.signal() }
                        }
                    }
                } catch {
                    if Task.isCancelled { return }
                    logger.debug("LISTEN \(Self.channel) failed; again in 1 s", metadata: ["error": .string(Self.describe(error))])
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Connects to `url` (`postgres://USER:PASSWORD@HOST:PORT/DATABASE`, `?sslmode=disable`,
    /// `prefer` (the default) or `require`), applies the migrations. One connection is made
    /// first, for the migrations, so that a wrong address or password fails here at once
    /// (the pool would retry it forever).
    public static func open(url: String, logger: Logger = Logger(label: "corral.queue"), connections: Int = 8,
                            relaxedClaims: Bool = true) async throws(QueueError) -> PostgresJobQueue {
        let target = try Target(url)
        do {
            let connection = try await PostgresConnection.connect(configuration: try target.connection(), id: 0, logger: logger)
            do {
                try await migrate(connection, logger: logger)
                try await connection.close()
            } catch {
                try? await connection.close()
                throw error
            }
        } catch let error as QueueError {
            throw error
        } catch {
            throw QueueError("cannot open the PostgreSQL queue: \(describe(error))")
        }
        var configuration = target.client
        configuration.options.maximumConnections = connections
        return PostgresJobQueue(client: PostgresClient(configuration: configuration, backgroundLogger: logger), logger: logger,
                                relaxedClaims: relaxedClaims)
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                return "\(error.serverInfo?[.sqlState].map { "[\($0)] " } ?? "")\(message)"
            }
            return "\(error.code)"
        }
        return String(describing: type(of: error))
    }

    private static func migrate(_ connection: PostgresConnection, logger: Logger) async throws {
        try await connection.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresMigrations.lockKey))", logger: logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS corral_schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                logger: logger)
            var applied = 0
            for try await (version) in try await connection.query("SELECT coalesce(max(version), 0) FROM corral_schema_migrations", logger: logger)
                .decode(Int.self) { applied = version }
            for step in PostgresMigrations.steps where step.version > applied {
                for statement in step.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("INSERT INTO corral_schema_migrations (version) VALUES (\(step.version))", logger: logger)
            }
        }
    }

    func rows(_ query: PostgresQuery) async throws(QueueError) -> [PostgresRandomAccessRow] {
        do {
            var rows: [PostgresRandomAccessRow] = []
            for try await row in try await client.query(query, logger: logger) { rows.append(PostgresRandomAccessRow(row)) }
            return rows
        } catch {
            throw QueueError("queue: \(Self.describe(error))")
        }
    }

    func decode<T: PostgresDecodable>(_ row: PostgresRandomAccessRow, _ column: String, as type: T.Type) throws(QueueError) -> T {
        do {
            return try row[column].decode(T.self, context: .default)
        } catch {
            throw QueueError("queue: column \(column): \(Self.describe(error))")
        }
    }

    public func enqueue(_ jobs: [NewJob]) async throws(QueueError) -> [String] {
        guard !jobs.isEmpty else { return [] }
        let ids = jobs.map { _ in freshID() }
        var binds = PostgresBindings(capacity: jobs.count * 3)
        var values: [String] = []
        for (index, (id, job)) in zip(ids, jobs).enumerated() {
            binds.append(id)
            binds.append(ByteBuffer(bytes: job.spec))
            binds.append(job.callback)
            values.append("($\(index * 3 + 1), 'queued', $\(index * 3 + 2), $\(index * 3 + 3))")
        }
        // One statement: all the jobs or none, in this order (seq); the workers listening are
        // notified when it commits.
        _ = try await rows(PostgresQuery(unsafeSQL: """
            WITH inserted AS (INSERT INTO corral_jobs (id, state, spec, callback) VALUES \(values.joined(separator: ", ")) RETURNING seq)
            SELECT pg_notify('\(Self.channel)', '') FROM (SELECT 1 FROM inserted LIMIT 1) AS one
            """, binds: binds))
        workSignal.signal()
        return ids
    }

    /// Committed without waiting for the disk (see ``claim(worker:lease:)``): a lost heartbeat
    /// only makes the lease shorter.
    public func heartbeat(_ lease: Lease, extend: Duration) async throws(QueueError) -> Bool {
        try await !rows("""
            UPDATE corral_jobs SET lease_until = now() + \(Int(extend.milliseconds)) * interval '1 millisecond'
            FROM (SELECT set_config('synchronous_commit', \(relaxedClaims ? "off" : "on"), true)) AS relaxed
            WHERE id = \(lease.id) AND lease_token = \(lease.token) AND state = 'running' RETURNING seq
            """).isEmpty
    }

    public func release(_ lease: Lease) async throws(QueueError) -> Bool {
        try await !rows("""
            WITH released AS (
                UPDATE corral_jobs SET state = 'queued', lease_token = NULL, lease_until = NULL, worker = NULL
                WHERE id = \(lease.id) AND lease_token = \(lease.token) AND state = 'running' RETURNING seq
            )
            SELECT pg_notify('corral_jobs', '') FROM released
            """).isEmpty
    }

    public func cancel(_ id: String) async throws(QueueError) -> CancelOutcome {
        let cancelled = try await rows("""
            WITH old AS (SELECT seq, state FROM corral_jobs WHERE id = \(id) AND state IN ('queued', 'running') FOR UPDATE)
            UPDATE corral_jobs j SET state = 'cancelled', finished_at = now(), lease_token = NULL, lease_until = NULL
            FROM old WHERE j.seq = old.seq RETURNING old.state AS was
            """)
        if let row = cancelled.first {
            return try decode(row, "was", as: String.self) == "running" ? .cancelledRunning : .cancelledQueued
        }
        guard let row = try await rows("SELECT state FROM corral_jobs WHERE id = \(id)").first else { return .notFound }
        return .alreadyFinished(JobState(rawValue: try decode(row, "state", as: String.self)) ?? .done)
    }

    public func get(_ id: String) async throws(QueueError) -> JobRecord? {
        guard let row = try await rows("SELECT id, state, spec, report, attempts, callback FROM corral_jobs WHERE id = \(id)").first else {
            return nil
        }
        return JobRecord(id: id, state: JobState(rawValue: try decode(row, "state", as: String.self)) ?? .queued,
                         spec: Data(try decode(row, "spec", as: ByteBuffer.self).readableBytesView),
                         report: try decode(row, "report", as: ByteBuffer?.self).map { Data($0.readableBytesView) },
                         attempts: try decode(row, "attempts", as: Int.self), callback: try decode(row, "callback", as: String?.self))
    }

    public func expire(finishedBefore age: Duration) async throws(QueueError) -> Int {
        try await rows("""
            DELETE FROM corral_jobs WHERE finished_at IS NOT NULL AND finished_at < now() - \(Int(age.milliseconds)) * interval '1 millisecond'
            RETURNING seq
            """).count
    }

    public func unfinished() async throws(QueueError) -> [UnfinishedJob] {
        var jobs: [UnfinishedJob] = []
        for row in try await rows("SELECT id, spec FROM corral_jobs WHERE state IN ('queued', 'running') ORDER BY seq") {
            jobs.append(UnfinishedJob(id: try decode(row, "id", as: String.self),
                                      spec: Data(try decode(row, "spec", as: ByteBuffer.self).readableBytesView)))
        }
        return jobs
    }

    public func states(_ ids: [String]) async throws(QueueError) -> [String: JobState] {
        guard !ids.isEmpty else { return [:] }
        var states: [String: JobState] = [:]
        for row in try await rows("SELECT id, state FROM corral_jobs WHERE id = ANY(\(ids))") {
            if let state = JobState(rawValue: try decode(row, "state", as: String.self)) {
                states[try decode(row, "id", as: String.self)] = state
            }
        }
        return states
    }

    public func counts() async throws(QueueError) -> [JobState: Int] {
        var counts = Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0, 0) })
        for row in try await rows("SELECT state, count(*) AS n FROM corral_jobs GROUP BY state") {
            if let state = JobState(rawValue: try decode(row, "state", as: String.self)) {
                counts[state] = try decode(row, "n", as: Int.self)
            }
        }
        return counts
    }

    public func close() async {
        listening.cancel()
        running.cancel()
        _ = await running.value
    }
}
