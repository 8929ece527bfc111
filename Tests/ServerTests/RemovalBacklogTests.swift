import Corral
import Foundation
@testable import CorralServer
import Synchronization
import Testing

/// The bound on working directories left to remove after their answers went out: jobs that
/// end at once must not leave more than `--parallelism` of them.
@Suite("Removal backlog")
struct RemovalBacklogTests {
    @Test("jobs running and directories being removed together never exceed the limit; a failed job gives its room back")
    func bounded() async throws {
        let backlog = RemovalBacklog(limit: 2)
        let counter = InFlight()
        try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<12 {
                group.addTask {
                    do {
                        return try await backlog.withRoom { () async throws(CorralError) -> (Int, Task<Void, Never>) in
                            counter.enter()
                            #expect(backlog.count <= 2)
                            try? await Task.sleep(for: .milliseconds(2))
                            if index % 4 == 3 {
                                counter.leave()
                                throw CorralError(.system, "failed on purpose")
                            }
                            // The job's answer is out; its directory goes meanwhile.
                            let removal = Task {
                                try? await Task.sleep(for: .milliseconds(15))
                                counter.leave()
                            }
                            return (index, removal)
                        }
                    } catch {
                        return -1
                    }
                }
            }
            var done = 0, failed = 0
            for try await value in group {
                if value < 0 { failed += 1 } else { done += 1 }
                #expect(backlog.count <= 2)
            }
            #expect(done == 9 && failed == 3)
        }
        await backlog.drain()
        #expect(backlog.count == 0)
        #expect(counter.now.load(ordering: .sequentiallyConsistent) == 0)
        #expect(counter.most.load(ordering: .sequentiallyConsistent) == 2, "at most the limit at once, and the limit reached")
    }
}

/// Jobs with room taken, plus removals not yet ended: now, and the most at once.
private final class InFlight: Sendable {
    let now = Atomic<Int>(0)
    let most = Atomic<Int>(0)

    func enter() {
        _ = most.max(now.add(1, ordering: .sequentiallyConsistent).newValue, ordering: .sequentiallyConsistent)
    }

    func leave() {
        now.subtract(1, ordering: .sequentiallyConsistent)
    }
}
