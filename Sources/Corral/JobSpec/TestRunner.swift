#if canImport(Glibc)
import Glibc
#endif

/// Runs a step's tests one after another (never two at once: timings stay clean), each in
/// directories made fresh for it (in the step's, made once), with the step's limits: the tested process reads the test's input as
/// its stdin and writes its stdout to a file the checker then reads; in an interactive step,
/// the interactor gets `input` and `answer` as read-only files and its exit code decides.
struct TestRunner: Sendable {
    let step: StepSpec
    let jobs: JobRunner
    let sources: StepSources
    let stop: RunStop?

    /// The step's tests run on one thread of their own (``BlockingExecutor``): their file work
    /// runs there inline, and each test's run hands over to the reaper and back, nothing more.
    func run() async throws(CorralError) -> StepReport {
        try await BlockingExecutor.run { () async throws(CorralError) -> StepReport in try await runTests() }
    }

    private func runTests() async throws(CorralError) -> StepReport {
        let started = MonotonicClock.now()
        // The stored files the step's processes are given are held until its last test ends.
        let lease = try jobs.leaseStoredFiles(step.job)
        defer { lease?.release() }
        // The test files' directory and the processes' working directory: made once for the
        // step, emptied after each test, removed at its end; as root a tmpfs each (of the size
        // limit, if any): a test's files and directories then cost no disk journal's write.
        let limit = jobs.workdirLimit, inodes = jobs.workdirInodes
        let (directory, workdir) = try await Blocking.run { () throws(CorralError) -> (TestDirectory, Workdir) in
            let directory = try TestDirectory.create(limit: limit, inodes: inodes)
            do throws(CorralError) {
                return (directory, try Workdir.create(limit: limit, inodes: inodes, inMemory: true))
            } catch {
                directory.remove()
                throw error
            }
        }
        var tests: [TestReport] = []
        do throws(CorralError) {
            for (index, test) in step.tests.enumerated() {
                if stop?.isStopped == true || Task.isCancelled { break }
                let report = try await run(test, in: directory, workdir: workdir, field: "steps: \(step.name): tests[\(index)]")
                tests.append(report)
                if report.verdict != .accepted && step.stopOnFirstFailure { break }
            }
        } catch {
            await Blocking.run { directory.remove(); workdir.remove() }
            throw error
        }
        await Blocking.run { directory.remove(); workdir.remove() }
        let failure = tests.first { $0.verdict != .accepted }
        let summary = TestSummary(tests: step.tests.count, run: tests.count, passed: tests.filter { $0.verdict == .accepted }.count,
                                  firstFailure: failure.map { .init(step: step.name, test: $0.name, verdict: $0.verdict) })
        return StepReport(name: step.name, ok: failure == nil && tests.count == step.tests.count, status: failure?.status ?? .ok,
                          tests: tests, summary: summary, wallTime: Double(MonotonicClock.now() - started) / 1e9)
    }

    private func run(_ test: TestSpec, in directory: TestDirectory, workdir: Workdir, field: String) async throws(CorralError) -> TestReport {
        let started = MonotonicClock.now()
        let sources = self.sources
        var builtin = false
        if case .builtin = step.checker { builtin = true }
        let tested = step.job.processes[0]
        let user = RunUser.of(Job(arguments: tested.args, isolation: tested.isolation, user: tested.user))
        // The store's own file as stdin only where the program can neither write it nor
        // reach it by a path (``TestFiles``): as root, for an isolated program of another user.
        let use = TestFiles.Use(interactive: step.interactor != nil, builtinChecker: builtin,
                                storeDescriptorAllowed: geteuid() == 0 && user.uid != 0 && tested.isolation != nil)
        var finished: TestReport
        if let interactor = step.interactor {
            let files = try await Blocking.run { () throws(CorralError) -> TestFiles in
                try TestFiles.prepare(test, in: directory, use: use, sources: sources, field: field)
            }
            finished = try await interact(test, files, interactor: interactor, workdir: workdir)
        } else {
            // The test's files and the tested process's directory, descriptors and layout, in
            // one hop off the pool (the step's stored files are held by ``run()``).
            let spec = step.job
            let userRange = jobs.runner.configuration.userRange, store = jobs.fileStore
            let prepared = MonotonicClock.now()
            let (files, layout) = try await Blocking.run { () throws(CorralError) -> (TestFiles, JobLayout) in
                var files = try TestFiles.prepare(test, in: directory, use: use, sources: sources, field: field)
                let injected = files.takeProgramDescriptors()
                do throws(CorralError) {
                    let layout = try JobLayout.prepare(spec, workdirLimit: nil, userRange: userRange, sources: files.sources(adding: sources),
                                                       injected: [0: injected], store: store, workdir: workdir)
                    return (files, layout)
                } catch {
                    files.remove()
                    throw error
                }
            }
            let job: JobReport
            do throws(CorralError) {
                (job, _) = try await jobs.runPrepared(spec, layout: layout, started: prepared, stop: stop)
            } catch {
                await Blocking.run { files.remove() }
                throw error
            }
            finished = try await judge(test, files, job, layout)
        }
        jobs.reportBudget?.trim(comment: &finished.comment)
        finished.wallTime = Double(MonotonicClock.now() - started) / 1e9
        return finished
    }

