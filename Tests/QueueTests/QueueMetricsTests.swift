import CorralQueue
import CorralTestSupport
import Foundation
import Testing

/// The queue's metrics on `/metrics` of a server on a PostgreSQL queue: jobs per state, and a
/// lease that ran out (a worker that claimed a job and vanished) counted when the server takes
/// the job over.
@Suite("Queue metrics", .serialized, .enabled(if: TestPostgres.url != nil, TestPostgres.skipped))
struct QueueMetricsTests {
    @Test("corral_jobs{state} follows the queue; a job whose lease ran out is taken over, run again and counted in corral_lease_expiries_total")
    func depthAndLeaseExpiry() async throws {
        try await TestPostgres.withDatabase { url in
            let tmp = TemporaryDirectory()
            defer { tmp.remove() }
            let queue = try await PostgresJobQueue.open(url: url)
            // A "worker" that claims a job for 1 s and dies: nobody renews or completes it.
            let lost = try await queue.enqueue([WorkerTests.job("echo again")])[0]
            let claimed = try #require(try await queue.claim(worker: "vanished", lease: .seconds(1)))
            #expect(claimed.lease.id == lost)
            let cancelled = try await queue.enqueue([WorkerTests.job("true")])[0]
            #expect(try await queue.cancel(cancelled) == .cancelledQueued)
            // Accept-only first: the state is only what the queue holds.
            let file = try WorkerProcess.urlFile(url, in: tmp)
            let accepting = try ServeProcess.start(["--accept-only", "--queue-file", file], environment: ["CORRAL_TEST_POSTGRES_URL": ""])
            _ = try await queue.enqueue([WorkerTests.job("true"), WorkerTests.job("true")])
            #expect(try CallbackTests.metric(accepting, #"corral_jobs{state="queued"}"#) == 2)
            #expect(try CallbackTests.metric(accepting, #"corral_jobs{state="running"}"#) == 1)
            #expect(try CallbackTests.metric(accepting, #"corral_jobs{state="cancelled"}"#) == 1)
            #expect(try CallbackTests.metric(accepting, #"corral_jobs{state="done"}"#) == 0)
            #expect(try CallbackTests.metric(accepting, "corral_lease_expiries_total") ?? 0 == 0)
            accepting.stop()
            // A server that runs jobs: the two queued, then the lost one once its lease is out.
            let server = try ServeProcess.start(["--queue-file", file, "--no-isolate", "--parallelism", "1"],
                                                environment: ["CORRAL_TEST_POSTGRES_URL": ""])
            defer { server.stop() }
            let record = try await WorkerTests.wait(queue, lost, for: [.done])
            #expect(record?.state == .done && record?.attempts == 2, "the lost job ran again here")
            #expect(WorkerTests.stdout(record) == "again\n")
            let deadline = Date().addingTimeInterval(20)
            while try CallbackTests.metric(server, #"corral_jobs{state="done"}"#) != 3 && Date() < deadline { usleep(50_000) }
            #expect(try CallbackTests.metric(server, #"corral_jobs{state="done"}"#) == 3)
            #expect(try CallbackTests.metric(server, #"corral_jobs{state="queued"}"#) == 0)
            #expect(try CallbackTests.metric(server, #"corral_jobs{state="running"}"#) == 0)
            #expect(try CallbackTests.metric(server, "corral_lease_expiries_total") == 1)
            #expect(try await !queue.complete(claimed.lease, report: Data("{}".utf8)), "the vanished worker's report is refused")
            await queue.close()
        }
    }
}
