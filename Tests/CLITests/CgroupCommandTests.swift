import Corral
import CorralTestSupport
import Foundation
import Testing

private let v1 = CgroupCheck.hasV1
private let v2 = CgroupCheck.hasV2

@Suite("corral doctor, cleanup and cgroup flags", .serialized, .cgroupExclusive)
struct CgroupCommandTests {
    @Test("doctor --json says what the host offers; exit 0 with full containment")
    func doctor() throws {
        let result = try corral("doctor", "--json")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        let cgroups = try #require(report["cgroups"] as? [String: Any])
        let full = report["fullContainment"] as? Bool
        #expect(result.status == (full == true ? 0 : 1))
        #expect(cgroups["selected"] as? String == expectedContainment)
        #expect((report["kernel"] as? String)?.isEmpty == false)
        #expect(report["namespaces"] is [String])
        #expect((report["seccomp"] as? [String: Any])?["available"] is Bool)
        // As root the audit records can be read (netlink), so a seccomp kill can be named.
        let killsNamed = (report["seccomp"] as? [String: Any])?["killsNamed"] as? Bool
        if geteuid() == 0 { #expect(killsNamed == true) }
        #expect(["root", "rootless", "unavailable"].contains(report["isolation"] as? String ?? ""))
        if geteuid() == 0 { #expect(report["isolation"] as? String == "root") }
        let text = try corral("doctor")
        #expect(text.standardOutput.contains("containment: \(expectedContainment)"))
    }

    @Test("--require-cgroup with process-group containment is refused, exit 125")
    func requireCgroup() throws {
        let result = try corral("run", "--containment", "process-group", "--require-cgroup", "--", "/bin/true")
        #expect(result.status == 125)
        #expect(result.standardError.contains("required"))
    }

    @Test("--processes needs cgroups")
    func processesWithoutCgroups() throws {
        let result = try corral("run", "--containment", "process-group", "--processes", "4", "--", "/bin/true")
        #expect(result.status == 125)
        #expect(result.standardError.contains("pids cgroup"))
    }

    @Test("an unknown containment is refused, exit 125")
    func badContainment() throws {
        let result = try corral("run", "--containment", "cgroup-v3", "--", "/bin/true")
        #expect(result.status == 125)
        #expect(result.standardError.contains("--containment"))
    }

    /// The guard Corral started for its runs: its child named corral-guard.
    static func guardOf(_ corral: Int32) -> Int32? {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).first { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.range(of: ")", options: .backwards) else { return false }
            let fields = stat[close.upperBound...].split(separator: " ")
            return stat.contains("(corral-guard)") && fields.count > 1 && Int32(fields[1]) == corral
        }
    }

    /// Corral SIGKILLed while its run's daemon (escaped from the group) lives on. Its guard
    /// kills the daemon and removes the run's cgroups at once; with the guard killed too
    /// (`guardToo`), the daemon is left in the run's cgroup until `corral cleanup` (or the
    /// next Corral using the same parent, `nextRun`) kills it.
    func killedCorral(_ containment: String, guardToo: Bool = false, cleanupBy nextRun: Bool = false) throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let pidFile = directory.file("daemon")
        let escaper = try Fixtures.path("escaper")
        let started = try Spawn.start(corralPath, ["run", "--quiet", "--containment", containment, "--", escaper, pidFile, "daemon", "60000"])
        var waited = 0
        while Leftovers.pids(inFile: pidFile).isEmpty && waited < 250 {
            usleep(20_000)
            waited += 1
        }
        let daemon = try #require(Leftovers.pids(inFile: pidFile).first)
        let guardian = try #require(Self.guardOf(started.pid), "Corral started no guard")
        if guardToo { kill(guardian, SIGKILL) }
        kill(started.pid, SIGKILL)
        _ = started.wait()
        if !guardToo {
            var gone = 0
            while (Leftovers.isRunning(daemon) || !CgroupCheck.runCgroups(owner: started.pid).isEmpty || Leftovers.isRunning(guardian))
                    && gone < 200 {
                usleep(10_000)
                gone += 1
            }
            #expect(!Leftovers.isRunning(daemon), "the daemon \(daemon) outlived its Corral")
            #expect(CgroupCheck.runCgroups(owner: started.pid).isEmpty, "\(CgroupCheck.runCgroups(owner: started.pid))")
            #expect(!Leftovers.isRunning(guardian), "the guard is still there")
            // This test process is a child subreaper (the library made it one): the guard,
            // orphaned by Corral's death, is its child now, and its zombie is ours to reap.
            var status: Int32 = 0
            for _ in 0..<100 where waitpid(guardian, &status, WNOHANG) == 0 { usleep(10_000) }
            return
        }
        #expect(CgroupCheck.runCgroups(owner: started.pid).isEmpty == false)
        #expect(Leftovers.isRunning(daemon))

        if nextRun {
            // The next Corral to use the same parent cleans up before its first run.
            let run = try corral("run", "--quiet", "--containment", containment, "--", "/bin/true")
            #expect(run.status == 0, "\(run.standardError)")
        } else {
            let cleanup = try corral("cleanup", "--json")
            #expect(cleanup.status == 0, "\(cleanup.standardError)")
            let summary = try #require(try JSONSerialization.jsonObject(with: Data(cleanup.standardOutput.utf8)) as? [String: Any])
            #expect((summary["cgroupsRemoved"] as? Int ?? 0) >= 1)
            #expect((summary["processesKilled"] as? Int ?? 0) >= 1)
        }
        var gone = 0
        while Leftovers.isRunning(daemon) && gone < 100 {
            usleep(10_000)
            gone += 1
        }
        #expect(!Leftovers.isRunning(daemon), "the daemon \(daemon) survived cleanup")
        #expect(CgroupCheck.runCgroups(owner: started.pid).isEmpty, "\(CgroupCheck.runCgroups(owner: started.pid))")
    }

