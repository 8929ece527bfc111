import Testing

/// Suites that look at every run cgroup of the test process (to prove none is left) must not
/// overlap with suites of another test target making runs in the same process. A suite
/// with `.cgroupExclusive` runs while no other such suite does.
public struct CgroupExclusive: SuiteTrait, TestTrait, TestScoping {
    public func provideScope(for test: Test, testCase: Test.Case?,
                             performing function: @Sendable () async throws -> Void) async throws {
        await Exclusion.shared.acquire()
        do {
            try await function()
        } catch {
            await Exclusion.shared.release()
            throw error
        }
        await Exclusion.shared.release()
    }
}

extension Trait where Self == CgroupExclusive {
    public static var cgroupExclusive: CgroupExclusive { CgroupExclusive() }
}

/// A first-come, first-served async lock.
actor Exclusion {
    static let shared = Exclusion()
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
    }
}
