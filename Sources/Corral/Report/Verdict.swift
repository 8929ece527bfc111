import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// The rules that turn what was observed into a status and a sentence. A limit verdict
/// stands whenever the measured use passed the limit, even if the program ended first.
enum Verdict {
    /// How a `syscall-violation` message starts: which call, as far as Corral knows.
    enum ViolatingCall {
        /// Not looked up (yet).
        case unknown
        /// As ``SeccompAudit/describe(_:)`` names it.
        case named(String)
        /// This process cannot read the kernel's audit records.
        case unreadable
        /// No record of the kill arrived.
        case unrecorded
    }

    static func syscallViolationMessage(_ call: ViolatingCall) -> String {
        let unnamed = "killed by the seccomp filter for a forbidden system call"
        switch call {
        case .unknown: return unnamed
        case .named(let name): return "killed by the seccomp filter for calling \(name)"
        case .unreadable: return unnamed + " (not named: the kernel's audit records are root's to read here)"
        case .unrecorded: return unnamed + " (not named: no audit record of it came from the kernel)"
        }
    }

    static func report(for outcome: RunOutcome) -> RunReport {
        let limits = outcome.limits.effective
        let cpuMicros = outcome.userMicros + outcome.systemMicros
        let measuredCPU = max(cpuMicros, outcome.sampledCPUMicros)
        let wall = Double(outcome.wallNanos) / 1e9
        var report = RunReport(
            status: .ok,
            pid: outcome.pid,
            cpuTime: Double(cpuMicros) / 1e6,
            userTime: Double(outcome.userMicros) / 1e6,
            systemTime: Double(outcome.systemMicros) / 1e6,
            wallTime: wall,
            memoryPeak: outcome.memoryPeak,
            processes: outcome.processes,
            leftovers: outcome.leftovers,
            limits: limits,
            containment: outcome.containment,
            processLimitHit: outcome.processLimitHit,
            warnings: outcome.warnings,
            events: outcome.events,
            message: ""
        )
        report.isolated = outcome.isolated
        report.monotonicSpan = outcome.startInstant.map { MonotonicSpan(start: $0, end: $0 + outcome.wallNanos) }
        report.stdout = outcome.standardOutput
        report.stderr = outcome.standardError
        switch outcome.mainEnd {
        case .exited(let code): report.exitCode = code
        case .signaled(let signal):
            report.signal = signal
            report.signalName = signalName(signal)
        case nil: break
        }

        if let failure = outcome.setupFailure {
            report.status = .setupError
            report.error = failure
            report.message = failure.message
            return report
        }

        // A limit verdict comes from Corral's own measurement or its own backstop, for a limit
        // that was set: a SIGXCPU or SIGXFSZ a program sends itself (`kill -XCPU $$`) is a
        // signal like any other. RLIMIT_CPU's SIGXCPU comes only past the limit, which the
        // exact measurement then shows too.
        let cpuPassed = limits.cpuTime.map { measuredCPU > $0.nanoseconds / 1000 } ?? false
        let outputPassed = outcome.outputExceeded || (limits.output != nil && outcome.fatalSignals.contains(SIGXFSZ))
            || !outcome.captureOverflows.isEmpty
        // In a cgroup the kernel holds memory at the limit and OOM-kills past it; with
        // RLIMIT_AS only a measured peak above the limit tells.
        let memoryPassed = outcome.containment == .processGroup
            ? limits.memory.map { outcome.memoryPeak > $0 } ?? false
            : outcome.oomKills > 0
        let wallPassed = limits.wallTime.map { outcome.wallNanos > $0.nanoseconds } ?? false
        let ended = outcome.stopReason != nil ? "killed after" : "used"

        switch outcome.stopReason {
        case .cancelled:
            report.status = .cancelled
            report.message = "cancelled after \(format(seconds: wall)) s; every process of the run was killed"
        case .cpuTime:
            report.status = .cpuTimeLimit
            report.message = cpuMessage("killed after", measuredCPU, limits)
        case .capture:
            report.status = .outputLimit
            report.message = captureMessage(outcome) + "; killed"
        case .memory:
            report.status = .memoryLimit
            report.message = memoryMessage(outcome, limits)
        case .wallTime:
            report.status = .wallTimeLimit
            report.message = "killed after \(format(seconds: wall)) s of wall time (limit \(format(limits.wallTime)) s)"
        case nil:
            if cpuPassed {
                report.status = .cpuTimeLimit
                let verb = outcome.fatalSignals.contains(SIGXCPU) ? "stopped by RLIMIT_CPU (SIGXCPU) after" : ended
                report.message = cpuMessage(verb, measuredCPU, limits)
            } else if outputPassed {
                report.status = .outputLimit
                report.message = !outcome.captureOverflows.isEmpty ? captureMessage(outcome) + (outcome.captureOverflows.contains { $0.relayed } ? "; the output was cut at the limit" : "; the capture was cut at the cap") : "tried to write more than \(format(bytes: limits.output ?? 0)) to a file (limit \(limits.output ?? 0) bytes); the output was cut at the limit"
            } else if memoryPassed {
                report.status = .memoryLimit
                report.message = memoryMessage(outcome, limits)
            } else if wallPassed {
                report.status = .wallTimeLimit
                report.message = "ran for \(format(seconds: wall)) s of wall time (limit \(format(limits.wallTime)) s)"
            } else {
                switch outcome.mainEnd {
                case .exited(0):
                    report.status = .ok
                    report.message = "exited with code 0"
                case .exited(let code):
                    report.status = .nonzeroExit
                    report.message = "exited with code \(code)"
                case .signaled(SIGSYS) where outcome.seccomp:
                    report.status = .syscallViolation
                    report.violatorPid = outcome.programPid
                    report.message = syscallViolationMessage(.unknown)
                case .signaled(let signal):
                    report.status = .signaled
                    report.message = "killed by \(signalName(signal) ?? "signal \(signal)") (signal \(signal))"
                case nil:
                    report.status = .cancelled
                    report.message = "the main process was lost"
                }
                report.message += " after \(format(seconds: wall)) s (\(format(seconds: Double(cpuMicros) / 1e6)) s of CPU time)"
            }
        }
        if outcome.leftovers > 0 {
            let noun = outcome.leftovers == 1 ? "process" : "processes"
            report.message += "; \(outcome.leftovers) leftover \(noun) killed"
        }
        return report
    }

