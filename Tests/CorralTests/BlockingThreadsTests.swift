import CCorral
@testable import Corral
import Foundation
import Synchronization
import Testing

/// ``Blocking``'s threads: reused once idle, and never making one call wait for another's
/// work.
@Suite("Blocking threads")
struct BlockingThreadsTests {
    @Test("calls one after another run on the same thread (a thread is reused, not started per call)")
    func reused() async {
        var threads: Set<Int32> = []
        for _ in 0..<20 {
            threads.insert(await Blocking.run { () -> Int32 in corral_gettid() })
        }
        // Other tests may use Blocking at the same time and take the idle thread now and then.
        #expect(threads.count < 10, "\(threads.count) threads for 20 calls in a row")
    }

    @Test("work that blocks does not hold up other calls: 16 calls sleeping 300 ms at once end in well under 16 × 300 ms")
    func neverQueuedBehindOtherWork() async {
        let started = ContinuousClock.now
        await withTaskGroup(of: Int32.self) { group in
            for _ in 0..<16 {
                group.addTask { await Blocking.run { () -> Int32 in usleep(300_000); return corral_gettid() } }
            }
            var threads: Set<Int32> = []
            for await thread in group { threads.insert(thread) }
            #expect(threads.count == 16, "16 sleeping calls shared \(threads.count) threads")
        }
        let elapsed = ContinuousClock.now - started
        #expect(elapsed < .seconds(2.4), "took \(elapsed)")
    }

    @Test("an error thrown by the work comes back to the caller")
    func errors() async {
        struct Refused: Error {}
        do {
            _ = try await Blocking.run { () throws(Refused) -> Int in throw Refused() }
            Issue.record("no error")
        } catch {}
    }
}
