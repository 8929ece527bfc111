import Corral
import CorralTestSupport
import Foundation
import Testing

/// As root with corral-init, every isolated run's read-only filesystem is a private copy of
/// one mount namespace made once per Corral process (a mount template): what the runs
/// share must stay out of every run's reach, and what each run owns must be its own.
extension SecurityTests {
@Suite("Mount template")
struct MountTemplateTests {
    static func isolated(_ script: String, user: RunUser? = nil, isolation: Isolation = Isolation()) async throws -> RunReport {
        try await Runner().run(Job(arguments: ["/bin/sh", "-c", script], standardOutput: .capture(max: 1 << 16),
                                   limits: Limits(wallTime: .seconds(10)), isolation: isolation, user: user))
    }

    /// uid 0 inside (no capabilities, but the owner of the shared tmpfs' directories) tries
    /// to leave something for the next run in every shared place; the next run looks.
    @Test("nothing a run writes into the shared read-only filesystem reaches the next run",
          .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func sharedPartsAreReadOnly() async throws {
        let places = ["/planted", "/etc/planted", "/dev/planted", "/usr/planted", "/etc/passwd", "/proc/planted"]
        let attack = places.map { "(echo x >> \($0)) 2>/dev/null && echo wrote \($0); " }.joined()
            + "mkdir /dev/dir 2>/dev/null && echo wrote /dev/dir; ln -s / /dev/link 2>/dev/null && echo wrote /dev/link; "
            + "mknod /dev/node p 2>/dev/null && echo wrote /dev/node; "
            // The superblock's options (after " - TYPE SOURCE"), not only the mount's.
            + "awk '$5 == \"/\" || $5 == \"/dev\" { for (i = 7; $i != \"-\"; i++) {}; print \"super\", $5, $(i + 3) }' /proc/self/mountinfo"
        let first = try await Self.isolated(attack, user: RunUser(uid: 0))
        #expect(first.status == .ok, "\(first.message)")
        let lines = first.stdout?.text?.split(separator: "\n").map(String.init) ?? []
        #expect(!lines.contains { $0.hasPrefix("wrote") }, "\(lines)")
        let supers = lines.filter { $0.hasPrefix("super ") }
        #expect(supers.count == 2, "\(lines)")
        for line in supers {
            #expect(line.split(separator: " ").last?.split(separator: ",").first == "ro", "\(line)")
        }
        let next = try await Self.isolated("ls -a / /etc /dev /usr; cat /etc/passwd", user: RunUser(uid: 0))
        #expect(next.status == .ok, "\(next.message)")
        let listing = (next.stdout?.text ?? "").split(separator: "\n").map(String.init)
        let left = listing.filter { ["planted", "dir", "link", "node", "x"].contains($0) }
        #expect(left.isEmpty, "left for the next run: \(left) in \(listing)")
        #expect(listing.contains("passwd") && listing.contains("null"), "\(listing)")
    }

    /// What each run writes (`/tmp`, `/dev/shm`, an empty `/box`) is its own mount, never the
    /// template's: a file left there by one run is gone in the next.
    @Test("the writable places of one run are gone in the next", .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func writablePlacesAreFresh() async throws {
        let first = try await Self.isolated("for d in /tmp /dev/shm /box; do echo secret > $d/left && echo wrote $d; done")
        #expect(first.status == .ok, "\(first.message)")
        #expect((first.stdout?.text ?? "").split(separator: "\n").count == 3, "\(first.stdout?.text ?? "")")
        let next = try await Self.isolated("ls -a /tmp /dev/shm /box; cat /tmp/left /dev/shm/left /box/left 2>&1; true")
        #expect(next.status == .ok, "\(next.message)")
        let lines = (next.stdout?.text ?? "").split(separator: "\n").map(String.init)
        #expect(!lines.contains("left") && !lines.contains("secret"), "\(lines)")
        #expect(lines.filter { $0.hasSuffix("No such file or directory") }.count == 3, "\(lines)")
    }

    /// Runs at the same time have mount namespaces of their own (not Corral's, not each
    /// other's), and Corral lets go of each once its run is over: no descriptor of it stays
    /// open. (A namespace's number is reused once it is freed, so runs one after another
    /// may show the same one.)
    @Test("each run has its own mount namespace, released after the run", .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func namespacesAreOwnAndReleased() async throws {
        let reports = try await withThrowingTaskGroup(of: RunReport.self) { group in
            for _ in 0..<3 { group.addTask { try await Self.isolated("readlink /proc/self/ns/mnt; sleep 1") } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let seen = reports.map { ($0.stdout?.text ?? "").trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(reports.allSatisfy { $0.status == .ok }, "\(reports.map(\.message))")
        let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/mnt")) ?? ""
        #expect(Set(seen).count == 3 && seen.allSatisfy { $0.hasPrefix("mnt:[") } && !seen.contains(own), "\(seen), Corral's \(own)")
        func held() -> Set<String> {
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
            return Set(fds.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0) })
        }
        var still = Set(seen).intersection(held())
        for _ in 0..<300 where !still.isEmpty {
            usleep(10_000)
            still = Set(seen).intersection(held())
        }
        #expect(still.isEmpty, "still held: \(still)")
    }

    /// A --bind shows the host's directory as it is at each run: a mount the host makes
    /// below it later is seen by the next run, and one it removes is gone.
    @Test("a --bind shows the host's directory as it is at each run", .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func bindsAreLive() async throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let sub = tmp.file("sub")
        #expect(mkdir(sub, 0o755) == 0)
        let isolation = Isolation(binds: [Isolation.Bind(source: tmp.path, target: "/data")])
        let before = try await Self.isolated("cat /data/sub/mark 2>&1", isolation: isolation)
        #expect(before.status == .nonzeroExit || before.stdout?.text?.contains("No such file") == true, "\(before.stdout?.text ?? "")")
        #expect(mount("tmpfs", sub, "tmpfs", 0, "mode=0755,size=1m") == 0)
        #expect(FileManager.default.createFile(atPath: sub + "/mark", contents: Data("mounted\n".utf8)))
        let during = try await Self.isolated("cat /data/sub/mark", isolation: isolation)
        #expect(umount2(sub, Int32(MNT_DETACH)) == 0)
        #expect(during.stdout?.text == "mounted\n", "\(during.stdout?.text ?? "") \(during.message)")
        let after = try await Self.isolated("cat /data/sub/mark 2>&1", isolation: isolation)
        #expect(after.stdout?.text?.contains("mounted") == false, "\(after.stdout?.text ?? "")")
    }
}
}
