import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// One run as the reaper sees it. Confined to the reaper thread.
final class TrackedRun {
    enum Phase { case running, draining, finished }

    static let tickNanos: Int64 = 10_000_000
    static let drainPollNanos: Int64 = 1_000_000

    let id: UInt64
    let plan: SpawnPlan
    private let continuation: CheckedContinuation<RunReport, Never>
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
    private var nextTick: Int64
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
         continuation: CheckedContinuation<RunReport, Never>) {
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
        self.cgroup = plan.cgroup
        self.captures = plan.captures
        self.outcome.containment = plan.cgroup?.containment ?? .processGroup
        self.outcome.warnings = plan.warnings
        self.outcome.isolated = plan.job.isolation != nil
        self.outcome.seccomp = (plan.job.isolation?.seccomp ?? SeccompProfile.none) != SeccompProfile.none
        self.wallDeadline = limits.wallTime.map { start + $0.nanoseconds }
        self.cpuLimitMicros = limits.cpuTime.map { $0.nanoseconds / 1000 }
        self.nextTick = start + TrackedRun.tickNanos
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
            return min(nextTick, wallDeadline ?? .max)
        case .draining: return 0
        case .finished: return .max
        }
    }

    var isTickDue: Bool { phase == .running && MonotonicClock.now() >= nextTick }
    var isDraining: Bool { phase == .draining || (phase == .running && !mainAlive) }

    /// The capture pipes to wake up for while the run goes on.
    var captureDescriptors: [Int32] {
        phase == .finished ? [] : captures.filter { !$0.atEnd }.map(\.descriptor)
    }

    /// Reads what the captured streams have; a stream past its cap ends the run.
    func drainCaptures() {
        for capture in captures {
            capture.drain()
            if capture.overflowed && phase == .running { pendingStop = pendingStop ?? .capture }
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
            } else if let deadline = wallDeadline, now >= deadline {
                stop(.wallTime)
            } else if now >= nextTick {
                nextTick = now + Self.tickNanos
                let used = sampleCPU()
                outcome.sampledCPUMicros = max(outcome.sampledCPUMicros, used)
                if let limit = cpuLimitMicros, used > limit {
                    stop(.cpuTime)
                } else if let cgroup, plan.job.limits.memory != nil, cgroup.oomKills() > 0 {
                    // v2 kills the whole group on OOM (memory.oom.group); on v1 Corral does.
                    stop(.memory)
                }
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
        var pending: [Int32] = mainAlive ? [pid] : []
        pending.append(contentsOf: escapees)
        var seen: Set<Int32> = []
        while let process = pending.popLast() {
            guard seen.insert(process).inserted, let stat = ProcFS.stat(process) else { continue }
            ticks += stat.cpuTicks
            memoryPeak = max(memoryPeak, stat.residentPages * ProcFS.pageSize)
            note(process, stat)
            pending.append(contentsOf: ProcFS.children(of: process, threads: stat.threads))
        }
        return reapedMicros + ticks * 1_000_000 / ProcFS.ticksPerSecond
    }

    private func finish() {
        phase = .finished
        // Every writer is gone: what is left in the pipes is all there will be.
        for capture in captures {
            capture.drain()
            if capture.overflowed { outcome.captureOverflows.append((capture.stream, capture.max, capture.isRelay)) }
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
        cgroup?.remove()
        plan.close()
        if pidfd >= 0 { close(pidfd) }
        CgroupParents.tidying.subtract(1, ordering: .sequentiallyConsistent)
    }
}
