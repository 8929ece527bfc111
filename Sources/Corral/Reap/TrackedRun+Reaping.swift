import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// Reaping a run's children and knowing which processes belong to it.
extension TrackedRun {
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
            mainFiles = .some(nil)
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
}
