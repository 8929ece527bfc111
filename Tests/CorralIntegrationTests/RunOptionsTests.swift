import Corral
import CorralTestSupport
import Foundation
import Testing

/// What a judge needs from each run (issue 15): a capture cap that cuts and lets the program
/// go on, signals ignored from the start, and one clock for the processes of a job.
extension IntegrationTests {
@Suite("Run options: onLimit, ignoreSignals, the job's clock")
struct RunOptionsTests {
    /// Plain, and isolated where the tests run as root.
    static let modes: [Bool] = geteuid() == 0 ? [false, true] : [false]

    func runJob(_ json: String) async throws -> JobReport {
        let report = try await JobRunner().run(try JobSpec.parse(Data(json.utf8)))
        for process in report.processes {
            #expect(Leftovers.survivors(of: process.report).isEmpty, "\(process.name) left processes")
        }
        #expect(CgroupCheck.busyRunCgroups().isEmpty)
        return report
    }

    // MARK: onLimit

    @Test("10 MB to a 1000-byte capture: truncate keeps 1000 bytes and the program ends ok; kill is output-limit", arguments: modes)
    func truncatingCapture(isolated: Bool) async throws {
        let job = { (action: OutputLimitAction) in
            Job(arguments: ["head", "-c", "10000000", "/dev/zero"], standardOutput: .capture(max: 1000, onLimit: action),
                standardError: .capture(max: 4096), limits: Limits(wallTime: .seconds(20)), isolation: isolated ? Isolation() : nil)
        }
        let truncated = try await run(job(.truncate))
        #expect(truncated.status == .ok, "\(truncated.message) \(truncated.stderr?.text ?? "")")
        #expect(truncated.exitCode == 0)
        #expect(truncated.stdout?.bytes == 1000)
        #expect(truncated.stdout?.truncated == true)
        #expect(truncated.stdout?.data == [UInt8](repeating: 0, count: 1000))
        #expect(truncated.isolated == isolated)

        let killed = try await run(job(.kill))
        #expect(killed.status == .outputLimit, "\(killed.message)")
        #expect(killed.stdout?.bytes == 1000)
        #expect(killed.stdout?.truncated == true)
        #expect(killed.message.contains("killed"))
    }

    @Test("onLimit truncate does not hide the program's own end: a later exit code or a time limit still counts", arguments: modes)
    func truncateKeepsTheOtherVerdicts(isolated: Bool) async throws {
        let spec = """
        {"processes": [
          {"name": "exits", "args": ["/bin/sh", "-c", "head -c 1000000 /dev/zero; exit 3"], "isolate": \(isolated),
           "stdout": {"capture": {"max": 10, "onLimit": "truncate"}}},
          {"name": "sleeps", "args": ["/bin/sh", "-c", "head -c 1000000 /dev/zero; sleep 5"], "isolate": \(isolated),
           "limits": {"wallTime": "500ms"}, "stdout": {"capture": {"max": 10, "onLimit": "truncate"}}}]}
        """
        let report = try await runJob(spec)
        #expect(report.processes.map(\.report.status) == [.nonzeroExit, .wallTimeLimit])
        #expect(report.processes[0].report.exitCode == 3)
        #expect(report.processes.map { $0.report.stdout?.bytes } == [10, 10])
        #expect(report.processes.map { $0.report.stdout?.truncated } == [true, true])
    }

    // MARK: ignoreSignals

    @Test("ignoreSignals: the program's SigIgn is exactly the signals asked for, and its mask is empty", arguments: modes)
    func ignoredSignalsAreExact(isolated: Bool) async throws {
        let report = try await runJob("""
        {"processes": [
          {"name": "asked", "args": ["/bin/grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"], "isolate": \(isolated),
           "ignoreSignals": ["SIGPIPE", "SIGUSR1", "SIGTERM", "SIGPIPE"]},
          {"name": "none", "args": ["/bin/grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"], "isolate": \(isolated)}]}
        """)
        #expect(report.status == .ok)
        // SIGUSR1 10, SIGPIPE 13, SIGTERM 15: bits 9, 12 and 14.
        #expect(report.processes[0].report.stdout?.text == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000005200\n")
        #expect(report.processes[1].report.stdout?.text == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n")
    }

    /// An interactor's situation: it writes to a solution that has already ended.
    func writerToAGoneReader(ignoring: Bool, isolated: Bool) async throws -> RunReport {
        let report = try await runJob("""
        {"processes": [
          {"name": "writer", "args": ["/bin/sh", "-c", "sleep 0.3; echo x; echo \\"echo: $?\\" >&2; echo survived >&2"],
           "isolate": \(isolated), "stdout": {"pipe": "out"}, "limits": {"wallTime": 10}\(ignoring ? #", "ignoreSignals": ["SIGPIPE"]"# : "")},
          {"name": "reader", "args": ["/bin/true"], "isolate": \(isolated), "stdin": {"pipe": "out"}}],
         "pipes": ["out"]}
        """)
        #expect(report.processes[1].report.status == .ok)
        return report.processes[0].report
    }

