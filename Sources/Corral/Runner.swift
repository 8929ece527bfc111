/// Runs jobs. Every run gets a session and process group of its own, is tracked by one
/// reaper thread for the whole process, and ends with a ``RunReport`` and no process of
/// it left alive.
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
    public init() {}

    public func run(_ job: Job) async throws(CorralError) -> RunReport {
        try job.validate()
        let supervisor = try Supervisor.shared.get()
        let plan: SpawnPlan
        switch SpawnPlan.make(job) {
        case .success(let made): plan = made
        case .failure(let failure):
            var outcome = RunOutcome(limits: job.limits)
            outcome.setupFailure = failure
            return Verdict.report(for: outcome)
        }
        let id = supervisor.nextID()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                supervisor.submit(.start(id: id, plan: plan, continuation: continuation))
            }
        } onCancel: {
            supervisor.submit(.cancel(id: id))
        }
    }
}
