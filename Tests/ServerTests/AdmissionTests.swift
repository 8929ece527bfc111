import Corral
import CorralServer
import CorralTestSupport
import Foundation
import LoopbackHTTP
import Testing

/// Parallelism, the queue, and clients that go away.
@Suite("Admission and cancellation", .serialized, .cgroupExclusive)
struct AdmissionTests {
    @Test("past --parallelism and --queue a request gets 503 with Retry-After; the others run")
    func queueOverflow() async throws {
        // Not isolated: the jobs wait for a gate file on the host, so no timing decides
        // whether the first job is still running when the third request comes.
        let configuration = testConfiguration { $0.parallelism = 1; $0.queue = 1; $0.isolate = false }
        let gate = Gate()
        defer { gate.remove() }
        try await withServer(configuration) { server in
            let waiter = gate.waiter
            async let first = server.runOnOwnConnection(waiter)
            #expect(await eventually { (try? await server.get("/v1/health").json["inFlight"] as? Int) == 1 })
            async let second = server.runOnOwnConnection(waiter)
            #expect(await eventually { (try? await server.get("/v1/health").json["queued"] as? Int) == 1 })
            #expect(try await server.metrics()["corral_queue_depth"] == 1)
            let third = try await server.runOnOwnConnection(waiter)
            gate.open()
            #expect(third.status == 503, "\(third.text)")
            #expect(Int(third.headers["retry-after"] ?? "") ?? 0 >= 1, "\(third.headers)")
            let document = try OpenAPIDocument.load()
            #expect(document.responseHeaders("POST", "/v1/run", status: 503).contains("retry-after"))
            let (a, b) = try await (first, second)
            #expect(a.status == 200 && b.status == 200)
            #expect(a.json["status"] as? String == "ok" && b.json["status"] as? String == "ok", "\(a.text) \(b.text)")
            let metrics = try await server.metrics()
            #expect(metrics["corral_rejected_requests_total{reason=\"overloaded\"}"] == 1)
            #expect(metrics["corral_runs_total{status=\"ok\"}"] == 2)
        }
    }

    @Test("a client that disconnects mid-run cancels its job: nothing of it is left alive")
    func disconnect() async throws {
        let sleeper = try Fixtures.path("pid_sleeper")
        try await withServer(testConfiguration { $0.isolate = false }) { server in
            let directory = TemporaryDirectory()
            defer { directory.remove() }
            let pidFile = directory.file("pid")
            let body = job([sleeper, pidFile, "60"]).data
            let port = server.port
            let connection = HTTPConnection(port: port)
            // A small request on loopback: sent at once, no thread needed.
            try connection.send("POST", "/v1/run", headers: [("Content-Type", "application/json")], body: Array(body))
            #expect(await eventually { !Leftovers.pids(inFile: pidFile).isEmpty })
            let pid = Leftovers.pids(inFile: pidFile)[0]
            #expect(Leftovers.isAlive(pid))
            connection.close()
            #expect(await eventually { !Leftovers.isAlive(pid) }, "the run was not killed when its client went away")
            #expect(await eventually { (try? await server.get("/v1/health").json["inFlight"] as? Int) == 0 })
            #expect(await eventually { (try? await server.metrics()["corral_runs_total{status=\"cancelled\"}"]) == 1 })
            #expect(CgroupCheck.busyRunCgroups().isEmpty)
        }
    }

    @Test("a client that disconnects while queued leaves the queue")
    func disconnectWhileQueued() async throws {
        let gate = Gate()
        defer { gate.remove() }
        try await withServer(testConfiguration { $0.parallelism = 1; $0.queue = 2; $0.isolate = false }) { server in
            async let running = server.runOnOwnConnection(gate.waiter)
            #expect(await eventually { (try? await server.get("/v1/health").json["inFlight"] as? Int) == 1 })
            let body = job(["/bin/true"]).data
            let connection = HTTPConnection(port: server.port)
            // A small request on loopback: sent at once, no thread needed.
            try connection.send("POST", "/v1/run", headers: [("Content-Type", "application/json")], body: Array(body))
            #expect(await eventually { (try? await server.get("/v1/health").json["queued"] as? Int) == 1 })
            connection.close()
            #expect(await eventually { (try? await server.get("/v1/health").json["queued"] as? Int) == 0 })
            gate.open()
            #expect(try await running.status == 200)
            #expect(try await server.metrics()["corral_runs_total{status=\"ok\"}"] == 1)
        }
    }
}

/// A job that runs until the test opens its gate (a file on the host, so for jobs that are not
/// isolated): what a test waits on instead of a fixed sleep that a loaded host can outlast.
struct Gate: Sendable {
    let directory = TemporaryDirectory()
    var path: String { directory.file("open") }
    /// Gives up after 60 s so that a failed test cannot leave it waiting.
    var waiter: JobBody {
        job(["/bin/sh", "-c", "i=0; while [ ! -e \"$0\" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done", path])
    }
    func open() { FileManager.default.createFile(atPath: path, contents: nil) }
    func remove() { directory.remove() }
}
