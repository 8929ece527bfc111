import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The parent directories this process created or used for run cgroups, and the exit
/// hook that empties the pools, removes the parents it can (a parent other Corral
/// processes still use is not empty, and stays) and undoes what Corral changed in its own
/// v2 cgroup.
enum CgroupParents {
    private static let parents = Mutex<Set<String>>([])
    private static let hookInstalled = Atomic<Bool>(false)
    /// Runs whose report is out but whose cgroups are still being removed or pooled.
    static let tidying = Atomic<Int>(0)

    static func register(_ parent: String) {
        parents.withLock { _ = $0.insert(parent) }
        registerExitHook()
    }

    static func registerExitHook() {
        if hookInstalled.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
            atexit { CgroupParents.releaseAll() }
        }
    }

    /// Empties the pools and removes idle parent directories. Safe to call at any time:
    /// runs in progress keep their cgroups.
    static func releaseAll() {
        // The reaper removes a run's cgroup right after handing over its report (a few
        // hundred microseconds): short naps, so the exit is not held up by a whole
        // millisecond's sleep (at most 2 s in all).
        var waited = 0
        while tidying.load(ordering: .sequentiallyConsistent) > 0 && waited < 40_000 {
            usleep(50)
            waited += 1
        }
        CgroupV1Run.drainPools()
        // Deepest first: a parent Corral made below another it made.
        for parent in parents.withLock({ $0 }).sorted(by: { $0.count > $1.count }) {
            CgroupFS.removeDirectory(parent)
        }
        RunGuard.stop() // it lives in Corral's own cgroup, which is put back next
        CgroupV2Delegation.undoOwnChange()
    }
}
