import CCorral
@testable import Corral
import Foundation
import Synchronization
import Testing

/// ``Blocking``'s threads (a pool of the test's own, so that other tests' blocking work does not
/// take its threads): reused once idle, and never making one call wait for another's work.
@Suite("Blocking threads")
struct BlockingThreadsTests {
    final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    static func call<T: Sendable>(_ pool: BlockingThreads, _ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            pool.submit { continuation.resume(returning: work()) }
        }
    }

    @Test("calls one after another reuse the pool's threads (the old Blocking started one per call: 20 for 20)")
    func reused() async {
        let pool = BlockingThreads()
        var threads: Set<Int32> = []
        for _ in 0..<20 {
            threads.insert(await Self.call(pool) { corral_gettid() })
        }
        #expect(threads.count < 10, "\(threads.count) threads for 20 calls in a row")
    }

    /// Each call waits until all 16 are running at once: work queued behind other work would
    /// never get there (each gives up after 20 s and says so).
    @Test("work that blocks does not hold up other calls: 16 calls that wait for one another all run at once")
    func neverQueuedBehindOtherWork() async {
        let pool = BlockingThreads()
        let running = Counter()
        let results = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    await Self.call(pool) { () -> Bool in
                        running.value.add(1, ordering: .sequentiallyConsistent)
                        let deadline = Date().addingTimeInterval(20)
                        while running.value.load(ordering: .sequentiallyConsistent) < 16 {
                            if Date() > deadline { return false }
                            usleep(1_000)
                        }
                        return true
                    }
                }
            }
            var all: [Bool] = []
            for await result in group { all.append(result) }
            return all
        }
        #expect(results.count == 16 && results.allSatisfy { $0 }, "\(results.filter { !$0 }.count) of 16 calls never saw all 16 running")
    }

    @Test("an error thrown by the work comes back to Blocking.run's caller")
    func errors() async {
        struct Refused: Error {}
        do {
            _ = try await Blocking.run { () throws(Refused) -> Int in throw Refused() }
            Issue.record("no error")
        } catch {}
    }
}
