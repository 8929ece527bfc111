import Corral
import CorralTestSupport
import Foundation
import Testing

/// A program running as root (asked for with `--user 0`: by default it is nobody and cannot)
/// makes a cgroup inside its run's cgroup (in every hierarchy it
/// finds the run in), moves itself there and leaves sleepers behind: `cgroup.procs` of the
/// run's own cgroup is then empty, and a directory with a child cannot be removed.
/// (In the serialized suite of the other `corral cleanup` tests: a cleanup kills what any
/// dead Corral left, so two at once would take each other's counts.)
extension CgroupCommandTests {
    func subCgroupAttack(_ containment: String) throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let marker = "64.\(getpid() % 1000)"
        let script = """
        for path in $(cut -d: -f3 /proc/self/cgroup | grep /run-); do
          for mount in $(awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts); do
            [ -d "$mount$path" ] || continue
            mkdir -p "$mount$path/sub/deeper" && echo $$ > "$mount$path/sub/deeper/cgroup.procs" && echo "$mount$path" >> \(directory.file("moved"))
          done
        done
        cat /proc/self/cgroup > \(directory.file("cgroup"))
        sleep \(marker) & sleep \(marker) &
        """
        let started = try Spawn.start(corralPath, ["run", "--quiet", "--containment", containment, "--user", "0", "--", "/bin/sh", "-c", script])
        let result = started.wait()
        #expect(result.status == 0, "\(result.standardError)")
        let moved = ((try? String(contentsOfFile: directory.file("moved"), encoding: .utf8)) ?? "").split(separator: "\n")
        #expect(!moved.isEmpty, "the program never got into a sub-cgroup: \((try? String(contentsOfFile: directory.file("cgroup"), encoding: .utf8)) ?? "")")
        #expect(Leftovers.sleepers(marker) == 0, "sleepers in a sub-cgroup survived the run")
        for run in moved {
            #expect(!FileManager.default.fileExists(atPath: String(run)), "\(run) was left")
        }
        #expect(CgroupCheck.runCgroups(owner: started.pid).isEmpty, "\(CgroupCheck.runCgroups(owner: started.pid))")
        let cleanup = try corral("cleanup", "--json")
        #expect(cleanup.status == 0, "\(cleanup.standardOutput) \(cleanup.standardError)")
        let summary = try JSONSerialization.jsonObject(with: Data(cleanup.standardOutput.utf8)) as? [String: Any]
        #expect((summary?["failures"] as? [String])?.isEmpty == true, "\(cleanup.standardOutput)")
    }

    @Test("v1: a root program's sub-cgroups in its run's cgroup: everything in them is killed, and they are removed bottom-up",
          .enabled(if: CgroupCheck.hasV1, "needs root and the cgroup v1 memory, pids, cpuacct and freezer hierarchies"))
    func subCgroupsV1() throws { try subCgroupAttack("cgroup-v1") }

    @Test("v2: a root program's sub-cgroups in its run's cgroup: everything in them is killed, and they are removed bottom-up",
          .enabled(if: CgroupCheck.hasV2, "needs root and a writable cgroup v2 hierarchy"))
    func subCgroupsV2() throws { try subCgroupAttack("cgroup-v2") }
}
