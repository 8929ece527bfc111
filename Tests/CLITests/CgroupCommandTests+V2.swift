import Corral
import CorralTestSupport
import Foundation
import Testing

private let v2Limits = CgroupCheck.hasV2Controllers
private let needsV2Limits = "needs root and cgroup v2 with the memory and pids controllers (this host's v2 hierarchy has neither; Scripts/v2-vm runs it)"

/// A cgroup the test makes at the top of the v2 hierarchy (and removes), as a service
/// manager would delegate one.
struct TestCgroup {
    let path: String
    let relative: String

    init(_ name: String) throws {
        let mount = try #require(CgroupCheck.host.cgroups.v2?.mount)
        relative = "/\(name)-\(getpid())"
        path = mount + relative
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    }

    var children: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: path + "/" + $0, isDirectory: &isDirectory) && isDirectory.boolValue
        }.sorted()
    }

    var subtreeControl: String {
        ((try? String(contentsOfFile: path + "/cgroup.subtree_control", encoding: .utf8)) ?? "?").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Whether a process can be moved into it now (a shell that moves itself, then exits).
    func acceptsProcess() throws -> Spawn.Result {
        try Spawn.run("/bin/sh", ["-c", "echo $$ > \(path)/cgroup.procs"])
    }

    func enable(_ line: String) throws {
        try line.write(toFile: path + "/cgroup.subtree_control", atomically: false, encoding: .utf8)
    }

    /// Removes whatever is left below, deepest first, then the cgroup.
    func remove() {
        for child in children { TestCgroup.removeTree(path + "/" + child) }
        rmdir(path)
    }

    static func removeTree(_ directory: String) {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: directory + "/" + entry, isDirectory: &isDirectory), isDirectory.boolValue {
                removeTree(directory + "/" + entry)
            }
        }
        rmdir(directory)
    }
}

/// cgroup v2: delegation, Corral's own cgroup, cleanup. (In the serialized suite of the
/// other `corral cleanup` tests: a cleanup kills what any dead Corral left.)
extension CgroupCommandTests {
    @Test("v2: --cgroup-parent below a cgroup that has not enabled memory and pids: exit 125 naming the file to write, nothing left; once enabled, the run has its memory cgroup and Corral leaves no directory",
          .enabled(if: v2Limits, Comment(rawValue: needsV2Limits)))
    func parentWithoutControllers() throws {
        let top = try TestCgroup("corral-test-delegation")
        defer { top.remove() }
        // A parent that does not exist yet, two levels below.
        let made = try corral("run", "--cgroup-parent", top.relative + "/made/deeper", "--memory", "64M", "--", "/bin/true")
        #expect(made.status == 125, "\(made.standardError)")
        #expect(made.standardError.contains("\(top.path)/cgroup.subtree_control"), "\(made.standardError)")
        #expect(made.standardError.contains("memory and pids"), "\(made.standardError)")
        #expect(top.children.isEmpty, "left: \(top.children)")
        // A delegated parent that exists: it stays (it is not Corral's), nothing is made in it.
        try FileManager.default.createDirectory(atPath: top.path + "/delegated", withIntermediateDirectories: false)
        let delegated = try corral("run", "--cgroup-parent", top.relative + "/delegated", "--memory", "64M", "--", "/bin/true")
        #expect(delegated.status == 125, "\(delegated.standardError)")
        #expect(delegated.standardError.contains("\(top.path)/cgroup.subtree_control"), "\(delegated.standardError)")
        #expect(top.children == ["delegated"])
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: top.path + "/delegated")) ?? []).filter { !$0.contains(".") }.isEmpty)
        rmdir(top.path + "/delegated")

        try top.enable("+memory +pids")
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let works = try corral("run", "--quiet", "--cgroup-parent", top.relative + "/made/deeper", "--memory", "64M",
                               "--report", directory.file("report.json"), "--stdout", directory.file("cgroup"), "--", "/bin/cat", "/proc/self/cgroup")
        #expect(works.status == 0, "\(works.standardError)")
        let report = try decodeReport(directory.file("report.json"))
        #expect(report["containment"] as? String == "cgroup-v2")
        #expect((report["warnings"] as? [String] ?? []).isEmpty, "\(report["warnings"] ?? "")")
        #expect((try? String(contentsOfFile: directory.file("cgroup"), encoding: .utf8))?.contains("0::\(top.relative)/made/deeper/run-") == true)
        #expect(top.children.isEmpty, "left: \(top.children)")
    }

    /// Starts `corral ARGS` from a shell that first moves itself into `cgroup` (so Corral is
    /// alone there).
    func corralAlone(in cgroup: TestCgroup, _ arguments: [String]) throws -> Spawn.Started {
        let quoted = ([corralPath] + arguments).map { "'" + $0 + "'" }.joined(separator: " ")
        return try Spawn.start("/bin/sh", ["-c", "echo $$ > \(cgroup.path)/cgroup.procs && exec \(quoted)"])
    }

    @Test("v2: Corral alone in a non-root cgroup leaves it as it was: no child, no controller enabled, a process can be moved in",
          .enabled(if: v2Limits, Comment(rawValue: needsV2Limits)))
    func aloneInOwnCgroup() throws {
        let own = try TestCgroup("corral-test-alone")
        defer { own.remove() }
        let result = try corralAlone(in: own, ["run", "--quiet", "--memory", "64M", "--processes", "8", "--", "/bin/sh", "-c", "cat /proc/self/cgroup >&2"]).wait()
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardError.contains("0::\(own.relative)/corral/run-"), "\(result.standardError)")
        #expect(own.children.isEmpty, "left: \(own.children)")
        #expect(own.subtreeControl.isEmpty, "still enabled: \(own.subtreeControl)")
        #expect(try own.acceptsProcess().status == 0)
    }

    @Test("v2: Corral killed with SIGKILL while alone in a non-root cgroup: corral cleanup restores that cgroup",
          .enabled(if: v2Limits, Comment(rawValue: needsV2Limits)))
    func killedAloneInOwnCgroup() throws {
        let own = try TestCgroup("corral-test-killed-alone")
        defer { own.remove() }
        let marker = "63.\(getpid() % 1000)"
        let started = try corralAlone(in: own, ["run", "--quiet", "--memory", "64M", "--", "/bin/sh", "-c", "sleep \(marker) & sleep \(marker)"])
        var waited = 0
        while Leftovers.sleepers(marker) < 2 && waited < 500 {
            usleep(20_000)
            waited += 1
        }
        #expect(Leftovers.sleepers(marker) == 2)
        #expect(own.children.contains { $0.hasPrefix("corral-supervisor-\(started.pid)-") }, "\(own.children)")
        kill(started.pid, SIGKILL)
        _ = started.wait()
        #expect(try own.acceptsProcess().status != 0, "the cgroup took a process although Corral left controllers enabled")

        let cleanup = try corral("cleanup", "--json")
        #expect(cleanup.status == 0, "\(cleanup.standardOutput) \(cleanup.standardError)")
        waited = 0
        while Leftovers.sleepers(marker) > 0 && waited < 100 {
            usleep(10_000)
            waited += 1
        }
        #expect(Leftovers.sleepers(marker) == 0)
        #expect(own.children.isEmpty, "left: \(own.children)")
        #expect(own.subtreeControl.isEmpty, "still enabled: \(own.subtreeControl)")
        #expect(try own.acceptsProcess().status == 0)
    }
}