    @Test("v1: Corral killed with SIGKILL mid-run: its guard kills the rest of the run at once and removes its cgroups",
          .enabled(if: v1, "needs root and the cgroup v1 memory, pids, cpuacct and freezer hierarchies"))
    func killedCorralV1() throws { try killedCorral("cgroup-v1") }

    @Test("v2: Corral killed with SIGKILL mid-run: its guard kills the rest of the run at once and removes its cgroup",
          .enabled(if: v2, "needs root and a writable cgroup v2 hierarchy"))
    func killedCorralV2() throws { try killedCorral("cgroup-v2") }

    @Test("v1: Corral and its guard killed with SIGKILL mid-run, then corral cleanup leaves no process and no cgroup",
          .enabled(if: v1, "needs root and the cgroup v1 memory, pids, cpuacct and freezer hierarchies"))
    func killedCorralAndGuardV1() throws { try killedCorral("cgroup-v1", guardToo: true) }

    @Test("a job's working directory left by a Corral killed with SIGKILL: corral cleanup removes it, deep and unreadable trees too, and keeps a kept one")
    func killedCorralJobDirectory() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let environment = ["TMPDIR=\(tmp.path)", "PATH=/usr/bin:/bin"]
        // A tree deeper than PATH_MAX allows a path to be (400 × 11 bytes), a directory its
        // program made unreadable, then a minute of sleep (it dies with Corral: PDEATHSIG).
        let deep = "import os\nfd = os.open(\".\", os.O_RDONLY)\nfor _ in range(400):\n"
            + "    os.mkdir(\"d0123456789\", dir_fd=fd); inner = os.open(\"d0123456789\", os.O_RDONLY, dir_fd=fd); os.close(fd); fd = inner\n"
            + "os.close(os.open(\"f\", os.O_CREAT | os.O_WRONLY, dir_fd=fd))\n"
        let program = "python3 -c '\(deep)' && mkdir locked && touch locked/x && chmod 000 locked && echo $$ > pid && exec sleep 60"
        let spec = try JSONSerialization.data(withJSONObject: ["processes": [["args": ["/bin/sh", "-c", program]]]])
        try spec.write(to: URL(fileURLWithPath: tmp.file("spec.json")))
        let started = try Spawn.start(corralPath, ["run", "--quiet", "--spec", tmp.file("spec.json")], environment: environment)
        var directory: String?
        for _ in 0..<1000 where directory == nil {
            usleep(10_000)
            directory = (try? FileManager.default.contentsOfDirectory(atPath: tmp.path))?
                .first { $0.hasPrefix("corral-job-\(started.pid)-") && FileManager.default.fileExists(atPath: tmp.file($0) + "/p0/pid") }
        }
        let left = try #require(directory, "the job never got ready")
        kill(started.pid, SIGKILL)
        _ = started.wait()
        #expect(FileManager.default.fileExists(atPath: tmp.file(left) + "/p0/d0123456789"))
        let kept = tmp.file("corral-kept-abc123")
        try FileManager.default.createDirectory(atPath: kept, withIntermediateDirectories: false)

