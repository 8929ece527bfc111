import CorralQueue
import CorralTestSupport
import Foundation
import Synchronization
import Testing

/// The SQLite backend against a real file: order, leases, exactly-once completion, cancel,
/// expiry, and what survives a reopen.
@Suite("SQLite job queue")
struct SQLiteJobQueueTests {
    static func withQueue<T>(_ body: (SQLiteJobQueue, String) async throws -> T) async throws -> T {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let directory = tmp.path + "/state"
        try await StateDirectory.prepare(directory)
        let queue = try await SQLiteJobQueue.open(path: directory + "/queue.sqlite")
        do {
            let value = try await body(queue, directory)
            await queue.close()
            return value
        } catch {
            await queue.close()
            throw error
        }
    }

    static func spec(_ n: Int) -> NewJob { NewJob(spec: Data(#"{"n": \#(n)}"#.utf8)) }

    @Test("jobs are claimed in order, completed once; a second completion is refused")
    func orderAndOnce() async throws { try await Self.withQueue { queue, _ in try await QueueContract.orderAndOnce(queue) } }

    @Test("a report and the next claim in one call: order, never the job just completed, a lost lease's report refused")
    func completeThenClaim() async throws { try await Self.withQueue { queue, _ in try await QueueContract.completeThenClaim(queue) } }

    @Test("a lease that runs out: the job is taken over; the old holder can neither renew nor complete")
    func leaseExpiry() async throws { try await Self.withQueue { queue, _ in try await QueueContract.leaseExpiry(queue) } }

    @Test("cancel: a queued job is never claimed, a running one cannot complete, a done one stays done")
    func cancel() async throws { try await Self.withQueue { queue, _ in try await QueueContract.cancel(queue) } }

    @Test("release puts a running job back at its place; expire removes only old finished jobs")
    func releaseAndExpire() async throws { try await Self.withQueue { queue, _ in try await QueueContract.releaseAndExpire(queue) } }

    @Test("200 jobs, 8 claimers at once: each job claimed and completed exactly once")
    func concurrentClaims() async throws { try await Self.withQueue { queue, _ in try await QueueContract.concurrentClaims(queue) } }

    @Test("reopen: queued and finished jobs survive, running ones are queued again; a second opener is refused")
    func reopen() async throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let path = tmp.path + "/queue.sqlite"
        let queue = try await SQLiteJobQueue.open(path: path)
        let ids = try await queue.enqueue((0..<3).map(Self.spec))
        let done = try #require(try await queue.claim(worker: "w", lease: .seconds(30)))
        #expect(try await queue.complete(done.lease, report: Data(#"{"kept":true}"#.utf8)))
        _ = try #require(try await queue.claim(worker: "w", lease: .seconds(3600)))
        await #expect(throws: QueueError.self) { _ = try await SQLiteJobQueue.open(path: path) }
        await queue.close()

        // The lock is a flock of the lock file's open description: a child that another suite
        // of this test process spawns at this moment holds a copy of every descriptor until
        // its exec (close-on-exec), so the lock may outlive the close by that long.
        var reopenedQueue: SQLiteJobQueue?
        for _ in 0..<250 where reopenedQueue == nil {
            reopenedQueue = try? await SQLiteJobQueue.open(path: path)
            if reopenedQueue == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        // Still refused after 5 s: once more, for its error.
        let reopened: SQLiteJobQueue
        if let reopenedQueue { reopened = reopenedQueue } else { reopened = try await SQLiteJobQueue.open(path: path) }
        #expect(try await reopened.get(ids[0])?.report == Data(#"{"kept":true}"#.utf8))
        #expect(try await reopened.counts() == [.queued: 2, .running: 0, .done: 1, .cancelled: 0])
        let next = try #require(try await reopened.claim(worker: "w", lease: .seconds(30)))
        #expect(next.lease.id == ids[1] && next.attempt == 2)
        await reopened.close()
    }

    @Test("the state directory: made 0700; one writable by others is refused")
    func stateDirectory() async throws {
        let tmp = TemporaryDirectory() // 0777
        defer { tmp.remove() }
        await #expect(throws: QueueError.self) { try await StateDirectory.prepare(tmp.path) }
        try await StateDirectory.prepare(tmp.path + "/a/b")
        var info = stat()
        #expect(stat(tmp.path + "/a/b", &info) == 0)
        #expect(info.st_mode & 0o777 == 0o700)
    }
}
