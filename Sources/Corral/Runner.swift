#if canImport(Glibc)
import Glibc
#endif

/// Runs jobs. Every run gets a session and process group of its own and, where the host
/// allows, a cgroup of its own (v2, or v1) that decides what belongs to the run, what it
/// used and when it is over. Runs are tracked by one reaper thread for the whole process
/// and end with a ``RunReport`` and no process of them left alive.
///
/// ```swift
/// let report = try await Runner().run(Job(arguments: ["/bin/echo", "hello"],
///                                         limits: Limits(cpuTime: .seconds(1))))
/// print(report.status, report.cpuTime)
/// ```
///
/// Cancelling the calling task kills the run; the report then has status `cancelled`.
/// A program that fails is a report, not an error: `run` throws only when the job is
/// invalid or Corral cannot start its reaper.
///
/// Corral makes the calling process a child subreaper (`PR_SET_CHILD_SUBREAPER`), so that
/// orphans of a run come back to it. A process of the host that is re-parented to it and
/// lives in the host's own session is never touched.
public struct Runner: Sendable {
    public let configuration: RunnerConfiguration

    public init(configuration: RunnerConfiguration = RunnerConfiguration()) {
        self.configuration = configuration
    }

    public func run(_ job: Job) async throws(CorralError) -> RunReport {
        try await run(job, descriptors: [:])
    }

    /// The same; `stop` can stop the run from outside the calling task (``RunStop``).
    public func run(_ job: Job, stop: RunStop) async throws(CorralError) -> RunReport {
        try await run(job, descriptors: [:], stop: stop)
    }

    /// `descriptors`: more of the child's descriptors (target → an open descriptor this
    /// run takes over and closes, e.g. a pipe end of a job). `directory`: the working
    /// directory as an O_PATH descriptor this run takes over (a job's, opened beneath the
    /// job's directory), instead of ``Job/workingDirectory``'s path.
    func run(_ job: Job, descriptors: [Int32: Int32], directory: Int32? = nil, stop: RunStop? = nil) async throws(CorralError) -> RunReport {
        var handed = descriptors
        var directory = directory
        defer {
            for fd in handed.values { _ = close(fd) }
            if let directory { _ = close(directory) }
        }
        try job.validate()
        let supervisor = try Supervisor.shared.get()
        // A run that names no user gets one of its own from the configured range.
        var job = job
        var lease: UserLease?
        defer { lease?.release() }
        if let range = configuration.userRange, job.user == nil, job.isolation?.uid == nil, geteuid() == 0 {
            do {
                lease = try UserLease.acquire(range)
                job.user = lease?.user
            } catch {
                return Self.failed(job, SetupFailure(stage: "privileges", errno: 0, message: error.message), warnings: [])
            }
        }
        var cgroup: (any RunCgroup)?
        var warnings: [String] = []
        switch CgroupSetup.make(for: job, configuration: configuration) {
        case .cgroup(let made):
            cgroup = made
            RunGuard.watch(made.directories)
        case .processGroup(let warning): warnings += warning.map { [$0] } ?? []
        case .failure(let failure):
            return Self.failed(job, failure, warnings: warnings)
        }
        defer { if let cgroup { RunGuard.release(cgroup.directories) } }
        let plan: SpawnPlan
        let made = SpawnPlan.make(job, cgroup: cgroup, warnings: warnings, descriptors: handed, directory: directory,
                                   initExecutable: configuration.initExecutable)
        handed = [:] // the plan owns them now, made or not
        directory = nil
        switch made {
        case .success(let made): plan = made
        case .failure(let failure):
            cgroup?.closeJoinDescriptors()
            cgroup?.remove()
            return Self.failed(job, failure, warnings: warnings)
        }
        let id = supervisor.nextID()
        let cancellation = RunCancellation(stop: stop)
        if let stop, !stop.register(id) { cancellation.cancel() } // ends it before it starts
        defer { stop?.unregister(id) }
        // The kernel's audit records of a seccomp kill, listened to from before the program starts.
        let audit = job.isolation.map { $0.seccomp != .none } == true ? SeccompAudit.listen() : nil
        defer { audit?.close() }
        let report = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                supervisor.submit(.start(id: id, plan: plan, cancellation: cancellation, continuation: continuation))
            }
        } onCancel: {
            cancellation.cancel()
            supervisor.submit(.cancel(id: id))
        }
        return await Self.nameViolation(report, audit: audit)
    }

    /// A `syscall-violation` report names the call where the kernel's audit record of it can be read.
    private static func nameViolation(_ report: RunReport, audit: SeccompAudit.Source?) async -> RunReport {
        let unknown = Verdict.syscallViolationMessage(.unknown)
        guard report.status == .syscallViolation, report.message.hasPrefix(unknown) else { return report }
        let call: Verdict.ViolatingCall
        if let audit {
            if let pid = report.violatorPid, let record = await SeccompAudit.lookUp(in: audit, pid: pid) {
                call = .named(SeccompAudit.describe(record))
            } else {
                call = .unrecorded
            }
        } else {
            call = .unreadable
        }
        var named = report
        named.message = Verdict.syscallViolationMessage(call) + report.message.dropFirst(unknown.count)
        return named
    }

    private static func failed(_ job: Job, _ failure: SetupFailure, warnings: [String]) -> RunReport {
        var outcome = RunOutcome(limits: job.limits)
        outcome.setupFailure = failure
        outcome.warnings = warnings
        return Verdict.report(for: outcome)
    }
}
