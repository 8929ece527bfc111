import Corral
import CorralTestSupport
import Foundation
import Testing

private let v2 = CgroupCheck.hasV2 && FileManager.default.isExecutableFile(atPath: "/usr/bin/strace")
private let needsV2 = "needs root, a writable cgroup v2 hierarchy and /usr/bin/strace"

@Suite("cgroup v2: the program is created inside its cgroup")
struct CloneIntoCgroupTests {
    @Test("v2: clone3 with CLONE_INTO_CGROUP, and no write to the run's cgroup.procs (no migration)", .enabled(if: v2, Comment(rawValue: needsV2)))
    func noMigration() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let trace = directory.file("trace")
        // -y names each descriptor's file, so a join would show as a write to
        // .../run-.../cgroup.procs.
        let result = try Spawn.run("/usr/bin/strace", ["-f", "-qq", "-y", "-e", "trace=clone,clone3,write", "-o", trace,
                                                       corralPath, "run", "--quiet", "--containment", "cgroup-v2",
                                                       "--", "/bin/cat", "/proc/self/cgroup"])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("0::/") && result.standardOutput.contains("/corral/run-"), "\(result.standardOutput)")
        let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n")
        let clones = lines.filter { $0.contains("clone3(") && $0.contains("CLONE_INTO_CGROUP") }
        #expect(clones.count == 1, "\(lines.filter { $0.contains("clone") })")
        let joins = lines.filter { $0.contains("write(") && $0.contains("/corral/run-") && $0.contains("cgroup.procs") }
        #expect(joins.isEmpty, "\(joins)")
    }
}
