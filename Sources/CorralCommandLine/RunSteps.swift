import ArgumentParser
import Corral


extension RunArguments {
    /// `corral run --spec` with a spec of `steps`: the steps in order, a summary line per step
    /// (and per test) on stderr, the report as JSON; the exit code is
    /// ``StepsReport/commandExitCode``.
    func runSteps(_ spec: StepsSpec) async throws {
        let runner = StepsRunner(jobs: JobRunner(runner: Runner(configuration: try runnerConfiguration()), fileStore: try openFileStore()))
        let outcome = await CancellableRun.run { () async -> Result<StepsReport, CorralError> in
            do throws(CorralError) { return .success(try await runner.run(spec)) } catch { return .failure(error) }
        }
        let steps: StepsReport
        switch outcome {
        case .success(let value): steps = value
        case .failure(let error): throw ValidationError(error.message)
        }
        var warnings: Set<String> = []
        for step in steps.steps {
            let runs = step.processes + step.tests.flatMap(\.processes)
            for process in runs {
                for warning in process.report.warnings where warnings.insert(warning).inserted {
                    StandardError.write("corral: warning: \(warning)\n")
                }
            }
            guard !quiet else { continue }
            for process in step.processes { StandardError.write("\(step.name).\(process.name): " + Summary.line(for: process.report)) }
            for test in step.tests {
                StandardError.write("\(step.name) test \(test.name): \(test.verdict.rawValue)\(test.comment.isEmpty ? "" : " (\(test.comment))")\n")
            }
        }
        if !quiet {
            let summary = steps.summary
            var line = "corral: \(steps.ok ? "ok" : "failed"): \(summary.passed) of \(summary.tests) tests passed (\(summary.run) run)"
            if let failure = summary.firstFailure { line += "; first failure: \(failure.step) test \(failure.test), \(failure.verdict.rawValue)" }
            if !steps.skipped.isEmpty { line += "; skipped: \(steps.skipped.joined(separator: ", "))" }
            StandardError.write(line + "\n")
        }
        try JSONOutput.writeReport(steps, to: report ?? "-")
        throw ExitCode(steps.commandExitCode)
    }
}
