import ArgumentParser
import Corral
import CorralCommandLine
import Testing

/// `corral run` has two parsers: ArgumentParser (``RunCommand``, the definition, with help
/// and messages) and the fast path judges hit on every run (``RunFastPath``). They must
/// agree on every line the fast path takes, and it must leave every other line alone.
struct RunFastPathTests {
    /// Lines both take, covering every option the fast path knows.
    static let accepted: [[String]] = [
        ["--", "/bin/true"],
        ["--quiet", "--", "/bin/echo", "a", "--cpu-time", "1"],
        ["--cpu-time", "1", "--wall-time=2s", "--memory", "64M", "--output", "1M", "--open-files", "64",
         "--stack", "8M", "--processes", "10", "--address-space", "1G", "--", "/bin/true", "x"],
        ["--containment", "process-group", "--cgroup-parent", "corral-test", "--require-cgroup", "--", "/bin/true"],
        ["--containment=cgroup-v1", "--", "/bin/true"],
        ["--user-range", "60000-60099", "--", "/bin/true"],
        ["--stdin", "/dev/null", "--stdout", "/tmp/out", "--stderr", "/tmp/err", "--dir", "/tmp", "--", "/bin/true"],
        ["--env", "A=1", "--env=B=2", "--inherit-env", "--report", "/tmp/r.json", "--", "/usr/bin/env"],
        ["--isolate", "--network", "host", "--user", "1000:1000", "--bind", "/usr:/opt/usr", "--bind", "/etc",
         "--tmpfs", "/scratch:16M", "--seccomp", "none", "--", "/bin/true"],
        ["--isolate", "--seccomp-policy", "/dev/null", "--", "/bin/true"],
        ["--stdout-max", "1K", "--stderr-max=2K", "--", "/bin/true"],
        ["--stdout-max", "1K", "--stdout-on-limit", "truncate", "--stderr-max", "1K", "--stderr-on-limit=kill", "--", "/bin/true"],
        ["--ignore-signal", "SIGPIPE", "--ignore-signal=SIGUSR1", "--", "/bin/true"],
        ["--file", "in.txt=/etc/hostname", "--collect", "out.txt", "--collect", "b", "--", "/bin/cat"],
        ["--spec", "/tmp/job.json"],
        ["--cpus", "0", "--", "/bin/true"],
        ["--cpus=0", "--spec", "/tmp/job.json"],
        ["--spec", "-", "--report", "/tmp/r.json", "--isolate"],
        ["--stdout", "/tmp/out", "--report", "-", "--", "/bin/true"],
    ]

    /// Lines the fast path leaves to ArgumentParser.
    static let declined: [[String]] = [
        ["--help"], ["-h"], ["/bin/true"], ["--quiet", "/bin/true"], ["--quiet", "--quiet", "--", "/bin/true"],
        ["--cpu-time", "1", "--cpu-time", "2", "--", "/bin/true"], ["--cpu-time", "--", "/bin/true"],
        ["--cpu-time", "-1", "--", "/bin/true"], ["--bogus", "--", "/bin/true"], ["--containment", "jail", "--", "/bin/true"],
        ["--network", "wide", "--isolate", "--", "/bin/true"], ["--quiet=yes", "--", "/bin/true"], ["--cpu-time"], [],
        ["-q", "--", "/bin/true"],
    ]

    @Test(arguments: accepted)
    func agreesWithArgumentParser(_ words: [String]) throws {
        let parsed = try RunCommand.parse(words).arguments
        let fast = try #require(RunFastPath.parse(["run"] + words))
        #expect(fast == parsed)
    }

    @Test(arguments: declined)
    func leavesTheRestToArgumentParser(_ words: [String]) {
        #expect(RunFastPath.parse(["run"] + words) == nil)
    }

    @Test func onlyRun() {
        #expect(RunFastPath.parse(["doctor"]) == nil)
        #expect(RunFastPath.parse(["serve", "--", "/bin/true"]) == nil)
    }

    /// Every long option of `corral run` is known to the fast path, so a new option cannot
    /// be added to one parser and forgotten in the other without this failing.
    @Test func knowsEveryOptionOfRunCommand() {
        let help = RunCommand.helpMessage(columns: 1000)
        var names: Set<String> = []
        for line in help.split(separator: "\n") {
            let trimmed = line.drop(while: { $0 == " " })
            guard trimmed.hasPrefix("--") else { continue }
            let name = trimmed.prefix(while: { $0 != " " && $0 != "," && $0 != "=" && $0 != "<" })
            names.insert(String(name))
        }
        names.remove("--help")
        names.remove("--version")
        #expect(!names.isEmpty)
        #expect(names == RunFastPath.optionNames)
    }

    /// Every name the fast path lists is one it can set (a name in its list but missing from
    /// its setter would send every line with it to ArgumentParser).
    @Test(arguments: RunFastPath.optionNames.sorted())
    func setsEveryOptionItKnows(_ name: String) {
        let flags: Set = ["--require-cgroup", "--inherit-env", "--quiet", "--isolate"]
        let value = ["--containment": "process-group", "--network": "host"][name] ?? "1"
        let words = ["run", name] + (flags.contains(name) ? [] : [value]) + ["--", "/bin/true"]
        #expect(RunFastPath.parse(words) != nil, "\(words)")
    }
}
