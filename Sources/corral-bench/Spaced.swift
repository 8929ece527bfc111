import Corral
#if canImport(Glibc)
import Glibc
#endif

/// `corral-bench --spaced MS`: every run (the bare spawn and each mode) comes after a pause
/// of MS milliseconds, as in a judge that does other work between runs. Back-to-back loops
/// hide what an idle moment costs (on a cgroup v1 host, the first migration after one
/// waits for an RCU grace period); this measures it, as the difference between the cgroup
/// modes and the process-group mode in the same iterations.
enum SpacedBench {
    /// The modes measured spaced: process-group, the automatic cgroup mode, and the cgroup v2
    /// mode on its own where the host has a writable v2 hierarchy (it takes `/bin/true` with
    /// no limits even without controllers), which creates the program inside its cgroup.
    static func modes() async -> [BenchMode] {
        var modes: [BenchMode] = [.processGroup, .cgroup]
        let v2 = BenchMode.runner("cgroup-v2", RunnerConfiguration(containment: .cgroupV2, requireCgroup: true))
        if await v2.run() { modes.append(v2) }
        return modes
    }

    static func measure(_ options: Options, spacingMillis: Int) async -> BenchResult {
        let modes = await modes()
        let bare = BareSpawn()
        let pause = useconds_t(spacingMillis * 1000)
        for _ in 0..<min(options.warmup, 3) {
            _ = bare.run()
            for mode in modes { _ = await mode.run() }
        }
        var baselineSamples: [Double] = []
        var baselineFailures = 0
        var modeSamples = Array(repeating: [Double](), count: modes.count)
        var modeFailures = Array(repeating: 0, count: modes.count)
        for _ in 0..<options.runs {
            usleep(pause)
            var start = monotonicNanos()
            if !bare.run() { baselineFailures += 1 }
            baselineSamples.append(micros(from: start, to: monotonicNanos()))
            for (index, mode) in modes.enumerated() {
                usleep(pause)
                start = monotonicNanos()
                let ok = await mode.run()
                modeSamples[index].append(micros(from: start, to: monotonicNanos()))
                if !ok { modeFailures[index] += 1 }
            }
        }
        var result = BenchResult(
            runs: options.runs,
            warmup: min(options.warmup, 3),
            baseline: Summary(baselineSamples),
            baselineFailures: baselineFailures,
            modes: modes.indices.map {
                ModeResult(name: modes[$0].name, summary: Summary(modeSamples[$0]), failures: modeFailures[$0])
            }
        )
        result.spacingMillis = spacingMillis
        // Paired differences (each cgroup run against the process-group run of the same
        // iteration), so slow moments of the machine fall on both.
        for index in modes.indices.dropFirst() {
            let differences = zip(modeSamples[index], modeSamples[0]).map { $0 - $1 }
            result.differences.append((modes[index].name, Summary(differences)))
        }
        return result
    }
}