        let cleanup = try Spawn.run(corralPath, ["cleanup", "--json"], environment: environment)
        #expect(cleanup.status == 0, "\(cleanup.standardError)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(cleanup.standardOutput.utf8)) as? [String: Any])
        #expect(summary["jobDirectoriesRemoved"] as? Int == 1, "\(summary)")
        #expect(!FileManager.default.fileExists(atPath: tmp.file(left)), "\((try? FileManager.default.contentsOfDirectory(atPath: tmp.file(left))) ?? [])")
        #expect(FileManager.default.fileExists(atPath: kept))
        // A live Corral's directory is never touched.
        let stat = try String(contentsOfFile: "/proc/self/stat", encoding: .utf8)
        let startTime = try #require(stat[stat.range(of: ")", options: .backwards)!.upperBound...].split(separator: " ").dropFirst(19).first)
        let live = tmp.file("corral-job-\(getpid())-\(startTime)-live01")
        try FileManager.default.createDirectory(atPath: live, withIntermediateDirectories: false)
        let again = try Spawn.run(corralPath, ["cleanup", "--json"], environment: environment)
        #expect(again.standardOutput.contains("\"jobDirectoriesRemoved\" : 0") || again.standardOutput.contains("\"jobDirectoriesRemoved\":0"), "\(again.standardOutput)")
        #expect(FileManager.default.fileExists(atPath: live))
    }

    @Test("v1: after Corral was killed, the next corral run cleans up its stale cgroups first",
          .enabled(if: v1, "needs root and the cgroup v1 memory, pids, cpuacct and freezer hierarchies"))
    func killedCorralNextRun() throws { try killedCorral("cgroup-v1", guardToo: true, cleanupBy: true) }

    @Test("--cgroup-parent puts run cgroups there, and Corral removes the parent it made at exit",
          .enabled(if: v1, "needs root and the cgroup v1 memory, pids, cpuacct and freezer hierarchies"))
    func cgroupParent() throws {
        let parent = "/corral-test-parent-\(getpid())"
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let out = directory.file("cgroup")
        let result = try corral("run", "--quiet", "--containment", "cgroup-v1", "--cgroup-parent", parent, "--stdout", out,
                                "--", "/bin/cat", "/proc/self/cgroup")
        #expect(result.status == 0, "\(result.standardError)")
        let lines = try String(contentsOfFile: out, encoding: .utf8)
        #expect(lines.contains(":pids:\(parent)/run-"), "\(lines)")
        #expect(lines.contains(":memory:\(parent)/run-"), "\(lines)")
        for hierarchy in CgroupCheck.host.cgroups.v1 {
            #expect(!FileManager.default.fileExists(atPath: hierarchy.mount + parent), "\(hierarchy.mount + parent) was left")
        }
    }

    @Test("a report reader that went away (| head): exit 125, one line, and the cgroups Corral pooled are still removed at exit",
          .enabled(if: v1, "needs root and the cgroup v1 memory, pids, cpuacct and freezer hierarchies"))
    func reportReaderGone() throws {
        // A run that ends cleanly leaves its pids/cpuacct/freezer set in Corral's pool; only
        // the exit hook removes it and the parent, which a death by SIGPIPE would skip.
        let parent = "/corral-test-pipe-\(getpid())"
        let result = try Spawn.runWithoutStdoutReader(corralPath, ["run", "--quiet", "--containment", "cgroup-v1", "--cgroup-parent", parent,
                                                                   "--stdout-max", "4K", "--report", "-", "--", "/bin/true"])
        #expect(result.status == 125, "raw status \(result.rawStatus): \(result.standardError)")
        #expect(result.standardError == "corral: writing to stdout: Broken pipe\n")
        for hierarchy in CgroupCheck.host.cgroups.v1 {
            #expect(!FileManager.default.fileExists(atPath: hierarchy.mount + parent), "\(hierarchy.mount + parent) was left")
        }
        let doctor = try Spawn.runWithoutStdoutReader(corralPath, ["doctor", "--json"])
        #expect(doctor.status == 125, "raw status \(doctor.rawStatus): \(doctor.standardError)")
        #expect(doctor.standardError == "corral: writing to stdout: Broken pipe\n")
    }
}

