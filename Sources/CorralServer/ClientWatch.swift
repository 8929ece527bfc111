import Corral
import NIOCore
import Synchronization

/// Tells whether the client of a request is still connected, without touching the request's
/// stream (so the connection stays usable for the next request): the kernel's TCP state of
/// the connection. A client that closed its socket leaves the server's side in CLOSE_WAIT
/// (or gone); a half-close counts as gone too, as HTTP clients do not half-close.
struct ClientWatch: Sendable {
    private let provider: (any SocketOptionProvider)?

    init(channel: any Channel) {
        provider = channel as? any SocketOptionProvider
    }

    func isGone() async -> Bool {
        guard let provider else { return false }
        guard let info = try? await provider.getTCPInfo().get() else { return true }
        return info.tcpi_state != 1 // TCP_ESTABLISHED
    }
}

/// Watches the clients of every job in flight with one task (none while there is no job):
/// every 50 ms it looks at each connection and, for a client that went away, withdraws its
/// job from the queue or stops its runs.
final class ClientWatcher: Sendable {
    struct Entry: Sendable {
        let watch: ClientWatch
        let stop: RunStop
        let ticket: Dispatcher.Ticket
    }

    private struct State {
        var entries: [UInt64: Entry] = [:]
        var gone: Set<UInt64> = []
        var polling = false
        var next: UInt64 = 0
    }

    static let interval: Duration = .milliseconds(50)
    private let state = Mutex(State())
    private let dispatcher: Dispatcher

    init(dispatcher: Dispatcher) {
        self.dispatcher = dispatcher
    }

    /// Watches until ``remove(_:)``; returns a key for it.
    func add(_ entry: Entry) -> UInt64 {
        let (key, start) = state.withLock { state -> (UInt64, Bool) in
            state.next += 1
            state.entries[state.next] = entry
            defer { state.polling = true }
            return (state.next, !state.polling)
        }
        if start { Task { await self.poll() } }
        return key
    }

    /// Stops watching; returns whether the client had gone.
    func remove(_ key: UInt64) -> Bool {
        state.withLock { state in
            state.entries[key] = nil
            return state.gone.remove(key) != nil
        }
    }

    private func poll() async {
        while true {
            try? await Task.sleep(for: Self.interval)
            let entries = state.withLock { state -> [(UInt64, Entry)]? in
                if state.entries.isEmpty {
                    state.polling = false
                    return nil
                }
                return state.entries.filter { !state.gone.contains($0.key) }.map { ($0.key, $0.value) }
            }
            guard let entries else { return }
            for (key, entry) in entries where await entry.watch.isGone() {
                state.withLock { _ = $0.gone.insert(key) }
                dispatcher.withdraw(entry.ticket)
                entry.stop.stop()
            }
        }
    }
}
