import Corral

/// The most a job may ask of this server, per process. Each is finite: a job that asks for
/// more is refused (400), never silently clamped.
public struct Ceilings: Sendable, Hashable {
    public var cpuTime: Duration
    public var wallTime: Duration
    /// Bytes of memory of a run (the cgroup limit).
    public var memory: UInt64
    /// Bytes: `limits.output`, and the `max` of every capture and collected file.
    public var output: UInt64
    /// Processes and threads of a run at once.
    public var processes: UInt64
    /// Entries of a job's `processes` (each a run of its own, all at once, in one slot).
    public var jobProcesses: Int
    /// Tests of one step of a job of steps (each a run, one after another, in one slot).
    public var stepTests: Int
    /// The longest a job may hold its slot by its own limits: the wall times of its steps,
    /// each test's processes and checker in turn (``JobAdmission``).
    public var jobTime: Duration

    public init(cpuTime: Duration = .seconds(60), wallTime: Duration = .seconds(300), memory: UInt64 = 8 << 30,
                output: UInt64 = 64 << 20, processes: UInt64 = 1024, jobProcesses: Int = 16,
                stepTests: Int = StepsSpec.defaultMaxTestsPerStep, jobTime: Duration = .seconds(3600)) {
        self.cpuTime = cpuTime
        self.wallTime = wallTime
        self.memory = memory
        self.output = output
        self.processes = processes
        self.jobProcesses = jobProcesses
        self.stepTests = stepTests
        self.jobTime = jobTime
    }

    /// When a job still in its slot is stopped: `jobTime` and a tenth more, and a second (a
    /// job's runs are admitted up to `jobTime` by their wall times; what Corral does between
    /// them takes a few milliseconds a run).
    public var jobDeadline: Duration { jobTime + jobTime / 10 + .seconds(1) }

    func validate() throws(ServerError) {
        guard cpuTime > .zero else { throw ServerError("--max-cpu-time must be greater than zero") }
        guard wallTime > .zero else { throw ServerError("--max-wall-time must be greater than zero") }
        guard memory > 0 else { throw ServerError("--max-memory must be greater than zero") }
        guard output > 0 else { throw ServerError("--max-output must be greater than zero") }
        guard processes > 0 else { throw ServerError("--max-processes must be greater than zero") }
        guard jobProcesses > 0 else { throw ServerError("--max-job-processes must be greater than zero") }
        guard stepTests > 0 else { throw ServerError("--max-tests must be greater than zero") }
        guard jobTime > .zero else { throw ServerError("--max-job-time must be greater than zero") }
    }
}

/// What a process gets for a limit its job leaves out.
public struct JobDefaults: Sendable, Hashable {
    public var cpuTime: Duration
    /// Nil: 2 × the CPU time + 1 s, at most the wall-time ceiling.
    public var wallTime: Duration?
    public var memory: UInt64
    public var output: UInt64
    public var processes: UInt64

    public init(cpuTime: Duration = .seconds(10), wallTime: Duration? = nil, memory: UInt64 = 512 << 20,
                output: UInt64 = 16 << 20, processes: UInt64 = 64) {
        self.cpuTime = cpuTime
        self.wallTime = wallTime
        self.memory = memory
        self.output = output
        self.processes = processes
    }

    /// The wall time of a process that sets none: `wallTime`, else 2 × its CPU time + 1 s,
    /// at most the wall-time ceiling.
    func wallTime(forCPU cpu: Duration, under ceilings: Ceilings) -> Duration {
        wallTime ?? min(cpu * 2 + .seconds(1), ceilings.wallTime)
    }

    func validate(against ceilings: Ceilings) throws(ServerError) {
        func check(_ ok: Bool, _ name: String) throws(ServerError) {
            guard ok else { throw ServerError("--default-\(name) must be greater than zero and at most --max-\(name)") }
        }
        try check(cpuTime > .zero && cpuTime <= ceilings.cpuTime, "cpu-time")
        if let wallTime { try check(wallTime > .zero && wallTime <= ceilings.wallTime, "wall-time") }
        try check(memory > 0 && memory <= ceilings.memory, "memory")
        try check(output > 0 && output <= ceilings.output, "output")
        try check(processes > 0 && processes <= ceilings.processes, "processes")
        let wall = wallTime(forCPU: cpuTime, under: ceilings)
        guard wall <= ceilings.jobTime else {
            throw ServerError("--max-job-time \(LimitValue.describe(ceilings.jobTime)) is shorter than the wall time a process gets by default "
                              + "(\(LimitValue.describe(wall)): --default-wall-time, else 2 × --default-cpu-time + 1 s): every job that does not set one would be refused")
        }
    }
}
