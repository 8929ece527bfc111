import Foundation
import Logging
import NIOPosix
import SQLiteNIO
#if canImport(Glibc)
import Glibc
#endif

/// The embedded queue: one SQLite file (WAL, synchronous FULL, so a job the server accepted,
/// and a report once written, survive a crash of the server and of the machine). Every
/// operation is one SQL statement, atomic on its own; SQLite runs them on NIO's thread pool,
/// never on the cooperative pool.
///
/// A claim and a heartbeat do not wait for the disk (synchronous NORMAL for that statement,
/// which in WAL mode never corrupts the file: a power loss can only take the last such commits
/// back): the queue belongs to one process, and at open every job left `running` is queued
/// again anyway, so a lost claim changes nothing. The writes pass a ``SerialGate`` one by one,
/// so that setting covers the claim alone; the next FULL commit flushes the WAL, claims included.
///
/// It belongs to one process: ``open(path:)`` takes an exclusive lock beside the file, so
/// that at open every job left `running` is known to have lost its worker (the previous
/// server died) and goes back to the queue at once, instead of after its lease.
public final class SQLiteJobQueue: JobQueue {
    private let connection: SQLiteConnection
    /// The open lock file, held until close.
    private let lockDescriptor: Int32
    /// One process owns the queue: its own enqueues are every signal there is.
    public let workSignal = WorkSignal()
    /// Writes one at a time (see the type's comment); reads go past it.
    private let writes = SerialGate()

    private init(connection: SQLiteConnection, lockDescriptor: Int32) {
        self.connection = connection
        self.lockDescriptor = lockDescriptor
    }

    /// Opens (or makes) the queue at `path`, applies the migrations, and puts back the jobs a
    /// dead previous owner left running. Refused when another process holds the queue.
    public static func open(path: String, logger: Logger = Logger(label: "corral.queue")) async throws(QueueError) -> SQLiteJobQueue {
        let lock: Int32
        do {
            lock = try await NIOThreadPool.singleton.runIfActive { () throws -> Int32 in try takeLock(path + ".lock") }
        } catch let error as QueueError {
            throw error
        } catch {
            throw QueueError("the queue's thread pool is not running: \(error)")
        }
        do {
            let connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
            let queue = SQLiteJobQueue(connection: connection, lockDescriptor: lock)
            _ = try await connection.query("PRAGMA journal_mode = WAL")
            _ = try await connection.query("PRAGMA synchronous = FULL")
            try await queue.migrate()
            _ = try await connection.query(
                "UPDATE jobs SET state = 'queued', lease_token = NULL, lease_until = NULL, worker = NULL WHERE state = 'running'")
            return queue
        } catch {
            Glibc.close(lock)
            throw QueueError("cannot open the queue \(path): \(Self.describe(error))")
        }
    }

