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

    // MARK: Nothing of Corral left mounted after cleanup

    /// The lines of this mount namespace's table.
    static func mountTable() -> [String] {
        ((try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Whether a mount is a job directory of a Corral process that is alive (such as this
    /// test process's other suites' jobs, going on in parallel): `corral-job-PID-…`.
    static func ofLiveCorral(_ line: String) -> Bool {
        guard let range = line.range(of: "/corral-job-") else { return false }
        let pid = line[range.upperBound...].prefix { $0.isNumber }
        return Int32(pid).map { Leftovers.isRunning($0) } ?? false
    }

    /// A mountinfo line without its mount ids (which differ in a copy of the namespace).
    static func mountKey(_ line: String) -> String {
        line.split(separator: " ").dropFirst(2).joined(separator: " ")
    }

    /// Runs `corral cleanup` and expects the mount table to hold no line of the store and no
    /// line mentioning corral that was not there before the test (`before`) and is not a live
    /// Corral's, and the store's directory gone. Other test processes on this host (and this
    /// process's other suites) persist templates in the same store all the time: the cleanup
    /// and the look run in a private copy of this mount namespace (`unshare --mount
    /// --propagation private`), where no mount made elsewhere meanwhile shows up. What the
    /// cleanup unlinks goes in every namespace (an unlinked mount point is detached in the
    /// others). The old code, which left the store's own mount, fails this.
    static func expectNothingLeftMounted(before: Set<String>, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let marker = "=== corral-test mountinfo"
        let script = "'\(corralPath)' cleanup --json; echo \"status $?\"; echo '\(marker)'; cat /proc/self/mountinfo; "
            + "if [ -e '\(TemplateStore.directory)' ]; then echo STORE-EXISTS; fi"
        let result = try Spawn.run("/usr/bin/unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c", script])
        let parts = result.standardOutput.components(separatedBy: marker + "\n")
        #expect(parts.count == 2, "\(result.standardOutput) \(result.standardError)", sourceLocation: sourceLocation)
        let head = parts.first ?? ""
        let json = head.components(separatedBy: "\nstatus ").first ?? ""
        let summary = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any]
        let failures = summary?["failures"] as? [String] ?? []
        #expect(summary != nil, "\(result.standardOutput) \(result.standardError)", sourceLocation: sourceLocation)
        #expect(head.contains("status 0") || !failures.isEmpty, "\(result.standardError)", sourceLocation: sourceLocation)
        #expect(!failures.contains { $0.contains("corral-templates") }, "\(failures)", sourceLocation: sourceLocation)
        let lines = (parts.last ?? "").split(separator: "\n").map(String.init)
        let known = Set(before.map(mountKey))
        let left = lines.filter { $0 != "STORE-EXISTS" }.filter {
            $0.contains("corral-templates") || ($0.contains("corral") && !known.contains(mountKey($0)) && !ofLiveCorral($0))
        }
        #expect(left.isEmpty, "still mounted after corral cleanup: \(left)", sourceLocation: sourceLocation)
        #expect(!lines.contains("STORE-EXISTS"), "\(TemplateStore.directory) is still there", sourceLocation: sourceLocation)
    }

    @Test("corral cleanup leaves nothing of Corral mounted: the templates, then the store's own mount and directory go; a second cleanup is a no-op; the next run makes the store again",
          .enabled(if: geteuid() == 0, "isolation with corral-init needs root"))
    func cleanupUnmountsTheStore() throws {
        let before = Set(Self.mountTable())
        let run = try Spawn.run(corralPath, ["run", "--quiet", "--isolate", "--", "/bin/true"])
        #expect(run.status == 0, "\(run.standardError)")
        #expect(!Self.persisted().isEmpty)
        let root = Self.mountTable().filter { $0.split(separator: " ").dropFirst(4).first == Substring(TemplateStore.directory) }
        #expect(!root.isEmpty, "the store is a mount of its own")
        try Self.expectNothingLeftMounted(before: before)
        // Nothing to do the second time: exit 0, nothing removed, nothing made.
        if !FileManager.default.fileExists(atPath: TemplateStore.directory) {
            let second = try Spawn.run(corralPath, ["cleanup", "--json"])
            let summary = try JSONSerialization.jsonObject(with: Data(second.standardOutput.utf8)) as? [String: Any]
            #expect(second.status == 0 || !(summary?["failures"] as? [String] ?? []).isEmpty, "\(second.standardError)")
            #expect(!(summary?["failures"] as? [String] ?? []).contains { $0.contains("corral-templates") })
            #expect(summary?["templatesRemoved"] as? Int == 0, "\(second.standardOutput)")
        }
        // The next run makes the store again: root's 0700 directory, a mount of its own.
        let again = try Spawn.run(corralPath, ["run", "--quiet", "--isolate", "--", "/bin/sh", "-c", "echo again"])
        #expect(again.status == 0 && again.standardOutput == "again\n", "\(again.standardError)")
        #expect(!Self.persisted().isEmpty)
        var info = stat()
        #expect(stat(TemplateStore.directory, &info) == 0 && info.st_uid == 0 && info.st_mode & 0o077 == 0)
        #expect(Self.mountTable().contains { $0.split(separator: " ").dropFirst(4).first == Substring(TemplateStore.directory) })
        try Self.expectNothingLeftMounted(before: before)
    }

    @Test("isolated corral runs while corral cleanup runs again and again: every run succeeds, and the last cleanup leaves nothing mounted",
          .enabled(if: geteuid() == 0, "isolation with corral-init needs root"))
    func runsDuringCleanup() throws {
        let before = Set(Self.mountTable())
        let loop = try Spawn.start("/bin/sh", ["-c", "i=0; while [ $i -lt 60 ]; do '\(corralPath)' cleanup --json; i=$((i+1)); done"])
        var runs = 0
        while Leftovers.isRunning(loop.pid) && runs < 40 {
            let pair = try (0..<2).map { index in
                try Spawn.start(corralPath, ["run", "--quiet", "--isolate", "--", "/bin/sh", "-c", "echo run \(index)"])
            }
            for (index, started) in pair.enumerated() {
                let result = started.wait()
                #expect(result.status == 0 && result.standardOutput == "run \(index)\n", "\(result.status): \(result.standardError)")
            }
            runs += 2
        }
        let cleanups = loop.wait()
        #expect(runs >= 2, "only \(runs) runs overlapped the cleanups")
        #expect(!cleanups.standardOutput.contains("corral-templates"), "a cleanup failed on the store: \(cleanups.standardOutput)")
        #expect(!cleanups.standardError.contains("corral-templates"), "\(cleanups.standardError)")
        try Self.expectNothingLeftMounted(before: before)
    }
}
