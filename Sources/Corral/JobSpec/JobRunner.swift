import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// Runs a ``JobSpec``: a private working directory with a directory of its own for each
/// process of a job of several (a file goes to the process it names, or a copy to each),
/// the pipes between the processes (connected directly: Corral never carries their bytes),
/// every process as a run of its own with its own limits, then the collected files.
///
/// A process that hits a limit is killed alone; its peers then see EOF or EPIPE on its
/// pipes, as they would in real life, and are bounded by their own limits. The job ends
/// when every process has ended. Cancelling the task cancels every process.
public struct JobRunner: Sendable {
    public let runner: Runner
    /// Bytes a job may keep in its working directory (a tmpfs of that size; needs root);
    /// nil: a plain directory, bounded only file by file by each process's output limit.
    public let workdirLimit: UInt64?
    /// Where `files[].fileId` come from and `collect[]` with `"store": true` go; nil: a job
    /// that names either is refused.
    public let fileStore: FileStore?
    /// The files and directories the working directory may hold (with a `workdirLimit`);
    /// nil: ``Workdir/inodes(for:)`` of the limit. A later step of a job of steps gets what
    /// the earlier ones left (``StepsRunner``).
    let workdirInodes: UInt64?
    /// What a job's report may hold of captured output and collected files together (one
    /// budget for a whole job of steps, its tests and checkers included): past it a capture
    /// or a collected file is cut (`truncated: true`). Default 256 MiB.
    public let maxReportBytes: UInt64
    /// A job of steps' one budget (``StepsRunner``); nil: each job its own of ``maxReportBytes``.
    let reportBudget: ReportBudget?

    public static let defaultMaxReportBytes: UInt64 = 256 << 20

    public init(runner: Runner = Runner(), workdirLimit: UInt64? = nil, fileStore: FileStore? = nil,
                maxReportBytes: UInt64 = JobRunner.defaultMaxReportBytes) {
        self.init(runner: runner, workdirLimit: workdirLimit, workdirInodes: nil, fileStore: fileStore, maxReportBytes: maxReportBytes,
                  reportBudget: nil)
    }

    init(runner: Runner, workdirLimit: UInt64?, workdirInodes: UInt64?, fileStore: FileStore?, maxReportBytes: UInt64,
         reportBudget: ReportBudget?) {
        self.runner = runner
        self.workdirLimit = workdirLimit
        self.workdirInodes = workdirInodes
        self.fileStore = fileStore
        self.maxReportBytes = maxReportBytes
        self.reportBudget = reportBudget
    }

    /// This runner with the report budget of a whole job of steps.
    func sharing(_ budget: ReportBudget) -> JobRunner {
        JobRunner(runner: runner, workdirLimit: workdirLimit, workdirInodes: workdirInodes, fileStore: fileStore,
                  maxReportBytes: maxReportBytes, reportBudget: budget)
    }

    /// `stop` stops every process of the job from outside the calling task (``RunStop``);
    /// cancelling the task does the same.
    public func run(_ spec: JobSpec, stop: RunStop? = nil) async throws(CorralError) -> JobReport {
        do {
            try spec.checkProcessReferences()
        } catch {
            throw CorralError(.invalidJob, error.description)
        }
        let (report, layout) = try await runKeepingLayout(spec, stop: stop)
        await Blocking.run { layout.finish(keep: spec.workdir.keep) }
        return report
    }

    /// Runs the job and hands back its layout still open (a step's directories, which later
    /// steps take files from); the caller finishes it. On an error it is finished here.
    /// `workdir`: a working directory the caller made and removes (a step's, for all its
    /// tests), in which the processes' directories are made fresh and removed at the finish.
    func runKeepingLayout(_ spec: JobSpec, stop: RunStop?, sources: StepSources = .none, injected: [Int: [Int32: Int32]] = [:],
                          readOnly: [SpecPath] = [], workdir: Workdir? = nil) async throws(CorralError) -> (JobReport, JobLayout) {
        // The stored files it names are held until it ends; an unknown one fails it here
        // (the injected descriptors, which the layout would have taken over, closed first).
        // The job's wallTime counts from here (``JobReport/wallTime``).
        let started = MonotonicClock.now()
        let lease: FileLease?
        do throws(CorralError) {
            lease = try leaseStoredFiles(spec)
        } catch {
            injected.values.forEach { $0.values.forEach { _ = Glibc.close($0) } }
            throw error
        }
        defer { lease?.release() }
        // Directories, files, stream files and pipes: blocking work, on a thread of its own.
        let userRange = runner.configuration.userRange
        let workdirLimit = self.workdirLimit
        let store = fileStore
        let layout = try await Blocking.run { () throws(CorralError) -> JobLayout in
            try JobLayout.prepare(spec, workdirLimit: workdirLimit, workdirInodes: workdirInodes, userRange: userRange, sources: sources, injected: injected,
                                  readOnly: readOnly, store: store, workdir: workdir)
        }
        return try await runPrepared(spec, layout: layout, started: started, stop: stop)
    }

