import CCorral
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Fresh network namespaces made ahead of time for isolated runs (``namespace_pool.c``).
/// Making one is the largest cost of an isolated run's clone; a thread of its own makes a few
/// between runs, and the init of a run enters one with setns instead.
///
/// What keeps one run out of the next: every namespace here is new (only the loopback, which
/// the pool's thread brings up, exists in it), is taken by exactly one run and closed by
/// Corral right after that run's clone, so it dies with the run and no later run can be
/// handed it. The descriptors are close-on-exec and the vfork-style child closes all but its
/// own before it execs corral-init: no program sees them. At most ``capacity`` wait here.
/// When none is ready (or the pool cannot make them) a run's clone makes its namespace as
/// before: never less isolation. ``drain()`` stops the thread and closes what is ready.
///
/// `CORRAL_NAMESPACE_POOL=0` in the environment turns it off (every run makes its own).
final class NamespacePool: Sendable {
    static let shared = NamespacePool(capacity: 3)

    let capacity: Int

    private struct State {
        var ready: [Int32] = []
        /// The refilling thread runs (started by the second ``take()``).
        var running = false
        /// Set by ``drain()``: the thread ends at its next look.
        var stopping = false
        /// The thread could not make one (or return to its own namespace): no more tries in
        /// this process; runs make their own.
        var broken = false
        var thread: pthread_t?
        /// Runs that asked: the thread starts at the second, so that a process making one
        /// isolated run (`corral run --isolate`) makes no namespace it will not use.
        var asked = 0
    }

    private let state = Mutex<State>(State())
    private let wake: Int32
    private let enabled: Bool

    init(capacity: Int) {
        self.capacity = capacity
        wake = corral_eventfd()
        let setting = getenv("CORRAL_NAMESPACE_POOL").map { String(cString: $0) }
        enabled = wake >= 0 && setting != "0" && geteuid() == 0
    }

    /// A prepared network namespace for one run, or nil (then the run makes its own). The
    /// caller owns it: it closes it right after the clone.
    func take() -> Int32? {
        guard enabled else { return nil }
        let taken: Int32? = state.withLock { state in
            if state.broken { return nil }
            state.asked += 1
            if !state.running && !state.stopping && state.asked >= 2 { startThread(&state) }
            return state.ready.isEmpty ? nil : state.ready.removeFirst()
        }
        signal()
        return taken
    }

    /// The ready ones, by inode number (what `readlink /proc/self/ns/net` shows inside).
    var readyInodes: [UInt] { state.withLock { $0.ready.map { UInt(corral_namespace_inode($0)) } } }

    /// Whether the refilling thread runs (tests).
    var isRunning: Bool { state.withLock { $0.running } }

    /// Stops the thread (waits for it: at most one namespace being made) and closes every
    /// prepared namespace. A later ``take()`` starts it again (the next isolated run). Blocks briefly: not for a task
    /// of the cooperative pool to call in a loop.
    func drain() {
        let thread: pthread_t? = state.withLock { state in
            state.stopping = true
            return state.thread
        }
        signal()
        if let thread { pthread_join(thread, nil) }
        let left = state.withLock { state in
            defer {
                state.ready.removeAll()
                state.thread = nil
                state.running = false
                state.stopping = false
            }
            return state.ready
        }
        for descriptor in left { close(descriptor) }
    }

    private func signal() {
        guard wake >= 0 else { return }
        var one: UInt64 = 1
        _ = write(wake, &one, 8)
    }

    private func startThread(_ state: inout State) {
        var thread = pthread_t()
        let box = Unmanaged.passRetained(self).toOpaque()
        if pthread_create(&thread, nil, { context in
            Unmanaged<NamespacePool>.fromOpaque(context!).takeRetainedValue().refill()
            return nil
        }, box) == 0 {
            state.thread = thread
            state.running = true
        } else {
            Unmanaged<NamespacePool>.fromOpaque(box).release()
            state.broken = true
        }
    }

    /// The thread: keeps `capacity` ready, sleeps on the eventfd while full.
    private func refill() {
        _ = corral_name_thread("corral-netns")
        let own = corral_network_namespace_own()
        if own < 0 {
            state.withLock { $0.broken = true; $0.running = false }
            return
        }
        defer { close(own) }
        while true {
            let (stop, full) = state.withLock { ($0.stopping, $0.ready.count >= capacity) }
            if stop { return }
            if full {
                var entry = pollfd(fd: wake, events: Int16(POLLIN), revents: 0)
                if poll(&entry, 1, -1) > 0 {
                    var count: UInt64 = 0
                    _ = read(wake, &count, 8)
                }
                continue
            }
            var stranded: Int32 = 0
            let prepared = corral_network_namespace_prepare(own, &stranded)
            if prepared < 0 || stranded != 0 {
                if prepared >= 0 { close(prepared) }
                // Fail closed and stay out of the way: runs make their own from now on. A
                // thread that could not return to its namespace makes nothing more.
                state.withLock { $0.broken = true }
                return
            }
            let kept = state.withLock { state -> Bool in
                guard !state.stopping else { return false }
                state.ready.append(prepared)
                return true
            }
            if !kept {
                close(prepared)
                return
            }
        }
    }
}

extension Runner {
    /// How many network namespaces the pool keeps ready for isolated runs.
    public static var preparedNetworkNamespaceCapacity: Int { NamespacePool.shared.capacity }

    /// The network namespaces prepared for isolated runs and not yet taken, by inode number
    /// (as `/proc/self/ns/net` names them). Each is handed to one run only.
    public static var preparedNetworkNamespaces: [UInt] { NamespacePool.shared.readyInodes }

    /// Whether the pool's thread (`corral-netns`) runs.
    public static var preparedNamespaceThreadRuns: Bool { NamespacePool.shared.isRunning }

    /// Stops the pool's thread and closes every prepared namespace, for a process that is
    /// done with isolated runs and wants nothing of Corral's left. The next isolated run
    /// starts it again. It waits for the thread (at most one namespace being made): call it
    /// from a thread of your own, not in a loop on Swift's cooperative pool.
    public static func releasePreparedNamespaces() {
        NamespacePool.shared.drain()
    }
}
