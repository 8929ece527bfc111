/// What happened in a run: the verdict, the figures and every state change Corral saw.
/// Times are in seconds, sizes in bytes.
public struct RunReport: Sendable, Hashable, Codable {
    public var status: RunStatus
    /// The main process's pid, which is also the run's process group and session id;
    /// `nil` when nothing was started.
    public var pid: Int32?
    /// The main process's exit code; `nil` when it did not exit by itself.
    public var exitCode: Int32?
    /// The signal that ended the main process, and its name; `nil` unless it died of one.
    public var signal: Int32?
    public var signalName: String?
    /// User plus system time of every process of the run.
    public var cpuTime: Double
    public var userTime: Double
    public var systemTime: Double
    /// From spawn until the main process ended.
    public var wallTime: Double
    /// The largest resident set of any process of the run (process-group mode).
    public var memoryPeak: UInt64
    /// How many processes of the run Corral saw.
    public var processes: Int
    /// Processes of the run still alive when the main process ended, which Corral killed.
    public var leftovers: Int
    /// The limits in force, defaults filled in.
    public var limits: Limits
    public var containment: Containment
    /// The program ran in namespaces of its own as an unprivileged user (``Job/isolation``).
    public var isolated: Bool = false
    /// A fork or clone failed at the process limit (`pids.events`).
    public var processLimitHit: Bool
    /// Things the caller should know, e.g. that cgroups were not usable.
    public var warnings: [String]
    public var events: [ProcessEvent]
    /// One sentence: what happened and why.
    public var message: String
    /// Why the program could not be started, for `setup-error`.
    public var error: SetupFailure?
    /// Captured standard output and error (``Output/capture(max:)``); nil otherwise.
    public var stdout: CapturedOutput?
    public var stderr: CapturedOutput?
    /// For `syscall-violation`: the killed program's pid outside its namespace, to find the
    /// kernel's record of the kill by (``SeccompAudit``). Not part of the JSON.
    var violatorPid: Int32?
    /// CLOCK_MONOTONIC at the spawn and when the main process's end was seen (`wallTime`
    /// apart), for a job's clock (``NamedRunReport/startedAt``); nil when nothing was
    /// spawned. Not part of the JSON.
    var monotonicSpan: MonotonicSpan?

    public init(
        status: RunStatus, pid: Int32? = nil, exitCode: Int32? = nil, signal: Int32? = nil, signalName: String? = nil,
        cpuTime: Double = 0, userTime: Double = 0, systemTime: Double = 0, wallTime: Double = 0,
        memoryPeak: UInt64 = 0, processes: Int = 0, leftovers: Int = 0, limits: Limits = Limits(),
        containment: Containment = .processGroup, processLimitHit: Bool = false, warnings: [String] = [], events: [ProcessEvent] = [], message: String,
        error: SetupFailure? = nil
    ) {
        self.status = status
        self.pid = pid
        self.exitCode = exitCode
        self.signal = signal
        self.signalName = signalName
        self.cpuTime = cpuTime
        self.userTime = userTime
        self.systemTime = systemTime
        self.wallTime = wallTime
        self.memoryPeak = memoryPeak
        self.processes = processes
        self.leftovers = leftovers
        self.limits = limits
        self.containment = containment
        self.processLimitHit = processLimitHit
        self.warnings = warnings
        self.events = events
        self.message = message
        self.error = error
    }

    /// The exit code `corral run` gives for this report: the program's own code when it
    /// exited, 128 + N for a signal N that Corral did not send, 124 for a limit, 126 when
    /// the program is not executable, 127 when it is not found, 125 for other setup
    /// errors, 130 when cancelled.
    public var commandExitCode: Int32 {
        switch status {
        case .ok, .nonzeroExit: exitCode ?? 0
        case .signaled: 128 + (signal ?? 0)
        case .syscallViolation: 128 + 31 // SIGSYS
        case .cpuTimeLimit, .wallTimeLimit, .memoryLimit, .outputLimit: 124
        case .cancelled: 130
        case .setupError:
            if error?.isNotFound == true { 127 } else if error?.isNotExecutable == true { 126 } else { 125 }
        }
    }

    enum CodingKeys: String, CodingKey {
        case status, pid, exitCode, signal, signalName, cpuTime, userTime, systemTime, wallTime, memoryPeak
        case processes, leftovers, limits, containment, isolated, processLimitHit, warnings, events, message, error
        case stdout, stderr
    }

    /// Every key is always present; absent values are `null`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(status, forKey: .status)
        try container.encode(pid, forKey: .pid)
        try container.encode(exitCode, forKey: .exitCode)
        try container.encode(signal, forKey: .signal)
        try container.encode(signalName, forKey: .signalName)
        try container.encode(cpuTime, forKey: .cpuTime)
        try container.encode(userTime, forKey: .userTime)
        try container.encode(systemTime, forKey: .systemTime)
        try container.encode(wallTime, forKey: .wallTime)
        try container.encode(memoryPeak, forKey: .memoryPeak)
        try container.encode(processes, forKey: .processes)
        try container.encode(leftovers, forKey: .leftovers)
        try container.encode(limits, forKey: .limits)
        try container.encode(containment, forKey: .containment)
        try container.encode(isolated, forKey: .isolated)
        try container.encode(processLimitHit, forKey: .processLimitHit)
        try container.encode(warnings, forKey: .warnings)
        try container.encode(events, forKey: .events)
        try container.encode(message, forKey: .message)
        try container.encode(error, forKey: .error)
        try container.encode(stdout, forKey: .stdout)
        try container.encode(stderr, forKey: .stderr)
    }
}

/// Two CLOCK_MONOTONIC readings in nanoseconds.
struct MonotonicSpan: Sendable, Hashable {
    let start: Int64
    let end: Int64

    /// Seconds from `zero` to the start and to the end.
    func seconds(since zero: Int64) -> (start: Double, end: Double) {
        (Double(start - zero) / 1e9, Double(end - zero) / 1e9)
    }
}
