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
    private let continuation: RunCompletion
    /// The main process; also the process group and session id of the run.
    let pid: Int32
    let pidfd: Int32
    let start: Int64
    /// When the run started, in clock ticks after boot (the unit of /proc starttime).
    let startBootTicks: UInt64
    /// The run's cgroup: what belongs to the run, what it used, how to kill it all.
    let cgroup: (any RunCgroup)?
    private(set) var phase: Phase = .running
    private(set) var mainAlive = true
    private var outcome: RunOutcome
    /// Every pid of the run Corral has seen.
    private(set) var knownPids: Set<Int32> = []
    /// Sessions of the run: its own, and those its processes created with setsid.
    private(set) var sessions: Set<Int32> = []
    /// Children of Corral, re-parented to it, that belong to the run (in its group or not).
    private(set) var escapees: Set<Int32> = []
    /// Captured streams, drained as they fill.
    let captures: [Capture]
    /// A limit seen while reaping, acted on in ``advance(scan:)``.
    private var pendingStop: StopReason?
    /// When the run's processes are looked at next (``sampleFirstNanos``).
    private var nextSample: Int64
    private var sampleInterval = TrackedRun.sampleFirstNanos
    /// The earliest moment the run can have used up its CPU limit (``checkCPU(_:)``).
    private var nextCPUCheck: Int64
    /// Polled for the memory cgroup's OOM events (v1 eventfd, v2 `memory.events`).
    private let memoryEvents: CgroupMemoryEvents?
    private let wallDeadline: Int64?
    private let cpuLimitMicros: Int64?
    private var reapedMicros: Int64 = 0
    /// The largest resident set seen, in bytes: sampled from /proc, and from rusage.
    private var memoryPeak: Int64 = 0
    /// Corral's own peak resident set when it spawned the main process. The main process
    /// was cloned with CLONE_VM, and execve folds the old (Corral's) memory's peak into
    /// the child's ru_maxrss, so the main's ru_maxrss is its own only when larger.
    private let spawnerPeak: Int64

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

    // MARK: Reaping

    /// Collects every state change of the run's children that is waiting: the group (the
    /// main process and re-parented members) and the escapees, one at a time.
    func reap() {
        let options = corral_wall() | WNOHANG | WUNTRACED | WCONTINUED
        while true {
            let result = corral_wait4(-pid, options)
            guard result.pid > 0 else { break }
            record(result)
        }
        for escapee in escapees {
            while escapees.contains(escapee) {
                let result = corral_wait4(escapee, options)
                guard result.pid > 0 else {
                    // ECHILD: it is not our child any more (or never was); stop tracking it.
                    if result.pid < 0 && errno == ECHILD { escapees.remove(escapee) }
                    break
                }
                record(result)
            }
        }
    }

    private func record(_ result: corral_wait_result) {
        let now = MonotonicClock.now()
        guard let status = WaitStatus(result.status) else { return }
        knownPids.insert(result.pid)
        let time = Double(now - start) / 1e9
        switch status {
        case .exited(let code):
            outcome.events.append(ProcessEvent(time: time, pid: result.pid, event: .exited, exitCode: code))
        case .signaled(let signal):
            outcome.events.append(ProcessEvent(time: time, pid: result.pid, event: .signaled, signal: signal))
            outcome.fatalSignals.insert(signal)
        case .stopped(let signal):
            outcome.events.append(ProcessEvent(time: time, pid: result.pid, event: .stopped, signal: signal))
        case .continued:
            outcome.events.append(ProcessEvent(time: time, pid: result.pid, event: .continued))
        }
        guard status.isTermination else { return }
        let usage = result.usage
        let user = Int64(usage.ru_utime.tv_sec) * 1_000_000 + Int64(usage.ru_utime.tv_usec)
        let system = Int64(usage.ru_stime.tv_sec) * 1_000_000 + Int64(usage.ru_stime.tv_usec)
        outcome.userMicros += user
        outcome.systemMicros += system
        // The RLIMIT_CPU backstop fired in this process: the kernel saw the limit passed. A
        // SIGXCPU the program sent itself (`kill -XCPU $$`) comes with less CPU than the limit.
        if case .signaled(SIGXCPU) = status, let limit = plan.job.limits.cpuTime, user + system >= limit.nanoseconds / 1000 {
            pendingStop = .cpuTime
        }
        reapedMicros += user + system
        let peak = Int64(usage.ru_maxrss) * 1024
        if result.pid != pid || peak > spawnerPeak {
            memoryPeak = max(memoryPeak, peak)
        }
        escapees.remove(result.pid)
        if result.pid == pid {
            mainAlive = false
            outcome.wallNanos = now - start
            switch programStatus() ?? status {
            case .exited(let code): outcome.mainEnd = .exited(code)
            case .signaled(let signal):
                outcome.mainEnd = .signaled(signal)
                outcome.fatalSignals.insert(signal)
            default: break
            }
        } else if phase == .draining, case .signaled(SIGKILL) = status {
            outcome.leftovers += 1
        }
    }

    // MARK: Membership

    /// A process found in /proc that belongs to the run.
    func note(_ process: Int32, _ stat: ProcessStat) {
        knownPids.insert(process)
        sessions.insert(stat.session)
    }

    /// In an isolated run the main process is Corral's init; the program's own end is what
    /// the init forwarded (nil when the init was killed before the program ended).
    private func programStatus() -> WaitStatus? {
        guard let channel = plan.statusChannel else { return nil }
        while true {
            var message: (Int32, Int32) = (0, 0)
            var sender: pid_t = 0
            let count = corral_status_receive(channel, &message, UInt(MemoryLayout<(Int32, Int32)>.size), &sender)
            guard count == MemoryLayout<(Int32, Int32)>.size else { return nil }
            if message.0 == CORRAL_STATUS_HELLO {
                // The program, before exec: the kernel put its pid (as Corral sees it) on it.
                if sender > 0 { outcome.programPid = sender }
                continue
            }
            // The rest of the namespace died with the init.
            outcome.leftovers += Int(max(0, message.1))
            return WaitStatus(message.0)
        }
    }

    /// A child of Corral's (re-parented to it) that belongs to the run: sampled, waited for
    /// by pid (members of the group are also reaped by wait4(-pgid)), and killed at the end.
    func adopt(_ process: Int32, _ stat: ProcessStat) {
        note(process, stat)
        escapees.insert(process)
        if phase == .draining { Self.kill(process) }
    }

    /// Whether an unknown child of Corral's clearly belongs to this run.
    func claims(_ process: Int32, _ stat: ProcessStat) -> Bool {
        stat.group == pid || sessions.contains(stat.session) || knownPids.contains(process)
    }

    // MARK: Limits and the end of the run

    /// Checks the clock and the CPU budget; drives the end of the run. `scan` looks for
    /// re-parented children (it must run after the last reap and before the end is decided).
    func advance(scan: () -> Void) {
        let now = MonotonicClock.now()
        if phase == .running, let reason = pendingStop {
            stop(reason)
        }
        if phase == .running {
            if !mainAlive {
                phase = .draining
            } else {
                // At the wall limit the CPU is checked first: a run already past its CPU
                // limit then (between two checks) ends on that.
                let wallPassed = wallDeadline.map { now >= $0 } ?? false
                if now >= nextCPUCheck || wallPassed { checkCPU(now) }
                if phase == .running && wallPassed { stop(.wallTime) }
                if phase == .running && now >= nextSample { sample(now) }
            }
        }
        guard phase == .draining else { return }
        // A cgroup nobody is left in stays empty: no process can join it from outside.
        let cgroupEmpty = killEverything()
        scan()
        if escapees.isEmpty && Glibc.kill(-pid, 0) != 0 && errno == ESRCH && cgroupEmpty {
            finish()
        }
    }

    /// The CPU limit: the run is stopped once past it; otherwise the next check comes when
    /// the run could reach it at the earliest, with every CPU busy for it from now on. A
    /// check in cgroup mode is one read of the cgroup's CPU total.
    private func checkCPU(_ now: Int64) {
        guard let limit = cpuLimitMicros else { return }
        let exact = cgroup?.cpuTotal()
        let used = exact ?? sampleCPU()
        outcome.sampledCPUMicros = max(outcome.sampledCPUMicros, used)
        if used > limit {
            stop(.cpuTime)
            return
        }
        let allowance = Self.cpuCheckAllowanceMicros
        nextCPUCheck = now + max(Self.cpuCheckMinimumNanos, (limit - used + allowance) * 1000 / Self.cpuCount)
    }

    /// Looks at the run's processes: its members and memory (and CPU, for the report), and,
    /// where no OOM event can be had, an OOM kill.
    private func sample(_ now: Int64) {
        sampleInterval = min(sampleInterval * Self.sampleGrowth, Self.sampleMaxNanos)
        nextSample = now + sampleInterval
        outcome.sampledCPUMicros = max(outcome.sampledCPUMicros, sampleCPU())
        if let cgroup, plan.job.limits.memory != nil, cgroup.oomKills() > 0 {
            // v2 kills the whole group on OOM (memory.oom.group); on v1 Corral does.
            stop(.memory)
        }
    }

    /// Ends the run early for `reason`: kills every process of it.
    func stop(_ reason: StopReason) {
        guard phase == .running else { return }
        if outcome.stopReason == nil { outcome.stopReason = reason }
        if reason == .cpuTime {
            outcome.sampledCPUMicros = max(outcome.sampledCPUMicros, sampleCPU())
        }
        phase = .draining
        killEverything()
    }

    /// Returns whether the run's cgroup (if any) had no process left in it.
    @discardableResult
    private func killEverything() -> Bool {
        // A stopped process is continued, then killed; the group kill is atomic against
        // fork, and escapees are our own unreaped children, so their pids cannot be reused.
        _ = Glibc.kill(-pid, SIGCONT)
        _ = Glibc.kill(-pid, SIGKILL)
        for escapee in escapees { Self.kill(escapee) }
        guard let cgroup else { return true }
        let members = cgroup.killAll()
        for member in members { knownPids.insert(member) }
        return members.isEmpty
    }

    private static func kill(_ process: Int32) {
        _ = Glibc.kill(process, SIGCONT)
        _ = Glibc.kill(process, SIGKILL)
    }

    /// User + system CPU of the whole run now, in microseconds: what Corral reaped, plus
    /// every live process of the tree (its own time and that of children it reaped).
    private func sampleCPU() -> Int64 {
        if let cgroup, let cpu = cgroup.cpu() {
            for member in cgroup.members() { knownPids.insert(member) }
            if let current = cgroup.memoryCurrent() { memoryPeak = max(memoryPeak, Int64(current)) }
            return cpu.total
        }
        var ticks: Int64 = 0
        var micros: Int64 = 0
        var pending: [Int32] = mainAlive ? [pid] : []
        pending.append(contentsOf: escapees)
        var seen: Set<Int32> = []
        while let process = pending.popLast() {
            guard seen.insert(process).inserted, let stat = ProcFS.stat(process) else { continue }
            // Its own CPU exactly (no tick's lag: the check schedule can come close to the
            // limit); what it reaped only in ticks.
            if let own = ProcFS.ownCPUMicros(process) {
                micros += own
                ticks += stat.reapedChildrenTicks
            } else {
                ticks += stat.cpuTicks
            }
            memoryPeak = max(memoryPeak, stat.residentPages * ProcFS.pageSize)
            note(process, stat)
            pending.append(contentsOf: ProcFS.children(of: process, threads: stat.threads))
        }
        return reapedMicros + micros + ticks * 1_000_000 / ProcFS.ticksPerSecond
    }

    private func finish() {
        phase = .finished
        // Every writer is gone: what is left in the pipes is all there will be.
        for capture in captures {
            capture.drain()
            if capture.overLimit { outcome.captureOverflows.append((capture.stream, capture.max, capture.isRelay)) }
            if let error = capture.sinkError {
                outcome.warnings.append("\(capture.stream): writing to the inherited file failed (\(SetupFailure.describe(error))); the rest was dropped")
            }
            guard !capture.isRelay else { continue }
            if capture.stream == "stdout" { outcome.standardOutput = capture.output } else { outcome.standardError = capture.output }
        }
        if let limit = plan.job.limits.output {
            for fd in plan.outputFiles {
                var info = stat()
                if fstat(fd, &info) == 0, UInt64(info.st_size) > limit {
                    outcome.outputExceeded = true
                    _ = ftruncate(fd, off_t(limit))
                }
            }
        }
        outcome.processes = knownPids.count
        outcome.memoryPeak = UInt64(max(0, memoryPeak))
        if let cgroup {
            // The cgroup saw every process of the run, reaped by us or not.
            if let cpu = cgroup.cpu() {
                outcome.userMicros = cpu.user
                outcome.systemMicros = max(0, cpu.total - cpu.user)
            }
            outcome.memoryPeak = cgroup.memoryPeak() ?? outcome.memoryPeak
            outcome.oomKills = cgroup.oomKills()
            outcome.processLimitHit = cgroup.processLimitHits() > 0
        }
        // Tidying after the report is out overlaps with whatever the caller does next; the
        // exit hook waits for it (``CgroupParents/releaseAll()``).
        CgroupParents.tidying.add(1, ordering: .sequentiallyConsistent)
        continuation.resume(returning: Verdict.report(for: outcome))
        memoryEvents?.close()
        cgroup?.remove()
        plan.close()
        if pidfd >= 0 { close(pidfd) }
        CgroupParents.tidying.subtract(1, ordering: .sequentiallyConsistent)
    }
}
