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
