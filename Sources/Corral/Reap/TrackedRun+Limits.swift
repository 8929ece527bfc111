#if canImport(Glibc)
import Glibc
#endif

/// The run's limits (CPU, wall, OOM) and its end: stopping it and killing every process.
extension TrackedRun {
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
        // Freezing costs the kernel a code patch on every CPU (and the thaw another), and
        // waits for each process to reach the freezer: a killed one that has not run yet
        // holds it up. It is needed only for a process Corral cannot be sure it killed.
        // The main process (a session leader: it cannot leave its group) died with the
        // group kill, which a fork cannot race; escapees were killed by pid; both are
        // Corral's unreaped children, so their pids are still theirs, and a process with
        // SIGKILL pending cannot fork. A cgroup that lists nothing else needs no freeze:
        // it is listed again at the next round, until it is empty.
        let listed = cgroup.members()
        let members: [Int32]
        if listed.allSatisfy({ ($0 == pid && mainAlive) || escapees.contains($0) }) {
            members = listed
        } else {
            members = cgroup.killAll()
        }
        for member in members { knownPids.insert(member) }
        return members.isEmpty
    }

    static func kill(_ process: Int32) {
        _ = Glibc.kill(process, SIGCONT)
        _ = Glibc.kill(process, SIGKILL)
    }

    /// User + system CPU of the whole run now, in microseconds: what Corral reaped, plus
    /// every live process of the tree (its own time and that of children it reaped).
    private func sampleCPU() -> Int64 {
        if let cgroup, let total = cgroup.cpuTotal() {
            for member in cgroup.members() { knownPids.insert(member) }
            if let current = cgroup.memoryCurrent() { memoryPeak = max(memoryPeak, Int64(current)) }
            return total
        }
        var ticks: Int64 = 0
        var micros: Int64 = 0
        var pending: [Int32] = mainAlive ? [pid] : []
        pending.append(contentsOf: escapees)
        var seen: Set<Int32> = []
        while let process = pending.popLast() {
            guard seen.insert(process).inserted else { continue }
            let files = process == pid && mainAlive ? openMainFiles() : nil
            guard let stat = files.map({ $0.stat.read(ProcFS.parseStat) ?? nil }) ?? ProcFS.stat(process) else { continue }
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
            if let files, stat.threads <= 1 {
                pending.append(contentsOf: files.children.read(ProcFS.parsePids) ?? [])
            } else {
                pending.append(contentsOf: ProcFS.children(of: process, threads: stat.threads))
            }
        }
        return reapedMicros + micros + ticks * 1_000_000 / ProcFS.ticksPerSecond
    }

    /// The main process's procfs files, opened the first time (nil once it is reaped).
    private func openMainFiles() -> ProcessFiles? {
        if let opened = mainFiles { return opened }
        let files = ProcessFiles(pid)
        mainFiles = .some(files)
        return files
    }
}
