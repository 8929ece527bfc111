import Corral
import CorralTestSupport
import Foundation
import Testing

/// Starts `corral run --isolate` (through `launcher`, which execs it) with three sleepers
/// named by `marker`, kills Corral with SIGKILL once they run, and expects them all gone
/// without any cleanup command.
/// Returns the killed Corral's pid (setpriv execs it in place).
@discardableResult
func killIsolatedCorralMidRun(launcher: [String], marker: String) throws -> pid_t {
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
    return started.pid
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

    @Test("rootless, Corral killed with SIGKILL mid-run leaves nothing alive; the user's corral cleanup removes its staging directory")
    func killedCorral() throws {
        let pid = try killIsolatedCorralMidRun(launcher: ["/usr/bin/setpriv", "--reuid=1000", "--regid=1000", "--clear-groups"],
                                               marker: "62.\(getpid() % 1000)")
        // Root's cleanup leaves another user's directories; the user's own removes them.
        func staging() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? []).filter { $0.hasPrefix("corral-root-\(pid)-") }
        }
        let cleanup = try unprivileged(["cleanup"])
        #expect(cleanup.status == 0, "\(cleanup.standardError)")
        #expect(staging().isEmpty, "\(staging())")
    }

    @Test("rootless runs at once each remove their staging directory before corral exits")
    func concurrentStaging() throws {
        // Without a cgroup there was no exit hook to wait for the reaper's tidying: a CLI
        // that exited right after its report could leave /tmp/corral-root-* behind (seen in
        // about one round of twenty with three runs at once).
        var pids: [pid_t] = []
        for _ in 0..<10 {
            let started = try (0..<3).map { _ in
                try Spawn.start("/usr/bin/setpriv", ["--reuid=1000", "--regid=1000", "--clear-groups", corralPath,
                                                     "run", "--quiet", "--isolate", "--", "/bin/true"])
            }
            for run in started {
                let result = run.wait()
                #expect(result.status == 0, "\(result.standardError)")
                pids.append(run.pid)
            }
        }
        let left = ((try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? []).filter { name in
            pids.contains { name.hasPrefix("corral-root-\($0)-") }
        }
        #expect(left.isEmpty, "\(left)")
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
