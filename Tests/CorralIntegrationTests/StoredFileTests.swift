import Corral
import CorralTestSupport
import Foundation
import Testing

/// A fresh file store under /tmp for `body`, removed after.
func withStore<T>(maxBytes: UInt64 = 64 << 20, _ body: (FileStore, String) async throws -> T) async throws -> T {
    let path = "/tmp/corral-store-it-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: path) }
    let store = try FileStore(directory: path, maxBytes: maxBytes)
    return try await body(store, path)
}

extension IntegrationTests {
@Suite("Stored files in jobs")
struct StoredFileTests {
    func runJob(_ json: String, store: FileStore) async throws -> JobReport {
        let report = try await JobRunner(fileStore: store).run(try JobSpec.parse(Data(json.utf8)))
        #expect(CgroupCheck.busyRunCgroups().isEmpty)
        return report
    }

    @Test("a stored file is placed for the program to read, read-only; stdin can be that file")
    func placed() async throws {
        try await withStore { store, _ in
            let stored = try store.put(Array("hello from the store\n".utf8))
            let report = try await runJob("""
            {"processes": [{"args": ["/bin/sh", "-c", "cat in.txt; cat; stat -c '%a %u' in.txt; echo x >> in.txt || echo refused"],
                            "stdin": "in.txt"}],
             "files": [{"path": "in.txt", "fileId": "\(stored.id)"}]}
            """, store: store)
            #expect(report.status == .ok)
            let lines = (report.processes[0].report.stdout?.text ?? "").split(separator: "\n").map(String.init)
            #expect(lines.prefix(2) == ["hello from the store", "hello from the store"])
            #expect(lines.count == 4 && lines[2].hasPrefix("444 "), "\(lines)")
            #expect(lines.last == "refused" || geteuid() != 0, "\(lines)")
            // The store's copy is what it was.
            let (fd, size) = try store.open(stored.id)
            var buffer = [UInt8](repeating: 0, count: 100)
            #expect(read(fd, &buffer, 100) == Int(size))
            close(fd)
            #expect(Array(buffer.prefix(Int(size))) == Array("hello from the store\n".utf8))
        }
    }

    @Test("the executable bit round trip: collect store:true, then files fileId executable")
    func executableRoundTrip() async throws {
        try await withStore { store, _ in
            let build = try await runJob("""
            {"processes": [{"args": ["/bin/sh", "-c", "printf '#!/bin/sh\\\\necho built-and-ran\\\\n' > prog; chmod 755 prog; echo data > plain"]}],
             "collect": [{"path": "prog", "store": true}, {"path": "plain", "store": true}]}
            """, store: store)
            #expect(build.status == .ok)
            let program = build.files[0]
            let plain = build.files[1]
            #expect(program.error == nil && program.content == nil)
            #expect(program.executable == true && plain.executable == false)
            #expect(program.size == 29 && plain.size == 5)
            #expect(plain.fileId == FileId.of(Array("data\n".utf8)))
            let id = try #require(program.fileId)
            let json = String(decoding: ReportJSON.encode(build), as: UTF8.self)
            #expect(json.contains("\"executable\":true,\"fileId\":\"\(id)\""), "\(json)")
            let run = try await runJob("""
            {"processes": [{"args": ["./prog"]}], "files": [{"path": "prog", "fileId": "\(id)", "executable": true}]}
            """, store: store)
            #expect(run.status == .ok)
            #expect(run.processes[0].report.stdout?.text == "built-and-ran\n")
        }
    }

    @Test("a job naming an unknown file id fails before any process starts")
    func unknownId() async throws {
        try await withStore { store, _ in
            let marker = "/tmp/corral-store-marker-\(UUID().uuidString)"
            let spec = try JobSpec.parse(Data("""
            {"processes": [{"args": ["/bin/touch", "\(marker)"]}],
             "files": [{"path": "a", "content": "x"}, {"path": "in", "fileId": "\(FileId.of([9, 9, 9]))"}]}
            """.utf8))
            await #expect { try await JobRunner(fileStore: store).run(spec) } throws: { error in
                guard let error = error as? CorralError else { return false }
                return error.kind == .invalidJob && error.message.contains("files[1].fileId") && error.message.contains("no file")
            }
            await #expect(throws: CorralError.self) { try await JobRunner().run(spec) }
            #expect(!FileManager.default.fileExists(atPath: marker))
        }
    }

    @Test("a file a running job uses is not evicted, however much is uploaded past the bound")
    func leasedWhileRunning() async throws {
        try await withStore(maxBytes: 300_000) { store, _ in
            let held = try store.put([UInt8](repeating: 65, count: 100_000))
            let spec = try JobSpec.parse(Data("""
            {"processes": [{"args": ["/bin/sh", "-c", "sleep 1; wc -c < in"]}], "files": [{"path": "in", "fileId": "\(held.id)"}]}
            """.utf8))
            let runner = JobRunner(fileStore: store)
            let running = Task { try await runner.run(spec) }
            try await Task.sleep(for: .milliseconds(300))
            for seed in 0..<6 { _ = try store.put([UInt8](repeating: UInt8(seed), count: 100_000)) }
            #expect(store.size(of: held.id) == 100_000)
            #expect(store.statistics.bytes <= 300_000)
            #expect { try store.put([UInt8](repeating: 1, count: 250_000)) } throws: { ($0 as? FileStoreError)?.kind == .full }
            let report = try await running.value
            #expect((report.processes[0].report.stdout?.text ?? "").trimmingCharacters(in: .whitespacesAndNewlines) == "100000")
            // Released at the end: now it can go.
            _ = try store.put([UInt8](repeating: 1, count: 250_000))
            #expect(store.size(of: held.id) == nil)
        }
    }

    @Test("collect store:true of a file over max is not stored")
    func collectOverMax() async throws {
        try await withStore { store, _ in
            let report = try await runJob("""
            {"processes": [{"args": ["/bin/sh", "-c", "head -c 5000 /dev/zero > big"]}], "collect": [{"path": "big", "store": true, "max": 4000}]}
            """, store: store)
            #expect(report.files[0].fileId == nil)
            #expect(report.files[0].error?.contains("not stored") == true)
            #expect(store.statistics.files == 0)
        }
    }
}
}
