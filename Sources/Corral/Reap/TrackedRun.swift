import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// One run as the reaper sees it. Confined to the reaper thread.
final class TrackedRun {
    enum Phase { case running, draining, finished }

    /// The first look at a run's processes (orphans to adopt, members, memory) comes after
    /// this; each next one twice as late, up to ``sampleMaxNanos``. A short run is looked at
    /// early; a long one costs Corral a few wake-ups a second.
    static let sampleFirstNanos: Int64 = 10_000_000
    static let sampleGrowth: Int64 = 4
    static let sampleMaxNanos: Int64 = 250_000_000
    /// The closest two CPU checks come.
    static let cpuCheckMinimumNanos: Int64 = 2_000_000
    /// CPU time a cgroup run may pass its limit by before the check that kills it, with
    /// every CPU busy for it (plus what it gains while Corral wakes up and kills it): the
    /// next check is due when the run can have used its limit and this much. The kill stays
    /// within 20 ms past the limit, with far fewer checks than one that never lets a run
    /// past it (each check nearer the limit halves the distance). A process-group run's live
    /// processes are read from their CPU-time clocks (exact) and get the same allowance.
    static let cpuCheckAllowanceMicros: Int64 = 5_000
    static let drainPollNanos: Int64 = 1_000_000
    /// CPUs the run's processes can use at once: no run gains CPU time faster than this
    /// many seconds a second.
    static let cpuCount = Int64(max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))

    let id: UInt64
    let plan: SpawnPlan
    let continuation: RunCompletion
    /// The main process; also the process group and session id of the run.
    let pid: Int32
    let pidfd: Int32
    let start: Int64
    /// When the run started, in clock ticks after boot (the unit of /proc starttime).
    let startBootTicks: UInt64
    /// The run's cgroup: what belongs to the run, what it used, how to kill it all.
    let cgroup: (any RunCgroup)?
    var phase: Phase = .running
    var mainAlive = true
    var outcome: RunOutcome
    /// Every pid of the run Corral has seen.
    var knownPids: Set<Int32> = []
    /// Sessions of the run: its own, and those its processes created with setsid.
    var sessions: Set<Int32> = []
    /// Children of Corral, re-parented to it, that belong to the run (in its group or not).
    var escapees: Set<Int32> = []
    /// Captured streams, drained as they fill.
    let captures: [Capture]
    /// A limit seen while reaping, acted on in ``advance(scan:)``.
    var pendingStop: StopReason?
    /// When the run's processes are looked at next (``sampleFirstNanos``).
    var nextSample: Int64
    var sampleInterval = TrackedRun.sampleFirstNanos
    /// The earliest moment the run can have used up its CPU limit (``checkCPU(_:)``).
    var nextCPUCheck: Int64
    /// Polled for the memory cgroup's OOM events (v1 eventfd, v2 `memory.events`).
    let memoryEvents: CgroupMemoryEvents?
    let wallDeadline: Int64?
    let cpuLimitMicros: Int64?
    var reapedMicros: Int64 = 0
    /// The main process's procfs files, opened at its first sample (it is Corral's unreaped
    /// child then, so they are its own) and closed when it is reaped.
    var mainFiles: ProcessFiles??
    /// The largest resident set seen, in bytes: sampled from /proc, and from rusage.
    var memoryPeak: Int64 = 0
    /// Corral's own peak resident set when it spawned the main process. The main process
    /// was cloned with CLONE_VM, and execve folds the old (Corral's) memory's peak into
    /// the child's ru_maxrss, so the main's ru_maxrss is its own only when larger.
    let spawnerPeak: Int64

    init(id: UInt64, plan: SpawnPlan, process: SpawnedProcess, start: Int64, startBootTicks: UInt64,
         continuation: RunCompletion) {
        self.id = id
        self.plan = plan
        self.continuation = continuation
        self.pid = process.pid
        self.pidfd = process.pidfd
        self.start = start
        self.startBootTicks = startBootTicks
        var own = rusage()
        getrusage(RUSAGE_SELF.rawValue, &own)
        self.spawnerPeak = Int64(own.ru_maxrss) * 1024
        let limits = plan.job.limits.effective
        self.outcome = RunOutcome(limits: plan.job.limits)
        self.outcome.pid = process.pid
        self.outcome.startInstant = start
        self.cgroup = plan.cgroup
        self.captures = plan.captures
        self.outcome.containment = plan.cgroup?.containment ?? .processGroup
        self.outcome.warnings = plan.warnings
        self.outcome.isolated = plan.job.isolation != nil
        self.outcome.seccomp = (plan.job.isolation?.seccomp ?? SeccompProfile.none) != SeccompProfile.none
        self.wallDeadline = limits.wallTime.map { start + $0.nanoseconds }
        self.cpuLimitMicros = limits.cpuTime.map { $0.nanoseconds / 1000 }
        self.nextSample = start + TrackedRun.sampleFirstNanos
        self.nextCPUCheck = cpuLimitMicros.map { start + max(Self.cpuCheckMinimumNanos, $0 * 1000 / Self.cpuCount) } ?? .max
        self.memoryEvents = plan.job.limits.memory != nil ? plan.cgroup?.memoryEvents() : nil
        knownPids.insert(pid)
        sessions.insert(pid)
    }

    /// The main process's pidfd, while its exit is worth waking up for.
    var watchedDescriptor: Int32? {
        phase == .running && mainAlive && pidfd >= 0 ? pidfd : nil
    }

    /// When the reaper must look at this run again, whatever else happens.
    var nextWake: Int64 {
        switch phase {
        case .running:
            if !mainAlive { return 0 }
            return min(nextSample, nextCPUCheck, wallDeadline ?? .max)
        case .draining: return 0
        case .finished: return .max
        }
    }

    /// Whether Corral's children are to be scanned for orphans of this run now: at each
    /// sample, and in process-group mode at each CPU check (an orphan's CPU counts only once
    /// it is adopted; a cgroup counts it anyway).
    var isTickDue: Bool {
        guard phase == .running else { return false }
        let now = MonotonicClock.now()
        return now >= nextSample || (cgroup == nil && now >= nextCPUCheck)
    }

    /// The OOM event descriptor to wake up for while the run goes on, with its poll events.
    var eventDescriptor: (descriptor: Int32, events: Int16)? {
        guard phase == .running, let memoryEvents else { return nil }
        return (memoryEvents.descriptor, memoryEvents.pollEvents)
    }

    /// The memory cgroup signalled an event: an OOM kill ends the run (v2 kills the whole
    /// group itself; on v1 Corral does). The kernel signals before it counts the kill, so
    /// an event with no kill counted yet brings the next sample close.
    func memoryEventSignalled() {
        guard phase == .running, let memoryEvents, let cgroup else { return }
        memoryEvents.acknowledge()
        if cgroup.oomKills() > 0 {
            pendingStop = pendingStop ?? .memory
        } else {
            nextSample = min(nextSample, MonotonicClock.now() + Self.drainPollNanos)
        }
    }
    var isDraining: Bool { phase == .draining || (phase == .running && !mainAlive) }

    /// The capture pipes to wake up for while the run goes on.
    var captureDescriptors: [Int32] {
        phase == .finished ? [] : captures.filter { !$0.atEnd }.map(\.descriptor)
    }

    /// Reads what the captured streams have; a stream past its cap ends the run (unless it truncates).
    func drainCaptures() {
        for capture in captures {
            capture.drain()
            if capture.overLimit && phase == .running { pendingStop = pendingStop ?? .capture }
        }
    }
}
