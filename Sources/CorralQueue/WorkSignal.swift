import Synchronization

/// Wakes idle workers when a job may have been queued, so that a worker with nothing to do
/// waits for a signal instead of polling the queue every few milliseconds: the embedded queue
/// signals it on its own enqueue; PostgreSQL through `LISTEN`/`NOTIFY`, from any machine.
/// A worker reads ``generation`` before it looks for a job, and ``wait(since:upTo:)`` returns
/// at once when a signal came after that reading, so none is missed in between; the wait is
/// bounded, so a job nobody signalled (a lease that ran out) is still found.
public final class WorkSignal: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var nextWaiter: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        /// Waiters whose time ran out (or were cancelled) before they were registered.
        var expired: Set<UInt64> = []
    }
    private let state = Mutex(State())

    public init() {}

    public var generation: UInt64 { state.withLock { $0.generation } }

    /// A job may be there: every waiter returns.
    public func signal() {
        let waiting = state.withLock { state in
            state.generation &+= 1
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for continuation in waiting { continuation.resume() }
    }

    /// Returns once a signal came after `generation` was read, after `timeout`, or when the
    /// task is cancelled.
    public func wait(since generation: UInt64, upTo timeout: Duration) async {
        let id = state.withLock { state in
            state.nextWaiter &+= 1
            return state.nextWaiter
        }
        let timer = Task {
            // Cancelled (the wait ended first): no wake.
            do { try await Task.sleep(for: timeout) } catch { return }
            self.wake(id)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state in
                    if state.generation != generation || state.expired.remove(id) != nil { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            self.wake(id)
        }
        timer.cancel()
        // A wake that came after the resume (the timer at that very moment) leaves its mark.
        state.withLock { _ = $0.expired.remove(id) }
    }

    private func wake(_ id: UInt64) {
        let continuation = state.withLock { state in
            if let waiting = state.waiters.removeValue(forKey: id) { return Optional(waiting) }
            state.expired.insert(id)
            return nil
        }
        continuation?.resume()
    }
}
