import Foundation
import NIOCore
import PostgresNIO

/// The claim of a job on PostgreSQL, alone or with the completion of the job before it: one
/// statement, so one round trip and one commit either way.
///
/// What waits for the disk: a claim alone is committed with `synchronous_commit = off` (set
/// for that transaction only, inside the statement): if the database crashes before the WAL
/// reaches the disk, the claim is lost, the job is `queued` again and runs again, and the
/// worker's later `complete` (token no longer held) is refused, so its report is discarded:
/// never two reports. A heartbeat likewise. A completion always waits for the disk (the
/// server's setting, `on` by default): its report may be read (`GET /v1/jobs/{id}`, a
/// callback) as soon as it commits, and must not be lost after that; the WAL is written in
/// order, so that flush also makes every earlier claim durable. An enqueue waits too: its 202
/// promises the job.
extension PostgresJobQueue {
    /// The next job: the oldest queued, else the running one whose lease ran out first; rows
    /// another worker is claiming are skipped, not waited for. `expired` is only read when
    /// `queued` found nothing. `$EXCEPT` is a job id never to take (the one just completed).
    static func nextJobCTEs(except: String) -> String {
        """
        queued AS (SELECT seq, state FROM corral_jobs WHERE state = 'queued' ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED),
        expired AS (SELECT seq, state FROM corral_jobs WHERE state = 'running' AND lease_until < now() AND id <> \(except)
                    ORDER BY lease_until LIMIT 1 FOR UPDATE SKIP LOCKED),
        next AS (SELECT seq, state AS was FROM queued UNION ALL SELECT seq, state FROM expired LIMIT 1)
        """
    }

    /// `UPDATE` of the row `next` found, `claimed` in a `WITH`.
    static func claimCTE(token: String, lease: String, worker: String, relaxed: Bool) -> String {
        """
        claimed AS (
            UPDATE corral_jobs j SET state = 'running', lease_token = \(token), lease_until = now() + \(lease) * interval '1 millisecond',
                worker = \(worker), attempts = j.attempts + 1
            FROM next\(relaxed ? ", (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed" : "") WHERE j.seq = next.seq
            RETURNING j.id, j.spec, j.attempts, j.callback, next.was
        )
        """
    }

    public func claim(worker: String, lease: Duration) async throws(QueueError) -> ClaimedJob? {
        let token = freshID()
        var binds = PostgresBindings()
        binds.append(token)
        binds.append(Int(lease.milliseconds))
        binds.append(worker)
        // The job id to skip: none (no id is empty).
        binds.append("")
        let found = try await rows(PostgresQuery(unsafeSQL: """
            WITH \(Self.nextJobCTEs(except: "$4")),
            \(Self.claimCTE(token: "$1", lease: "$2", worker: "$3", relaxed: relaxedClaims))
            SELECT * FROM claimed
            """, binds: binds))
        guard let row = found.first else { return nil }
        return try claimedJob(row, token: token)
    }

    public func complete(_ lease: Lease, report: Data) async throws(QueueError) -> Bool {
        try await complete(lease, report: report, thenClaimFor: nil, lease: .zero).completed
    }

    /// The report written and, when `worker` is given, the next job claimed, in one statement
    /// (committed with the server's `synchronous_commit`, for the report's sake).
    public func complete(_ lease: Lease, report: Data, thenClaimFor worker: String?, lease next: Duration) async throws(QueueError) -> Completion {
        let token = freshID()
        var binds = PostgresBindings()
        binds.append(ByteBuffer(bytes: report))
        binds.append(lease.id)
        binds.append(lease.token)
        let done = """
            done AS (
                UPDATE corral_jobs SET state = 'done', report = $1, finished_at = now(), lease_token = NULL, lease_until = NULL
                WHERE id = $2 AND lease_token = $3 AND state = 'running' RETURNING seq
            )
            """
        guard let worker else {
            let found = try await rows(PostgresQuery(unsafeSQL: "WITH \(done) SELECT count(*) AS completed FROM done", binds: binds))
            guard let row = found.first else { throw QueueError("queue: the completion returned no row") }
            return Completion(completed: try decode(row, "completed", as: Int.self) == 1, next: nil)
        }
        binds.append(token)
        binds.append(Int(next.milliseconds))
        binds.append(worker)
        // Every sub-statement sees the same snapshot: the job completed here is still
        // `running` to `next`, which skips it by id (were its own lease past, `expired`
        // would find it).
        let found = try await rows(PostgresQuery(unsafeSQL: """
            WITH \(done),
            \(Self.nextJobCTEs(except: "$2")),
            \(Self.claimCTE(token: "$4", lease: "$5", worker: "$6", relaxed: false))
            SELECT (SELECT count(*) FROM done) AS completed, claimed.* FROM (SELECT 1) AS one LEFT JOIN claimed ON true
            """, binds: binds))
        guard let row = found.first else { throw QueueError("queue: the completion returned no row") }
        let completed = try decode(row, "completed", as: Int.self) == 1
        guard try decode(row, "id", as: String?.self) != nil else { return Completion(completed: completed, next: nil) }
        return Completion(completed: completed, next: try claimedJob(row, token: token))
    }

    private func claimedJob(_ row: PostgresRandomAccessRow, token: String) throws(QueueError) -> ClaimedJob {
        ClaimedJob(lease: Lease(id: try decode(row, "id", as: String.self), token: token),
                   spec: Data(try decode(row, "spec", as: ByteBuffer.self).readableBytesView),
                   attempt: try decode(row, "attempts", as: Int.self),
                   callback: try decode(row, "callback", as: String?.self),
                   tookOverExpiredLease: try decode(row, "was", as: String.self) == "running")
    }
}
