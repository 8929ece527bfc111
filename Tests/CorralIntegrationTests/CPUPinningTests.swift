import Corral
import CorralTestSupport
import Foundation
import Testing

/// Two CPUs Corral may use: the runs below are pinned to CPU 1 and must see that one only.
private let twoCPUs = Set(CPUList.allowed()?.cpus ?? []).isSuperset(of: [0, 1])
private let needsTwo = "needs CPUs 0 and 1 in Corral's own affinity"
private let v1 = CgroupCheck.hasV1 && CgroupCheck.cpusetParent != nil
private let needsV1 = "needs root and the cgroup v1 memory, pids, cpuacct, freezer and cpuset hierarchies"
private let v2Cpuset = CgroupCheck.hasV2 && !CgroupCheck.hasV1 && (CgroupCheck.host.cgroups.v2?.controllers.contains("cpuset") ?? false)
private let needsV2Cpuset = "needs root and a cgroup-v2-only host whose hierarchy offers the cpuset controller (Scripts/v2-vm runs it)"

extension IntegrationTests {
@Suite("CPU pinning", .enabled(if: twoCPUs, Comment(rawValue: needsTwo)))
struct CPUPinningTests {
    static let show = "nproc; grep Cpus_allowed_list /proc/self/status; grep cpuset /proc/self/cgroup || true"

    func pinned(_ script: String, _ containment: RunnerConfiguration.ContainmentPreference,
                isolation: Isolation? = nil, cpus: String = "1") async throws -> RunReport {
        let report = try await run(Job(arguments: ["/bin/sh", "-c", script], standardOutput: .capture(max: 1 << 16),
                                       standardError: .capture(max: 1 << 16), limits: Limits(wallTime: .seconds(20)),
                                       isolation: isolation, cpus: try CPUList(cpus)), containment: containment)
        #expect(report.status == .ok, "\(report.message) \(report.stderr?.text ?? "")")
        return report
    }

    func lines(_ report: RunReport) -> [String] {
        (report.stdout?.text ?? "").split(separator: "\n").map(String.init)
    }

    @Test("process-group containment: the program sees one CPU, CPU 1")
    func processGroup() async throws {
        let report = try await pinned(Self.show, .processGroup)
        #expect(report.containment == .processGroup)
        #expect(lines(report).prefix(2) == ["1", "Cpus_allowed_list:\t1"], "\(lines(report))")
    }

    @Test("cgroup v1: one CPU, in a cpuset of the run's own that holds CPU 1, removed afterwards",
          .enabled(if: v1, Comment(rawValue: needsV1)))
    func cgroupV1() async throws {
        let report = try await pinned(Self.show + "; cat /sys/fs/cgroup/cpuset$(grep cpuset /proc/self/cgroup | cut -d: -f3)/cpuset.cpus",
                                      .cgroupV1)
        #expect(report.containment == .cgroupV1)
        let output = lines(report)
        #expect(output.prefix(2) == ["1", "Cpus_allowed_list:\t1"], "\(output)")
        #expect(output.dropFirst(2).first?.contains(":cpuset:/corral/run-\(getpid())-") == true, "\(output)")
        #expect(output.last == "1", "the run's cpuset.cpus: \(output)")
        let left = CgroupCheck.runCgroups(owner: getpid()).filter { $0.contains("/cpuset/") }
        #expect(left.isEmpty, "cpuset cgroups left: \(left)")
    }

    @Test("cgroup v2: one CPU, in a run cgroup whose cpuset.cpus holds CPU 1, removed afterwards",
          .enabled(if: v2Cpuset, Comment(rawValue: needsV2Cpuset)))
    func cgroupV2() async throws {
        let mount = CgroupCheck.host.cgroups.v2?.mount ?? "/sys/fs/cgroup"
        let report = try await pinned("nproc; grep Cpus_allowed_list /proc/self/status; own=$(cut -d: -f3 /proc/self/cgroup); echo \"$own\"; "
                                      + "cat \"\(mount)$own/cpuset.cpus\" \"\(mount)$own/cpuset.cpus.effective\"", .cgroupV2)
        #expect(report.containment == .cgroupV2)
        let output = lines(report)
        #expect(output.prefix(2) == ["1", "Cpus_allowed_list:\t1"], "\(output)")
        #expect(output.dropFirst(2).first?.contains("/corral/run-\(getpid())-") == true, "the run's own cgroup: \(output)")
        #expect(output.suffix(2) == ["1", "1"], "the run's cpuset.cpus and cpuset.cpus.effective: \(output)")
        let left = CgroupCheck.busyRunCgroups()
        #expect(left.isEmpty, "run cgroups left: \(left)")
    }

