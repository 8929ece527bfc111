import CCorral
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Keeps a run's processes from outliving Corral. The kernel kills a run's main process when
/// Corral dies (`PR_SET_PDEATHSIG`), and an isolated run's init takes its namespace with it,
/// but the other processes of a plain run would live on in their cgroup. So the first run
/// with a cgroup starts a guard (``corral_guard_start``): a small process that is told the
/// cgroup directories of every run while it goes on, and when Corral dies (even by SIGKILL)
/// kills everything in them at once and removes them.
enum RunGuard {
    private struct Channel: Sendable {
        let descriptor: Int32
        let pid: pid_t
    }

    private static let channel = Mutex<Channel?>(nil)
    private static let failed = Atomic<Bool>(false)

    /// The guard's pid, once it is started.
    static var pid: pid_t? { channel.withLock { $0?.pid } }

    /// The guard now watches these directories (best effort: without a guard the run is the
    /// same, only not cleaned up should Corral be killed).
    static func watch(_ directories: [String]) {
        guard let descriptor = ensureStarted() else { return }
        send(descriptor, directories.map { "+" + $0 })
    }

    static func release(_ directories: [String]) {
        guard let descriptor = channel.withLock({ $0?.descriptor }) else { return }
        send(descriptor, directories.map { "-" + $0 })
    }

    /// A run's messages in one system call (``corral_guard_send_all``).
    private static func send(_ descriptor: Int32, _ messages: [String]) {
        let copies = messages.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        guard copies.allSatisfy({ $0 != nil }) else { return }
        let pointers = copies.map { UnsafePointer<CChar>($0) }
        _ = pointers.withUnsafeBufferPointer { corral_guard_send_all(descriptor, $0.baseAddress, Int32($0.count)) }
    }

    /// At a normal exit: the guard is told to go (its channel closed, nothing watched) and
    /// reaped, so it no longer sits in Corral's own cgroup when that is tidied up. A later
    /// run would start a new one.
    static func stop() {
        guard let stopped = channel.withLock({ current -> Channel? in
            defer { current = nil }
            return current
        }) else { return }
        // A pidfd to wait on, opened before the guard can go: it exits at once when its
        // channel closes (polling with sleeps added a millisecond to every `corral run`).
        let pidfd = corral_pidfd_open(stopped.pid)
        _ = close(stopped.descriptor)
        var status: Int32 = 0
        if pidfd >= 0 {
            defer { _ = close(pidfd) }
            var entry = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
            while poll(&entry, 1, 500) < 0 && errno == EINTR {}
            _ = waitpid(stopped.pid, &status, WNOHANG)
            return
        }
        for _ in 0..<500 {
            let result = waitpid(stopped.pid, &status, WNOHANG)
            if result == stopped.pid || (result < 0 && errno != EINTR) { return }
            usleep(1000)
        }
    }

    private static func ensureStarted() -> Int32? {
        if failed.load(ordering: .relaxed) { return nil }
        return channel.withLock { current in
            if let current { return current.descriptor }
            var pid: pid_t = 0
            let descriptor = corral_guard_start(&pid)
            guard descriptor >= 0 else {
                failed.store(true, ordering: .relaxed)
                return nil
            }
            current = Channel(descriptor: descriptor, pid: pid)
            return descriptor
        }
    }
}
