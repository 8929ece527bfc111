import Corral
import Synchronization

/// Working directories still being removed after their job's answer went out
/// (``Corral/JobRunner/runReportingFirst(_:stop:)``): the unmount of a job's tmpfs waits for
/// an RCU grace period (about 3 ms here), which the slot need not wait for. Bounded: a job
/// takes room before it runs (``withRoom(_:)``), so no more than `limit` directories (each up
/// to `--max-disk`) are ever left to remove, however many jobs end at once; a shutdown waits
/// for all of them (``drain()``).
final class RemovalBacklog: Sendable {
    let limit: Int

    private struct State {
        /// Removals under way, each until it has ended and been taken off.
        var pending: [UInt64: Task<Void, Never>] = [:]
        /// Jobs running with room taken, whose removal is not counted yet.
        var reserved = 0
        var next: UInt64 = 0
        /// Jobs waiting for room: resumed (to look again) when a removal ends or room is given back.
        var waiters: [CheckedContinuation<Void, Never>] = []

        var taken: Int { pending.count + reserved }

        mutating func takeWaiters() -> [CheckedContinuation<Void, Never>] {
            defer { waiters.removeAll() }
            return waiters
        }
    }
    private let state = Mutex(State())

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Removals under way plus room taken by running jobs: never above `limit`.
    var count: Int { state.withLock { $0.taken } }

    /// Runs `job` once there is room for its removal, and counts the removal it returns
    /// until that ends; a job that throws gives its room back.
    func withRoom<Value>(_ job: () async throws(CorralError) -> (Value, Task<Void, Never>)) async throws(CorralError) -> Value {
        await reserve()
        let result: (Value, Task<Void, Never>)
        do {
            result = try await job()
        } catch {
            wake(state.withLock { state in
                state.reserved -= 1
                return state.takeWaiters()
            })
            throw error
        }
        let removal = result.1
        state.withLock { state in
            state.reserved -= 1
            state.next &+= 1
            let id = state.next
            // Counted until it has ended and is no longer counted (what ``drain()`` waits for).
            state.pending[id] = Task {
                await removal.value
                self.wake(self.state.withLock { state in
                    state.pending[id] = nil
                    return state.takeWaiters()
                })
            }
        }
        return result.0
    }

    /// Returns once every removal counted so far has ended.
    func drain() async {
        for removal in state.withLock({ Array($0.pending.values) }) { await removal.value }
    }

    /// Returns once room is taken: fewer than `limit` removals and running jobs before.
    private func reserve() async {
        while true {
            let taken = state.withLock { state -> Bool in
                guard state.taken < limit else { return false }
                state.reserved += 1
                return true
            }
            if taken { return }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let room = state.withLock { state -> Bool in
                    if state.taken < limit { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if room { continuation.resume() }
            }
        }
    }

    private func wake(_ waiters: [CheckedContinuation<Void, Never>]) {
        for waiter in waiters { waiter.resume() }
    }
}
