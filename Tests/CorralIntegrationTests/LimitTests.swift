import Corral
import CorralTestSupport
import Foundation
import Testing

/// Library runs are serialized across suites: see ``IntegrationTests``.
extension IntegrationTests {
@Suite("Limits")
struct LimitTests {
    @Test("a spinner is killed at its CPU limit")
    func cpuLimit() async throws {
        let report = try await run(try job("spin", limits: Limits(cpuTime: .seconds(1))))
        #expect(report.status == .cpuTimeLimit)
        // Corral's sampling kills it once the exact CPU time passes the limit; the RLIMIT_CPU
        // backstop (tick-counted, at 3 s here) stays out of the way.
        #expect(report.cpuTime >= 1.0, "cpu \(report.cpuTime)")
        #expect(report.cpuTime < 1.3, "cpu \(report.cpuTime)")
        #expect(report.limits.wallTime == .seconds(3)) // 2 × cpu + 1 s
        #expect(report.signal == SIGKILL)
        #expect(report.exitCode == nil)
        #expect(report.commandExitCode == 124)
        #expect(report.message.hasSuffix("s of CPU time (limit 1 s)"))
    }

    @Test("two spinning threads count twice")
    func cpuIsSummedOverThreads() async throws {
        // Each thread burns 0.4 s of its own CPU, however it is scheduled (a busy machine,
        // or the run's session sharing one autogroup, gives each thread less than a CPU):
        // the run's CPU is the sum, about 0.8 s; one thread counted would be 0.4 s.
        let report = try await run(try job("thread_cpu", "2", "0.4", limits: Limits(wallTime: .seconds(20))))
        #expect(report.status == .ok)
        #expect(report.cpuTime >= 0.75, "cpu \(report.cpuTime)")
        #expect(report.cpuTime < 1.2, "cpu \(report.cpuTime)")
        if ProcessInfo.processInfo.activeProcessorCount >= 2 && report.wallTime < 0.6 {
            // On an idle machine with two CPUs the threads ran side by side.
            #expect(report.cpuTime > 1.25 * report.wallTime, "cpu \(report.cpuTime), wall \(report.wallTime)")
        }
    }

    @Test("a limit between whole seconds is Corral's to enforce, not RLIMIT_CPU's")
    func fractionalCPULimit() async throws {
        let report = try await run(try job("spin", limits: Limits(cpuTime: .milliseconds(700), wallTime: .seconds(10))))
        #expect(report.status == .cpuTimeLimit)
        #expect(report.signal == SIGKILL)
        #expect(report.cpuTime >= 0.7)
        #expect(report.cpuTime < 1.0)
        #expect(report.message.hasPrefix("killed after 0.7"))
    }

    @Test("a caught SIGXCPU does not help")
    func caughtSIGXCPU() async throws {
        // The fixture lowers its own RLIMIT_CPU to 1 s and ignores the SIGXCPU at 1 s.
        let report = try await run(try job("xcpu_catcher", limits: Limits(cpuTime: .milliseconds(1500), wallTime: .seconds(10))))
        #expect(report.status == .cpuTimeLimit)
        #expect(report.signal == SIGKILL)
        #expect(report.cpuTime >= 1.5, "cpu \(report.cpuTime)")
        #expect(report.cpuTime < 2.0, "cpu \(report.cpuTime)")
    }

    @Test("sleeping passes the wall limit")
    func wallLimit() async throws {
        let report = try await run(Job(arguments: ["sleep", "30"], limits: Limits(wallTime: .milliseconds(500))))
        #expect(report.status == .wallTimeLimit)
        #expect(report.wallTime >= 0.5)
        #expect(report.wallTime < 1.5)
        #expect(report.cpuTime < 0.2)
        #expect(report.commandExitCode == 124)
    }

    @Test("a process that stops itself does not hang the run")
    func stoppedProcess() async throws {
        let report = try await run(try job("stop_self", limits: Limits(wallTime: .milliseconds(500))))
        #expect(report.status == .wallTimeLimit)
        #expect(report.wallTime < 1.5)
        #expect(report.events.contains { $0.event == .stopped && $0.signal == SIGSTOP })
    }

    @Test("an output flood to a file stops at exactly the limit")
    func outputFlood() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("out")
        let report = try await run(try job("flood", limits: Limits(wallTime: .seconds(10), output: 65_536), stdout: .file(path)))
        #expect(report.status == .outputLimit)
        #expect(fileSize(path) == 65_536)
        #expect(report.signalName == "SIGXFSZ")
        #expect(report.commandExitCode == 124)
    }

    @Test("a program that ignores SIGXFSZ still gets output-limit, and the file is cut exactly")
    func outputFloodIgnoringSignal() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("out")
        let report = try await run(try job("flood", "ignore-xfsz", limits: Limits(wallTime: .seconds(10), output: 10_000), stdout: .file(path)))
        #expect(report.status == .outputLimit)
        #expect(report.exitCode == 0)
        #expect(fileSize(path) == 10_000)
    }

    @Test("output of exactly the limit is allowed")
    func outputAtTheLimit() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("out")
        let report = try await run(Job(arguments: ["head", "-c", "4096", "/dev/zero"], standardOutput: .file(path), limits: Limits(output: 4096)))
        #expect(report.status == .ok)
        #expect(fileSize(path) == 4096)
    }

    @Test("--address-space is RLIMIT_AS on each process: an allocation past it fails")
    func addressSpace() async throws {
        let report = try await run(try job("hog", "512", limits: Limits(addressSpace: 256 << 20)))
        #expect(report.status == .nonzeroExit)
        #expect(report.exitCode == 1)
        #expect(report.limits.addressSpace == 256 << 20)
    }

    @Test("without cgroups, memory is RLIMIT_AS on each process")
    func memoryInProcessGroupMode() async throws {
        let report = try await run(try job("hog", "512", limits: Limits(memory: 256 << 20)), containment: .processGroup)
        #expect(report.containment == .processGroup)
        #expect(report.status == .nonzeroExit)
        #expect(report.exitCode == 1)
    }

    @Test("in process-group mode the memory peak of a process that holds its memory is sampled")
    func memoryPeak() async throws {
        let report = try await run(try job("hog", "64", "1", "300"), containment: .processGroup)
        #expect(report.status == .ok)
        #expect(report.memoryPeak >= 60 << 20)
        #expect(report.memoryPeak < 100 << 20)
    }
}
}
