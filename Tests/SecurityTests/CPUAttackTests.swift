import Corral
import CorralTestSupport
import Foundation
import Testing

private let twoCPUs = Set(CPUList.allowed()?.cpus ?? []).isSuperset(of: [0, 1])
private let cpusetV1 = CgroupCheck.hasV1 && CgroupCheck.cpusetParent != nil
private let cpusetV2 = CgroupCheck.hasV2 && !CgroupCheck.hasV1 && (CgroupCheck.host.cgroups.v2?.controllers.contains("cpuset") ?? false)
private let needsV1 = "needs the cgroup v1 cpuset hierarchy"
private let needsV2 = "needs a cgroup-v2-only host whose hierarchy offers the cpuset controller (Scripts/v2-vm runs it)"

/// A run pinned to one CPU calls `sched_setaffinity` to take every CPU back, for timings
/// that depend on its neighbours again (or to disturb theirs). Under cgroup containment its
/// cpuset holds it to its CPU; in process-group containment nothing does (the README says so).
extension SecurityTests {
@Suite("CPU pinning", .enabled(if: twoCPUs && CgroupCheck.isRoot, "needs root and CPUs 0 and 1"))
struct CPUAttackTests {
    /// Widens its own affinity, then says what it has: as `sched_getaffinity` and /proc see it.
    static let widen = "import os\ntry:\n os.sched_setaffinity(0, {0, 1})\nexcept OSError as e:\n print('refused', e.errno)\n"
        + "print(sorted(os.sched_getaffinity(0)))\nprint([l for l in open('/proc/self/status') if l.startswith('Cpus_allowed_list')][0], end='')"

    func attack(_ containment: RunnerConfiguration.ContainmentPreference, isolation: Isolation? = nil,
                user: RunUser? = nil) async throws -> (RunReport, String) {
        let report = try await Runner(configuration: RunnerConfiguration(containment: containment)).run(
            Job(arguments: ["/usr/bin/python3", "-c", Self.widen],
                standardOutput: .capture(max: 1 << 16), standardError: .capture(max: 1 << 16),
                limits: Limits(wallTime: .seconds(20)), isolation: isolation, user: user, cpus: try CPUList("1")))
        #expect(report.status == .ok, "\(report.message) \(report.stderr?.text ?? "")")
        let left = CgroupCheck.busyRunCgroups()
        #expect(left.isEmpty, "run cgroups left: \(left)")
        return (report, report.stdout?.text ?? "")
    }

    @Test("cgroup v1: widening to CPUs 0 and 1 leaves the program on CPU 1", .enabled(if: cpusetV1, Comment(rawValue: needsV1)))
    func cgroupV1() async throws {
        let (report, output) = try await attack(.cgroupV1)
        #expect(report.containment == .cgroupV1)
        #expect(output.hasSuffix("[1]\nCpus_allowed_list:\t1\n"), "\(output)")
    }

    @Test("cgroup v1 as root (--user 0): sched_setaffinity still cannot widen (root could leave its cgroups: --user 0 is trusted)",
          .enabled(if: cpusetV1, Comment(rawValue: needsV1)))
    func cgroupV1Root() async throws {
        let (_, output) = try await attack(.cgroupV1, user: RunUser(uid: 0, gid: 0))
        #expect(output.hasSuffix("[1]\nCpus_allowed_list:\t1\n"), "\(output)")
    }

    @Test("cgroup v2: widening to CPUs 0 and 1 leaves the program on CPU 1", .enabled(if: cpusetV2, Comment(rawValue: needsV2)))
    func cgroupV2() async throws {
        let (report, output) = try await attack(.cgroupV2)
        #expect(report.containment == .cgroupV2)
        #expect(output.hasSuffix("[1]\nCpus_allowed_list:\t1\n"), "\(output)")
    }

    @Test("cgroup v2 as root (--user 0): sched_setaffinity still cannot widen", .enabled(if: cpusetV2, Comment(rawValue: needsV2)))
    func cgroupV2Root() async throws {
        let (_, output) = try await attack(.cgroupV2, user: RunUser(uid: 0, gid: 0))
        #expect(output.hasSuffix("[1]\nCpus_allowed_list:\t1\n"), "\(output)")
    }

    @Test("isolated: widening leaves the program on CPU 1")
    func isolated() async throws {
        let (report, output) = try await attack(.automatic, isolation: Isolation())
        #expect(report.isolated)
        #expect(output.hasSuffix("[1]\nCpus_allowed_list:\t1\n"), "\(output)")
    }

    @Test("process-group containment: affinity alone, which the program can widen (as documented)")
    func processGroupIsWidenable() async throws {
        let (report, output) = try await attack(.processGroup)
        #expect(report.containment == .processGroup)
        #expect(output.hasSuffix("[0, 1]\nCpus_allowed_list:\t0-1\n"), "\(output)")
    }
}
}
