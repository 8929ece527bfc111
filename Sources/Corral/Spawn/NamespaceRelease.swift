import CCorral
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Lets an isolated run's mount namespace go off the run's path. Tearing a mount namespace
/// down waits for an RCU grace period in the kernel (milliseconds on a loaded host); done by
/// the init's exit it delayed the end of every run, and so its report. Corral holds a
/// descriptor of the namespace from the end of the setup, so the init's exit only drops a
/// reference, and this thread closes the descriptor once the init is gone, paying the wait
/// there. Nothing of the run can be alive by then: the namespace holds mounts, no process.
final class NamespaceRelease: Sendable {
    static let shared = NamespaceRelease()

    private struct Held {
        /// The init's pidfd (a duplicate): readable once it has exited.
        let pidfd: Int32
        let namespace: Int32
    }

    private let pending = Mutex<[Held]>([])
    /// Wakes the thread when something is added; -1 when there is no thread (then
    /// ``hold(_:pidfd:)`` takes nothing and the init's exit pays as before).
    private let wake: Int32

    private init() {
        let wake = corral_eventfd()
        self.wake = wake
        guard wake >= 0 else { return }
        var thread = pthread_t()
        let box = Unmanaged.passRetained(Loop(owner: self)).toOpaque()
        if pthread_create(&thread, nil, { context in
            Unmanaged<Loop>.fromOpaque(context!).takeRetainedValue().run()
            return nil
        }, box) == 0 {
            pthread_detach(thread)
        } else {
            Unmanaged<Loop>.fromOpaque(box).release()
            close(wake)
        }
    }

    /// Takes a descriptor of the mount namespace of the isolated init `pidfd` refers to,
    /// if the kernel gives one; released once that init has exited.
    func hold(initPidfd: Int32) {
        guard wake >= 0 else { return }
        let namespace = corral_pidfd_mount_namespace(initPidfd)
        guard namespace >= 0 else { return }
        let pidfd = fcntl(initPidfd, F_DUPFD_CLOEXEC, 3)
        guard pidfd >= 0 else {
            close(namespace)
            return
        }
        pending.withLock { $0.append(Held(pidfd: pidfd, namespace: namespace)) }
        var one: UInt64 = 1
        _ = write(wake, &one, 8)
    }

    private final class Loop: @unchecked Sendable {
        let owner: NamespaceRelease
        init(owner: NamespaceRelease) { self.owner = owner }

        func run() {
            var watched: [Held] = []
            while true {
                var descriptors = [pollfd(fd: owner.wake, events: Int16(POLLIN), revents: 0)]
                descriptors += watched.map { pollfd(fd: $0.pidfd, events: Int16(POLLIN), revents: 0) }
                let ready = poll(&descriptors, nfds_t(descriptors.count), -1)
                if ready < 0 { continue } // EINTR
                if descriptors[0].revents != 0 {
                    var count: UInt64 = 0
                    _ = read(owner.wake, &count, 8)
                    watched += owner.pending.withLock { held in
                        defer { held.removeAll() }
                        return held
                    }
                }
                var still: [Held] = []
                for (index, held) in watched.enumerated() {
                    let revents = index + 1 < descriptors.count ? descriptors[index + 1].revents : 0
                    if revents != 0 {
                        close(held.namespace)
                        close(held.pidfd)
                    } else {
                        still.append(held)
                    }
                }
                watched = still
            }
        }
    }
}