/// Starts `corral run --isolate` (through `launcher`, which execs it) with three sleepers
/// named by `marker`, kills Corral with SIGKILL once they run, and expects them all gone
/// without any cleanup command.
func killIsolatedCorralMidRun(launcher: [String], marker: String) throws {
    let command = [corralPath, "run", "--quiet", "--isolate", "--", "/bin/sh", "-c", "sleep \(marker) & sleep \(marker) & sleep \(marker)"]
    let all = launcher + command
    let started = try Spawn.start(all[0], Array(all.dropFirst()))
    var waited = 0
    while Leftovers.sleepers(marker) < 3 && waited < 200 {
        usleep(10_000)
        waited += 1
    }
    #expect(Leftovers.sleepers(marker) == 3)
    kill(started.pid, SIGKILL)
    _ = started.wait()
    waited = 0
    while Leftovers.sleepers(marker) > 0 && waited < 200 {
        usleep(10_000)
        waited += 1
    }
    #expect(Leftovers.sleepers(marker) == 0, "sleepers survived Corral")
}

@Suite("corral run --isolate", .cgroupExclusive, .enabled(if: geteuid() == 0, "isolation needs root"))
struct IsolateCommandTests {
    @Test("Corral killed with SIGKILL mid-run: the kernel kills the whole namespace, no cleanup needed")
    func killedCorral() throws {
        try killIsolatedCorralMidRun(launcher: [], marker: "61.\(getpid() % 1000)")
        _ = try corral("cleanup")
    }

    @Test("the first template a process builds removes the staging directories of a Corral that died")
    func staleStaging() throws {
        let stale = "/tmp/corral-root-\(Int32.max)-1-abcdef"
        try FileManager.default.createDirectory(atPath: stale, withIntermediateDirectories: false)
        defer { rmdir(stale) }
        // A bind of a directory no earlier process bound: no persisted template has it, so
        // this process builds one (a process that enters a persisted template stages nothing).
        let fresh = TemporaryDirectory()
        defer { fresh.remove() }
        let result = try corral("run", "--quiet", "--isolate", "--bind", "\(fresh.path):/fresh", "--", "/bin/true")
        #expect(result.status == 0, "\(result.standardError)")
        #expect(!FileManager.default.fileExists(atPath: stale))
    }

    @Test("--network and --user need --isolate; --user takes numbers")
    func flags() throws {
        #expect(try corral("run", "--network", "host", "--", "/bin/true").status == 125)
        #expect(try corral("run", "--isolate", "--user", "nobody", "--", "/bin/true").status == 125)
        let result = try corral("run", "--quiet", "--isolate", "--user", "1234:4321", "--stdout-max", "100", "--report", "-", "--", "/bin/sh", "-c", "id -u; id -g")
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains(#""text" : "1234\n4321\n""#))
    }
}

@Suite("corral run --isolate, rootless",
       .enabled(if: geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"),
                "needs root to become an unprivileged user with setpriv"))
struct RootlessIsolationTests {
    /// Runs corral as uid/gid 1000 (no root, no capabilities).
    func unprivileged(_ arguments: [String]) throws -> Spawn.Result {
        try Spawn.run("/usr/bin/setpriv", ["--reuid=1000", "--regid=1000", "--clear-groups", corralPath] + arguments)
    }

    @Test("a user namespace maps the caller: own hostname, PIDs, network, filesystem, no capabilities")
    func isolation() throws {
        let result = try unprivileged(["run", "--quiet", "--isolate", "--stdout-max", "4K", "--report", "-", "--", "/bin/sh", "-c",
                                       "id -u; id -g; hostname; grep CapEff /proc/self/status | cut -f2; ls /proc | grep -c '^[0-9]'; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; test -e /root || echo no-root"])
        #expect(result.status == 0, "\(result.standardError)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        let text = (report["stdout"] as? [String: Any])?["text"] as? String ?? ""
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.count == 7, "\(lines)")
        #expect(Array(lines.prefix(4)) == ["1000", "1000", "corral", "0000000000000000"], "\(lines)")
        #expect(Int(lines.dropFirst(4).first ?? "") ?? 99 < 10)
        #expect(lines.dropFirst(5).first == "lo")
        #expect(lines.last == "no-root")
        #expect(report["isolated"] as? Bool == true)
        // An unprivileged user has no cgroups to make here: process-group mode, said so.
        #expect((report["warnings"] as? [String])?.isEmpty == false || report["containment"] as? String != "process-group")
    }

