import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A task executor that is one ``BlockingThreads`` thread, for work that alternates blocking
/// calls and waits, one step after another (a step's tests): the task runs on that thread
/// from its start to its end, its ``Blocking/run(_:)`` calls run inline there (the thread is
/// not one of the cooperative pool's, so it may block), and whatever resumes it (the reaper
/// handing back a run's report) wakes that one thread. Each test then costs two thread
/// wake-ups (the reaper's for the spawn, this thread's for the report) instead of one more
/// pair per `Blocking.run` and per return to the pool.
///
/// Jobs enqueued after the scope ended (none are expected) go to the global executor.
final class BlockingExecutor: TaskExecutor, @unchecked Sendable {
    /// The executor the current task prefers, when it is one of these (``run(_:)``).
    @TaskLocal static var current: BlockingExecutor?

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    // Guarded by `mutex`.
    private var jobs: [UnownedJob] = []
    private var open = true
    /// The thread serving the jobs (0 until it starts).
    private let thread = Atomic<UInt>(0)

    private init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` with a fresh executor of this kind as its task's preference.
    static func run<T: Sendable, E: Error>(_ body: () async throws(E) -> T) async throws(E) -> T {
        let executor = BlockingExecutor()
        BlockingThreads.shared.submit { executor.serve() }
        defer { executor.close() }
        return try await withTaskExecutorPreference(executor) { () async throws(E) -> T in
            // withValue's operation is not typed-throws: the error comes out as a Result.
            let result = await $current.withValue(executor) { () async -> Result<T, E> in
                do throws(E) { return .success(try await body()) } catch { return .failure(error) }
            }
            return try result.get()
        }
    }

    /// Whether the calling thread is this executor's (where blocking work may run inline).
    var isCurrentThread: Bool {
        let serving = thread.load(ordering: .acquiring)
        return serving != 0 && pthread_equal(pthread_self(), serving) != 0
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        pthread_mutex_lock(mutex)
        if open {
            jobs.append(unowned)
            pthread_cond_signal(condition)
            pthread_mutex_unlock(mutex)
            return
        }
        pthread_mutex_unlock(mutex)
        globalConcurrentExecutor.enqueue(ExecutorJob(unowned))
    }

    /// The thread's work: every job enqueued, until the scope ended and none is left.
    private func serve() {
        thread.store(pthread_self(), ordering: .releasing)
        let unownedSelf = asUnownedTaskExecutor()
        while true {
            pthread_mutex_lock(mutex)
            while jobs.isEmpty && open { pthread_cond_wait(condition, mutex) }
            if jobs.isEmpty {
                pthread_mutex_unlock(mutex)
                break
            }
            let job = jobs.removeFirst()
            pthread_mutex_unlock(mutex)
            job.runSynchronously(on: unownedSelf)
        }
        thread.store(0, ordering: .releasing)
    }

    private func close() {
        pthread_mutex_lock(mutex)
        open = false
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }
}
