import Foundation
import Testing
import Corral

/// A fresh store directory under /tmp, removed after `body`.
func withStoreDirectory<T>(_ body: (String) async throws -> T) async rethrows -> T {
    let path = "/tmp/corral-store-test-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

func bytes(_ count: Int, _ seed: UInt8) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31) ^ seed }
}

@Suite("File store")
struct FileStoreTests {
    @Test("ids are the SHA-256 of the content, as 64 lowercase hex digits")
    func sha256() {
        #expect(FileId.of([]).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(FileId.of(Array("abc".utf8)).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        // Two blocks with padding in the second (56 bytes).
        #expect(FileId.of(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)).hex
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        for bad in ["", "../etc/passwd", String(repeating: "A", count: 64), String(repeating: "a", count: 63),
                    String(repeating: "a", count: 63) + "/", String(repeating: "g", count: 64), String(repeating: "a", count: 65)] {
            #expect(throws: FileId.Invalid.self) { try FileId(bad) }
        }
    }

    @Test("the same bytes stored twice are one file under one id; read back intact")
    func dedupe() async throws {
        try await withStoreDirectory { path in
            let store = try FileStore(directory: path, maxBytes: 1 << 20)
            let content = bytes(100_000, 7)
            let first = try store.put(content)
            let second = try store.put(content)
            #expect(first.id == FileId.of(content))
            #expect(first.created && !second.created)
            #expect(first.id == second.id && first.size == 100_000)
            #expect(store.statistics.files == 1 && store.statistics.bytes == 100_000)
            #expect(try FileManager.default.contentsOfDirectory(atPath: path + "/data") == [first.id.hex])
            #expect(try FileManager.default.contentsOfDirectory(atPath: path + "/tmp").isEmpty)
            #expect(try Data(contentsOf: URL(fileURLWithPath: path + "/data/" + first.id.hex)) == Data(content))
            let attributes = try FileManager.default.attributesOfItem(atPath: path + "/data/" + first.id.hex)
            #expect((attributes[.posixPermissions] as? Int) == 0o444)
            let directory = try FileManager.default.attributesOfItem(atPath: path)
            #expect((directory[.posixPermissions] as? Int) == 0o700)
        }
    }

