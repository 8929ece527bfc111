/// The verdict of a run.
public enum RunStatus: String, Sendable, Hashable, Codable, CaseIterable {
    /// The main process exited with code 0 and no limit was passed.
    case ok
    /// The main process exited with a code other than 0.
    case nonzeroExit = "nonzero-exit"
    /// The main process was ended by a signal that Corral did not send.
    case signaled
    case cpuTimeLimit = "cpu-time-limit"
    case wallTimeLimit = "wall-time-limit"
    case memoryLimit = "memory-limit"
    case outputLimit = "output-limit"
    /// The seccomp filter killed the program (a forbidden system call).
    case syscallViolation = "syscall-violation"
    /// The program could not be started (not found, not executable, a setup step failed).
    case setupError = "setup-error"
    /// The run was cancelled (the task was cancelled, or Corral got SIGINT, SIGTERM or SIGHUP).
    case cancelled

    /// Whether the run ended on one of its limits.
    public var isLimit: Bool {
        switch self {
        case .cpuTimeLimit, .wallTimeLimit, .memoryLimit, .outputLimit: true
        default: false
        }
    }
}

/// What kept the processes of a run together.
public enum Containment: String, Sendable, Hashable, Codable {
    /// A session and process group of their own, plus Corral as child subreaper.
    case processGroup = "process-group"
    /// A cgroup of its own in the unified (v2) hierarchy.
    case cgroupV2 = "cgroup-v2"
    /// Cgroups of its own in the v1 memory, pids, cpuacct and freezer hierarchies.
    case cgroupV1 = "cgroup-v1"
}
