import Corral
import CorralTestSupport
import Foundation
@testable import CorralServer
import Testing

/// The dispatcher's own bookkeeping: a ticket leaves nothing behind however it ends.
@Suite("Dispatcher")
struct DispatcherTests {
    // Not while a suite proves that no run cgroup of this test process is left.
    @Test("a job still in its slot at the deadline is stopped, and its run says why", .cgroupExclusive)
    func deadline() async throws {
        let dispatcher = Dispatcher(parallelism: 1, queueLimit: 1, jobDeadline: .milliseconds(300))
        let stop = RunStop()
        let started = ContinuousClock.now
        let report = try await dispatcher.run(dispatcher.ticket(), stop: stop) { () async -> JobReport? in
            try? await JobRunner().run(JobSpec(processes: [ProcessSpec(name: "p0", args: ["/bin/sleep", "30"])]), stop: stop)
        }
        let run = try #require(report?.processes.first?.report)
        #expect(run.status == .cancelled, "\(run.message)")
        #expect(run.message.contains("--max-job-time"), "\(run.message)")
        #expect(Dispatcher.stoppedAtDeadline(stop))
        #expect(ContinuousClock.now - started < .seconds(20))
        #expect(dispatcher.bookkeeping == (0, 0, 0, 0))
        // A job that ends in time is not stopped after it.
        let quick = RunStop()
        _ = try await dispatcher.run(dispatcher.ticket(), stop: quick) { 1 }
        try await Task.sleep(for: .milliseconds(500))
        #expect(!quick.isStopped && !Dispatcher.stoppedAtDeadline(quick))
        // A stop for another reason (a shutdown) is not the deadline's: such a job goes back to the queue.
        let shutdown = RunStop()
        _ = try await dispatcher.run(dispatcher.ticket(), stop: shutdown) { () async -> Int in
            dispatcher.cancelRunning()
            return 0
        }
        #expect(shutdown.isStopped && !Dispatcher.stoppedAtDeadline(shutdown) && shutdown.reason?.contains("shutting down") == true)
    }

    @Test("a ticket withdrawn before, while and after its job runs, or refused, leaves nothing behind")
    func bookkeeping() async throws {
        let dispatcher = Dispatcher(parallelism: 1, queueLimit: 1)
        // Withdrawn after its job ran (a client seen gone just as the answer went out).
        let done = dispatcher.ticket()
        #expect(try await dispatcher.run(done, stop: RunStop()) { 7 } == 7)
        dispatcher.withdraw(done)
        dispatcher.withdraw(done)
        #expect(dispatcher.bookkeeping == (0, 0, 0, 0))
        // Withdrawn before it asked for a slot: it never runs.
        let early = dispatcher.ticket()
        dispatcher.withdraw(early)
        await #expect(throws: CancellationError.self) { try await dispatcher.run(early, stop: RunStop()) { 1 } }
        #expect(dispatcher.bookkeeping == (0, 0, 0, 0))
        // Withdrawn while it runs: it runs to its end (a RunStop stops runs, not the dispatcher).
        let running = dispatcher.ticket()
        let value = try await dispatcher.run(running, stop: RunStop()) { () async -> Int in
            dispatcher.withdraw(running)
            return 3
        }
        #expect(value == 3)
        #expect(dispatcher.bookkeeping == (0, 0, 0, 0))
        // Withdrawn while it waits in the queue.
        let (holding, release) = AsyncStream.makeStream(of: Void.self)
        let first = dispatcher.ticket()
        let holder = Task { try await dispatcher.run(first, stop: RunStop()) { for await _ in holding {} } }
        while dispatcher.bookkeeping.stops == 0 { try await Task.sleep(for: .milliseconds(1)) }
        let queued = dispatcher.ticket()
        let waiter = Task { try await dispatcher.run(queued, stop: RunStop()) { 0 } }
        while dispatcher.bookkeeping.waiting == 0 { try await Task.sleep(for: .milliseconds(1)) }
        dispatcher.withdraw(queued)
        await #expect(throws: CancellationError.self) { try await waiter.value }
        release.finish()
        try await holder.value
        #expect(dispatcher.bookkeeping == (0, 0, 0, 0))
        // Refused at shutdown.
        dispatcher.beginShutdown()
        let late = dispatcher.ticket()
        await #expect(throws: Dispatcher.Refusal.self) { try await dispatcher.run(late, stop: RunStop()) { 0 } }
        dispatcher.withdraw(late)
        #expect(dispatcher.bookkeeping == (0, 0, 0, 0))
    }

    @Test("each running job holds a slot no other holds; a freed slot passes to the next job; --cpus pins by slot")
    func slots() async throws {
        let dispatcher = Dispatcher(parallelism: 2, queueLimit: 2, cpus: try CPUList("0-1"))
        let (holding, release) = AsyncStream.makeStream(of: Void.self)
        let first = dispatcher.ticket(), second = dispatcher.ticket(), third = dispatcher.ticket()
        let a = Task { try await dispatcher.run(first, stop: RunStop(), inSlot: { slot in for await _ in holding {}; return slot }) }
        while dispatcher.counts.running < 1 { try await Task.sleep(for: .milliseconds(1)) }
        let b = Task { try await dispatcher.run(second, stop: RunStop(), inSlot: { slot in slot }) }
        let slotB = try await b.value
        // b is done: its slot is free again, and the next job takes it while a still holds the other.
        let c = Task { try await dispatcher.run(third, stop: RunStop(), inSlot: { slot in slot }) }
        let slotC = try await c.value
        release.finish()
        let slotA = try await a.value
        #expect(slotA == 0)
        #expect(slotB == 1)
        #expect(slotC == 1)
        let spec = try JobSpec.parse(Data(#"{"processes": [{"args": ["a"]}, {"args": ["b"], "cpus": "0"}]}"#.utf8))
        #expect(dispatcher.pinned(spec, slot: 1).processes.map(\.cpus) == [try CPUList("1"), try CPUList("0")])
        #expect(Dispatcher(parallelism: 2, queueLimit: 0).pinned(spec, slot: 1).processes.map(\.cpus) == [nil, try CPUList("0")])
    }
}
