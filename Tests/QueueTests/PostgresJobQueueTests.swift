import CorralQueue
import Foundation
import Testing

/// The PostgreSQL backend against a real server: the same contract as SQLite, plus what only
/// many machines need (migrations applied once by several openers at once).
@Suite("PostgreSQL job queue", .enabled(if: TestPostgres.url != nil, TestPostgres.skipped))
struct PostgresJobQueueTests {
    static func withQueue(_ body: (any JobQueue) async throws -> Void) async throws {
        try await TestPostgres.withDatabase { url in
            let queue = try await PostgresJobQueue.open(url: url)
            do {
                try await body(queue)
                await queue.close()
            } catch {
                await queue.close()
                throw error
            }
        }
    }

    @Test("jobs are claimed in order, completed once; a second completion is refused")
    func orderAndOnce() async throws { try await Self.withQueue(QueueContract.orderAndOnce) }

    @Test("a report and the next claim in one call: order, never the job just completed, a lost lease's report refused")
    func completeThenClaim() async throws { try await Self.withQueue(QueueContract.completeThenClaim) }

    @Test("a lease that runs out: the job is taken over; the old holder can neither renew nor complete")
    func leaseExpiry() async throws { try await Self.withQueue(QueueContract.leaseExpiry) }

    @Test("cancel: a queued job is never claimed, a running one cannot complete, a done one stays done")
    func cancel() async throws { try await Self.withQueue(QueueContract.cancel) }

    @Test("release puts a running job back at its place; expire removes only old finished jobs")
    func releaseAndExpire() async throws { try await Self.withQueue(QueueContract.releaseAndExpire) }

    @Test("200 jobs, 8 claimers at once (SKIP LOCKED): each job claimed and completed exactly once")
    func concurrentClaims() async throws { try await Self.withQueue(QueueContract.concurrentClaims) }

    @Test("four openers at once apply the migrations once; a wrong password is refused without showing the URL")
    func migrationsAndErrors() async throws {
        try await TestPostgres.withDatabase { url in
            let queues = try await withThrowingTaskGroup(of: PostgresJobQueue.self) { group in
                for _ in 0..<4 { group.addTask { try await PostgresJobQueue.open(url: url) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let ids = try await queues[0].enqueue([QueueContract.spec(1)])
            #expect(try await queues[3].get(ids[0])?.state == .queued)
            for queue in queues { await queue.close() }

            var wrong = URLComponents(string: url)!
            wrong.password = "not-the-password-7f3a"
            do {
                let queue = try await PostgresJobQueue.open(url: wrong.string!)
                await queue.close()
                Issue.record("a wrong password was accepted")
            } catch {
                let message = "\(error)"
                #expect(!message.contains("not-the-password-7f3a"), "\(message)")
                #expect(!message.contains(wrong.host ?? "127.0.0.1"), "\(message)")
            }
        }
    }
}
