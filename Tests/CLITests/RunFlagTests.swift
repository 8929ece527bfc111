import CorralTestSupport
import Foundation
import Testing

@Suite("corral run: help, unknown options, limits out of range")
struct RunFlagTests {
    @Test("--help and -h print run's help and exit 0; nothing runs", arguments: [["--help"], ["-h"], ["--quiet", "--help"], ["--cpu-time", "1", "-h", "--", "/bin/true"]])
    func help(arguments: [String]) throws {
        let result = try Spawn.run(corralPath, ["run"] + arguments)
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("USAGE: corral run"), "\(result.standardOutput)")
        #expect(result.standardOutput.contains("--memory"))
        #expect(result.standardError.isEmpty, "\(result.standardError)")
    }

    @Test("an unknown option before the program is refused: exit 125, one line naming it", arguments: [
        (["--bogus", "--", "/bin/true"], "--bogus"),
        (["--quiet", "--memroy", "64M", "--", "/bin/true"], "--memroy"),
        (["-x", "/bin/true"], "-x"),
        (["--cpu-time", "1", "--no-such-flag=3", "/bin/true"], "--no-such-flag=3"),
    ])
    func unknownOption(arguments: [String], option: String) throws {
        let result = try Spawn.run(corralPath, ["run"] + arguments)
        #expect(result.status == 125, "\(result.standardError)")
        let lines = result.standardError.split(separator: "\n")
        #expect(lines.count == 1, "\(result.standardError)")
        #expect(result.standardError.contains("unknown option '\(option)'"), "\(result.standardError)")
        #expect(result.standardOutput.isEmpty)
    }

    @Test("after --, and after the program, words with dashes are the program's")
    func dashesAfterTheProgram() throws {
        let echoed = try corral("run", "--quiet", "/bin/echo", "--help", "-h", "--bogus")
        #expect(echoed.status == 0, "\(echoed.standardError)")
        #expect(echoed.standardOutput == "--help -h --bogus\n")
        // A program really named --help is run when it comes after --: not found here.
        let named = try corral("run", "--quiet", "--", "--help")
        #expect(named.status == 127, "\(named.standardError)")
    }

    @Test("--memory below what any program can run with is refused: exit 125, one line naming the flag and the floor",
          arguments: ["1", "1K", "4096", "1023K"])
    func memoryFloor(value: String) throws {
        let result = try corral("run", "--memory", value, "--", "/bin/true")
        #expect(result.status == 125, "\(result.standardError)")
        let lines = result.standardError.split(separator: "\n")
        #expect(lines.count == 1, "\(result.standardError)")
        #expect(result.standardError.contains("--memory: \(value) is below the smallest memory limit, 1 MiB"), "\(result.standardError)")
    }

    @Test("--memory at the floor runs a program", .enabled(if: CgroupCheck.hasV1 || CgroupCheck.hasV2Controllers, "needs a memory cgroup"))
    func memoryAtFloor() throws {
        let result = try corral("run", "--quiet", "--require-cgroup", "--memory", "1M", "--", "/bin/sh", "-c", "echo fits")
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput == "fits\n")
    }

    @Test("--processes above what pids.max takes is refused: exit 125, naming the flag and the maximum")
    func processesCeiling() throws {
        let result = try corral("run", "--processes", "4194305", "--", "/bin/true")
        #expect(result.status == 125, "\(result.standardError)")
        #expect(result.standardError == "corral: --processes: 4194305 is above the largest pids.max the kernel takes, 4194304\n")
    }

    @Test("--processes at the kernel's maximum runs", .enabled(if: CgroupCheck.hasV1 || CgroupCheck.hasV2Controllers, "needs a pids cgroup"))
    func processesAtCeiling() throws {
        let result = try corral("run", "--quiet", "--require-cgroup", "--processes", "4194304", "--", "/bin/true")
        #expect(result.status == 0, "\(result.standardError)")
    }
}

@Suite("corral run --stack unlimited")
struct StackUnlimitedTests {
    /// Some runtimes size their threads' stacks by RLIMIT_STACK and need it unlimited.
    @Test("--stack unlimited: the program sees no stack limit and the report says unlimited",
          arguments: [false, true])
    func unlimitedStack(isolated: Bool) throws {
        guard !isolated || geteuid() == 0 else { return }
        var hard = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_STACK.rawValue), &hard)
        guard hard.rlim_max == rlim_t.max else {
            print("skipped: this host's hard stack limit is not unlimited (raising it needs CAP_SYS_RESOURCE)")
            return
        }
        let result = try Spawn.run(corralPath, ["run", "--quiet", "--stack", "unlimited", "--stdout-max", "1K", "--report", "-"]
                                   + (isolated ? ["--isolate"] : []) + ["--", "/bin/sh", "-c", "ulimit -s"])
        #expect(result.status == 0, "\(result.standardError)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect((report["stdout"] as? [String: Any])?["text"] as? String == "unlimited\n", "\(report)")
        #expect((report["limits"] as? [String: Any])?["stack"] as? String == "unlimited", "\(report)")
    }

    @Test("\"stack\": \"unlimited\" in a spec; any other word is refused")
    func specStack() throws {
        let spec = #"{"processes": [{"name": "main", "args": ["/bin/sh", "-c", "ulimit -s"], "limits": {"stack": "unlimited"}}]}"#
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        try spec.write(toFile: directory.path + "/good.json", atomically: true, encoding: .utf8)
        try spec.replacingOccurrences(of: "\"unlimited\"", with: "\"boundless\"").write(toFile: directory.path + "/bad.json", atomically: true, encoding: .utf8)
        let good = try corral("run", "--spec", directory.path + "/good.json")
        #expect(good.status == 0, "\(good.standardError)")
        #expect(good.standardOutput.contains("\"stack\" : \"unlimited\""), "\(good.standardOutput)")
        let bad = try corral("run", "--spec", directory.path + "/bad.json")
        #expect(bad.status == 125)
        #expect(bad.standardError.contains("stack"), "\(bad.standardError)")
    }
}