    @Test("concurrent uploads of the same bytes: one id, one copy, nothing left in tmp")
    func concurrentSameBytes() async throws {
        try await withStoreDirectory { path in
            let store = try FileStore(directory: path, maxBytes: 64 << 20)
            let content = bytes(3 << 20, 9)
            let ids = try await withThrowingTaskGroup(of: (FileId, Bool).self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        let upload = try await store.startUpload()
                        // In chunks, so the uploads interleave.
                        for start in stride(from: 0, to: content.count, by: 256 << 10) {
                            try await upload.append(Array(content[start..<min(content.count, start + (256 << 10))]))
                        }
                        let stored = try await upload.finish()
                        return (stored.id, stored.created)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(Set(ids.map(\.0)) == [FileId.of(content)])
            #expect(ids.filter(\.1).count == 1)
            #expect(store.statistics.files == 1 && store.statistics.bytes == UInt64(content.count) && store.statistics.reservedBytes == 0)
            #expect(try FileManager.default.contentsOfDirectory(atPath: path + "/data").count == 1)
            #expect(try FileManager.default.contentsOfDirectory(atPath: path + "/tmp").isEmpty)
        }
    }

    @Test("past the bound the least recently used unleased file goes; a leased one stays; never above the bound")
    func boundAndLeases() async throws {
        try await withStoreDirectory { path in
            let store = try FileStore(directory: path, maxBytes: 300_000)
            let a = try store.put(bytes(100_000, 1)).id
            let b = try store.put(bytes(100_000, 2)).id
            let c = try store.put(bytes(100_000, 3)).id
            // a is the oldest, but a job holds it; b is then the least recently used.
            let lease = try store.acquire([a])
            let d = try store.put(bytes(100_000, 4)).id
            #expect(store.size(of: a) != nil && store.size(of: b) == nil && store.size(of: c) != nil && store.size(of: d) != nil)
            #expect(store.statistics.bytes <= 300_000 && store.statistics.evictions == 1)
            #expect(!FileManager.default.fileExists(atPath: path + "/data/" + b.hex))
            // Reading c makes d the least recently used.
            let (fd, _) = try store.open(c)
            close(fd)
            _ = try store.put(bytes(100_000, 5))
            #expect(store.size(of: d) == nil && store.size(of: c) != nil && store.size(of: a) != nil)
            // Nothing can make room for 250 KB while a (100 KB) is held: refused, nothing evicted.
            let before = store.statistics
            #expect { try store.put(bytes(250_000, 6)) } throws: { ($0 as? FileStoreError)?.kind == .full }
            #expect(store.statistics.files == before.files && store.statistics.reservedBytes == 0)
            #expect(try FileManager.default.contentsOfDirectory(atPath: path + "/tmp").isEmpty)
            // A held file cannot be removed; once released it can, and then room is had.
            #expect { try store.remove(a) } throws: { ($0 as? FileStoreError)?.kind == .inUse }
            lease.release()
            lease.release()
            _ = try store.put(bytes(250_000, 6))
            #expect(store.size(of: a) == nil)
            #expect(store.statistics.bytes <= 300_000)
        }
    }

    @Test("a file over the per-file cap is refused and leaves nothing behind; an unknown id is not found")
    func caps() async throws {
        try await withStoreDirectory { path in
            let store = try FileStore(directory: path, maxBytes: 1 << 20, maxFileBytes: 1000)
            #expect { try store.put(bytes(1001, 1)) } throws: { ($0 as? FileStoreError)?.kind == .tooLarge }
            #expect(store.statistics.files == 0 && store.statistics.reservedBytes == 0)
            #expect(try FileManager.default.contentsOfDirectory(atPath: path + "/tmp").isEmpty)
            let unknown = FileId.of([1, 2, 3])
            #expect { try store.open(unknown) } throws: { ($0 as? FileStoreError)?.kind == .notFound }
            #expect { try store.acquire([unknown]) } throws: { ($0 as? FileStoreError)?.kind == .notFound }
            #expect { try store.remove(unknown) } throws: { ($0 as? FileStoreError)?.kind == .notFound }
        }
    }

    @Test("a restart keeps the files and their order of use; a half-done upload is removed")
    func restart() async throws {
        try await withStoreDirectory { path in
            var ids: [FileId] = []
            do {
                // Room for the abandoned upload too (the bound counts uploads in flight).
                let store = try FileStore(directory: path, maxBytes: 400_000)
                for seed in 1...3 { ids.append(try store.put(bytes(100_000, UInt8(seed))).id); usleep(20_000) }
                // The first becomes the most recently used.
                let (fd, _) = try store.open(ids[0])
                close(fd)
                let abandoned = try store.upload()
                try abandoned.write([UInt8](repeating: 1, count: 10))
                // Dropped with the process: left in tmp as a crash would leave it.
                _ = Unmanaged.passRetained(abandoned)
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: path + "/tmp").count == 1)
            let store = try FileStore(directory: path, maxBytes: 300_000)
            #expect(try FileManager.default.contentsOfDirectory(atPath: path + "/tmp").isEmpty)
            #expect(store.statistics.files == 3 && store.statistics.bytes == 300_000)
            let (fd, size) = try store.open(ids[2])
            var buffer = [UInt8](repeating: 0, count: 100_000)
            #expect(read(fd, &buffer, buffer.count) == 100_000)
            close(fd)
            #expect(size == 100_000 && buffer == bytes(100_000, 3))
            // ids[1] is now the least recently used: the next upload evicts it.
            _ = try store.put(bytes(100_000, 9))
            #expect(store.size(of: ids[1]) == nil && store.size(of: ids[0]) != nil && store.size(of: ids[2]) != nil)
        }
    }
}
