import Corral
import CorralTestSupport
import Foundation
import Testing

/// A job stopped while a test runs (`DELETE`, a shutdown, `--max-job-time`, a library
/// caller's `RunStop`): the test's verdict is `cancelled`, never `runtime-error` or
/// `checker-error`, which would blame the program for what the judge did.
extension IntegrationTests {
@Suite("A stopped job's test verdict")
struct StoppedTestVerdictTests {
    /// A `sleep` argument that names the process: `sleep MARKER` is found in /proc.
    let marker = "34.\(Int.random(in: 1000...9999))"

    /// Runs `json` (a job of steps) and stops it once `sleep MARKER` runs (the program, the
    /// checker or the interactor the test is about); the report of its only test.
    func stopped(_ json: String) async throws -> TestReport {
        guard case .steps(let spec) = try JobDocument.parse(Data(json.utf8)) else { throw FixtureError("not a job of steps") }
        let stop = RunStop()
        let started = ContinuousClock.now
        async let running = StepsRunner().run(spec, stop: stop)
        for _ in 0..<1000 where Leftovers.sleepers(marker) == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(Leftovers.sleepers(marker) == 1, "the sleeper never started")
        stop.stop(reason: "stopped by the test")
        let report = try await running
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(report.stopped != nil)
        #expect(Leftovers.sleepers(marker) == 0)
        #expect(CgroupCheck.busyRunCgroups().isEmpty)
        return try #require(report.steps.first?.tests.first)
    }

    @Test("the tested program cancelled: verdict cancelled, status cancelled")
    func program() async throws {
        let test = try await stopped("""
        {"steps": [{"name": "t", "processes": [{"args": ["/bin/sleep", "\(marker)"], "limits": {"wallTime": 60}}],
          "tests": [{"stdin": {"content": "1\\n"}, "answer": {"content": ""}}]}]}
        """)
        #expect(test.verdict == .cancelled, "\(test.comment)")
        #expect(test.status == .cancelled)
        #expect(test.comment.contains("stopped by the test"), "\(test.comment)")
    }

    @Test("its custom checker cancelled: verdict cancelled, not checker-error")
    func checker() async throws {
        let test = try await stopped("""
        {"steps": [{"name": "t", "processes": [{"args": ["/bin/cat"]}],
          "checker": {"type": "custom", "args": ["/bin/sh", "-c", "exec sleep \(marker)", "checker"], "limits": {"wallTime": 60}},
          "tests": [{"stdin": {"content": "1\\n"}, "answer": {"content": "1\\n"}}]}]}
        """)
        #expect(test.verdict == .cancelled, "\(test.comment)")
        #expect(test.status == .ok)
        #expect(test.checker?.status == .cancelled)
        #expect(test.comment.contains("stopped by the test"), "\(test.comment)")
    }

    @Test("an interactive test whose interactor is cancelled: verdict cancelled, not checker-error")
    func interactor() async throws {
        let test = try await stopped("""
        {"steps": [{"name": "i", "interactor": "interactor", "pipes": ["toSolution", "toInteractor"],
          "processes": [
            {"name": "solution", "args": ["/bin/sh", "-c", "read n; echo $n"], "stdin": {"pipe": "toSolution"},
             "stdout": {"pipe": "toInteractor"}, "limits": {"wallTime": 60}},
            {"name": "interactor", "args": ["/bin/sleep", "\(marker)"], "stdin": {"pipe": "toInteractor"}, "stdout": {"pipe": "toSolution"},
             "limits": {"wallTime": 60}}],
          "tests": [{"stdin": {"content": "4\\n"}, "answer": {"content": "4\\n"}}]}]}
        """)
        #expect(test.verdict == .cancelled, "\(test.comment)")
        #expect(test.comment.contains("stopped by the test"), "\(test.comment)")
    }
}
}
