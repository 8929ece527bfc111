#if canImport(Glibc)
import Glibc
#endif

/// Runs a ``StepsSpec``: each step as a job of its own (``JobRunner``), in order, each in a
/// fresh working directory; a step's directories stay open until the whole job ends, so later
/// steps copy files out of them (``StepSources``) without the client carrying a byte. A step
/// with tests runs its processes once per test, one test after another
/// (``TestRunner``). A step that does not end ok stops the job unless it says
/// `continueOnFailure`.
///
/// With a working-directory limit (``JobRunner/workdirLimit``), the steps of a job share it:
/// each step's directories are a tmpfs of what the steps before it left (the limit less what
/// their kept directories hold), so the job never keeps more than the limit, however many
/// steps fill theirs. A step left no room gets one page and the job's warning that its
/// directory filled up.
public struct StepsRunner: Sendable {
    public let jobs: JobRunner
    /// Where `fileId` sources are opened; nil: a spec naming one is refused when it runs.
    public let store: (any StoredFiles)?

    /// `store`: where a test's `fileId` stdin and answer come from; by default the job
    /// runner's file store (``JobRunner/fileStore``).
    public init(jobs: JobRunner = JobRunner(), store: (any StoredFiles)? = nil) {
        self.jobs = jobs
        self.store = store ?? jobs.fileStore
    }

    /// `stop` (or cancelling the task) stops the running step and the steps after it.
    public func run(_ spec: StepsSpec, stop: RunStop? = nil) async throws(CorralError) -> StepsReport {
        let started = MonotonicClock.now()
        let lease = try Self.leaseStoredFiles(spec, store: store)
        defer { lease?.release() }
        var sources = StepSources(store: store)
        // One budget for everything the job's report holds (``ReportBudget``).
        let shared = self.jobs.sharing(ReportBudget(self.jobs.maxReportBytes))
        var layouts: [JobLayout] = []
        var reports: [StepReport] = []
        var skipped: [String] = []
        var failedBefore = false
        // Whether the stop cut anything: a step skipped, a test not run, a run cancelled.
        var cut = false
        do throws(CorralError) {
            for step in spec.steps {
                if failedBefore || stop?.isStopped == true || Task.isCancelled {
                    if !failedBefore { cut = true }
                    skipped.append(step.name)
                    continue
                }
                let report: StepReport
                let jobs = Self.within(shared, keptBy: layouts)
                if step.tests.isEmpty {
                    let stepStarted = MonotonicClock.now()
                    do {
                        try step.job.checkProcessReferences()
                    } catch {
                        throw CorralError(.invalidJob, "steps: \(step.name): \(error.description)")
                    }
                    let (job, layout) = try await jobs.runKeepingLayout(step.job, stop: stop, sources: sources)
                    layouts.append(layout)
                    layout.keepOnlyWorkdir()
                    sources.steps[step.name] = layout.stepDirectories
                    report = StepReport(name: step.name, ok: job.status == .ok, status: job.status, processes: job.processes,
                                        files: job.files, wallTime: Double(MonotonicClock.now() - stepStarted) / 1e9)
                } else {
                    report = try await TestRunner(step: step, jobs: jobs, sources: sources, stop: stop).run()
                }
                reports.append(report)
                if (stop?.isStopped == true || Task.isCancelled) && Self.cut(report, step) { cut = true }
                if !report.ok && !step.continueOnFailure { failedBefore = true }
            }
        } catch {
            let finishing = layouts
            await Blocking.run { finishing.forEach { $0.finish(keep: false) } }
            throw error
        }
        let finishing = layouts
        await Blocking.run { finishing.forEach { $0.finish(keep: false) } }
        let summaries = reports.compactMap(\.summary)
        let summary = TestSummary(tests: spec.steps.reduce(0) { $0 + $1.tests.count }, run: summaries.reduce(0) { $0 + $1.run },
                                  passed: summaries.reduce(0) { $0 + $1.passed },
                                  firstFailure: summaries.lazy.compactMap(\.firstFailure).first)
        // A stop that came after the last run (during the last removal) cut nothing.
        let stopped = cut ? stop?.reason ?? "stopped before its end" : nil
        return StepsReport(ok: stopped == nil && skipped.isEmpty && reports.allSatisfy(\.ok), steps: reports, skipped: skipped, summary: summary,
                           wallTime: Double(MonotonicClock.now() - started) / 1e9, stopped: stopped)
    }

    /// Whether a stopped job's step lost something to the stop: a run cancelled, a file not
    /// collected, or tests not run that no failure (with `stopOnFirstFailure`) left out.
    static func cut(_ report: StepReport, _ step: StepSpec) -> Bool {
        let runs = report.processes + report.tests.flatMap { $0.processes } + report.tests.compactMap { test in
            test.checker.map { NamedRunReport(name: "checker", report: $0) }
        }
        if runs.contains(where: { $0.report.status == .cancelled }) { return true }
        if report.files.contains(where: \.cutByStop) { return true }
        guard !step.tests.isEmpty, report.tests.count < step.tests.count else { return false }
        let failedOut = step.stopOnFirstFailure && report.tests.last.map { $0.verdict != .accepted } == true
        return !failedOut
    }

    /// `jobs` with the working-directory limit less what `layouts` (the earlier steps') hold,
    /// read from their tmpfs through their descriptors; at least one page (a tmpfs of size 0
    /// would have no limit). The files and directories too: each costs kernel memory that no
    /// block counts (about 1 KiB; 131072 empty directories, the inodes of a 1 GiB directory,
    /// held 133 MB of slab here with 0 bytes used), so the steps share the limit's inodes as
    /// they share its bytes (at least ``minimumStepInodes`` each, for its own directories).
    private static func within(_ jobs: JobRunner, keptBy layouts: [JobLayout]) -> JobRunner {
        guard let limit = jobs.workdirLimit, !layouts.isEmpty else { return jobs }
        var kept: UInt64 = 0, keptInodes: UInt64 = 0
        for layout in layouts where layout.workdir.limit != nil {
            var info = statvfs()
            guard fstatvfs(layout.workdir.handle.descriptor, &info) == 0 else { continue }
            kept += UInt64(info.f_blocks - info.f_bfree) * UInt64(info.f_frsize)
            keptInodes += UInt64(info.f_files - info.f_ffree)
        }
        let page = UInt64(max(sysconf(Int32(_SC_PAGESIZE)), 4096))
        let left = limit > kept ? (limit - kept) / page * page : 0
        let inodes = jobs.workdirInodes ?? Workdir.inodes(for: limit)
        let inodesLeft = inodes > keptInodes ? inodes - keptInodes : 0
        return JobRunner(runner: jobs.runner, workdirLimit: max(left, page), workdirInodes: max(inodesLeft, minimumStepInodes),
                         fileStore: jobs.fileStore, maxReportBytes: jobs.maxReportBytes, reportBudget: jobs.reportBudget)
    }

    /// The files and directories a step gets when the earlier ones took the rest: its root,
    /// its processes' directories and a few files.
    static let minimumStepInodes: UInt64 = 64
}
