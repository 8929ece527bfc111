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
    ///
    /// With the guard killed, the dead Corral's cgroups are stale, and any Corral that starts
    /// under the same parent cleans them up: CLI tests of other suites run at the same time.
    /// Those cases use a parent of their own, which no other Corral uses.
    func killedCorral(_ containment: String, guardToo: Bool = false, cleanupBy nextRun: Bool = false) throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let pidFile = directory.file("daemon")
        let escaper = try Fixtures.path("escaper")
        let parent = "/corral-test-killed-\(getpid())-\(nextRun ? "next" : "cleanup")"
        let parentArguments = guardToo ? ["--cgroup-parent", parent] : []
        // Should an expectation below stop the test early: nothing of it is left behind.
        defer { if guardToo { _ = try? Spawn.run(corralPath, ["cleanup"] + parentArguments) } }
        let started = try Spawn.start(corralPath, ["run", "--quiet", "--containment", containment] + parentArguments
                                      + ["--", escaper, pidFile, "daemon", "60000"])
        let runCgroups = { guardToo ? Self.runCgroups(under: parent, owner: started.pid) : CgroupCheck.runCgroups(owner: started.pid) }
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
        #expect(runCgroups().isEmpty == false)
        #expect(Leftovers.isRunning(daemon))

        if nextRun {
            // The next Corral to use the same parent cleans up before its first run.
            let run = try Spawn.run(corralPath, ["run", "--quiet", "--containment", containment] + parentArguments + ["--", "/bin/true"])
            #expect(run.status == 0, "\(run.standardError)")
        } else {
            let cleanup = try Spawn.run(corralPath, ["cleanup", "--json"] + parentArguments)
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
        #expect(runCgroups().isEmpty, "\(runCgroups())")
        // The parent: `corral cleanup` removes it; after the next run, that run's exit does.
        for hierarchy in Self.parentMounts where FileManager.default.fileExists(atPath: hierarchy + parent) {
            Issue.record("\(hierarchy + parent) was left")
            rmdir(hierarchy + parent)
        }
    }

    /// The root of every cgroup hierarchy this host mounts (v1 and v2).
    static var parentMounts: [String] {
        CgroupCheck.host.cgroups.v1.map(\.mount) + (CgroupCheck.host.cgroups.v2.map { [$0.mount] } ?? [])
    }

    /// The run cgroups of Corral `owner` below `parent` (relative to each hierarchy's root).
    static func runCgroups(under parent: String, owner: Int32) -> [String] {
        parentMounts.flatMap { mount in
            ((try? FileManager.default.contentsOfDirectory(atPath: mount + parent)) ?? [])
                .filter { $0.hasPrefix("run-\(owner)-") }.map { mount + parent + "/" + $0 }
        }
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
