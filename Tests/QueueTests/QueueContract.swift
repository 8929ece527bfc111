import CorralQueue
import Foundation
import Testing

/// What every ``JobQueue`` backend must do, run against each real engine (SQLite here,
/// PostgreSQL when CORRAL_TEST_POSTGRES_URL names one): order, leases, exactly-once
/// completion, cancel, release, expiry, concurrent claims.
enum QueueContract {
    static func spec(_ n: Int) -> NewJob { NewJob(spec: Data(#"{"n": \#(n)}"#.utf8)) }

    static func orderAndOnce(_ queue: any JobQueue) async throws {
        do {
            let ids = try await queue.enqueue((0..<3).map(spec))
            #expect(Set(ids).count == 3)
            var claimed: [ClaimedJob] = []
            while let job = try await queue.claim(worker: "w", lease: .seconds(30)) { claimed.append(job) }
            #expect(claimed.map(\.lease.id) == ids)
            #expect(claimed.map { String(decoding: $0.spec, as: UTF8.self) } == (0..<3).map { #"{"n": \#($0)}"# })
            #expect(try await queue.get(ids[0])?.state == .running)
            #expect(try await queue.complete(claimed[0].lease, report: Data(#"{"status":"ok"}"#.utf8)))
            #expect(try await !queue.complete(claimed[0].lease, report: Data(#"{"status":"twice"}"#.utf8)))
            let record = try await queue.get(ids[0])
            #expect(record?.state == .done)
            #expect(record?.report.map { String(decoding: $0, as: UTF8.self) } == #"{"status":"ok"}"#)
            #expect(record?.attempts == 1)
            #expect(try await queue.counts() == [.queued: 0, .running: 2, .done: 1, .cancelled: 0])
        }
    }

    /// A report and the next claim in one call: the next job in order; nothing when the queue
    /// is empty; the job just completed is never the next one, even when its own lease ran out
    /// (still `running` to a claim in the same snapshot); a lost lease's report is refused, yet
    /// the next job is claimed.
    static func completeThenClaim(_ queue: any JobQueue) async throws {
        do {
            let ids = try await queue.enqueue((0..<3).map(spec))
            let first = try #require(try await queue.claim(worker: "w", lease: .seconds(30)))
            #expect(first.lease.id == ids[0])
            let step = try await queue.complete(first.lease, report: Data(#"{"n":0}"#.utf8), thenClaimFor: "w", lease: .seconds(1))
            #expect(step.completed)
            #expect(step.next?.lease.id == ids[1])
            #expect(try await queue.get(ids[0])?.report.map { String(decoding: $0, as: UTF8.self) } == #"{"n":0}"#)
            #expect(try await queue.get(ids[1])?.state == .running)
            // ids[1]'s lease (1 s) runs out; completing it does not claim it again.
            try await Task.sleep(for: .milliseconds(1500))
            let second = try #require(step.next)
            let next = try await queue.complete(second.lease, report: Data("{}".utf8), thenClaimFor: "w", lease: .seconds(30))
            #expect(next.completed)
            #expect(next.next?.lease.id == ids[2])
            #expect(try await queue.get(ids[1])?.state == .done)
            #expect(try await queue.get(ids[1])?.attempts == 1)
            // A report for a lease no longer held is discarded; the claim still happens.
            let more = try await queue.enqueue([spec(3)])
            let stale = Lease(id: ids[2], token: "not-the-token")
            let refused = try await queue.complete(stale, report: Data("{}".utf8), thenClaimFor: "w", lease: .seconds(30))
            #expect(!refused.completed)
            #expect(refused.next?.lease.id == more[0])
            let third = try #require(next.next)
            let last = try await queue.complete(third.lease, report: Data("{}".utf8), thenClaimFor: "w", lease: .seconds(30))
            #expect(last.completed && last.next == nil, "the queue is empty but for the job claimed above")
            let draining = try await queue.complete(try #require(refused.next).lease, report: Data("{}".utf8), thenClaimFor: nil, lease: .zero)
            #expect(draining.completed && draining.next == nil)
            #expect(try await queue.counts() == [.queued: 0, .running: 0, .done: 4, .cancelled: 0])
        }
    }

    static func leaseExpiry(_ queue: any JobQueue) async throws {
        do {
            let id = try await queue.enqueue([spec(1)])[0]
            // Leases of seconds: a loaded test machine (the whole suite in parallel, CI) took
            // more than 1.5 s between two calls here once.
            let first = try #require(try await queue.claim(worker: "a", lease: .seconds(6)))
            #expect(!first.tookOverExpiredLease)
            #expect(try await queue.claim(worker: "b", lease: .seconds(30)) == nil, "a held lease is not taken")
            #expect(try await queue.heartbeat(first.lease, extend: .milliseconds(2500)))
            try await Task.sleep(for: .milliseconds(3500))
            let second = try #require(try await queue.claim(worker: "b", lease: .seconds(30)))
            #expect(second.lease.id == id && second.lease.token != first.lease.token)
            #expect(second.tookOverExpiredLease && second.attempt == 2)
            #expect(try await !queue.heartbeat(first.lease, extend: .seconds(30)))
            #expect(try await !queue.complete(first.lease, report: Data("{}".utf8)))
            #expect(try await queue.complete(second.lease, report: Data(#"{"by":"b"}"#.utf8)))
            #expect(try await queue.get(id)?.report == Data(#"{"by":"b"}"#.utf8))
        }
    }

    static func cancel(_ queue: any JobQueue) async throws {
        do {
            let ids = try await queue.enqueue([spec(1), spec(2), spec(3)])
            let running = try #require(try await queue.claim(worker: "w", lease: .seconds(30)))
            #expect(try await queue.cancel(ids[0]) == .cancelledRunning)
            #expect(try await queue.cancel(ids[1]) == .cancelledQueued)
            #expect(try await !queue.complete(running.lease, report: Data("{}".utf8)))
            #expect(try await !queue.heartbeat(running.lease, extend: .seconds(30)))
            let last = try #require(try await queue.claim(worker: "w", lease: .seconds(30)))
            #expect(last.lease.id == ids[2], "the cancelled queued job was skipped")
            #expect(try await queue.complete(last.lease, report: Data("{}".utf8)))
            #expect(try await queue.cancel(ids[2]) == .alreadyFinished(.done))
            #expect(try await queue.cancel(ids[0]) == .alreadyFinished(.cancelled))
            #expect(try await queue.cancel("00000000-0000-0000-0000-000000000000") == .notFound)
            #expect(try await queue.get(ids[0])?.state == .cancelled)
            #expect(try await queue.get(ids[0])?.report == nil)
        }
    }

    static func releaseAndExpire(_ queue: any JobQueue) async throws {
        do {
            let ids = try await queue.enqueue([spec(1), spec(2)])
            let first = try #require(try await queue.claim(worker: "w", lease: .seconds(30)))
            #expect(try await queue.release(first.lease))
            #expect(try await !queue.release(first.lease))
            let again = try #require(try await queue.claim(worker: "w", lease: .seconds(30)))
            #expect(again.lease.id == ids[0])
            #expect(try await queue.complete(again.lease, report: Data("{}".utf8)))
            #expect(try await queue.expire(finishedBefore: .seconds(60)) == 0)
            try await Task.sleep(for: .milliseconds(50))
            #expect(try await queue.expire(finishedBefore: .milliseconds(10)) == 1)
            #expect(try await queue.get(ids[0]) == nil)
            #expect(try await queue.get(ids[1])?.state == .queued, "a queued job never expires")
        }
    }

    static func concurrentClaims(_ queue: any JobQueue) async throws {
        let ids = try await queue.enqueue((0..<200).map(spec))
        let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
            for worker in 0..<8 {
                group.addTask {
                    var mine: [String] = []
                    while let job = try await queue.claim(worker: "w\(worker)", lease: .seconds(30)) {
                        mine.append(job.lease.id)
                        #expect(try await queue.complete(job.lease, report: Data("{}".utf8)))
                    }
                    return mine
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(claimed.count == 200)
        #expect(Set(claimed) == Set(ids))
        #expect(try await queue.counts()[.done] == 200)
    }
}
