import Corral
import Foundation
import Testing

@Suite("Reports")
struct ReportTests {
    @Test("every field of the report is present in the JSON, absent values as null")
    func jsonKeys() throws {
        let report = RunReport(status: .ok, pid: 42, exitCode: 0, limits: Limits(cpuTime: .milliseconds(1500), memory: 1 << 20), message: "exited")
        let data = try JSONEncoder().encode(report)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let keys = ["status", "pid", "exitCode", "signal", "signalName", "cpuTime", "userTime", "systemTime", "wallTime",
                    "memoryPeak", "processes", "leftovers", "limits", "containment", "isolated", "processLimitHit", "warnings", "events",
                    "message", "error", "stdout", "stderr"]
        #expect(Set(object.keys) == Set(keys))
        #expect(object["status"] as? String == "ok")
        #expect(object["signal"] is NSNull)
        #expect(object["containment"] as? String == "process-group")
        let limits = try #require(object["limits"] as? [String: Any])
        #expect(limits["cpuTime"] as? Double == 1.5)
        #expect(limits["memory"] as? Int == 1 << 20)
        #expect(limits["wallTime"] is NSNull)
        #expect(limits["processes"] is NSNull)
        #expect(object["processLimitHit"] as? Bool == false)
        #expect((object["warnings"] as? [Any])?.isEmpty == true)
    }

    @Test("the report round-trips through JSON")
    func roundTrip() throws {
        let report = RunReport(
            status: .signaled, pid: 7, signal: 11, signalName: "SIGSEGV", cpuTime: 0.5, wallTime: 1,
            limits: Limits(cpuTime: .seconds(1), wallTime: .seconds(3)),
            events: [ProcessEvent(time: 0.1, pid: 7, event: .signaled, signal: 11)], message: "killed by SIGSEGV"
        )
        let decoded = try JSONDecoder().decode(RunReport.self, from: try JSONEncoder().encode(report))
        #expect(decoded == report)
    }

    @Test("limits decode from numbers and strings")
    func limitsDecode() throws {
        let json = #"{"cpuTime": "500ms", "wallTime": 2, "memory": "64M", "output": 1024, "openFiles": 64}"#
        let limits = try JSONDecoder().decode(Limits.self, from: Data(json.utf8))
        #expect(limits == Limits(cpuTime: .milliseconds(500), wallTime: .seconds(2), memory: 64 << 20, output: 1024, openFiles: 64))
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Limits.self, from: Data(#"{"cpuTime": -1}"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Limits.self, from: Data(#"{"memory": "lots"}"#.utf8)) }
    }

    @Test("exit codes of corral run", arguments: [
        (RunStatus.ok, Int32?(0), Int32?.none, Int32(0)),
        (.nonzeroExit, 3, nil, 3),
        (.signaled, nil, 11, 139),
        (.cpuTimeLimit, nil, 9, 124),
        (.wallTimeLimit, nil, 9, 124),
        (.memoryLimit, 1, nil, 124),
        (.outputLimit, nil, 25, 124),
        (.cancelled, nil, 9, 130),
    ])
    func exitCodes(status: RunStatus, exitCode: Int32?, signal: Int32?, expected: Int32) {
        let report = RunReport(status: status, exitCode: exitCode, signal: signal, message: "")
        #expect(report.commandExitCode == expected)
    }

    @Test("setup errors: 127 not found, 126 not executable, 125 otherwise")
    func setupExitCodes() {
        func code(_ stage: String, _ error: Int32) -> Int32 {
            RunReport(status: .setupError, message: "", error: SetupFailure(stage: stage, errno: error, message: "")).commandExitCode
        }
        #expect(code("exec", ENOENT) == 127)
        #expect(code("resolve", ENOENT) == 127)
        #expect(code("exec", EACCES) == 126)
        #expect(code("exec", ENOEXEC) == 126)
        #expect(code("chdir", ENOENT) == 125)
        #expect(code("rlimit", EPERM) == 125)
    }

    @Test("a job of steps' exit code: 0 ok; 1 for a test not accepted; 130 for a cancelled test, and for a job stopped between steps with nothing failed")
    func stepsExitCodes() {
        let summary = TestSummary(tests: 0, run: 0, passed: 0, firstFailure: nil)
        let done = StepReport(name: "a", ok: true, status: .ok, wallTime: 0)
        func test(_ verdict: TestVerdict) -> TestReport {
            TestReport(name: "1", verdict: verdict, status: verdict == .cancelled ? .cancelled : .ok, comment: "", processes: [], wallTime: 0)
        }
        func step(_ tests: [TestReport]) -> StepReport { StepReport(name: "t", ok: false, status: tests[0].status, tests: tests, wallTime: 0) }
        #expect(StepsReport(ok: true, steps: [done], skipped: [], summary: summary, wallTime: 0).commandExitCode == 0)
        #expect(StepsReport(ok: false, steps: [done], skipped: ["b"], summary: summary, wallTime: 0, stopped: "stopped").commandExitCode == 130)
        #expect(StepsReport(ok: false, steps: [step([test(.wrongAnswer)])], skipped: [], summary: summary, wallTime: 0).commandExitCode == 1)
        #expect(StepsReport(ok: false, steps: [step([test(.cancelled)])], skipped: [], summary: summary, wallTime: 0, stopped: "x").commandExitCode == 130)
        #expect(StepsReport(ok: false, steps: [step([test(.accepted), test(.wrongAnswer), test(.cancelled)])], skipped: [],
                            summary: summary, wallTime: 0, stopped: "x").commandExitCode == 1)
    }
}