    /// An interactive test: the solution and the interactor, which gets `input` and `answer`
    /// as read-only files and decides.
    private func interact(_ test: TestSpec, _ files: TestFiles, interactor: String, workdir: Workdir) async throws(CorralError) -> TestReport {
        var spec = step.job
        spec.files += [TestFiles.file(TestFiles.input, for: interactor), TestFiles.file(TestFiles.answer, for: interactor)]
        let job: JobReport, layout: JobLayout
        do throws(CorralError) {
            (job, layout) = try await jobs.runKeepingLayout(spec, stop: stop, sources: files.sources(adding: sources),
                                                            readOnly: [TestFiles.input, TestFiles.answer], workdir: workdir)
        } catch {
            await Blocking.run { files.remove() }
            throw error
        }
        await Blocking.run { layout.finish(keep: false); files.remove() }
        return interactive(test, job, interactor: interactor)
    }

    /// Decides the verdict of a test's run; the test's files are removed here, whatever
    /// happens (once: a second close could hit a descriptor another thread has since opened).
    private func judge(_ test: TestSpec, _ files: TestFiles, _ job: JobReport, _ layout: JobLayout) async throws(CorralError) -> TestReport {
        let run = job.processes[0].report
        let checker = step.checker
        // One hop off the pool after the run: the directories go, the output is measured and,
        // with a built-in checker, compared; the test's files go unless a custom checker needs them.
        let decided = try await Blocking.run { () throws(CorralError) -> TestReport? in
            layout.finish(keep: false)
            var keepFiles = false
            defer { if !keepFiles { files.remove() } }
            if let verdict = TestVerdict(status: run.status) {
                return TestReport(name: test.name, verdict: verdict, status: run.status, comment: run.message, processes: job.processes, wallTime: 0)
            }
            let output = try files.open(TestFiles.output, O_RDONLY)
            defer { _ = Glibc.close(output) }
            // A program that ignores SIGXFSZ ends ok with its output cut at the limit + 1 byte.
            var info = stat()
            if let limit = run.limits.output, fstat(output, &info) == 0, UInt64(info.st_size) > limit {
                return TestReport(name: test.name, verdict: .outputLimit, status: run.status,
                                  comment: "the output passed its limit of \(LimitValue.describe(bytes: limit))", processes: job.processes, wallTime: 0)
            }
            guard case .builtin(let builtin) = checker else {
                keepFiles = true
                return nil
            }
            let result: CheckResult
            if let bytes = files.answerBytes {
                result = builtin.check(output: output, answer: bytes)
            } else {
                let answer = try files.openAnswer()
                defer { _ = Glibc.close(answer) }
                result = builtin.check(output: output, answer: answer)
            }
            return TestReport(name: test.name, verdict: TestVerdict(result.verdict), status: run.status, comment: result.comment,
                              processes: job.processes, wallTime: 0)
        }
        if let decided { return decided }
        guard case .custom(let custom) = checker else { throw CorralError(.system, "no checker for the test") }
        let (checkerJob, checkerReadOnly) = custom.job()
        let checked: JobReport
        do throws(CorralError) {
            let (report, checkerLayout) = try await jobs.runKeepingLayout(checkerJob, stop: stop, sources: files.sources(adding: sources),
                                                                           readOnly: checkerReadOnly)
            checked = report
            await Blocking.run { checkerLayout.finish(keep: false); files.remove() }
        } catch {
            await Blocking.run { files.remove() }
            throw error
        }
        let report = checked.processes[0].report
        if report.status == .cancelled {
            return TestReport(name: test.name, verdict: .cancelled, status: run.status, comment: "the checker: \(report.message)",
                              processes: job.processes, checker: report, wallTime: 0)
        }
        let result = TestlibVerdict.decide(report)
        return TestReport(name: test.name, verdict: TestVerdict(result.verdict), status: run.status, comment: result.comment,
                          processes: job.processes, checker: report, wallTime: 0)
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
        // A stopped job: the interactor or a solution cancelled says nothing of the solution.
        if let cancelled = job.processes.first(where: { $0.report.status == .cancelled }) {
            return report(.cancelled, "\(cancelled.name): \(cancelled.report.message)")
        }
        let decided = TestlibVerdict.decide(judge)
        if decided.verdict == .accepted, let failed { return report(.runtimeError, failed.message) }
        if decided.verdict == .checkerError, let failed { return report(TestVerdict(status: failed.status)!, failed.message) }
        return report(TestVerdict(decided.verdict), decided.comment)
    }
}
