#if canImport(Glibc)
import Glibc
#endif

/// Runs work that can block (opening, creating, chowning and copying files, mounting) on a
/// thread of its own, so the cooperative pool (as wide as the CPUs) never waits on the
/// filesystem: a FIFO, a slow disk or a stuck mount stalls one job, not every task.
///
/// The threads are ``BlockingThreads``: a call takes an idle one or starts a new one, never
/// waits behind another call's work. A task running on a ``BlockingExecutor`` (a step's
/// tests) runs the work inline, on its own thread.
enum Blocking {
    static func run<T: Sendable, E: Error>(_ work: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        // Already on a thread that may block (a ``BlockingExecutor``'s): no hand-off.
        if let executor = BlockingExecutor.current, executor.isCurrentThread { return try work() }
        let result: Result<T, E> = await withCheckedContinuation { continuation in
            BlockingThreads.shared.submit {
                do throws(E) {
                    continuation.resume(returning: .success(try work()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }
}

/// Threads for ``Blocking``, kept for a while once idle: starting a thread for every call
/// cost a `clone`, a stack and an exit per file operation (two per test of a judge job).
/// Work is handed to an idle thread only when one is free for it; otherwise a new thread is
/// started, so no work ever waits for other work to finish. An idle thread ends after
/// ``idleSeconds`` without work.
final class BlockingThreads: @unchecked Sendable {
    static let shared = BlockingThreads()
    static let idleSeconds = 10

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    // Guarded by `mutex`.
    private var queue: [@Sendable () -> Void] = []
    private var idle = 0

    /// A pool of its own (the tests'); Corral uses ``shared``.
    init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    func submit(_ work: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(mutex)
        if idle > queue.count {
            queue.append(work)
            pthread_cond_signal(condition)
            pthread_mutex_unlock(mutex)
            return
        }
        pthread_mutex_unlock(mutex)
        let box = Unmanaged.passRetained(Start(threads: self, work: work))
        var thread = pthread_t()
        let started = pthread_create(&thread, nil, { context in
            let start = Unmanaged<Start>.fromOpaque(context!).takeRetainedValue()
            start.threads.serve(first: start.work)
            return nil
        }, box.toOpaque())
        if started == 0 {
            pthread_detach(thread)
        } else {
            // No thread to be had: do it here rather than not at all.
            box.release()
            work()
        }
    }

    /// A thread's life: its first work, then whatever is handed to it, until it has been
    /// idle for ``idleSeconds``.
    private func serve(first: @escaping @Sendable () -> Void) {
        var work = first
        while true {
            work()
            pthread_mutex_lock(mutex)
            idle += 1
            var deadline = timespec()
            clock_gettime(CLOCK_MONOTONIC, &deadline)
            deadline.tv_sec += Self.idleSeconds
            while queue.isEmpty {
                if pthread_cond_timedwait(condition, mutex, &deadline) == ETIMEDOUT, queue.isEmpty {
                    idle -= 1
                    pthread_mutex_unlock(mutex)
                    return
                }
            }
            work = queue.removeFirst()
            idle -= 1
            pthread_mutex_unlock(mutex)
        }
    }

    private final class Start: @unchecked Sendable {
        let threads: BlockingThreads
        let work: @Sendable () -> Void
        init(threads: BlockingThreads, work: @escaping @Sendable () -> Void) {
            self.threads = threads
            self.work = work
        }
    }
}
