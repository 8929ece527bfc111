import Corral
import CorralTestSupport
import Foundation
import Testing

/// The file store is a root-owned directory of files a client chose: a file id must name
/// only store content, a program given a stored file must never change the store's copy,
/// and nothing of the store may be reached from a sandbox or used to read host files.
extension SecurityTests {
@Suite("File store attacks")
struct FileStoreAttackTests {
    func withStore<T>(_ body: (FileStore, String) async throws -> T) async throws -> T {
        let path = "/tmp/corral-store-attack-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try await body(try FileStore(directory: path, maxBytes: 16 << 20), path)
    }

    /// A host secret only root can read, for the attacks to go after.
    func withSecret<T>(_ body: (String, String) async throws -> T) async throws -> T {
        let path = "/tmp/corral-secret-\(UUID().uuidString)"
        let text = "SECRET-\(UUID().uuidString)"
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, 0o600)
        defer { unlink(path) }
        return try await body(path, text)
    }

    @Test("a file id with .., a slash, an absolute path or capitals is refused before the store is touched")
    func idWithPath() async throws {
        for bad in ["../../../../etc/passwd", "/etc/passwd", String(repeating: "0", count: 62) + "/.",
                    String(repeating: "A", count: 64), "..", String(repeating: "a", count: 63) + "\u{0}"] {
            let body = #"{"processes": [{"args": ["/bin/cat", "x"]}], "files": [{"path": "x", "fileId": \#(jsonString(bad))}]}"#
            #expect { try JobSpec.parse(Data(body.utf8)) } throws: { ($0 as? SpecError)?.path == "files[0].fileId" }
        }
    }

