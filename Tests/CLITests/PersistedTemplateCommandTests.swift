import Corral
import CorralTestSupport
import Foundation
import Testing

/// As root, a `corral` process that makes one isolated run enters a copy of a mount template
/// an earlier `corral` process persisted in `/run/corral-templates` (see TemplateStore): the
/// attacks of one process's run must not reach the next process's, and `corral cleanup`
/// removes what is persisted.
@Suite("Persisted mount templates across corral processes", .serialized, .cgroupExclusive)
struct PersistedTemplateCommandTests {
    static func persisted() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: TemplateStore.directory)) ?? []).sorted()
    }

    /// uid 0 inside (no capabilities) tries to leave something in every shared place of the
    /// filesystem, and to reach the store; a second `corral` process, entering the same
    /// persisted template, looks.
    @Test("a run of one corral process leaves nothing in the persisted template for the next process's run",
          .enabled(if: geteuid() == 0, "isolation with corral-init needs root"))
    func nothingCrossesProcesses() throws {
        let places = ["/planted", "/etc/planted", "/dev/planted", "/usr/planted", "/etc/passwd", "/run/planted"]
        let attack = places.map { "(echo x >> \($0)) 2>/dev/null && echo wrote \($0); " }.joined()
            + "mkdir /dev/dir 2>/dev/null && echo wrote /dev/dir; ls \(TemplateStore.directory) 2>/dev/null && echo sees the store; true"
        let first = try Spawn.run(corralPath, ["run", "--quiet", "--isolate", "--user", "0", "--", "/bin/sh", "-c", attack])
        #expect(first.status == 0, "\(first.standardError)")
        #expect(first.standardOutput.isEmpty, "\(first.standardOutput)")
        let stored = Self.persisted()
        #expect(!stored.isEmpty, "no template persisted in \(TemplateStore.directory)")
        var info = stat()
        #expect(stat(TemplateStore.directory, &info) == 0 && info.st_uid == 0 && info.st_mode & 0o077 == 0, "mode \(String(info.st_mode, radix: 8))")
        let next = try Spawn.run(corralPath, ["run", "--quiet", "--isolate", "--user", "0", "--",
                                              "/bin/sh", "-c", "ls -a / /etc /dev /usr; cat /etc/passwd"])
        #expect(next.status == 0, "\(next.standardError)")
        let listing = next.standardOutput.split(separator: "\n").map(String.init)
        #expect(listing.contains("passwd") && listing.contains("null"), "\(listing)")
        let left = listing.filter { ["planted", "dir", "x"].contains($0) || $0.hasPrefix("corral-templates") }
        #expect(left.isEmpty, "left for the next process's run: \(left)")
        // The second process found the template the first persisted (other tests' runs, in
        // parallel, may add templates of other keys).
        #expect(Set(stored).isSubset(of: Set(Self.persisted())), "\(stored) \(Self.persisted())")
    }

    @Test("corral cleanup removes the persisted templates", .enabled(if: geteuid() == 0, "isolation with corral-init needs root"))
    func cleanupRemovesThem() throws {
        let run = try Spawn.run(corralPath, ["run", "--quiet", "--isolate", "--", "/bin/true"])
        #expect(run.status == 0, "\(run.standardError)")
        #expect(!Self.persisted().isEmpty)
        let cleanup = try Spawn.run(corralPath, ["cleanup", "--json"])
        let summary = try JSONSerialization.jsonObject(with: Data(cleanup.standardOutput.utf8)) as? [String: Any]
        #expect((summary?["templatesRemoved"] as? Int ?? 0) >= 1, "\(cleanup.standardOutput)")
        // Unmounted, not only unlinked: none is left in this mount namespace's table.
        let mounts = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        let stillMounted = mounts.split(separator: "\n").filter { $0.contains(" " + TemplateStore.directory + "/") }
        #expect(stillMounted.count <= Self.persisted().count, "\(stillMounted)")
        // And the next run makes one again.
        let again = try Spawn.run(corralPath, ["run", "--quiet", "--isolate", "--", "/bin/true"])
        #expect(again.status == 0, "\(again.standardError)")
        #expect(!Self.persisted().isEmpty)
    }
}
