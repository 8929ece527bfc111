/// A test's verdict: what the checker decided, or what the run's status maps to.
public enum TestVerdict: String, Sendable, Hashable, Codable, CaseIterable {
    case accepted
    case wrongAnswer = "wrong-answer"
    case presentationError = "presentation-error"
    case timeLimit = "time-limit"
    case memoryLimit = "memory-limit"
    case outputLimit = "output-limit"
    case runtimeError = "runtime-error"
    case checkerError = "checker-error"
    /// The job was stopped (a shutdown, `--max-job-time`, a `/v1/run` client gone, a signal
    /// to `corral run`, a library caller's ``RunStop``) while this test's run or its checker went on: nothing is known of the
    /// program, which is not at fault; a judge runs the test again.
    case cancelled

    /// The verdict of a run that did not end `ok` (nil for `ok`: the checker decides): CPU or
    /// wall time → `time-limit`; memory, output; anything else (a non-zero exit, a signal,
    /// a forbidden system call, a program that could not start) → `runtime-error`; a
    /// cancelled run → `cancelled`.
    public init?(status: RunStatus) {
        switch status {
        case .ok: return nil
        case .cpuTimeLimit, .wallTimeLimit: self = .timeLimit
        case .memoryLimit: self = .memoryLimit
        case .outputLimit: self = .outputLimit
        case .nonzeroExit, .signaled, .syscallViolation, .setupError: self = .runtimeError
        case .cancelled: self = .cancelled
        }
    }

    init(_ decision: CheckResult.Decision) {
        switch decision {
        case .accepted: self = .accepted
        case .wrongAnswer: self = .wrongAnswer
        case .presentationError: self = .presentationError
        case .checkerError: self = .checkerError
        }
    }
}

/// One test of a step: its verdict, and the reports of the runs that made it.
public struct TestReport: Sendable, Hashable, Codable {
    public var name: String
    public var verdict: TestVerdict
    /// The tested process's status (in an interactive step, the solution's: every process
    /// that is not the interactor).
    public var status: RunStatus
    /// Why the verdict: where the output first differs, a custom checker's or an
    /// interactor's stderr, or the run's message.
    public var comment: String
    /// Every process of the step, as in a job report (the tested process's stdout went to
    /// the checker, not here).
    public var processes: [NamedRunReport]
    /// A custom checker's own run.
    public var checker: RunReport?
    /// From the test's set-up to its verdict.
    public var wallTime: Double

    public init(name: String, verdict: TestVerdict, status: RunStatus, comment: String, processes: [NamedRunReport],
                checker: RunReport? = nil, wallTime: Double) {
        self.name = name
        self.verdict = verdict
        self.status = status
        self.comment = comment
        self.processes = processes
        self.checker = checker
        self.wallTime = wallTime
    }
}

/// How a step's tests went.
public struct TestSummary: Sendable, Hashable, Codable {
    /// Tests in the spec, tests run (fewer after a failure with `stopOnFirstFailure`), accepted.
    public var tests: Int
    public var run: Int
    public var passed: Int
    /// The first test not accepted and its verdict; nil when every test run was accepted.
    public var firstFailure: Failure?

    public struct Failure: Sendable, Hashable, Codable {
        public var step: String
        public var test: String
        public var verdict: TestVerdict

        public init(step: String, test: String, verdict: TestVerdict) {
            self.step = step
            self.test = test
            self.verdict = verdict
        }
    }

    public init(tests: Int, run: Int, passed: Int, firstFailure: Failure?) {
        self.tests = tests
        self.run = run
        self.passed = passed
        self.firstFailure = firstFailure
    }

    enum CodingKeys: String, CodingKey { case tests, run, passed, firstFailure }

    /// Every key always present (`firstFailure` null when none).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(tests, forKey: .tests)
        try container.encode(run, forKey: .run)
        try container.encode(passed, forKey: .passed)
        try container.encode(firstFailure, forKey: .firstFailure)
    }
}

/// One step: without tests, its job's report; with tests, one report per test run.
public struct StepReport: Sendable, Hashable, Codable {
    public var name: String
    /// Whether the step ended `ok`: its processes all `ok`, and every test (all were run) accepted.
    public var ok: Bool
    /// Without tests, the job's status; with tests, the status of the first test not accepted, else `ok`.
    public var status: RunStatus
    public var processes: [NamedRunReport]
    public var files: [CollectedFile]
    public var tests: [TestReport]
    /// Nil for a step without tests.
    public var summary: TestSummary?
    public var wallTime: Double

    public init(name: String, ok: Bool, status: RunStatus, processes: [NamedRunReport] = [], files: [CollectedFile] = [],
                tests: [TestReport] = [], summary: TestSummary? = nil, wallTime: Double) {
        self.name = name
        self.ok = ok
        self.status = status
        self.processes = processes
        self.files = files
        self.tests = tests
        self.summary = summary
        self.wallTime = wallTime
    }

    enum CodingKeys: String, CodingKey { case name, ok, status, processes, files, tests, summary, wallTime }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(ok, forKey: .ok)
        try container.encode(status, forKey: .status)
        try container.encode(processes, forKey: .processes)
        try container.encode(files, forKey: .files)
        try container.encode(tests, forKey: .tests)
        try container.encode(summary, forKey: .summary)
        try container.encode(wallTime, forKey: .wallTime)
    }
}

/// A job of steps: one report per step that ran, in order, and a summary of every test.
public struct StepsReport: Sendable, Hashable, Codable {
    /// Every step ran and ended ok (a step that failed with `continueOnFailure` makes it false too).
    public var ok: Bool
    public var steps: [StepReport]
    /// Steps not run because an earlier one failed.
    public var skipped: [String]
    /// Over every step's tests; `firstFailure` names its step.
    public var summary: TestSummary
    public var wallTime: Double
    /// Why the job was stopped before its end (its ``RunStop``'s reason), when the stop cut
    /// something short (a run cancelled, a test or step not run, a file not collected); nil
    /// (absent from the JSON) otherwise. A stop between two tests cancels no run, so only
    /// this says it.
    public var stopped: String?

    public init(ok: Bool, steps: [StepReport], skipped: [String], summary: TestSummary, wallTime: Double, stopped: String? = nil) {
        self.ok = ok
        self.steps = steps
        self.skipped = skipped
        self.summary = summary
        self.wallTime = wallTime
        self.stopped = stopped
    }

    /// `corral run --spec`'s exit code: 0 when ok; a step without tests that failed gives
    /// its job's code (``JobReport/commandExitCode``); a test not accepted gives 1, or 130
    /// when it was `cancelled`; a job stopped with nothing failed (between steps or tests,
    /// or, by a server's or library's stop, while collecting), 130 as a cancelled run.
    public var commandExitCode: Int32 {
        let cancelled: Int32 = 130
        // Nothing failed that says more: the stop, if there was one, is why the job is not ok.
        let otherwise: Int32 = stopped != nil ? cancelled : 1
        guard let failed = steps.first(where: { !$0.ok }) else { return ok ? 0 : otherwise }
        if failed.tests.isEmpty {
            return failed.processes.first { $0.report.status != .ok }?.report.commandExitCode ?? otherwise
        }
        if let verdict = failed.tests.first(where: { $0.verdict != .accepted })?.verdict { return verdict == .cancelled ? cancelled : 1 }
        return otherwise
    }
}
