import Corral
@testable import CorralServer
import Testing

/// The dispatcher's own bookkeeping: a ticket leaves nothing behind however it ends.
@Suite("Dispatcher")
struct DispatcherTests {
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
}
