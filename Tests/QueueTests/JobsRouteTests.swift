import CorralTestSupport
import Foundation
import LoopbackHTTP
import Testing

/// `/v1/jobs` against a real `corral serve` process: queued jobs run, survive a SIGKILL of
/// the server, can be cancelled, and expire.
@Suite("Jobs routes", .serialized)
struct JobsRouteTests {
    struct Answer {
        let status: Int
        let json: [String: Any]
        let text: String
    }

    static func call(_ server: ServeProcess, _ method: String, _ path: String, _ body: String? = nil) throws -> Answer {
        let response = try HTTPConnection(port: server.port).request(method, path, headers: [("Content-Type", "application/json")],
                                                                       body: body.map { Array($0.utf8) })
        let text = String(decoding: response.body, as: UTF8.self)
        return Answer(status: response.status, json: (try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]) ?? [:],
                      text: text)
    }

    static func job(_ script: String) -> String {
        let escaped = script.replacingOccurrences(of: "\"", with: "\\\"")
        return #"{"processes": [{"args": ["/bin/sh", "-c", "\#(escaped)"]}]}"#
    }

    @Test("POST /v1/jobs: a job over --max-job-time is refused with 400 before it is queued; within it, queued")
    func jobTimeCeiling() throws {
        let server = try ServeProcess.start(["--parallelism", "1", "--max-job-time", "5s", "--default-wall-time", "2s", "--log-level", "warning"])
        defer { server.stop() }
        let over = try Self.call(server, "POST", "/v1/jobs", #"{"processes": [{"args": ["/bin/true"], "limits": {"wallTime": "6s"}}]}"#)
        #expect(over.status == 400, "\(over.text)")
        #expect(over.json["path"] as? String == "processes" && over.text.contains("--max-job-time"), "\(over.text)")
        let within = try Self.call(server, "POST", "/v1/jobs", Self.job("true"))
        #expect(within.status == 202, "\(within.text)")
        let id = try #require(within.json["id"] as? String)
        #expect(try Self.wait(server, id).json["state"] as? String == "done")
    }

    /// Polls `GET /v1/jobs/{id}` until it is in one of `states` (or the time is up).
    static func wait(_ server: ServeProcess, _ id: String, for states: Set<String> = ["done", "cancelled"], seconds: Double = 30) throws -> Answer {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let answer = try call(server, "GET", "/v1/jobs/\(id)")
            if let state = answer.json["state"] as? String, states.contains(state) { return answer }
            if Date() > deadline { return answer }
            usleep(20_000)
        }
    }

    static func stdout(_ answer: Answer) -> String? {
        let report = answer.json["report"] as? [String: Any]
        let process = (report?["processes"] as? [[String: Any]])?.first
        return (process?["stdout"] as? [String: Any])?["text"] as? String
    }

    @Test("POST /v1/jobs: 202 with an id, then done with its report; the batch form queues several")
    func queuedJobsRun() throws {
        let server = try ServeProcess.start(["--parallelism", "2", "--log-level", "warning"])
        defer { server.stop() }
        let accepted = try Self.call(server, "POST", "/v1/jobs", Self.job("echo one"))
        #expect(accepted.status == 202, "\(accepted.text)")
        let id = try #require(accepted.json["id"] as? String)
        let done = try Self.wait(server, id)
        #expect(done.json["state"] as? String == "done", "\(done.text)")
        #expect(done.json["id"] as? String == id)
        #expect((done.json["report"] as? [String: Any])?["status"] as? String == "ok", "\(done.text)")
        #expect(Self.stdout(done) == "one\n")

        let batch = try Self.call(server, "POST", "/v1/jobs/batch",
                                  #"{"jobs": [\#((1...5).map { Self.job("echo \($0)") }.joined(separator: ", "))]}"#)
        #expect(batch.status == 202, "\(batch.text)")
        let ids = try #require(batch.json["ids"] as? [String])
        #expect(ids.count == 5)
        for (index, id) in ids.enumerated() {
            #expect(Self.stdout(try Self.wait(server, id)) == "\(index + 1)\n")
        }
        let metrics = try HTTPConnection(port: server.port).request("GET", "/metrics")
        let text = String(decoding: metrics.body, as: UTF8.self)
        #expect(text.contains(#"corral_jobs{state="done"} 6"#), "\(text)")
        #expect(text.contains(#"corral_jobs{state="queued"} 0"#), "\(text)")
    }

    @Test("a spec that does not validate is refused at enqueue with /v1/run's error; a bad batch queues nothing")
    func validatedAtEnqueue() throws {
        let server = try ServeProcess.start(["--parallelism", "1", "--log-level", "warning"])
        defer { server.stop() }
        let bad = #"{"processes": [{"args": ["/bin/true"], "limits": {"cpuTime": true}}]}"#
        let run = try Self.call(server, "POST", "/v1/run", bad)
        let queued = try Self.call(server, "POST", "/v1/jobs", bad)
        #expect(run.status == 400 && queued.status == 400, "\(queued.text)")
        #expect(queued.json["path"] as? String == "processes[0].limits.cpuTime")
        #expect(queued.json["error"] as? String == run.json["error"] as? String)
        let overCeiling = try Self.call(server, "POST", "/v1/jobs", #"{"processes": [{"args": ["/bin/true"], "limits": {"cpuTime": 1000}}]}"#)
        #expect(overCeiling.status == 400)
        #expect(overCeiling.json["path"] as? String == "processes[0].limits.cpuTime")

        let batch = try Self.call(server, "POST", "/v1/jobs/batch", #"{"jobs": [\#(Self.job("echo ok")), \#(bad)]}"#)
        #expect(batch.status == 400, "\(batch.text)")
        #expect(batch.json["path"] as? String == "jobs[1].processes[0].limits.cpuTime", "\(batch.text)")
        for malformed in [#"{"jobs": []}"#, #"{"jobs": {}}"#, #"{"jobs": [1], "more": 2}"#, #"[1]"#, #"{"jobs": [{"processes": []},]}"#] {
            let answer = try Self.call(server, "POST", "/v1/jobs/batch", malformed)
            #expect(answer.status == 400, "\(malformed): \(answer.text)")
        }
        let metrics = String(decoding: try HTTPConnection(port: server.port).request("GET", "/metrics").body, as: UTF8.self)
        for state in ["queued", "running", "done"] {
            #expect(metrics.contains(#"corral_jobs{state="\#(state)"} 0"#), "nothing was queued: \(metrics)")
        }
        #expect(try Self.call(server, "GET", "/v1/jobs/not-an-id").status == 404)
        #expect(try Self.call(server, "GET", "/v1/jobs/00000000-0000-0000-0000-000000000000").status == 404)
    }

    @Test("DELETE stops a running job (its process ends) and takes a queued one out; a done one is 409")
    func cancel() throws {
        let server = try ServeProcess.start(["--parallelism", "1", "--log-level", "warning"])
        defer { server.stop() }
        let marker = "987.\(Int.random(in: 100...999))"
        let running = try #require(try Self.call(server, "POST", "/v1/jobs", Self.job("sleep \(marker)")).json["id"] as? String)
        let waiting = try #require(try Self.call(server, "POST", "/v1/jobs", Self.job("echo never")).json["id"] as? String)
        _ = try Self.wait(server, running, for: ["running"])
        let deadline = Date().addingTimeInterval(10)
        while Leftovers.sleepers(marker) == 0 && Date() < deadline { usleep(20_000) }
        #expect(Leftovers.sleepers(marker) == 1, "the job's sleep runs")
        #expect(try Self.call(server, "DELETE", "/v1/jobs/\(waiting)").status == 200)
        let stopped = try Self.call(server, "DELETE", "/v1/jobs/\(running)")
        #expect(stopped.status == 200, "\(stopped.text)")
        #expect(stopped.json["state"] as? String == "cancelled")
        let gone = Date().addingTimeInterval(10)
        while Leftovers.sleepers(marker) > 0 && Date() < gone { usleep(20_000) }
        #expect(Leftovers.sleepers(marker) == 0, "the cancelled job's process was killed")
        let record = try Self.call(server, "GET", "/v1/jobs/\(running)")
        #expect(record.json["state"] as? String == "cancelled")
        #expect(record.json["report"] is NSNull, "\(record.text)")
        #expect(try Self.call(server, "GET", "/v1/jobs/\(waiting)").json["state"] as? String == "cancelled")
        let later = try #require(try Self.call(server, "POST", "/v1/jobs", Self.job("echo later")).json["id"] as? String)
        #expect(try Self.wait(server, later).json["state"] as? String == "done", "the slot came back")
        #expect(try Self.call(server, "DELETE", "/v1/jobs/\(later)").status == 409)
        #expect(try Self.wait(server, waiting).json["state"] as? String == "cancelled", "a cancelled queued job never runs")
    }

    @Test("--result-ttl: a finished job's result is removed after it")
    func resultTTL() throws {
        let server = try ServeProcess.start(["--parallelism", "1", "--result-ttl", "1s", "--log-level", "warning"])
        defer { server.stop() }
        let id = try #require(try Self.call(server, "POST", "/v1/jobs", Self.job("true")).json["id"] as? String)
        #expect(try Self.wait(server, id).json["state"] as? String == "done")
        let deadline = Date().addingTimeInterval(10)
        var status = 200
        while status == 200 && Date() < deadline {
            usleep(100_000)
            status = try Self.call(server, "GET", "/v1/jobs/\(id)").status
        }
        #expect(status == 404)
    }

    @Test("SIGKILL of the server with jobs queued and running: started again, every job completes, finished ones are kept")
    func survivesSIGKILL() throws {
        let state = TemporaryDirectory()
        defer { state.remove() }
        let arguments = ["--parallelism", "1", "--state-dir", state.path + "/state", "--log-level", "warning"]
        let first = try ServeProcess.start(arguments)
        let finished = try #require(try Self.call(first, "POST", "/v1/jobs", Self.job("echo before")).json["id"] as? String)
        #expect(try Self.wait(first, finished).json["state"] as? String == "done")
        let slow = try #require(try Self.call(first, "POST", "/v1/jobs", Self.job("sleep 2; echo slow")).json["id"] as? String)
        let batch = try Self.call(first, "POST", "/v1/jobs/batch", #"{"jobs": [\#((1...10).map { Self.job("echo \($0)") }.joined(separator: ", "))]}"#)
        let ids = try #require(batch.json["ids"] as? [String])
        _ = try Self.wait(first, slow, for: ["running"])
        let cleanup = try first.crash()
        #expect(cleanup.status == 0, "\(cleanup.standardError)")
        #expect(!((try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? "").contains(first.tmp.path), "a job tmpfs of the killed server is still mounted")

        let second = try ServeProcess.start(arguments)
        defer { second.stop() }
        #expect(Self.stdout(try Self.wait(second, finished)) == "before\n", "a finished job's report is kept")
        let again = try Self.wait(second, slow)
        #expect(Self.stdout(again) == "slow\n", "\(again.text)")
        #expect(again.json["attempts"] as? Int == 2, "the job that was running ran again")
        for (index, id) in ids.enumerated() {
            let answer = try Self.wait(second, id)
            #expect(answer.json["state"] as? String == "done")
            #expect(Self.stdout(answer) == "\(index + 1)\n")
        }
    }
}
