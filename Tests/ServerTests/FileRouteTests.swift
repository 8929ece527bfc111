import Corral
import CorralServer
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

/// A configuration with a file store of its own under /tmp.
func storeConfiguration(_ directory: String, maxBytes: UInt64 = 1 << 20, maxFileBytes: UInt64 = 512 << 10,
                        _ change: (inout ServerConfiguration) -> Void = { _ in }) -> ServerConfiguration {
    testConfiguration {
        $0.fileStore = FileStoreSettings(directory: directory, maxBytes: maxBytes, maxFileBytes: maxFileBytes)
        change(&$0)
    }
}

extension ServerHarness {
    func files(_ method: HTTPRequest.Method, _ path: String, body: [UInt8]? = nil, token: String? = nil) async throws -> Answer {
        var headers: HTTPFields = [:]
        if let token { headers[.authorization] = "Bearer \(token)" }
        let response = try await client.executeRequest(uri: path, method: method, headers: headers, body: body.map { ByteBuffer(bytes: $0) })
        var names: [String: String] = [:]
        for field in response.headers { names[field.name.canonicalName] = field.value }
        return Answer(status: Int(response.status.code), headers: names, body: Data(buffer: response.body))
    }
}

@Suite("File routes")
struct FileRouteTests {
    let document: OpenAPIDocument

    init() throws {
        document = try OpenAPIDocument.load()
    }

    /// The answer's JSON body matches the OpenAPI document's schema for it.
    func expectDocumented(_ answer: Answer, _ method: String, _ path: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let schema = try document.responseSchema(method, path, status: answer.status)
        let problems = document.validate(try JSONSerialization.jsonObject(with: answer.body), against: schema)
        #expect(problems.isEmpty, "\(method) \(path) \(answer.status): \(problems)", sourceLocation: sourceLocation)
    }