    @Test("a writer whose reader died: with SIGPIPE ignored it gets EPIPE and goes on; without, SIGPIPE kills it", arguments: modes)
    func writerSurvivesWithSIGPIPEIgnored(isolated: Bool) async throws {
        let ignoring = try await writerToAGoneReader(ignoring: true, isolated: isolated)
        #expect(ignoring.status == .ok, "\(ignoring.message)")
        let stderr = ignoring.stderr?.text ?? ""
        #expect(stderr.contains("echo: 1"), "\(stderr)")
        #expect(stderr.contains("survived"), "\(stderr)")

        let dying = try await writerToAGoneReader(ignoring: false, isolated: isolated)
        #expect(dying.status == .signaled, "\(dying.message)")
        #expect(dying.signalName == "SIGPIPE")
        #expect(dying.stderr?.text?.contains("survived") != true)
    }

    @Test("the library's Job takes ignoredSignals too")
    func libraryJob() async throws {
        let job = Job(arguments: ["/bin/grep", "^SigIgn:", "/proc/self/status"], standardOutput: .capture(max: 4096),
                      ignoredSignals: try SignalSet(names: ["SIGHUP", "SIGXFSZ"]))
        let report = try await run(job)
        // SIGHUP 1, SIGXFSZ 25: bits 0 and 24.
        #expect(report.stdout?.text == "SigIgn:\t0000000001000001\n")
    }

    // MARK: The job's clock

    @Test("startedAt and endedAt are on one clock: A (0.1 s) ends before B (0.5 s), each span its wall time", arguments: modes)
    func oneClock(isolated: Bool) async throws {
        let report = try await runJob("""
        {"processes": [
          {"name": "A", "args": ["/bin/sleep", "0.1"], "isolate": \(isolated)},
          {"name": "B", "args": ["/bin/sleep", "0.5"], "isolate": \(isolated)}]}
        """)
        #expect(report.status == .ok)
        let a = report.processes[0], b = report.processes[1]
        let aStart = try #require(a.startedAt), aEnd = try #require(a.endedAt)
        let bStart = try #require(b.startedAt), bEnd = try #require(b.endedAt)
        #expect(aEnd < bEnd)
        // One zero for both, read before either spawn: one reaper thread spawns them one after
        // the other, so on a shared clock their starts differ (on clocks of their own both would be 0).
        #expect(aStart > 0 && bStart > 0 && aStart != bStart, "\(aStart) \(bStart)")
        for (start, end, process) in [(aStart, aEnd, a), (bStart, bEnd, b)] {
            #expect(start >= 0 && start < 0.3, "\(process.name) started at \(start)")
            #expect(abs((end - start) - process.report.wallTime) < 0.001, "\(process.name): \(end) - \(start) vs \(process.report.wallTime)")
        }
        #expect(aEnd - aStart >= 0.1 && aEnd - aStart < 0.4, "A ran \(aEnd - aStart) s")
        #expect(bEnd - bStart >= 0.5 && bEnd - bStart < 0.9, "B ran \(bEnd - bStart) s")
        #expect(bEnd - aEnd > 0.2, "B ended \(bEnd - aEnd) s after A")
        #expect(bEnd <= report.wallTime)
    }

    @Test("a step's tests report each process with its times on the test's clock; ignoreSignals holds there too")
    func stepsReuseTheProcessReport() async throws {
        guard case .steps(let spec) = try JobDocument.parse(Data("""
        {"steps": [{"name": "t", "processes": [{"args": ["/bin/sh", "-c", "grep ^SigIgn: /proc/self/status >&2; cat"],
                                               "ignoreSignals": ["SIGPIPE"]}],
                    "checker": "exact", "tests": [{"stdin": {"content": "42\\n"}, "answer": {"content": "42\\n"}}]}]}
        """.utf8)) else {
            Issue.record("not a job of steps")
            return
        }
        let report = try await StepsRunner().run(spec)
        let test = try #require(report.steps.first?.tests.first)
        #expect(test.verdict == .accepted, "\(test.comment)")
        let process = try #require(test.processes.first)
        let start = try #require(process.startedAt), end = try #require(process.endedAt)
        #expect(start >= 0 && end > start)
        #expect(abs((end - start) - process.report.wallTime) < 0.001)
        #expect(process.report.stderr?.text == "SigIgn:\t0000000000001000\n")
    }

    @Test("a process that never started has no times; the JSON says null")
    func neverStarted() async throws {
        let report = try await runJob("""
        {"processes": [{"name": "missing", "args": ["corral-no-such-program"]}, {"name": "fine", "args": ["/bin/true"]}]}
        """)
        #expect(report.processes[0].report.status == .setupError)
        #expect(report.processes[0].startedAt == nil && report.processes[0].endedAt == nil)
        #expect(report.processes[1].startedAt != nil && report.processes[1].endedAt != nil)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(ReportJSON.encode(report))) as? [String: Any])
        let processes = try #require(json["processes"] as? [[String: Any]])
        #expect(processes[0]["startedAt"] is NSNull && processes[0]["endedAt"] is NSNull)
        #expect(processes[1]["startedAt"] is Double || processes[1]["startedAt"] is Int)
    }
}
}
