import CorralTestSupport
import Foundation
import Testing

@Suite("corral run")
struct RunCommandTests {
    @Test("the README's example: echo under a CPU limit")
    func echo() throws {
        let result = try corral("run", "--cpu-time", "1", "--", "/bin/echo", "hello")
        #expect(result.status == 0)
        #expect(result.standardOutput == "hello\n")
        #expect(result.standardError.hasPrefix("corral: ok: exited with code 0"))
    }

    static let exitCases: [([String], Int32)] = [
        (["--", "/bin/sh", "-c", "exit 3"], 3),
        (["--", "/bin/sh", "-c", "kill -SEGV $$"], 139),
        (["--wall-time", "200ms", "--", "sleep", "5"], 124),
        (["--", "corral-no-such-program"], 127),
        (["--", "/tmp"], 126),
        (["--dir", "/nonexistent", "--", "/bin/true"], 125),
    ]

    @Test("exit codes pass through; signals are 128 + N; limits 124", arguments: exitCases)
    func exitCodes(arguments: [String], expected: Int32) throws {
        let result = try Spawn.run(corralPath, ["run", "--quiet"] + arguments)
        #expect(result.status == expected, "stderr: \(result.standardError)")
        #expect(result.standardError.isEmpty)
    }

    @Test("a malformed limit is refused with one line naming the flag, exit 125", arguments: [
        ("--cpu-time", "-1"), ("--cpu-time", "nan"), ("--wall-time", "0"), ("--memory", "12Q"),
        ("--output", "99999999999999999999"), ("--open-files", "1.5"), ("--stack", "inf"), ("--memory", "-5M"),
    ])
    func malformedLimits(flag: String, value: String) throws {
        let result = try corral("run", flag, value, "--", "/bin/true")
        #expect(result.status == 125)
        let lines = result.standardError.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(result.standardError)")
        #expect(result.standardError.contains(flag))
        #expect(result.standardOutput.isEmpty)
    }

    @Test("--report - needs --stdout")
    func reportToStdoutNeedsStdout() throws {
        let result = try corral("run", "--report", "-", "--", "/bin/true")
        #expect(result.status == 125)
        #expect(result.standardError.contains("--report -"))
    }

    @Test("the JSON report")
    func report() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let out = directory.file("out")
        let result = try corral("run", "--quiet", "--stdout", out, "--report", "-", "--env", "X=1", "--",
                                "/bin/sh", "-c", "echo $X; exit 4")
        #expect(result.status == 4)
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "1\n")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect(report["status"] as? String == "nonzero-exit")
        #expect(report["exitCode"] as? Int == 4)
        #expect(report["containment"] as? String == expectedContainment)
        #expect((report["warnings"] as? [Any])?.isEmpty == true)
        #expect((report["events"] as? [Any])?.count == 1)
        #expect(report["message"] as? String != nil)
    }

    @Test("SIGINT to corral kills the run, reaps it and still writes the report")
    func interrupt() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let reportPath = directory.file("report.json")
        let pidFile = directory.file("pid")
        let sleeper = try Fixtures.path("pid_sleeper")
        let started = try Spawn.start(corralPath, ["run", "--report", reportPath, "--", sleeper, pidFile])
        var waited = 0
        while Leftovers.pids(inFile: pidFile).isEmpty && waited < 100 {
            usleep(20_000)
            waited += 1
        }
        kill(started.pid, SIGINT)
        let result = started.wait()
        #expect(result.status == 130)
        let report = try decodeReport(reportPath)
        #expect(report["status"] as? String == "cancelled")
        let pids = Leftovers.pids(inFile: pidFile)
        #expect(pids.count == 1)
        for pid in pids { #expect(!Leftovers.isAlive(pid)) }
        if let pid = report["pid"] as? Int {
            #expect(Leftovers.processes(inSession: Int32(pid)).isEmpty)
        }
    }

    @Test("--inherit-env passes Corral's environment")
    func inheritEnvironment() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let out = directory.file("out")
        let result = try Spawn.run(corralPath, ["run", "--quiet", "--inherit-env", "--stdout", out, "--", "/bin/sh", "-c", "echo $CORRAL_TEST_MARK"],
                                   environment: ["CORRAL_TEST_MARK=seen", "PATH=/usr/bin:/bin"])
        #expect(result.status == 0)
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "seen\n")
    }
}