    func withStoreDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
        let path = "/tmp/corral-store-server-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try await body(path)
    }

    @Test("POST stores (201 {id, size}, the same id twice), GET and HEAD read, DELETE removes (204), then 404")
    func roundTrip() async throws {
        try await withStoreDirectory { directory in
            try await withServer(storeConfiguration(directory)) { server in
                let content = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
                let created = try await server.files(.post, "/v1/files", body: content)
                #expect(created.status == 201, "\(created.text)")
                let id = try #require(created.json["id"] as? String)
                #expect(id == FileId.of(content).hex)
                #expect(created.json["size"] as? Int == 300_000)
                try expectDocumented(created, "POST", "/v1/files")
                let again = try await server.files(.post, "/v1/files", body: content)
                #expect(again.status == 201 && again.json["id"] as? String == id)
                let read = try await server.files(.get, "/v1/files/\(id)")
                #expect(read.status == 200 && read.body == Data(content))
                let head = try await server.files(.head, "/v1/files/\(id)")
                #expect(head.status == 200 && head.body.isEmpty && head.headers["content-length"] == "300000", "\(head.headers)")
                let metrics = try await server.metrics()
                #expect(metrics["corral_file_store_files"] == 1 && metrics["corral_file_store_bytes"] == 300_000, "\(metrics.filter { $0.key.contains("store") })")
                let deleted = try await server.files(.delete, "/v1/files/\(id)")
                #expect(deleted.status == 204)
                for method in [HTTPRequest.Method.get, .delete] {
                    let gone = try await server.files(method, "/v1/files/\(id)")
                    #expect(gone.status == 404 && (gone.json["error"] as? String)?.contains("no file") == true, "\(gone.text)")
                    try expectDocumented(gone, method.rawValue, "/v1/files/{id}")
                }
                let empty = try await server.files(.post, "/v1/files", body: [])
                #expect(empty.status == 201 && empty.json["size"] as? Int == 0 && empty.json["id"] as? String == FileId.of([]).hex)
            }
        }
    }

    @Test("an upload streams to disk: 8 MiB through a server whose bodies may take 1 MiB of memory in all")
    func streams() async throws {
        try await withStoreDirectory { directory in
            let configuration = storeConfiguration(directory, maxBytes: 64 << 20, maxFileBytes: 32 << 20) {
                $0.maxBody = 1 << 20
                $0.maxBodiesInFlight = 1 << 20
            }
            try await withServer(configuration) { server in
                let content = [UInt8](repeating: 0x5A, count: 8 << 20)
                let created = try await server.files(.post, "/v1/files", body: content)
                #expect(created.status == 201, "\(created.text)")
                #expect(created.json["id"] as? String == FileId.of(content).hex)
                let read = try await server.files(.get, "/v1/files/\(FileId.of(content))")
                #expect(read.status == 200 && read.body.count == content.count && FileId.of([UInt8](read.body)) == FileId.of(content))
                #expect(server.server.fileStore?.statistics.reservedBytes == 0)
            }
        }
    }

    @Test("a malformed id is 400, with JSON, before the store is asked")
    func malformedIds() async throws {
        try await withStoreDirectory { directory in
            try await withServer(storeConfiguration(directory)) { server in
                for id in ["abc", String(repeating: "A", count: 64), String(repeating: "a", count: 65), "..%2F..%2Fetc%2Fpasswd",
                           String(repeating: "a", count: 63) + "%2F"] {
                    let answer = try await server.files(.get, "/v1/files/\(id)")
                    #expect(answer.status == 400 || answer.status == 404, "\(id): \(answer.status)")
                    #expect(answer.json["error"] is String, "\(answer.text)")
                    #expect(!answer.text.contains("root:"))
                }
                let malformed = try await server.files(.get, "/v1/files/abc")
                #expect(malformed.status == 400)
                try expectDocumented(malformed, "GET", "/v1/files/{id}")
            }
        }
    }

    @Test("the bound: past it the least recently used goes; what cannot fit is 507; over the per-file cap is 413")
    func bound() async throws {
        try await withStoreDirectory { directory in
            try await withServer(storeConfiguration(directory, maxBytes: 600_000, maxFileBytes: 400_000)) { server in
                var ids: [String] = []
                for seed in 0..<3 {
                    let answer = try await server.files(.post, "/v1/files", body: [UInt8](repeating: UInt8(seed), count: 200_000))
                    ids.append(answer.json["id"] as? String ?? "")
                }
                #expect(try await server.files(.get, "/v1/files/\(ids[0])").status == 200) // ids[1] is now the oldest
                let fourth = try await server.files(.post, "/v1/files", body: [UInt8](repeating: 9, count: 200_000))
                #expect(fourth.status == 201)
                #expect(try await server.files(.head, "/v1/files/\(ids[1])").status == 404)
                #expect(try await server.files(.head, "/v1/files/\(ids[0])").status == 200)
                let metrics = try await server.metrics()
                #expect(metrics["corral_file_store_evictions_total"] == 1 && metrics["corral_file_store_bytes"] == 600_000)
                let tooLarge = try await server.files(.post, "/v1/files", body: [UInt8](repeating: 1, count: 400_001))
                #expect(tooLarge.status == 413 && tooLarge.json["error"] is String)
                try expectDocumented(tooLarge, "POST", "/v1/files")
                #expect(server.server.fileStore?.statistics.bytes ?? .max <= 600_000)
            }
            // A job holding every file: nothing can be evicted, an upload is 507.
            try await withServer(storeConfiguration(directory, maxBytes: 600_000, maxFileBytes: 400_000)) { server in
                let store = try #require(server.server.fileStore)
                #expect(store.statistics.files == 3)
                let ids = try FileManager.default.contentsOfDirectory(atPath: directory + "/data").map { try FileId($0) }
                let lease = try store.acquire(ids)
                let full = try await server.files(.post, "/v1/files", body: [UInt8](repeating: 7, count: 100))
                #expect(full.status == 507, "\(full.text)")
                #expect((full.json["error"] as? String)?.contains("full") == true)
                try expectDocumented(full, "POST", "/v1/files")
                let busy = try await server.files(.delete, "/v1/files/\(ids[0])")
                #expect(busy.status == 409)
                try expectDocumented(busy, "DELETE", "/v1/files/{id}")
                lease.release()
                #expect(try await server.files(.post, "/v1/files", body: [UInt8](repeating: 7, count: 100)).status == 201)
            }
        }
    }

    @Test("the token guards the file routes; without a store they say so")
    func tokenAndNoStore() async throws {
        try await withStoreDirectory { directory in
            try await withServer(storeConfiguration(directory) { $0.token = "sekrit" }) { server in
                let postWithout = try await server.files(.post, "/v1/files", body: [1])
                let getWithout = try await server.files(.get, "/v1/files/\(FileId.of([1]))")
                let post = try await server.files(.post, "/v1/files", body: [1], token: "sekrit")
                let get = try await server.files(.get, "/v1/files/\(FileId.of([1]))", token: "sekrit")
                #expect(postWithout.status == 401 && getWithout.status == 401)
                #expect(post.status == 201 && get.body == Data([1]))
            }
        }
        try await withServer { server in
            let answer = try await server.files(.post, "/v1/files", body: [1])
            #expect(answer.status == 404 && (answer.json["error"] as? String)?.contains("no file store") == true)
        }
    }

    @Test("compile once, run by id: collect store:true then files fileId through /v1/run; an unknown id is 400")
    func jobsThroughTheStore() async throws {
        try await withStoreDirectory { directory in
            try await withServer(storeConfiguration(directory)) { server in
                let build = try await server.run(job(["/bin/sh", "-c", "printf '#!/bin/sh\\ncat input\\n' > prog; chmod +x prog"],
                                                     collect: [["path": "prog", "store": true]]))
                #expect(build.status == 200, "\(build.text)")
                let file = try #require((build.json["files"] as? [[String: Any]])?.first)
                let id = try #require(file["fileId"] as? String, "\(build.text)")
                #expect(file["executable"] as? Bool == true && file["size"] as? Int == 20 && file["content"] == nil)
                try expectDocumented(build, "POST", "/v1/run")
                let input = try await server.files(.post, "/v1/files", body: Array("stored input\n".utf8))
                let inputId = try #require(input.json["id"] as? String)
                let run = try await server.run(job(["./prog"], files: [["path": "prog", "fileId": id, "executable": true],
                                                                     ["path": "input", "fileId": inputId]]))
                #expect(run.status == 200 && run.process["status"] as? String == "ok", "\(run.text)")
                #expect((run.process["stdout"] as? [String: Any])?["text"] as? String == "stored input\n", "\(run.text)")
                let unknown = try await server.run(job(["./prog"], files: [["path": "prog", "fileId": FileId.of([0]).hex]]))
                #expect(unknown.status == 400 && (unknown.json["error"] as? String)?.contains("no file") == true, "\(unknown.text)")
                let malformed = try await server.run(job(["./prog"], files: [["path": "prog", "fileId": "../../etc/passwd"]]))
                #expect(malformed.status == 400 && malformed.json["path"] as? String == "files[0].fileId", "\(malformed.text)")
            }
        }
    }
}
