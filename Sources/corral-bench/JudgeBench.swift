import Corral
import Foundation

/// Issue 15's judge figure: one job of one step with N tests (`/bin/cat` on one line, the
/// `exact` checker) against N separate jobs of the same run (stdin content, stdout captured
/// and compared by the caller), interleaved repeat by repeat, plain and (as root) isolated.
/// Besides the walls: the sum of the test runs' own wall times inside the job (each run's
/// report, from its spawn to its end), and N bare `Runner.run` calls of the same program
/// (what a run costs its caller, cgroup setup and removal included).
enum JudgeBench {
    struct Result: Sendable {
        var mode: String
        var tests: Int
        var repeats: Int
        /// Medians over the repeats, in ms.
        var jobWall: Double
        var sumOfTestRuns: Double
        var separateJobs: Double
        var bareRuns: Double
        /// Medians of the per-repeat ratios (each repeat's figures were measured side by side).
        var jobOverSeparate: Double
        var overheadOverRuns: Double
        var overheadOverBareRuns: Double

        var text: String {
            String(format: "judge %@, %d tests (median of %d interleaved repeats): job %.1f ms; %d separate jobs %.1f ms (job/separate %.3f); "
                   + "sum of the job's test runs %.1f ms (overhead %+.1f %%); %d bare Runner.run %.1f ms (job over them %+.1f %%)",
                   mode, tests, repeats, jobWall, tests, separateJobs, jobOverSeparate, sumOfTestRuns, overheadOverRuns * 100,
                   tests, bareRuns, overheadOverBareRuns * 100)
        }

        var json: String {
            func f(_ value: Double) -> String { String(format: "%.3f", value) }
            return "{\"mode\": \"\(mode)\", \"tests\": \(tests), \"repeats\": \(repeats), \"jobMillis\": \(f(jobWall)), "
                + "\"separateJobsMillis\": \(f(separateJobs)), \"sumOfTestRunsMillis\": \(f(sumOfTestRuns)), \"bareRunsMillis\": \(f(bareRuns)), "
                + "\"jobOverSeparate\": \(f(jobOverSeparate)), \"overheadOverRuns\": \(f(overheadOverRuns)), "
                + "\"overheadOverBareRuns\": \(f(overheadOverBareRuns))}"
        }
    }

    /// The modes measured: plain (cgroup where the host allows it) and, as root, isolated.
    static var modes: [(String, Isolation?)] {
        geteuid() == 0 ? [("plain", nil), ("isolated", Isolation())] : [("plain", nil)]
    }

    static func measure(tests: Int, repeats: Int, mode: String, isolation: Isolation?) async -> Result? {
        let process = ProcessSpec(name: "p0", args: ["/bin/cat"], isolation: isolation)
        let lines = (0..<tests).map { Array("\($0 * 7919)\n".utf8) }
        let step = StepSpec(name: "test", job: JobSpec(processes: [process]),
                            tests: lines.indices.map { TestSpec(name: String($0 + 1), input: .content(lines[$0]), answer: .content(lines[$0])) },
                            checker: .builtin(.exact))
        let steps = StepsSpec(steps: [step])
        let runner = StepsRunner()
        let bare = Runner()

        func job() async -> (wall: Double, runs: Double)? {
            let started = monotonicNanos()
            guard let report = try? await runner.run(steps), report.ok, report.summary.passed == tests else { return nil }
            let wall = Double(monotonicNanos() - started) / 1e6
            return (wall, report.steps[0].tests.reduce(0) { $0 + $1.processes[0].report.wallTime } * 1e3)
        }
        func separate() async -> Double? {
            let started = monotonicNanos()
            for line in lines {
                var single = process
                single.stdin = .content(line)
                guard let job = try? await runner.jobs.run(JobSpec(processes: [single])), job.status == .ok,
                      job.processes[0].report.stdout?.bytes == line.count else { return nil }
            }
            return Double(monotonicNanos() - started) / 1e6
        }
        func bareRuns() async -> Double? {
            let started = monotonicNanos()
            for line in lines {
                let run = Job(arguments: ["/bin/cat"], standardInput: .content(bytes: line), standardOutput: .capture(max: 1 << 20),
                              standardError: .capture(max: 1 << 20), isolation: isolation)
                guard let report = try? await bare.run(run), report.status == .ok else { return nil }
            }
            return Double(monotonicNanos() - started) / 1e6
        }

        var jobs: [Double] = [], sums: [Double] = [], separates: [Double] = [], bares: [Double] = []
        var ratios: [Double] = [], overheads: [Double] = [], overBare: [Double] = []
        for repeatIndex in 0..<(repeats + 1) {
            // Alternate the order, so that a drift of the machine favours neither.
            var measuredJob: (wall: Double, runs: Double)?, measuredSeparate: Double?, measuredBare: Double?
            if repeatIndex % 2 == 0 {
                measuredJob = await job()
                measuredSeparate = await separate()
                measuredBare = await bareRuns()
            } else {
                measuredBare = await bareRuns()
                measuredSeparate = await separate()
                measuredJob = await job()
            }
            guard let measuredJob, let measuredSeparate, let measuredBare else { return nil }
            if repeatIndex == 0 { continue } // warm-up
            jobs.append(measuredJob.wall)
            sums.append(measuredJob.runs)
            separates.append(measuredSeparate)
            bares.append(measuredBare)
            ratios.append(measuredJob.wall / measuredSeparate)
            overheads.append(measuredJob.wall / measuredJob.runs - 1)
            overBare.append(measuredJob.wall / measuredBare - 1)
        }
        func median(_ values: [Double]) -> Double { Summary(values).median }
        return Result(mode: mode, tests: tests, repeats: repeats, jobWall: median(jobs), sumOfTestRuns: median(sums),
                      separateJobs: median(separates), bareRuns: median(bares), jobOverSeparate: median(ratios),
                      overheadOverRuns: median(overheads), overheadOverBareRuns: median(overBare))
    }
}