    private static func captureMessage(_ outcome: RunOutcome) -> String {
        outcome.captureOverflows.map { "wrote more than \($0.max) bytes to \($0.stream) (\($0.relayed ? "output limit" : "cap") \($0.max) bytes)" }
            .joined(separator: " and ")
    }

    private static func memoryMessage(_ outcome: RunOutcome, _ limits: Limits) -> String {
        let limit = format(bytes: limits.memory ?? 0)
        if outcome.oomKills > 0 {
            let noun = outcome.oomKills == 1 ? "process" : "processes"
            return "out of memory: the kernel killed \(outcome.oomKills) \(noun) at the memory limit (limit \(limit), peak \(format(bytes: outcome.memoryPeak)))"
        }
        return "used \(format(bytes: outcome.memoryPeak)) of memory (limit \(limit))"
    }

    private static func cpuMessage(_ verb: String, _ micros: Int64, _ limits: Limits) -> String {
        "\(verb) \(format(seconds: Double(micros) / 1e6)) s of CPU time (limit \(format(limits.cpuTime)) s)"
    }

    static func signalName(_ signal: Int32) -> String? {
        corral_signal_name(signal).map { String(cString: $0) }
    }

    static func format(_ duration: Duration?) -> String {
        format(seconds: duration?.seconds ?? 0)
    }

    /// At most three decimals, trailing zeros dropped: 1.024, 1, 0.5, 0.003.
    static func format(seconds: Double) -> String {
        let scaled = Int64((seconds * 1000).rounded())
        var fraction = String(scaled % 1000)
        while fraction.count < 3 { fraction = "0" + fraction }
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return fraction.isEmpty ? String(scaled / 1000) : "\(scaled / 1000).\(fraction)"
    }

    static func format(bytes: UInt64) -> String {
        let units: [(String, UInt64)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        for (name, size) in units where bytes >= size {
            let value = Double(bytes) / Double(size)
            let text = value == value.rounded() ? String(Int64(value)) : String(format1(value))
            return "\(text) \(name)"
        }
        return "\(bytes) bytes"
    }

    private static func format1(_ value: Double) -> String {
        let tenths = (value * 10).rounded()
        return "\(Int64(tenths / 10)).\(Int64(tenths) % 10)"
    }
}
