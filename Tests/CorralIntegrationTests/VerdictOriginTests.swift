import Corral
import CorralTestSupport
import Foundation
import Testing

extension IntegrationTests {
/// A limit verdict comes from Corral's own measurement or backstop, for a limit that was set;
/// a job's reports come back under their own processes whatever order the processes end in.
@Suite("Verdict origins")
struct VerdictOriginTests {
    @Test("a program that sends itself SIGXCPU or SIGXFSZ is signaled, not over a limit", arguments: [
        ("XCPU", SIGXCPU, Limits()), ("XCPU", SIGXCPU, Limits(cpuTime: .seconds(5))),
        ("XFSZ", SIGXFSZ, Limits()),
    ])
    func selfSentLimitSignals(name: String, signal: Int32, limits: Limits) async throws {
        let report = try await run(Job(arguments: ["/bin/sh", "-c", "kill -\(name) $$"], limits: limits))
        #expect(report.status == .signaled, "\(report.message)")
        #expect(report.signal == signal)
    }

    /// The release build once gave each process of a job another's report (59 of 60 runs).
    @Test("processes that end out of order each get their own report, every time")
    func outOfOrder() async throws {
        let spec = try JobSpec.parse(Data("""
            {"processes": [
              {"name": "slow-three", "args": ["/bin/sh", "-c", "sleep 0.4; exit 3"]},
              {"name": "fast-ok", "args": ["/bin/true"]},
              {"name": "walled", "args": ["/bin/sleep", "10"], "limits": {"wallTime": "300ms"}},
              {"name": "middle-five", "args": ["/bin/sh", "-c", "sleep 0.1; exit 5"]}]}
            """.utf8))
        for _ in 0..<10 {
            let report = try await JobRunner().run(spec)
            #expect(report.processes.map(\.name) == ["slow-three", "fast-ok", "walled", "middle-five"])
            #expect(report.processes.map(\.report.status) == [.nonzeroExit, .ok, .wallTimeLimit, .nonzeroExit])
            #expect(report.processes.map(\.report.exitCode) == [3, 0, nil, 5])
            #expect(report.status == .nonzeroExit)
            #expect(report.commandExitCode == 3)
        }
    }
}
}
