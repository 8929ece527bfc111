import Corral
import CorralTestSupport
import Foundation
import Testing

extension IntegrationTests {
@Suite("Many runs at once")
struct ConcurrencyTests {
    @Test("48 runs of every kind at once in one process: each gets its own verdict, nothing is left")
    func mixed() async throws {
        let spin = try Fixtures.path("spin")
        let forker = try Fixtures.path("forker")
        let escaper = try Fixtures.path("escaper")
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let root = geteuid() == 0
        let groupRunner = Runner(configuration: RunnerConfiguration(containment: .processGroup))
        let autoRunner = Runner()
        let outcomes = try await withThrowingTaskGroup(of: (Int, String, RunReport, [Int32]).self) { group in
            for index in 0..<48 {
                group.addTask {
                    let runner = index % 2 == 0 ? autoRunner : groupRunner
                    switch index % 6 {
                    case 0:
                        let report = try await runner.run(Job(arguments: ["/bin/sh", "-c", "exit \(index % 100)"]))
                        return (index, "exit", report, [])
                    case 1:
                        let report = try await runner.run(Job(arguments: [spin], limits: Limits(cpuTime: .milliseconds(200), wallTime: .seconds(30))))
                        return (index, "spin", report, [])
                    case 2:
                        let pids = directory.file("forker-\(index)")
                        let report = try await runner.run(Job(arguments: [forker, pids, "5"]))
                        return (index, "forker", report, Leftovers.pids(inFile: pids))
                    case 3:
                        let pids = directory.file("escaper-\(index)")
                        // Process-group mode guesses an escape's run when several run at once
                        // (see the README); only the cgroup runs are held to exactness here.
                        let report = try await autoRunner.run(Job(arguments: [escaper, pids, "daemon", "50"]))
                        return (index, "escaper", report, Leftovers.pids(inFile: pids))
                    case 4:
                        let report = try await runner.run(Job(arguments: ["yes"], standardOutput: .capture(max: 10_000), limits: Limits(wallTime: .seconds(30))))
                        return (index, "capture", report, [])
                    default:
                        let job = Job(arguments: ["/bin/sh", "-c", "echo $$"], standardOutput: .capture(max: 100), isolation: root ? Isolation() : nil)
                        let report = try await runner.run(job)
                        return (index, "isolated", report, [])
                    }
                }
            }
            var all: [(Int, String, RunReport, [Int32])] = []
            for try await outcome in group { all.append(outcome) }
            return all
        }
        #expect(outcomes.count == 48)
        for (index, kind, report, pids) in outcomes {
            switch kind {
            case "exit": #expect(report.exitCode == Int32(index % 100), "run \(index)")
            case "spin": #expect(report.status == .cpuTimeLimit, "run \(index): \(report.message)")
            case "forker":
                #expect(report.status == .ok, "run \(index)")
                #expect(report.leftovers == 5, "run \(index): \(report.leftovers) leftovers")
            case "escaper":
                #expect(report.status == .ok, "run \(index)")
                #expect(report.leftovers >= 1, "run \(index) did not kill its own daemon")
            case "capture":
                #expect(report.status == .outputLimit, "run \(index)")
                #expect(report.stdout?.bytes == 10_000)
            default:
                #expect(report.status == .ok, "run \(index): \(report.message)")
                if root { #expect(report.stdout?.text == "2\n") }
            }
            #expect(Leftovers.survivors(of: report, extra: pids).isEmpty, "run \(index) (\(kind)) left processes")
        }
        #expect(CgroupCheck.busyRunCgroups().isEmpty)
    }
}
}