    @Test("isolated: the init and the program see one CPU", .enabled(if: CgroupCheck.isRoot, "isolation needs root"))
    func isolated() async throws {
        let report = try await pinned("nproc; grep Cpus_allowed_list /proc/self/status /proc/1/status", .automatic,
                                      isolation: Isolation())
        #expect(report.isolated)
        #expect(lines(report) == ["1", "/proc/self/status:Cpus_allowed_list:\t1", "/proc/1/status:Cpus_allowed_list:\t1"],
                "\(lines(report))")
    }

    @Test("several CPUs: 0-1 is both, as a list", .enabled(if: v1, Comment(rawValue: needsV1)))
    func both() async throws {
        let report = try await pinned("grep Cpus_allowed_list /proc/self/status", .cgroupV1, cpus: "0,1")
        #expect(lines(report) == ["Cpus_allowed_list:\t0-1"])
    }

    @Test("a CPU that is not online, or a list that is not one, is refused before anything runs")
    func refused() async throws {
        for text in ["", "a", "1-0", "1,", "-1", " 1", "0x1", "99999"] {
            #expect(throws: CorralError.self, "\"\(text)\"") { try CPUList(text) }
        }
        let offline = try CPUList("4095")
        do {
            let report = try await Runner().run(Job(arguments: ["/bin/true"], cpus: offline))
            Issue.record("a run on CPU 4095 was not refused: \(report.status) \(report.message)")
        } catch {
            #expect(error.kind == .invalidJob)
            #expect(error.message.contains("CPU 4095 is not online"), "\(error.message)")
        }
    }

    @Test("a CPU outside the parent cgroup's cpuset: setup-error, never a run that could leave its CPUs",
          .enabled(if: v1 && CgroupCheck.cpusetParent == "/sys/fs/cgroup/cpuset/corral", "needs Corral in the root of the v1 cpuset hierarchy"))
    func outsideParent() async throws {
        let name = "corral-cpus-test-\(getpid())"
        let hierarchies = ["memory", "pids", "cpuacct", "freezer", "cpuset"].map { "/sys/fs/cgroup/\($0)/\(name)" }
        defer { for directory in hierarchies.reversed() { rmdir(directory) } }
        let parent = "/sys/fs/cgroup/cpuset/\(name)"
        #expect(mkdir(parent, 0o755) == 0)
        try Data("0".utf8).write(to: URL(fileURLWithPath: parent + "/cpuset.mems"))
        try Data("0".utf8).write(to: URL(fileURLWithPath: parent + "/cpuset.cpus"))
        let report = try await Runner(configuration: RunnerConfiguration(containment: .cgroupV1, cgroupParent: "/" + name))
            .run(Job(arguments: ["/bin/true"], cpus: try CPUList("1")))
        #expect(report.status == .setupError)
        #expect(report.message.contains("CPU 1 is not in the cpuset of \(parent) (its CPUs: 0)"), "\(report.message)")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: parent).filter { $0.hasPrefix("run-") }) == [], "a run cgroup was left")
    }

    @Test("cgroup v2 without a cpuset controller: a run that asks for CPUs is refused, not run widenable",
          .enabled(if: CgroupCheck.hasV2 && !(CgroupCheck.host.cgroups.v2?.controllers.contains("cpuset") ?? false),
                   "needs a cgroup v2 hierarchy without the cpuset controller"))
    func v2WithoutCpuset() async throws {
        let report = try await Runner(configuration: RunnerConfiguration(containment: .cgroupV2))
            .run(Job(arguments: ["/bin/true"], cpus: try CPUList("1")))
        #expect(report.status == .setupError)
        #expect(report.message.contains("no cpuset controller"), "\(report.message)")
    }
}
}
