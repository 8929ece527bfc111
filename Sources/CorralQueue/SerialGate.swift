import Synchronization

/// One holder at a time, in arrival order, for async callers (a waiter is suspended, not
/// blocked): the SQLite queue's writes pass it one by one, so that a claim's relaxed
/// durability (`PRAGMA synchronous`, a setting of the whole connection) covers that claim only.
final class SerialGate: Sendable {
    private struct State {
        var held = false
        var waiting: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    /// `body` alone among the gate's holders.
    func hold<T>(_ body: () async throws(QueueError) -> T) async throws(QueueError) -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state in
                if state.held {
                    state.waiting.append(continuation)
                    return false
                }
                state.held = true
                return true
            }
            if now { continuation.resume() }
        }
        defer { leave() }
        return try await body()
    }

    private func leave() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiting.isEmpty else {
                state.held = false
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
