import Corral
import CorralTestSupport
import Foundation
import Testing

/// A stored test input for a program that must not get the store's own file (one that is not
/// isolated, or runs as root) is a sealed memfd copy the store makes once and shares between
/// runs, each run getting a new read-only open of it. Shared memory given to programs: every
/// attack a program can make on its stdin must leave the next run (of any job) and the store
/// seeing the original bytes, runs must never share an offset, and the copies must stay
/// bounded and go when their file leaves the store.
extension SecurityTests {
@Suite("Sealed stored inputs")
struct SealedInputAttackTests {
    func withStore<T>(sealedCopyBytes: UInt64 = FileStore.defaultSealedCopyBytes, maxBytes: UInt64 = 16 << 20,
                      _ body: (FileStore, String) async throws -> T) async throws -> T {
        let path = "/tmp/corral-sealed-input-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try await body(try FileStore(directory: path, maxBytes: maxBytes, sealedCopyBytes: sealedCopyBytes), path)
    }

    func bytes(_ count: Int, seed: UInt8) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) | 0x20 }
    }

    func readAll(_ fd: Int32) -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { return result }
            result += buffer[0..<count]
        }
    }

    /// Equal, without putting megabytes into a failure's message.
    static func same(_ a: [UInt8], _ b: [UInt8]) -> Bool { a == b }

    func steps(_ store: FileStore, _ json: String, user: RunUser? = nil) async throws -> StepsReport {
        guard case .steps(var spec) = try JobDocument.parse(Data(json.utf8)) else { throw FixtureError("not a job of steps") }
        if let user { spec.steps[0].job.processes[0].user = user }
        return try await StepsRunner(jobs: JobRunner(fileStore: store)).run(spec)
    }

    /// Red team: the program reopens /proc/self/fd/0 read-write and for appending, writes,
    /// truncates, grows, fallocates, maps it shared and writable, chmods and links it, and
    /// leaves its offset at the end. As nobody (the default) and as root (asked for in the
    /// library: the same user as Corral, which may chmod the shared copy).
    @Test("a program that is not isolated cannot change the shared sealed copy of its stored stdin: the next runs and the store see the original bytes",
          .enabled(if: isRoot, Comment(rawValue: needsRoot)), arguments: [false, true])
    func plainProgramTampersWithSharedStdin(asRoot: Bool) async throws {
        try await withStore { store, path in
            let content = bytes(100_000, seed: 7)
            let stored = try store.put(content)
            let storeFile = path + "/data/" + stored.id.hex
            let tamper = try Fixtures.path("stdin_tamper")
            let test = #"{"stdin": {"fileId": "\#(stored.id)"}, "answer": {"fileId": "\#(stored.id)"}}"#
            let json = """
            {"steps": [{"name": "t", "processes": [{"args": [\(jsonString(tamper))], "limits": {"wallTime": 10}}],
              "checker": "exact", "tests": [\(test), \(test), \(test)]}]}
            """
            for round in 0..<2 {
                let report = try await steps(store, json, user: asRoot ? RunUser(uid: 0, gid: 0) : nil)
                let tests = report.steps[0].tests
                let stderrs = tests.map { $0.processes[0].report.stderr?.text ?? "" }
                #expect(tests.map(\.verdict) == [.accepted, .accepted, .accepted], "round \(round): \(tests.map(\.comment)) \(stderrs)")
                for stderr in stderrs {
                    #expect(!stderr.contains("WORKED"), "round \(round): \(stderr)")
                    // Every run starts from a copy as it was made (a chmod of the last one was seen and it was made again).
                    #expect(stderr.contains("mode 444\n") && stderr.contains("link /memfd:corral-stored"), "round \(round): \(stderr)")
                    #expect(!stderr.contains(path) && !stderr.contains(stored.id.hex), "the store's path leaked: \(stderr)")
                    if !asRoot { #expect(!stderr.contains("chmodded") && !stderr.contains("reopened read-write"), "\(stderr)") }
                }
                if !asRoot {
                    // One copy shared by every run (nobody could change it): the same inode each time.
                    let inodes = Set(stderrs.compactMap { $0.split(separator: "\n").first { $0.hasPrefix("inode ") } })
                    #expect(inodes.count == 1, "\(inodes)")
                }
            }
            #expect(store.sealedCopies.files == 1 && store.sealedCopies.bytes == UInt64(content.count))
            #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: storeFile))) == content)
            var info = stat()
            #expect(stat(storeFile, &info) == 0 && info.st_mode & 0o7777 == 0o444 && info.st_nlink == 1 && info.st_uid == 0)
            // The store's own check, from Corral's side: a new open reads the original bytes.
            let fd = try store.openSealedInput(stored.id)
            defer { close(fd) }
            #expect(Self.same(readAll(fd), content), "the bytes read differ")
        }
    }

    /// Red team, `files[]` by `fileId` for a program that is not isolated, as nobody: the placed
    /// file is a hard link to the store's own file (root's, 0444). The program tries to write
    /// it (directly and through a read-write reopen of an open descriptor), append, chmod,
    /// truncate, replace it, link it out of its directory, move it out (rename needs no right
    /// on the file itself) and write the moved name, and to find the store from it. None of
    /// that may change the store's bytes, mode or owner, nor reach another stored file.
    @Test("a program that is not isolated, given a stored file as a hard link, cannot change the store's file or reach the store through it",
          .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func plainProgramAttacksLinkedStoreFile() async throws {
        try await withStore { store, path in
            let content = "the store's bytes\n"
            let stored = try store.put(Array(content.utf8))
            let other = try store.put(Array("someone else's\n".utf8))
            let storeFile = path + "/data/" + stored.id.hex
            let out = "/tmp/corral-moved-\(UUID().uuidString)"
            defer { unlink(out); unlink(out + ".ln") }
            let attack = "exec 3<in; echo pwned 2>/dev/null >/proc/self/fd/3 && echo WORKED-reopen; "
                + "echo pwned 2>/dev/null >in && echo WORKED-write; echo pwned 2>/dev/null >>in && echo WORKED-append; "
                + "chmod 666 in 2>/dev/null && echo WORKED-chmod; truncate -s 0 in 2>/dev/null && echo WORKED-truncate; "
                + "ls \"$(dirname \"$(readlink /proc/self/fd/3)\")\" | grep -q \(other.id.hex) && echo WORKED-listed; "
                + "cat \(path)/data/\(other.id.hex) 2>/dev/null && echo WORKED-other; "
                + "ln in \(out).ln 2>/dev/null && echo linked-out; mv in \(out) 2>/dev/null && echo moved-out; "
                + "echo pwned 2>/dev/null >\(out) && echo WORKED-write-moved; chmod 666 \(out) 2>/dev/null && echo WORKED-chmod-moved; "
                + "cat <&3"
            let report = try await JobRunner(fileStore: store).run(try JobSpec.parse(Data("""
            {"processes": [{"args": \(shell(attack)), "limits": {"wallTime": 10}}], "files": [{"path": "in", "fileId": "\(stored.id)"}]}
            """.utf8)))
            let output = report.processes[0].report.stdout?.text ?? ""
            #expect(!output.contains("WORKED") && output.hasSuffix(content), "\(output)")
            #expect(try String(contentsOfFile: storeFile, encoding: .utf8) == content)
            var info = stat()
            #expect(stat(storeFile, &info) == 0 && info.st_mode & 0o7777 == 0o444 && info.st_uid == 0)
            // A name moved out is the store's file, still root's and read-only: it keeps the
            // inode alive past an eviction, as any file the program wrote itself would keep disk.
            if output.contains("moved-out") {
                #expect(try String(contentsOfFile: out, encoding: .utf8) == content)
            }
        }
    }

    @Test("two runs given the same stored stdin at once each read the whole of it from the start (no shared offset)",
          .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func parallelRunsReadFromTheStart() async throws {
        try await withStore { store, _ in
            let content = bytes(96 << 10, seed: 3)
            let stored = try store.put(content)
            // In Corral: two opens are two descriptions of one sealed copy.
            let first = try store.openSealedInput(stored.id), second = try store.openSealedInput(stored.id)
            defer { close(first); close(second) }
            var a = stat(), b = stat()
            #expect(fstat(first, &a) == 0 && fstat(second, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
            #expect(Self.same(readAll(first), content), "the bytes read differ")
            #expect(lseek(second, 0, SEEK_CUR) == 0)
            #expect(Self.same(readAll(second), content), "the bytes read differ")
            // Two jobs whose programs read slowly, at the same time.
            let slow = try Fixtures.path("stdin_tamper")
            let json = """
            {"steps": [{"name": "t", "processes": [{"args": [\(jsonString(slow)), "slow"], "limits": {"wallTime": 20}}],
              "checker": "exact", "tests": [{"stdin": {"fileId": "\(stored.id)"}, "answer": {"fileId": "\(stored.id)"}}]}]}
            """
            let started = Date()
            async let one = steps(store, json)
            async let two = steps(store, json)
            let reports = try await [one, two]
            for report in reports {
                let test = try #require(report.steps.first?.tests.first)
                #expect(test.verdict == .accepted, "\(test.comment)")
            }
            let spans = reports.compactMap { $0.steps.first?.tests.first?.processes.first?.report.wallTime }
            // One after the other, the two jobs would take longer than their two runs (six pauses of 50 ms each).
            let elapsed = Date().timeIntervalSince(started)
            #expect(spans.count == 2 && elapsed < spans.reduce(0, +), "the runs did not overlap: \(spans), \(elapsed) s in all")
        }
    }

    @Test("the sealed copies are bounded (least recently used go first; a file larger than the bound is not kept) and released with the store")
    func copiesAreBoundedAndReleased() async throws {
        let mib = 1 << 20
        var inode: (dev_t, ino_t)?
        try await withStore(sealedCopyBytes: 3 << 20) { store, _ in
            let files = try (0..<4).map { try store.put(bytes(mib, seed: UInt8($0))) }
            let big = try store.put(bytes(4 * mib, seed: 9))
            for (index, file) in files.enumerated() {
                let fd = try store.openSealedInput(file.id)
                #expect(Self.same(readAll(fd), bytes(mib, seed: UInt8(index))), "the bytes read differ")
                if index == 3 {
                    var info = stat()
                    #expect(fstat(fd, &info) == 0)
                    inode = (info.st_dev, info.st_ino)
                }
                close(fd)
                #expect(store.sealedCopies.bytes <= 3 << 20)
            }
            #expect(store.sealedCopies.files == 3 && store.sealedCopies.bytes == 3 << 20)
            let fd = try store.openSealedInput(big.id)
            #expect(Self.same(readAll(fd), bytes(4 * mib, seed: 9)), "the bytes read differ")
            close(fd)
            #expect(store.sealedCopies.files == 3 && store.sealedCopies.bytes == 3 << 20)
            // The oldest (files[0]) went: a new open makes it again and evicts files[1].
            let again = try store.openSealedInput(files[0].id)
            #expect(Self.same(readAll(again), bytes(mib, seed: 0)), "the bytes read differ")
            close(again)
            #expect(store.sealedCopies.files == 3)
        }
        // The store is gone: no descriptor of this process still holds a copy's memory.
        let (device, number) = try #require(inode)
        let held = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").filter { name in
            guard let fd = Int32(name) else { return false }
            var info = stat()
            return fstat(fd, &info) == 0 && info.st_dev == device && info.st_ino == number
        }
        #expect(held.isEmpty, "descriptors \(held) still hold a sealed copy")
    }

    /// Red team (redteam2): a client stores more distinct test inputs than the process may open
    /// files and has a plain (not isolated) run read each as its stdin. The copies were kept up
    /// to 1024 descriptors, the whole of the usual soft limit: a `--no-isolate` server then
    /// failed every `accept` and every run with EMFILE. At most an eighth of the soft limit is
    /// kept now; the oldest copies go, and an input whose copy went is copied again.
    @Test("a client storing many distinct inputs cannot make the sealed copies take the process's descriptors")
    func copiesLeaveDescriptors() async throws {
        var files = rlimit()
        #expect(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &files) == 0)
        let soft = files.rlim_cur == rlim_t.max ? 1 << 20 : Int(files.rlim_cur)
        let bound = max(8, min(1024, soft / 8))
        try await withStore(maxBytes: 64 << 20) { store, _ in
            let stored = try (0..<(bound + 40)).map { try store.put(Array("input \($0)\n".utf8)) }
            for (index, file) in stored.enumerated() {
                let fd = try store.openSealedInput(file.id)
                #expect(readAll(fd) == Array("input \(index)\n".utf8))
                close(fd)
                #expect(store.sealedCopies.files <= bound, "\(store.sealedCopies.files) copies kept, more than \(bound) (soft limit \(soft))")
            }
            #expect(store.sealedCopies.files == bound)
            // The first input's copy went first; it is made again, with the same bytes.
            let fd = try store.openSealedInput(stored[0].id)
            #expect(readAll(fd) == Array("input 0\n".utf8))
            close(fd)
            #expect(store.sealedCopies.files == bound)
        }
    }

    /// The same attack on a process with few descriptors to spare: `corral run --spec` with a
    /// soft limit of 200 open files and a step of 240 tests of `/bin/cat`, each with a stdin of
    /// its own from the store. Keeping 1024 copies, the run failed with EMFILE near the 190th
    /// test; with an eighth of the limit kept (25), every test passes.
    @Test("a job of many distinct stored inputs runs to the end under a low limit of open files",
          .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func manyInputsUnderLowFileLimit() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let storePath = tmp.path + "/store"
        let tests = 240
        var ids: [String] = []
        do {
            let store = try FileStore(directory: storePath, maxBytes: 64 << 20)
            ids = try (0..<tests).map { try store.put(Array("line \($0)\n".utf8)).id.description }
        }
        let entries = ids.map { #"{"stdin": {"fileId": "\#($0)"}, "answer": {"fileId": "\#($0)"}}"# }
        let spec = #"{"steps": [{"name": "t", "processes": [{"args": ["/bin/cat"]}], "checker": "exact", "tests": [\#(entries.joined(separator: ", "))]}]}"#
        try spec.write(toFile: tmp.path + "/spec.json", atomically: true, encoding: .utf8)
        let result = try Spawn.run("/bin/sh", ["-c", #"ulimit -Sn 200 && exec "$0" run --quiet --file-store "$1" --spec "$2""#,
                                               corralBinary, storePath, tmp.path + "/spec.json"])
        let report = (try? JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8))) as? [String: Any]
        let summary = (report?["steps"] as? [[String: Any]])?.first?["summary"] as? [String: Any]
        #expect(result.status == 0 && summary?["passed"] as? Int == tests,
                "exit \(result.status), \(summary.map { "\($0)" } ?? "no summary"): \(result.standardError.suffix(600))")
    }

    @Test("a file removed or evicted from the store is not served from its sealed copy; the same bytes stored again are")
    func removedFileIsNotServed() async throws {
        try await withStore(maxBytes: 2 << 20) { store, _ in
            let content = bytes(1 << 20, seed: 1)
            let stored = try store.put(content)
            close(try store.openSealedInput(stored.id))
            #expect(store.sealedCopies.files == 1)
            try store.remove(stored.id)
            #expect(store.sealedCopies.files == 0 && store.sealedCopies.bytes == 0)
            #expect { try store.openSealedInput(stored.id) } throws: { ($0 as? FileStoreError)?.kind == .notFound }
            // The same bytes again: the same id, served.
            #expect(try store.put(content).id == stored.id)
            let fd = try store.openSealedInput(stored.id)
            #expect(Self.same(readAll(fd), content), "the bytes read differ")
            close(fd)
            // Evicted to make room for another upload: its copy goes with it.
            _ = try store.put(bytes(1536 << 10, seed: 2))
            #expect(store.size(of: stored.id) == nil)
            #expect(store.sealedCopies.files == 0)
            #expect { try store.openSealedInput(stored.id) } throws: { ($0 as? FileStoreError)?.kind == .notFound }
        }
    }
}
}
