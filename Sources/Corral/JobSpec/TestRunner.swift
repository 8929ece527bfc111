#if canImport(Glibc)
import Glibc
#endif

/// Runs a step's tests one after another (never two at once: timings stay clean), each in
/// fresh directories with the step's limits: the tested process reads the test's input as
/// its stdin and writes its stdout to a file the checker then reads; in an interactive step,
/// the interactor gets `input` and `answer` as read-only files and its exit code decides.
struct TestRunner: Sendable {
    let step: StepSpec
    let jobs: JobRunner
    let sources: StepSources
    let stop: RunStop?

    func run() async throws(CorralError) -> StepReport {
        let started = MonotonicClock.now()
        var tests: [TestReport] = []
        for (index, test) in step.tests.enumerated() {
            if stop?.isStopped == true || Task.isCancelled { break }
            let report = try await run(test, field: "steps: \(step.name): tests[\(index)]")
            tests.append(report)
            if report.verdict != .accepted && step.stopOnFirstFailure { break }
        }
        let failure = tests.first { $0.verdict != .accepted }
        let summary = TestSummary(tests: step.tests.count, run: tests.count, passed: tests.filter { $0.verdict == .accepted }.count,
                                  firstFailure: failure.map { .init(step: step.name, test: $0.name, verdict: $0.verdict) })
        return StepReport(name: step.name, ok: failure == nil && tests.count == step.tests.count, status: failure?.status ?? .ok,
                          tests: tests, summary: summary, wallTime: Double(MonotonicClock.now() - started) / 1e9)
    }

    private func run(_ test: TestSpec, field: String) async throws(CorralError) -> TestReport {
        let started = MonotonicClock.now()
        let sources = self.sources
        let limit = jobs.workdirLimit
        let files = try await Blocking.run { () throws(CorralError) -> TestFiles in
            try TestFiles.prepare(test, sources: sources, limit: limit, field: field)
        }
        do throws(CorralError) {
            let report = try await judge(test, files)
            await Blocking.run { files.remove() }
            var finished = report
            finished.wallTime = Double(MonotonicClock.now() - started) / 1e9
            return finished
        } catch {
            await Blocking.run { files.remove() }
            throw error
        }
    }

    private func judge(_ test: TestSpec, _ files: TestFiles) async throws(CorralError) -> TestReport {
        var spec = step.job
        var injected: [Int: [Int32: Int32]] = [:]
        var readOnly: [SpecPath] = []
        if let interactor = step.interactor {
            spec.files += [TestFiles.file(TestFiles.input, for: interactor), TestFiles.file(TestFiles.answer, for: interactor)]
            readOnly = [TestFiles.input, TestFiles.answer]
        } else {
            let input = try files.open(TestFiles.input, O_RDONLY)
            let output: Int32
            do throws(CorralError) { output = try files.open(TestFiles.output, O_WRONLY) } catch {
                _ = Glibc.close(input)
                throw error
            }
            injected[0] = [0: input, 1: output]
        }
        let (job, layout) = try await jobs.runKeepingLayout(spec, stop: stop, sources: files.sources(adding: sources),
                                                            injected: injected, readOnly: readOnly)
        await Blocking.run { layout.finish(keep: false) }
        if let interactor = step.interactor { return interactive(test, job, interactor: interactor) }

        let run = job.processes[0].report
        if let verdict = TestVerdict(status: run.status) {
            return TestReport(name: test.name, verdict: verdict, status: run.status, comment: run.message, processes: job.processes, wallTime: 0)
        }
        // A program that ignores SIGXFSZ ends ok with its output cut at the limit + 1 byte.
        if let limit = run.limits.output, let size = try? files.size(TestFiles.output), size > limit {
            return TestReport(name: test.name, verdict: .outputLimit, status: run.status,
                              comment: "the output passed its limit of \(LimitValue.describe(bytes: limit))", processes: job.processes, wallTime: 0)
        }
        switch step.checker {
        case .builtin(let checker):
            let result = try await Blocking.run { () throws(CorralError) -> CheckResult in
                let output = try files.open(TestFiles.output, O_RDONLY)
                defer { _ = Glibc.close(output) }
                let answer = try files.open(TestFiles.answer, O_RDONLY)
                defer { _ = Glibc.close(answer) }
                return checker.check(output: output, answer: answer)
            }
            return TestReport(name: test.name, verdict: TestVerdict(result.verdict), status: run.status, comment: result.comment,
                              processes: job.processes, wallTime: 0)
        case .custom(let checker):
            let (checkerJob, readOnly) = checker.job()
            let (checked, checkerLayout) = try await jobs.runKeepingLayout(checkerJob, stop: stop, sources: files.sources(adding: sources),
                                                                           readOnly: readOnly)
            await Blocking.run { checkerLayout.finish(keep: false) }
            let report = checked.processes[0].report
            let result = TestlibVerdict.decide(report)
            return TestReport(name: test.name, verdict: TestVerdict(result.verdict), status: run.status, comment: result.comment,
                              processes: job.processes, checker: report, wallTime: 0)
        }
    }

    /// A solution over a limit has that verdict; otherwise the interactor's exit decides
    /// (testlib's codes), and an accepted interaction with a solution that failed is a
    /// runtime error.
    private func interactive(_ test: TestSpec, _ job: JobReport, interactor: String) -> TestReport {
        let solutions = job.processes.filter { $0.name != interactor }
        let judge = job.processes.first { $0.name == interactor }!.report
        let failed = solutions.first { $0.report.status != .ok }?.report
        let status = failed?.status ?? .ok
        func report(_ verdict: TestVerdict, _ comment: String) -> TestReport {
            TestReport(name: test.name, verdict: verdict, status: status, comment: comment, processes: job.processes, wallTime: 0)
        }
        if let failed, failed.status.isLimit { return report(TestVerdict(status: failed.status)!, failed.message) }
        let decided = TestlibVerdict.decide(judge)
        if decided.verdict == .accepted, let failed { return report(.runtimeError, failed.message) }
        if decided.verdict == .checkerError, let failed { return report(TestVerdict(status: failed.status)!, failed.message) }
        return report(TestVerdict(decided.verdict), decided.comment)
    }
}
