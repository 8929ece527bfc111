import Corral
#if canImport(Glibc)
import Glibc
#endif

/// `corral-bench --accounting N`: Corral's own CPU while it watches a CPU-bound run. Each
/// run is a shell loop that spins until its CPU limit (0.5 s) kills it; Corral's CPU is the
/// bench process's own user + system time over the run (`getrusage(RUSAGE_SELF)`: every
/// thread of this process, none of its children's), against the CPU the run used. Also the
/// kill's accuracy: the run's CPU minus its limit.
enum AccountingBench {
    struct Result: Sendable {
        let mode: String
        let runs: Int
        /// Corral's CPU per run, microseconds.
        let corral: Summary
        /// The run's CPU per run, microseconds.
        let run: Summary
        /// The run's CPU minus the limit, microseconds.
        let overshoot: Summary
        let failures: Int

        var ratio: Double { corral.median / run.median }

        var json: String {
            "{\"mode\": \"\(mode)\", \"runs\": \(runs), \"corralCPUMicros\": \(format(corral.median)), "
                + "\"runCPUMicros\": \(format(run.median)), \"corralShare\": \(String(format: "%.5f", ratio)), "
                + "\"overshootMedianMicros\": \(format(overshoot.median)), \"overshootMaxMicros\": \(format(overshoot.max)), "
                + "\"failures\": \(failures)}"
        }

        var table: String {
            "accounting, \(mode), \(runs) runs of a spinner killed at 0.5 s of CPU (medians): Corral \(format(corral.median)) µs "
                + "of CPU per run, the run \(format(run.median)) µs: \(String(format: "%.3f", ratio * 100)) %; "
                + "past the limit by \(format(overshoot.median)) µs (max \(format(overshoot.max)))"
        }

        private func format(_ value: Double) -> String { value.isFinite ? String(format: "%.0f", value) : "null" }
    }

    static let limit = Duration.milliseconds(500)

    static func measure(runs: Int) async -> [Result] {
        var results: [Result] = []
        let modes: [(String, RunnerConfiguration)] = [
            ("process-group", RunnerConfiguration(containment: .processGroup)),
            ("cgroup", RunnerConfiguration(containment: .automatic, requireCgroup: true)),
        ]
        for (name, configuration) in modes {
            let runner = Runner(configuration: configuration)
            let job = Job(arguments: ["/bin/sh", "-c", "while :; do :; done"],
                          limits: Limits(cpuTime: limit, wallTime: .seconds(10)))
            _ = try? await runner.run(job) // warm-up: the reaper thread, pools, parents
            var corral: [Double] = [], used: [Double] = [], overshoot: [Double] = []
            var failures = 0
            for _ in 0..<runs {
                let before = ownCPUMicros()
                let report = try? await runner.run(job)
                let after = ownCPUMicros()
                guard let report, report.status == .cpuTimeLimit else {
                    failures += 1
                    continue
                }
                corral.append(after - before)
                used.append(report.cpuTime * 1e6)
                overshoot.append(report.cpuTime * 1e6 - 500_000)
            }
            results.append(Result(mode: name, runs: runs, corral: Summary(corral), run: Summary(used),
                                  overshoot: Summary(overshoot), failures: failures))
        }
        return results
    }

    /// This process's user + system CPU so far (all threads), microseconds.
    static func ownCPUMicros() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e6 + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
    }
}
