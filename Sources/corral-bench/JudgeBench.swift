import Corral
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A job of one step with N tests against N separate library jobs with the same runs
/// (`/bin/cat` on one line, compared with `lines`): the job's overhead over the sum of its
/// runs, and over the N separate jobs. And the built-in checkers' throughput on a large file.
enum JudgeBench {
    struct Result: Sendable {
        var tests: Int
        /// Medians over the repeats, in ms.
        var jobWall: Double
        var sumOfTestRuns: Double
        var separateJobs: Double
        var overheadOverRuns: Double { jobWall / sumOfTestRuns - 1 }
        var overheadOverSeparate: Double { jobWall / separateJobs - 1 }
        var text: String {
            String(format: "judge job, %d tests: %.1f ms (the sum of its test runs %.1f ms: overhead %+.1f %%); %d separate jobs of the same run: %.1f ms (the job %+.1f %%)",
                   tests, jobWall, sumOfTestRuns, overheadOverRuns * 100, tests, separateJobs, overheadOverSeparate * 100)
        }
    }

    static func measure(tests: Int, repeats: Int = 5) async -> Result? {
        let process = ProcessSpec(name: "p0", args: ["/bin/cat"])
        let step = StepSpec(name: "test", job: JobSpec(processes: [process]),
                            tests: (0..<tests).map { TestSpec(name: String($0 + 1), input: .content(Array("\($0)\n".utf8)), answer: .content(Array("\($0)\n".utf8))) })
        let steps = StepsSpec(steps: [step])
        var single = process
        single.stdin = .content(Array("1\n".utf8))
        let separate = JobSpec(processes: [single])
        let runner = StepsRunner()
        var jobWalls: [Double] = [], runSums: [Double] = [], separateWalls: [Double] = []
        for repeatIndex in 0..<(repeats + 1) {
            let started = monotonicNanos()
            guard let report = try? await runner.run(steps), report.ok else { return nil }
            let jobWall = Double(monotonicNanos() - started) / 1e6
            // A test run's own time: from its spawn to its end, as the report measures it.
            let runSum = report.steps[0].tests.reduce(0) { $0 + $1.processes[0].report.wallTime } * 1e3
            let separateStarted = monotonicNanos()
            for _ in 0..<tests {
                guard let job = try? await runner.jobs.run(separate), job.status == .ok else { return nil }
            }
            let separateWall = Double(monotonicNanos() - separateStarted) / 1e6
            if repeatIndex == 0 { continue } // warm-up
            jobWalls.append(jobWall)
            runSums.append(runSum)
            separateWalls.append(separateWall)
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        return Result(tests: tests, jobWall: median(jobWalls), sumOfTestRuns: median(runSums), separateJobs: median(separateWalls))
    }

    /// MB/s of each built-in checker comparing a file of `megabytes` with a copy of itself.
    static func checkers(megabytes: Int) -> [(String, Double)] {
        let directory = NSTemporaryDirectory() + "corral-bench-checkers-\(getpid())"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var line = [UInt8]()
        for number in 0..<100 { line += Array("\(number * 7919) \(Double(number) / 7) word\(number)\n".utf8) }
        var block = [UInt8]()
        while block.count < 1 << 20 { block += line }
        let output = "\(directory)/output", answer = "\(directory)/answer"
        FileManager.default.createFile(atPath: output, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: output) else { return [] }
        for _ in 0..<megabytes { handle.write(Data(block)) }
        try? handle.close()
        try? FileManager.default.copyItem(atPath: output, toPath: answer)
        let bytes = Double(block.count * megabytes)
        var results: [(String, Double)] = []
        for checker in [BuiltinChecker.exact, .lines, .tokens, .float(absolute: 1e-6, relative: 1e-6)] {
            var best = 0.0
            for _ in 0..<3 {
                let a = open(output, O_RDONLY), b = open(answer, O_RDONLY)
                let started = monotonicNanos()
                let result = checker.check(output: a, answer: b)
                let seconds = Double(monotonicNanos() - started) / 1e9
                close(a)
                close(b)
                guard result.verdict == .accepted else { return [] }
                best = max(best, bytes / seconds / 1e6)
            }
            results.append((checker.name, best))
        }
        return results
    }
}
