import Synchronization

/// Working directories still being removed after their job's answer went out
/// (``Corral/JobRunner/runReportingFirst(_:stop:)``): the unmount of a job's tmpfs waits for
/// an RCU grace period (about 3 ms here), which the slot need not wait for. Bounded: a job
/// waits for room before it runs, so no more than `limit` directories (each up to
/// `--max-disk`) are ever left to remove; a shutdown waits for all of them (``drain()``).
final class RemovalBacklog: Sendable {
    let limit: Int

    private struct State {
        var pending: [UInt64: Task<Void, Never>] = [:]
        var next: UInt64 = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    var count: Int { state.withLock { $0.pending.count } }

    /// Returns once fewer than `limit` removals are under way.
    func waitForRoom() async {
        while state.withLock({ $0.pending.count >= limit }) {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let room = state.withLock { state -> Bool in
                    if state.pending.count < limit { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if room { continuation.resume() }
            }
        }
    }

    /// Counts `removal` until it ends.
    func add(_ removal: Task<Void, Never>) {
        let id = state.withLock { state -> UInt64 in
            state.next &+= 1
            state.pending[state.next] = removal
            return state.next
        }
        Task {
            await removal.value
            let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.pending[id] = nil
                defer { state.waiters.removeAll() }
                return state.waiters
            }
            for waiter in waiters { waiter.resume() }
        }
    }

    /// Returns once every removal counted so far has ended.
    func drain() async {
        for removal in state.withLock({ Array($0.pending.values) }) { await removal.value }
    }
}