    /// Runs the processes of a layout already prepared (``JobLayout/prepare``; the caller holds
    /// the stored files its spec names) and hands it back open, as ``runKeepingLayout``.
    func runPrepared(_ spec: JobSpec, layout: JobLayout, started: Int64, stop: RunStop?) async throws(CorralError) -> (JobReport, JobLayout) {
        let runner = self.runner
        // The job's clock: every process's startedAt and endedAt count from here.
        let zero = MonotonicClock.now()
        let reports = await withTaskGroup(of: ProcessOutcome.self) { group in
            for (index, prepared) in layout.takeProcesses().enumerated() {
                group.addTask { await ProcessOutcome.run(index, prepared, runner: runner, stop: stop) }
            }
            // Each outcome carries its own index: the order they finish in does not matter.
            var byIndex = [Result<RunReport, CorralError>?](repeating: nil, count: spec.processes.count)
            for await outcome in group { byIndex[outcome.index] = outcome.result }
            return byIndex
        }
        var named: [NamedRunReport] = []
        let budget = reportBudget ?? ReportBudget(maxReportBytes)
        let full = layout.workdir.isFull
        for (process, outcome) in zip(spec.processes, reports) {
            guard let outcome else {
                layout.finish(keep: spec.workdir.keep)
                throw CorralError(.system, "no report came back for process \(process.name)")
            }
            var report: RunReport
            switch outcome {
            case .success(let made): report = made
            case .failure(let error):
                layout.finish(keep: spec.workdir.keep)
                throw error
            }
            if full, let limit = layout.workdir.limit {
                report.warnings.append("the job's working directory filled up (limit \(LimitValue.describe(bytes: limit))): a write there failed with ENOSPC")
            }
            budget.trim(&report)
            let span = report.monotonicSpan?.seconds(since: zero)
            named.append(NamedRunReport(name: process.name, report: report, startedAt: span?.start, endedAt: span?.end))
        }
        // A thread of its own only when there is something to read (a step's test has nothing).
        let files = spec.collect.isEmpty ? [] : await Blocking.run { () -> [CollectedFile] in layout.collect(spec, budget: budget, stop: stop) }
        let status = named.first { $0.report.status != .ok }?.report.status ?? .ok
        let report = JobReport(status: status, processes: named, files: files,
                               workdir: spec.workdir.keep ? layout.workdir.path : nil,
                               wallTime: Double(MonotonicClock.now() - started) / 1e9)
        return (report, layout)
    }
}

extension JobRunner {
    /// A lease on every stored file the spec names (nil when it names none); refuses a
    /// spec that uses the store when there is none, or names a file the store lacks.
    func leaseStoredFiles(_ spec: JobSpec) throws(CorralError) -> FileLease? {
        var ids: [FileId] = []
        for (index, file) in spec.files.enumerated() {
            guard case .stored(let id) = file.source else { continue }
            guard fileStore != nil else { throw CorralError(.invalidJob, "files[\(index)].fileId: this runner has no file store") }
            ids.append(id)
        }
        if fileStore == nil, let index = spec.collect.firstIndex(where: { $0.store }) {
            throw CorralError(.invalidJob, "collect[\(index)].store: this runner has no file store")
        }
        guard let store = fileStore, !ids.isEmpty else { return nil }
        do {
            return try store.acquire(ids)
        } catch {
            let index = spec.files.firstIndex { if case .stored(let id) = $0.source { store.size(of: id) == nil } else { false } }
            throw CorralError(error.kind == .notFound ? .invalidJob : .system, "files\(index.map { "[\($0)]" } ?? "").fileId: \(error.message)")
        }
    }
}

/// One process's report, with the position of its process in the spec: results come back
/// in the order the processes end, and each is put back where it belongs by this index,
/// never by the order of arrival.
struct ProcessOutcome: Sendable {
    let index: Int
    let result: Result<RunReport, CorralError>

    static func run(_ index: Int, _ prepared: PreparedProcess, runner: Runner, stop: RunStop?) async -> ProcessOutcome {
        let result: Result<RunReport, CorralError>
        do {
            let report = try await runner.run(prepared.job, descriptors: prepared.descriptors, directory: prepared.directory, stop: stop)
            result = .success(report)
        } catch {
            result = .failure(error)
        }
        return ProcessOutcome(index: index, result: result)
    }
}