    @Test("rootless: no /etc/shadow, nothing writable outside /box and /tmp, no rlimit raised, no host TCP, kill(-1) reaches nothing outside; gcc and python3 work")
    func boundaries() throws {
        // A process of the same uid outside: kill(-1) inside must not reach it.
        let sleeper = try Spawn.start("/usr/bin/setpriv", ["--reuid=1000", "--regid=1000", "--clear-groups", "/bin/sleep", "30"])
        defer { kill(sleeper.pid, SIGKILL); _ = sleeper.wait() }
        let listener = try LoopbackListener()
        defer { withExtendedLifetime(listener) {} }
        let script = """
        test -e /etc/shadow && echo shadow-there
        for d in / /usr /etc /home; do touch $d/x 2>/dev/null && echo "wrote $d"; done
        touch /box/x /tmp/x && echo box-and-tmp
        ulimit -n 64; (ulimit -n 128) 2>/dev/null && echo raised
        python3 -c "
        import socket
        try:
            socket.create_connection(('127.0.0.1', \(listener.port)), timeout=2); print('connected')
        except OSError:
            print('no-tcp')"
        printf 'int main(void){return 42;}' > /tmp/m.c && gcc -o /tmp/m /tmp/m.c && { /tmp/m; echo "gcc $?"; }
        kill -9 -1; echo done
        """
        let result = try unprivileged(["run", "--quiet", "--isolate", "--stdout-max", "4K", "--report", "-", "--", "/bin/sh", "-c", script])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any], "\(result.standardError)")
        #expect((report["stdout"] as? [String: Any])?["text"] as? String == "box-and-tmp\nno-tcp\ngcc 42\ndone\n")
        #expect(Leftovers.isRunning(sleeper.pid))
    }

    @Test("as an unprivileged user, a job's directory is removed even where its program took every permission away")
    func lockedWorkdir() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        try #require(chown(tmp.path, 1000, 1000) == 0)
        let spec = try JSONSerialization.data(withJSONObject: ["processes": [["args": ["/bin/sh", "-c", "pwd; mkdir -p a/b/c && touch a/b/c/x && chmod 000 a/b a"]]]])
        try spec.write(to: URL(fileURLWithPath: tmp.file("spec.json")))
        let result = try Spawn.run("/usr/bin/setpriv", ["--reuid=1000", "--regid=1000", "--clear-groups", corralPath, "run", "--quiet", "--spec", tmp.file("spec.json")],
                                   environment: ["TMPDIR=\(tmp.path)", "PATH=/usr/bin:/bin"])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains(tmp.path + "/corral-job-"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path) == ["spec.json"])
    }

    @Test("rootless, Corral killed with SIGKILL mid-run leaves nothing alive")
    func killedCorral() throws {
        try killIsolatedCorralMidRun(launcher: ["/usr/bin/setpriv", "--reuid=1000", "--regid=1000", "--clear-groups"],
                                     marker: "62.\(getpid() % 1000)")
    }

    @Test("rootless, Corral's init runs as the same uid as the program, and its memory is still out of reach")
    func initOutOfReach() throws {
        // The init keeps its capabilities in the run's user namespace; the program has none,
        // so the kernel refuses it the init's memory although their uids are the same.
        let probe = "import sys\nfor p in ['/proc/1/mem', '/proc/1/environ']:\n    try:\n        open(p, 'rb').read(1); print(p, 'open')\n    except PermissionError:\n        print(p, 'denied')\n"
        let result = try unprivileged(["run", "--quiet", "--isolate", "--stdout-max", "4K", "--report", "-", "--", "python3", "-c", probe])
        #expect(result.status == 0, "\(result.standardError)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect((report["stdout"] as? [String: Any])?["text"] as? String == "/proc/1/mem denied\n/proc/1/environ denied\n")
        let owner = try unprivileged(["run", "--quiet", "--isolate", "--stdout-max", "4K", "--report", "-", "--", "/bin/sh", "-c", "stat -c %u /proc/1/mem"])
        let ownerReport = try #require(try JSONSerialization.jsonObject(with: Data(owner.standardOutput.utf8)) as? [String: Any])
        #expect((ownerReport["stdout"] as? [String: Any])?["text"] as? String == "1000\n")
    }

    @Test("the seccomp filter holds rootless too, and another --user is refused")
    func seccompAndUser() throws {
        let ptrace = try unprivileged(["run", "--isolate", "--", "python3", "-c", "import ctypes; ctypes.CDLL(None).syscall(101, 16, 1, 0, 0)"])
        #expect(ptrace.status == 159, "\(ptrace.standardError)")
        if (try? String(contentsOfFile: "/proc/sys/kernel/dmesg_restrict", encoding: .utf8))?.hasPrefix("1") == true {
            // The audit records and the kernel's log, which name the call, are root's alone
            // here: the report says so.
            #expect(ptrace.standardError.contains("forbidden system call (not named: the kernel's audit records are root's to read here)"), "\(ptrace.standardError)")
        }
        let other = try unprivileged(["run", "--isolate", "--user", "0", "--", "/bin/true"])
        #expect(other.status == 125)
        #expect(other.standardError.contains("rootless"))
    }
}
