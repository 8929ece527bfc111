import CorralTestSupport
import Foundation
import LoopbackHTTP
import Testing

/// The file store keeps what queued jobs use (`--file-store-max` with LRU eviction of the
/// files no queued or running job refers to), through HTTP against a real `corral serve`:
/// uploads past the bound evict the oldest unreferenced file, never the queued job's, even
/// when the queued job's file is the oldest; after a restart too.
@Suite("Stored files held by queued jobs", .serialized)
struct QueuedFileHoldTests {
    typealias Jobs = JobsRouteTests

    static func upload(_ server: ServeProcess, _ byte: Character, _ count: Int = 1000) throws -> (status: Int, id: String?) {
        let response = try HTTPConnection(port: server.port).request("POST", "/v1/files", body: Array(String(repeating: byte, count: count).utf8))
        let json = (try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]) ?? [:]
        return (response.status, json["id"] as? String)
    }

    static func status(_ server: ServeProcess, _ method: String, file id: String) throws -> Int {
        try HTTPConnection(port: server.port).request(method, "/v1/files/\(id)").status
    }

    static func catJob(_ id: String) -> String {
        #"{"processes": [{"args": ["/bin/cat", "a.txt"]}], "files": [{"path": "a.txt", "fileId": "\#(id)"}]}"#
    }

    /// A blocking job ahead (parallelism 1) keeps the job that names A queued.
    static func blocker(_ server: ServeProcess) throws -> String {
        let id = try #require(try Jobs.call(server, "POST", "/v1/jobs", Jobs.job("sleep 60")).json["id"] as? String)
        #expect(try Jobs.wait(server, id, for: ["running"]).json["state"] as? String == "running")
        return id
    }

    /// With A (held by the queued job `waiting`) and B in a store of 3000 bytes: C fits, D
    /// evicts B, E evicts C although A is the oldest by then; a file that would need A's room
    /// is 507; A cannot be deleted. (Looked at only once every upload is done: a GET counts as
    /// a use.) Then the blocker goes and the job runs with A.
    static func uploadPastTheBound(_ server: ServeProcess, a: String, b: String, waiting: String, blocker: String) throws {
        #expect(try Jobs.call(server, "GET", "/v1/jobs/\(waiting)").json["state"] as? String == "queued")
        let c = try #require(try Self.upload(server, "C").id)
        let d = try Self.upload(server, "D")
        let e = try Self.upload(server, "E")
        #expect(d.status == 201 && e.status == 201)
        #expect(try Self.upload(server, "F", 2500).status == 507, "only A's room would make room for it")
        #expect(try Self.status(server, "GET", file: b) == 404, "B, the oldest file no job uses, was evicted first")
        #expect(try Self.status(server, "GET", file: c) == 404, "then C, the oldest one no job uses")
        #expect(try Self.status(server, "GET", file: a) == 200, "A, used by a queued job, stays though it was the least recently used")
        #expect(try Self.status(server, "GET", file: try #require(d.id)) == 200)
        #expect(try Self.status(server, "GET", file: try #require(e.id)) == 200)
        #expect(try Self.status(server, "DELETE", file: a) == 409, "a queued job uses A")

        #expect(try Jobs.call(server, "DELETE", "/v1/jobs/\(blocker)").status == 200)
        let done = try Jobs.wait(server, waiting)
        #expect(done.json["state"] as? String == "done", "\(done.text)")
        #expect(Jobs.stdout(done) == String(repeating: "A", count: 1000), "the job ran with A: \(done.text.prefix(400))")
        // Done: its hold goes (just after the report is written).
        let deadline = Date().addingTimeInterval(10)
        var deleted = try Self.status(server, "DELETE", file: a)
        while deleted == 409 && Date() < deadline {
            usleep(50_000)
            deleted = try Self.status(server, "DELETE", file: a)
        }
        #expect(deleted == 204, "A is free once its job is done")
    }

    @Test("upload past the bound: the oldest unreferenced file goes, a file in use by a queued job stays; the job then runs with it")
    func queuedJobKeepsItsFile() throws {
        let store = TemporaryDirectory()
        defer { store.remove() }
        let server = try ServeProcess.start(["--parallelism", "1", "--file-store", store.path + "/files", "--file-store-max", "3000",
                                             "--log-level", "warning"])
        defer { server.stop() }
        let a = try #require(try Self.upload(server, "A").id)
        let b = try #require(try Self.upload(server, "B").id)
        let blocker = try Self.blocker(server)
        let queued = try Jobs.call(server, "POST", "/v1/jobs", Self.catJob(a))
        #expect(queued.status == 202, "\(queued.text)")
        let waiting = try #require(queued.json["id"] as? String)
        try Self.uploadPastTheBound(server, a: a, b: b, waiting: waiting, blocker: blocker)
    }

    @Test("a queued job naming a file the store lacks is refused with 400 at enqueue (path files[i].fileId), nothing queued")
    func unknownFileRefused() throws {
        let store = TemporaryDirectory()
        defer { store.remove() }
        let server = try ServeProcess.start(["--parallelism", "1", "--file-store", store.path + "/files", "--log-level", "warning"])
        defer { server.stop() }
        let unknown = String(repeating: "0", count: 64)
        let single = try Jobs.call(server, "POST", "/v1/jobs", Self.catJob(unknown))
        #expect(single.status == 400, "\(single.text)")
        #expect(single.json["path"] as? String == "files[0].fileId", "\(single.text)")
        let a = try #require(try Self.upload(server, "A").id)
        let batch = try Jobs.call(server, "POST", "/v1/jobs/batch", #"{"jobs": [\#(Self.catJob(a)), \#(Self.catJob(unknown))]}"#)
        #expect(batch.status == 400, "\(batch.text)")
        #expect(batch.json["path"] as? String == "jobs[1].files[0].fileId", "\(batch.text)")
        #expect(try Self.status(server, "DELETE", file: a) == 204, "the refused batch holds nothing")
        let metrics = String(decoding: try HTTPConnection(port: server.port).request("GET", "/metrics").body, as: UTF8.self)
        #expect(metrics.contains(#"corral_jobs{state="queued"} 0"#), "\(metrics)")
    }

    @Test("after a restart the queued job's file is held again (rebuilt from the SQLite queue)")
    func heldAgainAfterRestart() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let arguments = ["--parallelism", "1", "--state-dir", directory.path + "/state", "--file-store", directory.path + "/files",
                         "--file-store-max", "3000", "--shutdown-grace", "0", "--log-level", "warning"]
        let first = try ServeProcess.start(arguments)
        let a = try #require(try Self.upload(first, "A").id)
        let b = try #require(try Self.upload(first, "B").id)
        let blocker = try Self.blocker(first)
        let waiting = try #require(try Jobs.call(first, "POST", "/v1/jobs", Self.catJob(a)).json["id"] as? String)
        let stopped = first.stop()
        #expect(stopped.status == 0, "\(stopped.standardError)")

        let second = try ServeProcess.start(arguments)
        defer { second.stop() }
        // The blocker was given back to the queue at shutdown and runs again first.
        #expect(try Jobs.wait(second, blocker, for: ["running"]).json["state"] as? String == "running")
        try Self.uploadPastTheBound(second, a: a, b: b, waiting: waiting, blocker: blocker)
    }
}