    private static func takeLock(_ path: String) throws(QueueError) -> Int32 {
        let descriptor = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else { throw QueueError("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            Glibc.close(descriptor)
            if code == EWOULDBLOCK {
                throw QueueError("the queue \(path.dropLast(5)) is in use by another process (one corral serve per state directory)")
            }
            throw QueueError("cannot lock \(path): \(String(cString: strerror(code)))")
        }
        return descriptor
    }

    private func migrate() async throws {
        _ = try await connection.query("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
        let applied = try await connection.query("SELECT coalesce(max(version), 0) AS v FROM schema_migrations").first?.column("v")?.integer ?? 0
        for step in SQLiteMigrations.steps where step.version > applied {
            _ = try await connection.query("BEGIN IMMEDIATE")
            do {
                for statement in step.statements { _ = try await connection.query(statement) }
                _ = try await connection.query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                                               [.integer(step.version), .integer(Int(Self.now()))])
                _ = try await connection.query("COMMIT")
            } catch {
                _ = try? await connection.query("ROLLBACK")
                throw error
            }
        }
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    static func describe(_ error: any Error) -> String {
        if let error = error as? SQLiteError { return error.description }
        return String(describing: error)
    }

    /// A write that waits for the disk (synchronous FULL).
    private func write(_ sql: String, _ binds: [SQLiteData] = []) async throws(QueueError) -> [SQLiteRow] {
        try await writes.hold { () throws(QueueError) in try await query(sql, binds) }
    }

    /// A write that does not wait for the disk: a claim or a heartbeat (see the type's comment).
    private func relaxedWrite(_ sql: String, _ binds: [SQLiteData]) async throws(QueueError) -> [SQLiteRow] {
        try await writes.hold { () throws(QueueError) in
            _ = try await query("PRAGMA synchronous = NORMAL")
            let result: Result<[SQLiteRow], QueueError>
            do throws(QueueError) { result = .success(try await query(sql, binds)) } catch { result = .failure(error) }
            // Back to FULL before any other write may pass; if even that fails, the queue
            // refuses to go on rather than accept jobs it might lose.
            do throws(QueueError) {
                _ = try await query("PRAGMA synchronous = FULL")
            } catch {
                _ = try? await query("PRAGMA synchronous = FULL")
                throw QueueError("queue: cannot restore synchronous writes: \(error)")
            }
            return try result.get()
        }
    }

    private func query(_ sql: String, _ binds: [SQLiteData] = []) async throws(QueueError) -> [SQLiteRow] {
        do {
            return try await connection.query(sql, binds)
        } catch {
            throw QueueError("queue: \(Self.describe(error))")
        }
    }

    public func enqueue(_ jobs: [NewJob]) async throws(QueueError) -> [String] {
        guard !jobs.isEmpty else { return [] }
        let ids = jobs.map { _ in freshID() }
        let now = Self.now()
        var binds: [SQLiteData] = []
        binds.reserveCapacity(jobs.count * 4)
        for (id, job) in zip(ids, jobs) {
            binds += [.text(id), .blob(ByteBuffer(bytes: job.spec)), job.callback.map { .text($0) } ?? .null, .integer(Int(now))]
        }
        let rows = Array(repeating: "(?, 'queued', ?, ?, ?)", count: jobs.count).joined(separator: ", ")
        // One statement: all the jobs or none.
        _ = try await write("INSERT INTO jobs (id, state, spec, callback, enqueued_at) VALUES \(rows)", binds)
        workSignal.signal()
        return ids
    }

    public func claim(worker: String, lease: Duration) async throws(QueueError) -> ClaimedJob? {
        let token = freshID()
        let now = Self.now()
        let rows = try await relaxedWrite("""
            UPDATE jobs SET took_over = (state = 'running'), state = 'running', lease_token = ?1, lease_until = ?2,
                worker = ?3, attempts = attempts + 1
            WHERE seq = (SELECT min(seq) FROM (
                SELECT seq FROM (SELECT seq FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1)
                UNION ALL
                SELECT seq FROM (SELECT seq FROM jobs WHERE state = 'running' AND lease_until < ?4 ORDER BY lease_until LIMIT 1)))
            RETURNING id, spec, attempts, callback, took_over
            """, [.text(token), .integer(Int(now + lease.milliseconds)), .text(worker), .integer(Int(now))])
        guard let row = rows.first, let id = row.column("id")?.string, let spec = row.column("spec")?.blob else { return nil }
        return ClaimedJob(lease: Lease(id: id, token: token), spec: Data(spec.readableBytesView),
                          attempt: row.column("attempts")?.integer ?? 1, callback: row.column("callback")?.string,
                          tookOverExpiredLease: row.column("took_over")?.integer == 1)
    }

    public func heartbeat(_ lease: Lease, extend: Duration) async throws(QueueError) -> Bool {
        try await !relaxedWrite("UPDATE jobs SET lease_until = ? WHERE id = ? AND lease_token = ? AND state = 'running' RETURNING seq",
                         [.integer(Int(Self.now() + extend.milliseconds)), .text(lease.id), .text(lease.token)]).isEmpty
    }

    public func complete(_ lease: Lease, report: Data) async throws(QueueError) -> Bool {
        try await !write("""
            UPDATE jobs SET state = 'done', report = ?, finished_at = ?, lease_token = NULL, lease_until = NULL
            WHERE id = ? AND lease_token = ? AND state = 'running' RETURNING seq
            """, [.blob(ByteBuffer(bytes: report)), .integer(Int(Self.now())), .text(lease.id), .text(lease.token)]).isEmpty
    }

    public func release(_ lease: Lease) async throws(QueueError) -> Bool {
        let released = try await !write("""
            UPDATE jobs SET state = 'queued', lease_token = NULL, lease_until = NULL, worker = NULL
            WHERE id = ? AND lease_token = ? AND state = 'running' RETURNING seq
            """, [.text(lease.id), .text(lease.token)]).isEmpty
        if released { workSignal.signal() }
        return released
    }

    public func cancel(_ id: String) async throws(QueueError) -> CancelOutcome {
        let rows = try await write("""
            UPDATE jobs SET cancelled_from = state, state = 'cancelled', finished_at = ?, lease_token = NULL, lease_until = NULL
            WHERE id = ? AND state IN ('queued', 'running') RETURNING cancelled_from
            """, [.integer(Int(Self.now())), .text(id)])
        if let from = rows.first?.column("cancelled_from")?.string {
            return from == "running" ? .cancelledRunning : .cancelledQueued
        }
        // Not waiting nor running: finished, cancelled or unknown (a state never goes back).
        guard let state = try await query("SELECT state FROM jobs WHERE id = ?", [.text(id)]).first?.column("state")?.string
        else { return .notFound }
        return .alreadyFinished(JobState(rawValue: state) ?? .done)
    }

    public func get(_ id: String) async throws(QueueError) -> JobRecord? {
        guard let row = try await query("SELECT id, state, spec, report, attempts, callback FROM jobs WHERE id = ?", [.text(id)]).first,
              let state = row.column("state")?.string.flatMap(JobState.init(rawValue:))
        else { return nil }
        return JobRecord(id: id, state: state, spec: row.column("spec")?.blob.map { Data($0.readableBytesView) } ?? Data(),
                         report: row.column("report")?.blob.map { Data($0.readableBytesView) },
                         attempts: row.column("attempts")?.integer ?? 0, callback: row.column("callback")?.string)
    }

    public func expire(finishedBefore age: Duration) async throws(QueueError) -> Int {
        try await write("DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ? RETURNING seq",
                        [.integer(Int(Self.now() - age.milliseconds))]).count
    }

    public func unfinished() async throws(QueueError) -> [UnfinishedJob] {
        try await query("SELECT id, spec FROM jobs WHERE state IN ('queued', 'running') ORDER BY seq").compactMap { row in
            guard let id = row.column("id")?.string, let spec = row.column("spec")?.blob else { return nil }
            return UnfinishedJob(id: id, spec: Data(spec.readableBytesView))
        }
    }

    public func states(_ ids: [String]) async throws(QueueError) -> [String: JobState] {
        var states: [String: JobState] = [:]
        // In slices: SQLite takes at most 32766 bound values in one statement.
        for start in stride(from: 0, to: ids.count, by: 500) {
            let slice = ids[start..<min(start + 500, ids.count)]
            let marks = Array(repeating: "?", count: slice.count).joined(separator: ", ")
            for row in try await query("SELECT id, state FROM jobs WHERE id IN (\(marks))", slice.map { .text($0) }) {
                if let id = row.column("id")?.string, let state = row.column("state")?.string.flatMap(JobState.init(rawValue:)) {
                    states[id] = state
                }
            }
        }
        return states
    }

    public func counts() async throws(QueueError) -> [JobState: Int] {
        var counts = Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0, 0) })
        for row in try await query("SELECT state, count(*) AS n FROM jobs GROUP BY state") {
            if let state = row.column("state")?.string.flatMap(JobState.init(rawValue:)) {
                counts[state] = row.column("n")?.integer ?? 0
            }
        }
        return counts
    }

    public func close() async {
        try? await connection.close()
        Glibc.close(lockDescriptor)
    }
}
