import Corral
import CorralTestSupport
import Foundation
import Testing

/// Every library run of these tests, one at a time. In process-group mode Corral gives a
/// process that escaped its run's session between two samples to the run that started
/// last before it; with several runs going at once that guess can be wrong (cgroups make
/// it exact), and these tests check exact attribution.
@Suite(.serialized, .cgroupExclusive)
enum IntegrationTests {}

/// Runs a job through the library and checks that nothing of it is left alive.
func run(_ job: Job, extraPids: [Int32] = [], containment: RunnerConfiguration.ContainmentPreference = .automatic,
         sourceLocation: SourceLocation = #_sourceLocation) async throws -> RunReport {
    let report = try await Runner(configuration: RunnerConfiguration(containment: containment)).run(job)
    let survivors = Leftovers.survivors(of: report, extra: extraPids)
    #expect(survivors.isEmpty, "processes of the run still alive: \(survivors)", sourceLocation: sourceLocation)
    let cgroups = CgroupCheck.busyRunCgroups()
    #expect(cgroups.isEmpty, "run cgroups left with processes or not removed: \(cgroups)", sourceLocation: sourceLocation)
    #expect(report.warnings.isEmpty || containment == .processGroup, "warnings: \(report.warnings)", sourceLocation: sourceLocation)
    return report
}

func job(_ fixture: String, _ arguments: String..., limits: Limits = Limits(),
         stdout: Output = .null, stderr: Output = .null) throws -> Job {
    Job(arguments: [try Fixtures.path(fixture)] + arguments, standardOutput: stdout, standardError: stderr, limits: limits)
}

func fileSize(_ path: String) -> UInt64? {
    (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.uint64Value
}

/// Whether this process can read the kernel's audit records, where the kernel says which call
/// a seccomp filter killed: as root (the audit netlink socket), or through the kernel's log
/// (`/dev/kmsg`, where `kernel.dmesg_restrict` is 0).
enum AuditRecords {
    static let readable: Bool = {
        if geteuid() == 0 { return true }
        let fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }()
}
