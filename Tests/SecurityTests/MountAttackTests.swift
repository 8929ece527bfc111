import Corral
import CorralTestSupport
import Foundation
import Testing

/// Read-only binds were read-only only at the top, and a rootless run's tmpfs held 1.5 GiB
/// under `--memory 64M`.
extension SecurityTests {
@Suite("Mounts")
struct MountAttackTests {
    @Test("a submount of a read-only bind is read-only, nosuid and nodev too", .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func recursiveReadOnly() async throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let sub = tmp.file("sub")
        #expect(mkdir(sub, 0o777) == 0)
        #expect(mount("tmpfs", sub, "tmpfs", 0, "mode=0777,size=1m") == 0)
        defer { umount2(sub, Int32(MNT_DETACH)) }
        let report = try await Runner().run(Job(
            arguments: ["/bin/sh", "-c", "touch /data/sub/x 2>/dev/null && echo wrote; grep ' /data/sub ' /proc/self/mountinfo | cut -d' ' -f6"],
            standardOutput: .capture(max: 4096), limits: Limits(wallTime: .seconds(10)),
            isolation: Isolation(binds: [Isolation.Bind(source: tmp.path, target: "/data")]), user: RunUser(uid: 0)))
        #expect(report.status == .ok, "\(report.message)")
        let lines = report.stdout?.text?.split(separator: "\n").map(String.init) ?? []
        #expect(!lines.contains("wrote"), "\(lines)")
        let options = Set((lines.last ?? "").split(separator: ",").map(String.init))
        #expect(options.isSuperset(of: ["ro", "nosuid", "nodev"]), "\(lines)")
        #expect(access(tmp.file("sub/x"), F_OK) != 0)
    }

    @Test("rootless: /tmp, /dev/shm and an empty /box hold at most the memory limit", .enabled(if: canBecomeUser1000))
    func rootlessTmpfsIsBounded() throws {
        let script = "for d in /tmp /dev/shm /box; do head -c 200M /dev/zero > $d/fill 2>/dev/null; stat -c %s $d/fill; rm -f $d/fill; done"
        let result = try Spawn.run("/usr/bin/setpriv", ["--reuid=1000", "--regid=1000", "--clear-groups", corralBinary, "run", "--quiet",
                                                         "--isolate", "--memory", "64M", "--wall-time", "20", "--", "/bin/sh", "-c", script])
        #expect(result.status == 0, "\(result.standardError)")
        let sizes = result.standardOutput.split(separator: "\n").compactMap { UInt64($0) }
        #expect(sizes.count == 3, "\(result.standardOutput) \(result.standardError)")
        #expect(sizes.allSatisfy { $0 <= 64 << 20 }, "\(sizes)")
    }

    /// Rootless, the kernel locks the flags of a mount that came from the parent namespace:
    /// a remount that dropped `noexec` failed with EPERM, so the bind was refused.
    @Test("rootless: a bind of a noexec mount works and stays noexec", .enabled(if: canBecomeUser1000))
    func rootlessBindKeepsLockedFlags() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let source = tmp.file("noexec")
        #expect(mkdir(source, 0o755) == 0)
        #expect(mount("tmpfs", source, "tmpfs", UInt(MS_NOEXEC | MS_NOSUID), "mode=0755,size=1m") == 0)
        defer { umount2(source, Int32(MNT_DETACH)) }
        let result = try Spawn.run("/usr/bin/setpriv", ["--reuid=1000", "--regid=1000", "--clear-groups", corralBinary, "run", "--quiet",
                                                         "--isolate", "--bind", "\(source):/data", "--", "/bin/sh", "-c",
                                                         "grep ' /data ' /proc/self/mountinfo | cut -d' ' -f6"])
        #expect(result.status == 0, "\(result.standardError)")
        let options = Set(result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").map(String.init))
        #expect(options.isSuperset(of: ["ro", "nosuid", "nodev", "noexec"]), "\(result.standardOutput)")
    }

    /// The init makes mount points by path while it still sees the host: below /box, where
    /// an earlier run could have left a link, that would take it anywhere.
    @Test("a --bind or --tmpfs target below /box is refused", .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func targetsBelowBoxAreRefused() async throws {
        for isolation in [Isolation(binds: [Isolation.Bind(source: "/etc", target: "/box/etc")]),
                          Isolation(tmpfs: [Isolation.Tmpfs(target: "/box/scratch")])] {
            let report = try await Runner().run(Job(arguments: ["/bin/true"], isolation: isolation))
            #expect(report.status == .setupError)
            #expect(report.message.contains("below /box is not allowed"), "\(report.message)")
        }
    }
}
}
