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

    /// The same as ``run(_:)`` for a caller that has a thread to spare and nothing else to do
    /// meanwhile (a one-shot command line): the calling thread blocks until the run is over,
    /// and no task, executor or thread of Swift concurrency is involved. When `descriptor`
    /// (e.g. a signalfd of SIGINT and SIGTERM) becomes readable while the run goes on, the run
    /// is stopped as a cancelled task's is (status `cancelled`); it is not read.
    public func runBlocking(_ job: Job, stopWhenReadable descriptor: Int32? = nil) throws(CorralError) -> RunReport {
        let prepared: PreparedRun
        switch try prepare(job, descriptors: [:], directory: nil, stop: nil) {
        case .report(let report): return report
        case .ready(let ready): prepared = ready
        }
        defer { prepared.release() }
        guard let waiter = ReportWaiter() else {
            prepared.abandon()
            throw CorralError(.system, "eventfd: \(SetupFailure.describe(errno))")
        }
        prepared.supervisor.submit(.start(id: prepared.id, plan: prepared.plan, cancellation: prepared.cancellation,
                                          continuation: .waiter(waiter)))
        var watching = descriptor
        while true {
            var entries = [pollfd(fd: waiter.descriptor, events: Int16(POLLIN), revents: 0)]
            if let watching { entries.append(pollfd(fd: watching, events: Int16(POLLIN), revents: 0)) }
            if poll(&entries, nfds_t(entries.count), -1) < 0 && errno != EINTR {
                // Nothing to wait with: stop the run and wait for its report by sleeping.
                watching = nil
                prepared.cancel()
                while waiter.delivered == nil { usleep(1000) }
            }
            if let report = waiter.delivered {
                return Self.nameViolation(report, audit: prepared.audit) { _ = usleep($0) }
            }
            if entries.count > 1 && entries[1].revents != 0 {
                watching = nil
                prepared.cancel()
            }
        }
    }

    /// `descriptors`: more of the child's descriptors (target → an open descriptor this
    /// run takes over and closes, e.g. a pipe end of a job). `directory`: the working
    /// directory as an O_PATH descriptor this run takes over (a job's, opened beneath the
    /// job's directory), instead of ``Job/workingDirectory``'s path.
    func run(_ job: Job, descriptors: [Int32: Int32], directory: Int32? = nil, stop: RunStop? = nil) async throws(CorralError) -> RunReport {
        let prepared: PreparedRun
        switch try prepare(job, descriptors: descriptors, directory: directory, stop: stop) {
        case .report(let report): return Self.stopped(report, by: stop)
        case .ready(let ready): prepared = ready
        }
        defer { prepared.release() }
        let report = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                prepared.supervisor.submit(.start(id: prepared.id, plan: prepared.plan, cancellation: prepared.cancellation,
                                                  continuation: .task(continuation)))
            }
        } onCancel: {
            prepared.cancel()
        }
        return Self.stopped(await Self.nameViolation(report, audit: prepared.audit), by: stop)
    }

    /// A run its ``RunStop`` cancelled says why, when the stop gave a reason.
    private static func stopped(_ report: RunReport, by stop: RunStop?) -> RunReport {
        guard report.status == .cancelled, let reason = stop?.reason else { return report }
        var report = report
        report.message += "; \(reason)"
        return report
    }

    private enum Preparation {
        case ready(PreparedRun)
        /// The run ended before it was handed to the reaper (a setup failure).
        case report(RunReport)
    }

    /// Everything before the run is handed to the reaper: the job checked, a user leased,
    /// the cgroup made and guarded, the spawn planned, the audit listened to.
    private func prepare(_ job: Job, descriptors: [Int32: Int32], directory: Int32?, stop: RunStop?) throws(CorralError) -> Preparation {
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
        if let range = configuration.userRange, job.user == nil, job.isolation?.uid == nil, geteuid() == 0 {
            do {
                lease = try UserLease.acquire(range)
                job.user = lease?.user
            } catch {
                return .report(Self.failed(job, SetupFailure(stage: "privileges", errno: 0, message: error.message), warnings: []))
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
            lease?.release()
            return .report(Self.failed(job, failure, warnings: warnings))
        }
        let made = SpawnPlan.make(job, cgroup: cgroup, warnings: warnings, descriptors: handed, directory: directory,
                                   initExecutable: configuration.initExecutable)
        handed = [:] // the plan owns them now, made or not
        directory = nil
        let plan: SpawnPlan
        switch made {
        case .success(let made): plan = made
        case .failure(let failure):
            cgroup?.closeJoinDescriptors()
            cgroup?.remove()
            if let cgroup { RunGuard.release(cgroup.directories) }
            lease?.release()
            return .report(Self.failed(job, failure, warnings: warnings))
        }
        let id = supervisor.nextID()
        let cancellation = RunCancellation(stop: stop)
        if let stop, !stop.register(id) { cancellation.cancel() } // ends it before it starts
        // The kernel's audit records of a seccomp kill, listened to from before the program starts.
        let audit = job.isolation.map { $0.seccomp != .none } == true ? SeccompAudit.listen() : nil
        return .ready(PreparedRun(supervisor: supervisor, id: id, plan: plan, cancellation: cancellation, stop: stop,
                                  audit: audit, lease: lease, guarded: cgroup?.directories ?? []))
    }

    /// A `syscall-violation` report names the call where the kernel's audit record of it can be
    /// read. Waiting for the record blocks (up to 200 ms): on a thread of its own, off the
    /// cooperative pool.
    private static func nameViolation(_ report: RunReport, audit: SeccompAudit.Source?) async -> RunReport {
        guard needsAudit(report) != nil else { return report }
        return await Blocking.run { nameViolation(report, audit: audit) { _ = usleep($0) } }
    }

    /// The same on the calling thread, waiting for the audit record with `sleep` (microseconds).
    private static func nameViolation(_ report: RunReport, audit: SeccompAudit.Source?, sleep: (UInt32) -> Void) -> RunReport {
        guard let pid = needsAudit(report) else { return report }
        var record: SeccompAudit.Record?
        if let audit, let pid { record = SeccompAudit.lookUp(in: audit, pid: pid, sleep: sleep) }
        return named(report, audit: audit, record: record)
    }

    /// Nil when the report needs no audit record; else the violator's pid, if known.
    private static func needsAudit(_ report: RunReport) -> Int32?? {
        let unknown = Verdict.syscallViolationMessage(.unknown)
        guard report.status == .syscallViolation, report.message.hasPrefix(unknown) else { return nil }
        return .some(report.violatorPid)
    }

    private static func named(_ report: RunReport, audit: SeccompAudit.Source?, record: SeccompAudit.Record?) -> RunReport {
        let unknown = Verdict.syscallViolationMessage(.unknown)
        let call: Verdict.ViolatingCall
        if audit != nil {
            if let record {
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

/// A run handed to the reaper (or about to be), and what is undone when it is over.
private final class PreparedRun: Sendable {
    let supervisor: Supervisor
    let id: UInt64
    let plan: SpawnPlan
    let cancellation: RunCancellation
    let stop: RunStop?
    let audit: SeccompAudit.Source?
    let lease: UserLease?
    /// The cgroup directories the guard watches for this run.
    let guarded: [String]

    init(supervisor: Supervisor, id: UInt64, plan: SpawnPlan, cancellation: RunCancellation, stop: RunStop?,
         audit: SeccompAudit.Source?, lease: UserLease?, guarded: [String]) {
        self.supervisor = supervisor
        self.id = id
        self.plan = plan
        self.cancellation = cancellation
        self.stop = stop
        self.audit = audit
        self.lease = lease
        self.guarded = guarded
    }

    /// Stops the run (or keeps it from starting).
    func cancel() {
        cancellation.cancel()
        supervisor.submit(.cancel(id: id))
    }

    /// The run could not be handed over: its cgroup and descriptors go.
    func abandon() {
        plan.cgroup?.closeJoinDescriptors()
        plan.cgroup?.remove()
        plan.close()
    }

    /// After the run's report: in the order the run took them.
    func release() {
        audit?.close()
        stop?.unregister(id)
        if !guarded.isEmpty { RunGuard.release(guarded) }
        lease?.release()
    }
}
