/// How the main process ended.
enum MainEnd: Sendable, Hashable {
    case exited(Int32)
    case signaled(Int32)
}

/// Why Corral itself ended a run early.
enum StopReason: Sendable, Hashable {
    case cpuTime
    case wallTime
    case memory
    /// A captured stream passed its cap.
    case capture
    case cancelled
}

/// The raw facts the reaper gathered about a run; ``Verdict`` turns them into a report.
struct RunOutcome: Sendable {
    var limits: Limits
    var pid: Int32?
    var mainEnd: MainEnd?
    var setupFailure: SetupFailure?
    var stopReason: StopReason?
    /// Microseconds, summed over every process Corral reaped.
    var userMicros: Int64 = 0
    var systemMicros: Int64 = 0
    /// The highest CPU total sampled while the run was alive, in microseconds.
    var sampledCPUMicros: Int64 = 0
    var wallNanos: Int64 = 0
    /// CLOCK_MONOTONIC (ns) just before the clone: where `wallNanos` counts from; nil when
    /// no spawn was attempted.
    var startInstant: Int64?
    var memoryPeak: UInt64 = 0
    var processes = 0
    var leftovers = 0
    var events: [ProcessEvent] = []
    /// Signals that ended any process of the run.
    var fatalSignals: Set<Int32> = []
    /// A redirected file grew past the output limit (and was cut back to it).
    var outputExceeded = false
    var containment: Containment = .processGroup
    var isolated = false
    /// A seccomp filter was installed.
    var seccomp = false
    /// An isolated run's program, by its pid outside the namespace (it said so at start).
    var programPid: Int32?
    /// OOM kills in the run's cgroup.
    var oomKills: UInt64 = 0
    var processLimitHit = false
    var warnings: [String] = []
    var standardOutput: CapturedOutput?
    var standardError: CapturedOutput?
    /// Captured or relayed streams that passed their cap (relay: the output limit).
    var captureOverflows: [(stream: String, max: UInt64, relayed: Bool)] = []

    init(limits: Limits) {
        self.limits = limits
    }
}
