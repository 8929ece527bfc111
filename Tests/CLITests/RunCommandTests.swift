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

    @Test("Corral ignores SIGPIPE; the program starts with no signal ignored or blocked")
    func signalsOfTheProgram() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let out = directory.file("status")
        // Under the test runner signal 32 (one the C library keeps for itself and refuses
        // sigaction on) is ignored, which execve would pass on: Corral's child resets it too.
        for isolate in geteuid() == 0 ? [false, true] : [false] {
            let result = try Spawn.run(corralPath, ["run", "--quiet", "--stdout", out] + (isolate ? ["--isolate"] : [])
                                    + ["--", "/bin/grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"])
            #expect(result.status == 0, "\(result.standardError)")
            let status = try String(contentsOfFile: out, encoding: .utf8)
            #expect(status == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n", "isolate: \(isolate): \(status)")
        }
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
        let report = try expectCancelledBySignal(SIGINT)
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

    // MARK: --output and a stdout/stderr inherited from the shell as a regular file

    /// Runs `corral run --quiet --output LIMIT -- /bin/sh -c SCRIPT` from a shell that
    /// redirects corral's own output as `redirect` says (e.g. `>> file`).
    func redirected(_ limit: String, _ script: String, _ redirect: String, quiet: Bool = true) throws -> Spawn.Result {
        let quoted = script.replacingOccurrences(of: "'", with: "'\\''")
        return try Spawn.run("/bin/sh", ["-c", "'\(corralPath)' run \(quiet ? "--quiet " : "")--output \(limit) -- /bin/sh -c '\(quoted)' \(redirect)"])
    }

    @Test("--output counts what the run writes to an inherited file, not the file's size: a log bigger than the limit still takes a line")
    func appendToLog() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let log = directory.file("log")
        try String(repeating: "x", count: 5000).write(toFile: log, atomically: false, encoding: .utf8)
        let result = try redirected("1000", "echo hello", ">> '\(log)'")
        #expect(result.status == 0, "\(result.standardError)")
        let content = try String(contentsOfFile: log, encoding: .utf8)
        #expect(content.count == 5006 && content.hasSuffix("xhello\n"))
    }

    @Test("an inherited file past --output gets exactly the limit and the verdict is output-limit, even when the writer is a child the main process outlives")
    func inheritedFilePastLimit() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let out = directory.file("out")
        let result = try redirected("1000", "head -c 5000 /dev/zero; echo after", "> '\(out)'", quiet: false)
        #expect(result.status == 124, "\(result.standardError)")
        #expect(result.standardError.contains("output-limit: wrote more than 1000 bytes to stdout (output limit 1000 bytes)"), "\(result.standardError)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == Data(repeating: 0, count: 1000))
    }

    @Test("stdout and stderr inherited as one file (2>&1) keep the order they were written in")
    func sharedFileOrder() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let out = directory.file("out")
        let script = "for i in 1 2 3 4 5 6 7 8; do echo out$i; echo err$i >&2; done"
        let result = try redirected("1M", script, "> '\(out)' 2>&1")
        #expect(result.status == 0)
        let expected = (1...8).map { "out\($0)\nerr\($0)\n" }.joined()
        #expect(try String(contentsOfFile: out, encoding: .utf8) == expected)
    }

    @Test("--dir that the program's user cannot write: a warning says so, and Corral leaves the directory as it is",
          .enabled(if: geteuid() == 0, "the program runs as nobody only when Corral is root"))
    func unwritableDirectory() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        chmod(directory.path, 0o755)
        for isolate in [[], ["--isolate"]] {
            let result = try Spawn.run(corralPath, ["run"] + isolate + ["--dir", directory.path, "--", "/bin/sh", "-c", "touch x 2>/dev/null || echo cannot"])
            #expect(result.standardOutput == "cannot\n")
            #expect(result.standardError.contains("cannot write to its working directory \(directory.path) (owner 0:0, mode 755)"), "\(result.standardError)")
        }
        var info = stat()
        #expect(stat(directory.path, &info) == 0 && info.st_uid == 0 && info.st_mode & 0o7777 == 0o755)
    }
}
