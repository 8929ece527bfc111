import CorralTestSupport
import Foundation
import Testing

/// Issue 15 through the command line: `--spec` with `onLimit` and `ignoreSignals`, and the
/// flags `--stdout-on-limit`, `--stderr-on-limit` and `--ignore-signal`.
@Suite("corral run: onLimit, ignoreSignals, startedAt/endedAt")
struct RunOptionsCommandTests {
    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not JSON: \(text.prefix(500))")
    }

    @Test("--spec: 10 MB to a 1000-byte capture, truncate exits 0 with 1000 bytes; kill is output-limit (124)")
    func specTruncate() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        for (action, code, status) in [("truncate", Int32(0), "ok"), ("kill", Int32(124), "output-limit")] {
            let path = directory.file("job-\(action).json")
            try """
            {"processes": [{"name": "a", "args": ["head", "-c", "10000000", "/dev/zero"], "limits": {"wallTime": 20},
                            "stdout": {"capture": {"max": 1000, "onLimit": "\(action)"}}},
                           {"name": "b", "args": ["/bin/sleep", "0.2"]}]}
            """.write(toFile: path, atomically: true, encoding: .utf8)
            let result = try corral("run", "--quiet", "--spec", path)
            #expect(result.status == code, "\(result.standardError)")
            let report = try json(result.standardOutput)
            #expect(report["status"] as? String == status)
            let processes = try #require(report["processes"] as? [[String: Any]])
            let stdout = processes[0]["stdout"] as? [String: Any]
            #expect(stdout?["bytes"] as? Int == 1000)
            #expect(stdout?["truncated"] as? Bool == true)
            let b = processes[1]
            let started = try #require(b["startedAt"] as? Double), ended = try #require(b["endedAt"] as? Double)
            #expect(started >= 0 && ended - started >= 0.2, "\(b)")
        }
    }

    @Test("--spec: an unknown onLimit is one line naming the field, exit 125")
    func specRefused() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("job.json")
        try #"{"processes": [{"args": ["/bin/true"], "stdout": {"capture": {"max": 10, "onLimit": "drop"}}}]}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        let result = try corral("run", "--spec", path)
        #expect(result.status == 125)
        #expect(result.standardError.split(separator: "\n").count == 1, "\(result.standardError)")
        #expect(result.standardError.contains(#"processes[0].stdout.capture.onLimit: must be "kill""#), "\(result.standardError)")
    }

    @Test("--stdout-max with --stdout-on-limit truncate: exit 0, 1000 bytes captured, truncated")
    func flags() throws {
        let truncated = try corral("run", "--quiet", "--stdout-max", "1000", "--stdout-on-limit", "truncate", "--report", "-",
                                   "--", "head", "-c", "10000000", "/dev/zero")
        #expect(truncated.status == 0, "\(truncated.standardError)")
        let report = try json(truncated.standardOutput)
        #expect(report["status"] as? String == "ok")
        #expect((report["stdout"] as? [String: Any])?["bytes"] as? Int == 1000)
        #expect((report["stdout"] as? [String: Any])?["truncated"] as? Bool == true)
        #expect(report["startedAt"] == nil, "a single run's report has no job clock")

        let killed = try corral("run", "--quiet", "--stdout-max", "1000", "--", "head", "-c", "10000000", "/dev/zero")
        #expect(killed.status == 124)
    }

    @Test("--ignore-signal SIGPIPE (repeatable): the program's SigIgn says so")
    func ignoreSignalFlag() throws {
        for isolate in geteuid() == 0 ? [false, true] : [false] {
            let result = try Spawn.run(corralPath, ["run", "--quiet", "--stdout-max", "1K", "--report", "-", "--ignore-signal", "SIGPIPE",
                                     "--ignore-signal=SIGHUP"] + (isolate ? ["--isolate"] : []) + ["--", "/bin/grep", "^SigIgn:", "/proc/self/status"])
            #expect(result.status == 0, "\(result.standardError)")
            #expect((try json(result.standardOutput)["stdout"] as? [String: Any])?["text"] as? String == "SigIgn:\t0000000000001001\n",
                    "isolate \(isolate)")
        }
    }

    @Test("bad flags are refused with one line, exit 125", arguments: [
        (["--ignore-signal", "SIGKILL"], "--ignore-signal: SIGKILL cannot be ignored"),
        (["--ignore-signal", "SIGBOGUS"], #"--ignore-signal: unknown signal "SIGBOGUS""#),
        (["--stdout-max", "1K", "--stdout-on-limit", "cut"], "--stdout-on-limit: expected kill or truncate, got 'cut'"),
        (["--stderr-on-limit", "truncate"], "--stderr-on-limit goes with --stderr-max"),
    ])
    func refusedFlags(flags: [String], expected: String) throws {
        let result = try Spawn.run(corralPath, ["run"] + flags + ["--", "/bin/true"])
        #expect(result.status == 125)
        #expect(result.standardError.split(separator: "\n").count == 1, "\(result.standardError)")
        #expect(result.standardError.contains(expected), "\(result.standardError)")
    }
}