    @Test("a symbolic link planted in the store (under a valid id) is never followed: not at start, not in place of a file")
    func plantedSymlink() async throws {
        try await withSecret { secret, text in
            try await withStore { store, path in
                // In place of a stored file, while the store runs.
                let stored = try store.put(Array("innocent".utf8))
                let name = path + "/data/" + stored.id.hex
                unlink(name)
                #expect(symlink(secret, name) == 0)
                #expect { try store.open(stored.id) } throws: { _ in true }
                let spec = try JobSpec.parse(Data(#"{"processes": [{"args": ["/bin/cat", "in"]}], "files": [{"path": "in", "fileId": "\#(stored.id)"}]}"#.utf8))
                do {
                    let report = try await JobRunner(fileStore: store).run(spec)
                    #expect(!(report.processes[0].report.stdout?.text ?? "").contains(text))
                    Issue.record("a job ran with a stored file replaced by a link: \(report.status)")
                } catch {
                    #expect(!"\(error)".contains(text))
                }
                // Under another valid id, then a restart: removed, never indexed.
                let planted = FileId.of(Array(text.utf8))
                #expect(symlink(secret, path + "/data/" + planted.hex) == 0)
                let restarted = try FileStore(directory: path, maxBytes: 16 << 20)
                #expect(restarted.size(of: planted) == nil)
                #expect { try restarted.open(planted) } throws: { ($0 as? FileStoreError)?.kind == .notFound }
                #expect(!FileManager.default.fileExists(atPath: path + "/data/" + planted.hex))
                #expect(!restarted.notices.isEmpty)
                #expect(try String(contentsOfFile: secret, encoding: .utf8) == text)
            }
        }
    }

    @Test("collect store:true never follows a link out of the working directory",
          .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func collectLinkToHostFile() async throws {
        try await withSecret { secret, text in
            try await withStore { store, _ in
                let spec = try JobSpec.parse(Data("""
                {"processes": [{"args": \(shell("ln -s \(secret) s; ln \(secret) h 2>/dev/null; true"))}],
                 "collect": [{"path": "s", "store": true}, {"path": "h", "store": true}]}
                """.utf8))
                let report = try await JobRunner(fileStore: store).run(spec)
                #expect(report.files.allSatisfy { $0.fileId == nil && $0.error != nil }, "\(report.files)")
                #expect(store.statistics.files == 0)
                #expect(store.size(of: FileId.of(Array(text.utf8))) == nil)
            }
        }
    }

    @Test("a program given a stored file cannot change the store's copy: write, chmod, truncate, replace",
          .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func programWritesPlacedFile() async throws {
        try await withStore { store, path in
            let content = Array("the store's bytes\n".utf8)
            let stored = try store.put(content)
            let attack = "echo pwned > in; echo pwned >> in; chmod 666 in; truncate -s 0 in; "
                + "cat in; ls -l in; rm -f in; echo pwned > in; cat in"
            // As the default user (nobody): the placed file is a link to the store's own.
            let spec = try JobSpec.parse(Data("""
            {"processes": [{"name": "host", "args": \(shell(attack))}, {"name": "isolated", "args": \(shell(attack)), "isolate": true}],
             "files": [{"path": "in", "fileId": "\(stored.id)"}]}
            """.utf8))
            let report = try await JobRunner(fileStore: store).run(spec)
            for process in report.processes {
                #expect((process.report.stdout?.text ?? "").hasPrefix("the store's bytes\n") == true, "\(process.name): \(process.report.stdout?.text ?? "")")
            }
            // As root (asked for in the library): a copy, which it may change at will.
            var asRoot = spec
            asRoot.processes = [asRoot.processes[0]]
            asRoot.processes[0].user = RunUser(uid: 0, gid: 0)
            let rootReport = try await JobRunner(fileStore: store).run(asRoot)
            #expect((rootReport.processes[0].report.stdout?.text ?? "").contains("pwned"))
            let onDisk = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path + "/data/" + stored.id.hex)))
            #expect(onDisk == content)
            let info = try FileManager.default.attributesOfItem(atPath: path + "/data/" + stored.id.hex)
            #expect((info[.posixPermissions] as? Int) == 0o444 && (info[.ownerAccountID] as? Int) == 0)
        }
    }

    @Test("a test's stdin by fileId is the store's own file only for an isolated program: read-only, no write, append, chmod or truncate through /proc/self/fd/0, no listing of the store",
          .enabled(if: isRoot, Comment(rawValue: needsRoot)), arguments: [false, true])
    func programAttacksStoredStdin(isolate: Bool) async throws {
        try await withStore { store, path in
            let content = "the store's bytes\n"
            let stored = try store.put(Array(content.utf8))
            let storeFile = path + "/data/" + stored.id.hex
            var before = stat()
            #expect(stat(storeFile, &before) == 0)
            // Each line it prints past the first is an attack that worked; `cat` then reads stdin from its start.
            let attack = "[ \"$(stat -L -c %d:%i /proc/self/fd/0)\" = \(before.st_dev):\(before.st_ino) ] && echo store || echo copy; "
                + "echo pwned > /proc/self/fd/0 && echo wrote; echo pwned >> /proc/self/fd/0 && echo appended; "
                + "chmod 666 /proc/self/fd/0 && echo chmodded; truncate -s 0 /proc/self/fd/0 && echo truncated; "
                + "d=\"$(dirname \"$(readlink /proc/self/fd/0)\")\"; [ \"$d\" != / ] && ls \"$d\" && echo listed; cat"
            // Isolated: the store's own file (no copy); not isolated: a sealed copy.
            let answer = (isolate ? "store\n" : "copy\n") + content
            let test = #"{"stdin": {"fileId": "\#(stored.id)"}, "answer": {"content": \#(jsonString(answer))}}"#
            let json = """
            {"steps": [{"name": "t", "processes": [{"args": \(shell(attack)), "isolate": \(isolate), "limits": {"wallTime": 10}}],
              "checker": "exact", "tests": [\(test), \(test)]}]}
            """
            guard case .steps(let spec) = try JobDocument.parse(Data(json.utf8)) else { throw FixtureError("not a job of steps") }
            let report = try await StepsRunner(jobs: JobRunner(fileStore: store)).run(spec)
            let tests = report.steps[0].tests
            #expect(tests.map(\.verdict) == [.accepted, .accepted], "\(tests.map(\.comment)) \(tests.map { $0.processes[0].report.stderr?.text ?? "" })")
            let onDisk = try String(contentsOfFile: storeFile, encoding: .utf8)
            #expect(onDisk == content)
            var after = stat()
            #expect(stat(storeFile, &after) == 0)
            #expect(after.st_mode & 0o7777 == 0o444 && after.st_uid == 0 && after.st_size == before.st_size)
        }
    }

    /// Red team: a program that is not isolated shares the host's mounts, so a store file as its
    /// stdin would tell it the store's path (`readlink /proc/self/fd/0`) and, where the kernel's
    /// `fs.protected_hardlinks` is 0, let it give the store's file a name of its own in `/tmp`
    /// (same file system), outliving the file's eviction. Its stdin is a sealed copy instead.
    /// (On a host with `protected_hardlinks` 1 the link is refused anyway; what this checks
    /// whatever the setting is that stdin is not the store's file, and that nothing got linked.)
    @Test("a program that is not isolated cannot reach the store's file through its stdin: readlink, write, link",
          .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func plainProgramReachesForTheStoreThroughStdin() async throws {
        try await withStore { store, path in
            let content = "the store's bytes\n"
            let stored = try store.put(Array(content.utf8))
            let storeFile = path + "/data/" + stored.id.hex
            var before = stat()
            try #require(stat(storeFile, &before) == 0)
            let linked = "/tmp/corral-stdin-link-\(UUID().uuidString)"
            defer { unlink(linked) }
            // On stderr: what it learned and which attacks worked; on stdout, its stdin.
            let attack = "readlink /proc/self/fd/0 >&2; stat -L -c 'inode %d:%i' /proc/self/fd/0 >&2; "
                + "echo pwned 2>/dev/null > /proc/self/fd/0 && echo wrote >&2; echo pwned 2>/dev/null >> /proc/self/fd/0 && echo appended >&2; "
                + "ln -L /proc/self/fd/0 \(linked) 2>/dev/null && echo linked >&2; "
                + "cat \"$(readlink /proc/self/fd/0)\" >/dev/null 2>&1 && echo reopened-by-path >&2; cat"
            let test = #"{"stdin": {"fileId": "\#(stored.id)"}, "answer": {"content": \#(jsonString(content))}}"#
            let json = """
            {"steps": [{"name": "t", "processes": [{"args": \(shell(attack)), "limits": {"wallTime": 10}}],
              "checker": "exact", "tests": [\(test)]}]}
            """
            guard case .steps(let spec) = try JobDocument.parse(Data(json.utf8)) else { throw FixtureError("not a job of steps") }
            let report = try await StepsRunner(jobs: JobRunner(fileStore: store)).run(spec)
            let test0 = try #require(report.steps.first?.tests.first)
            let learned = test0.processes[0].report.stderr?.text ?? ""
            #expect(test0.verdict == .accepted, "\(test0.comment) \(learned)")
            #expect(learned.contains("inode ") && !learned.contains("inode \(before.st_dev):\(before.st_ino)\n"), "stdin is the store's file: \(learned)")
            #expect(!learned.contains(path) && !learned.contains(stored.id.hex), "the store's path leaked: \(learned)")
            for worked in ["wrote", "appended", "linked", "reopened-by-path"] {
                #expect(!learned.contains(worked + "\n"), "\(worked): \(learned)")
            }
            var link = stat()
            #expect(lstat(linked, &link) != 0, "a file was linked at \(linked)")
            var after = stat()
            #expect(stat(storeFile, &after) == 0)
            #expect(after.st_nlink == 1 && after.st_size == before.st_size, "the store's file has \(after.st_nlink) names")
            #expect(try String(contentsOfFile: storeFile, encoding: .utf8) == content)
        }
    }

    @Test("an isolated program finds no path to the store, and cannot read another stored file through its own",
          .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func isolatedProgramLooksForTheStore() async throws {
        try await withStore { store, path in
            let mine = try store.put(Array("mine\n".utf8))
            let other = try store.put(Array("someone else's\n".utf8))
            let look = "ls -d \(path) /var/lib/corral 2>&1; cat \(path)/data/\(other.id) 2>/dev/null || echo cat-refused; "
                + "grep -c corral-store-attack /proc/self/mountinfo; cat in; ls -a /box; "
                + "find / -xdev -name '\(other.id)' 2>/dev/null | head -1; echo end"
            let report = try await JobRunner(fileStore: store).run(try JobSpec.parse(Data("""
            {"processes": [{"args": \(shell(look)), "isolate": true, "limits": {"wallTime": 20}}],
             "files": [{"path": "in", "fileId": "\(mine.id)"}]}
            """.utf8)))
            let output = report.processes[0].report.stdout?.text ?? ""
            #expect(output.contains("mine\n"), "\(output)")
            #expect(!output.contains("someone else's"), "\(output)")
            #expect(output.contains("No such file") && output.contains("cat-refused"), "\(output)")
            #expect(!output.contains(other.id.hex), "\(output)")
            #expect(output.hasSuffix("end\n"), "\(output)")
            // Not isolated (as nobody), the path is known but the store is 0700 root's.
            let host = try await JobRunner(fileStore: store).run(try JobSpec.parse(Data("""
            {"processes": [{"args": \(shell("cat \(path)/data/\(other.id) || echo refused; ls \(path) || echo refused"))}]}
            """.utf8)))
            #expect(host.processes[0].report.stdout?.text == "refused\nrefused\n")
        }
    }
}
}
