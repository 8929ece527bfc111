import Corral
import CorralTestSupport
import Foundation
import Testing

private let v2Limits = CgroupCheck.hasV2Controllers
private let needsV2Limits = "needs root and cgroup v2 with the memory and pids controllers (this host's v2 hierarchy has neither; Scripts/v2-vm runs it)"
private let needsPids = "needs root and a pids cgroup (v1, or v2 with the pids controller)"

extension IntegrationTests {
@Suite("Process limits count the program's processes only; OOM kills counted right")
struct ProcessCountTests {
    /// Runs fork_until_refused under `--processes limit` and returns how many processes of
    /// its own existed at once and the errno of the refused fork.
    func forks(_ limit: UInt64, isolated: Bool, containment: RunnerConfiguration.ContainmentPreference) async throws -> (Int, Int, RunReport) {
        let fixture = try Fixtures.path("fork_until_refused")
        let directory = URL(fileURLWithPath: fixture).deletingLastPathComponent().path
        let report = try await run(Job(arguments: [fixture], standardOutput: .capture(max: 1024),
                                       limits: Limits(wallTime: .seconds(30), processes: limit),
                                       isolation: isolated ? Isolation(binds: [Isolation.Bind(source: directory)]) : nil),
                                   containment: containment)
        #expect(report.status == .ok, "\(report.message)")
        let fields = (report.stdout?.text ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
        try #require(fields.count == 2, "output: \(report.stdout?.text ?? "none")")
        return (fields[0], fields[1], report)
    }

    func exactly(_ containment: RunnerConfiguration.ContainmentPreference) async throws {
        for isolated in [false, true] {
            for limit: UInt64 in [1, 5, 16] {
                let (count, refused, report) = try await forks(limit, isolated: isolated, containment: containment)
                #expect(count == Int(limit), "--processes \(limit)\(isolated ? " --isolate" : ""): \(count) processes at once")
                #expect(refused == Int(EAGAIN), "the refused fork's errno: \(refused)")
                #expect(report.processLimitHit)
                #expect(report.limits.processes == limit)
            }
        }
    }

    @Test("v1: --processes N gives the program exactly N processes at once, plain and isolated; the N+1th fork fails",
          .enabled(if: CgroupCheck.hasV1, "needs root and the cgroup v1 memory, pids, cpuacct and freezer hierarchies"))
    func exactlyV1() async throws { try await exactly(.cgroupV1) }

    @Test("v2: --processes N gives the program exactly N processes at once, plain and isolated; the N+1th fork fails",
          .enabled(if: v2Limits, Comment(rawValue: needsV2Limits)))
    func exactlyV2() async throws { try await exactly(.cgroupV2) }

    @Test("v2: a one-process run killed at its memory limit says the kernel killed 1 process (memory.oom.group counts it twice)",
          .enabled(if: v2Limits, Comment(rawValue: needsV2Limits)))
    func oneOOMKill() async throws {
        let report = try await run(try job("hog", "80", limits: Limits(memory: 64 << 20)), containment: .cgroupV2)
        #expect(report.status == .memoryLimit)
        #expect(report.message.hasPrefix("out of memory: the kernel killed 1 process at the memory limit"), "\(report.message)")
        // Ten children holding 40 MB each under 256 MB: at most they and their parent.
        let many = try await run(try job("hog", "40", "10", "500", limits: Limits(memory: 256 << 20)), containment: .cgroupV2)
        #expect(many.status == .memoryLimit)
        let killed = many.message.split(separator: " ").dropFirst(6).first.flatMap { Int($0) } ?? 0
        #expect((1...11).contains(killed), "\(many.message)")
    }
}
}
