import CorralQueue
import CorralTestSupport
import Foundation
import Testing

/// `corral worker` processes on a real PostgreSQL queue: a worker that dies loses its lease
/// and its job runs again elsewhere, reported once; SIGTERM drains; the queue's URL is never
/// shown to a job, in a report or in a log.
@Suite("corral worker", .serialized, .enabled(if: TestPostgres.url != nil, TestPostgres.skipped))
struct WorkerTests {
    static func job(_ script: String) -> NewJob {
        let escaped = script.replacingOccurrences(of: "\"", with: "\\\"")
        return NewJob(spec: Data(#"{"processes": [{"args": ["/bin/sh", "-c", "\#(escaped)"]}]}"#.utf8))
    }

    static func wait(_ queue: any JobQueue, _ id: String, for states: Set<JobState>, seconds: Double = 30) async throws -> JobRecord? {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let record = try await queue.get(id)
            if let record, states.contains(record.state) { return record }
            if Date() > deadline { return record }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    static func stdout(_ record: JobRecord?) -> String? {
        guard let report = record?.report, let json = try? JSONSerialization.jsonObject(with: report) as? [String: Any] else { return nil }
        let process = (json["processes"] as? [[String: Any]])?.first
        return (process?["stdout"] as? [String: Any])?["text"] as? String
    }

    @Test("serve --accept-only queues, a worker runs; the URL is in no report, log, command line or environment a job can read")
    func acceptAndRunWithoutShowingTheURL() async throws {
        try await TestPostgres.withDatabase { url in
            let tmp = TemporaryDirectory()
            defer { tmp.remove() }
            let file = try WorkerProcess.urlFile(url, in: tmp)
            let password = try #require(URLComponents(string: url)?.password)
            // (The server would inherit this test's own variable holding the URL: emptied.)
            let server = try ServeProcess.start(["--accept-only", "--queue-file", file, "--log-level", "debug"],
                                                environment: ["CORRAL_TEST_POSTGRES_URL": ""])
            // One worker from the file, one from the environment; jobs see the host's /proc.
            let fromFile = try WorkerProcess.start(urlFile: file, ["--no-isolate", "--parallelism", "1", "--log-level", "debug"])
            let fromEnvironment = try Spawn.start(corralBinary, ["worker", "--no-isolate", "--parallelism", "1", "--log-level", "debug"],
                                                  environment: ["PATH=/usr/bin:/bin", "CORRAL_QUEUE_URL=\(url)"])
            let deadline = Date().addingTimeInterval(30)
            while !fromEnvironment.standardOutputSoFar.contains("worker ready") && Date() < deadline { usleep(10_000) }
            let pids = [server.process.pid, fromFile.process.pid, fromEnvironment.pid]
            // Even root, who can read every process's /proc, finds the URL in none of them.
            for pid in pids {
                for file in ["cmdline", "environ"] {
                    let text = String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/\(file)"))) ?? Data(), as: UTF8.self)
                    #expect(!text.isEmpty || file == "environ", "/proc/\(pid)/\(file) was read")
                    #expect(!text.contains(password), "/proc/\(pid)/\(file) shows the queue's password")
                }
            }
            try expectJobsCannotRead(password, of: pids, through: server, jobs: 4)
            kill(fromEnvironment.pid, SIGTERM)
            let environmentResult = fromEnvironment.wait(timeout: 30)
            kill(fromFile.process.pid, SIGTERM)
            let fileResult = fromFile.process.wait(timeout: 30)
            let serverResult = server.stop()
            #expect(environmentResult.status == 0 && fileResult.status == 0 && serverResult.status == 0)
            for log in [environmentResult.standardError, fileResult.standardError, serverResult.standardError] {
                #expect(!log.contains(password), "a log shows the queue's password")
                #expect(!log.isEmpty, "debug logs were written")
            }
            #expect(fileResult.standardError.contains("job done") || environmentResult.standardError.contains("job done"))
        }
    }

    @Test("a worker SIGKILLed mid-job loses its lease: the job runs again on another, is reported once, and nothing of the first run is left")
    func deadWorkerLosesItsLease() async throws {
        try await TestPostgres.withDatabase { url in
            let tmp = TemporaryDirectory()
            defer { tmp.remove() }
            let file = try WorkerProcess.urlFile(url, in: tmp)
            let queue = try await PostgresJobQueue.open(url: url)
            let marker = "2.\(Int.random(in: 1000...9999))"
            let id = try await queue.enqueue([Self.job("sleep \(marker); echo finished")])[0]
            let first = try WorkerProcess.start(urlFile: file, ["--lease", "1s", "--parallelism", "1"])
            #expect(try await Self.wait(queue, id, for: [.running])?.state == .running)
            try await Task.sleep(for: .milliseconds(300))
            kill(first.process.pid, SIGKILL)
            _ = first.process.wait(timeout: 10)
            let second = try WorkerProcess.start(urlFile: file, ["--lease", "1s", "--parallelism", "1"])
            let record = try await Self.wait(queue, id, for: [.done])
            #expect(record?.state == .done)
            #expect(record?.attempts == 2, "the job ran again after the lease ran out")
            #expect(Self.stdout(record) == "finished\n")
            kill(second.process.pid, SIGTERM)
            let result = second.process.wait(timeout: 30)
            #expect(result.status == 0)
            #expect(result.standardError.contains("job done"))
            let deadline = Date().addingTimeInterval(10)
            while (Leftovers.sleepers(marker) > 0 || !CgroupCheck.busyRunCgroups(owner: first.process.pid).isEmpty) && Date() < deadline {
                usleep(20_000)
            }
            #expect(Leftovers.sleepers(marker) == 0)
            #expect(CgroupCheck.busyRunCgroups(owner: first.process.pid).isEmpty)
            await queue.close()
        }
    }

    @Test("SIGTERM drains: no new claim, a run past the grace period is stopped and given back to the queue; exit 0")
    func drainGivesBack() async throws {
        try await TestPostgres.withDatabase { url in
            let tmp = TemporaryDirectory()
            defer { tmp.remove() }
            let file = try WorkerProcess.urlFile(url, in: tmp)
            let queue = try await PostgresJobQueue.open(url: url)
            let marker = "31.\(Int.random(in: 1000...9999))"
            let ids = try await queue.enqueue([Self.job("sleep \(marker)"), Self.job("echo later")])
            let worker = try WorkerProcess.start(urlFile: file, ["--parallelism", "1", "--shutdown-grace", "0.3s"])
            #expect(try await Self.wait(queue, ids[0], for: [.running])?.state == .running)
            kill(worker.process.pid, SIGTERM)
            let result = worker.process.wait(timeout: 30)
            #expect(result.status == 0, "\(result.standardError)")
            let record = try await queue.get(ids[0])
            #expect(record?.state == .queued, "given back to the queue")
            #expect(try await queue.get(ids[1])?.state == .queued, "nothing new was claimed")
            #expect(Leftovers.sleepers(marker) == 0)
            #expect(try await queue.cancel(ids[0]) == .cancelledQueued)
            await queue.close()
        }
    }

    @Test("SIGTERM during a job's collection into the store: the files the drain left unread make it given back, not done with files lost")
    func drainDuringCollectionGivesBack() async throws {
        try await TestPostgres.withDatabase { url in
            let tmp = TemporaryDirectory()
            defer { tmp.remove() }
            let file = try WorkerProcess.urlFile(url, in: tmp)
            let queue = try await PostgresJobQueue.open(url: url)
            // Sixteen sparse 64 MiB files (a file's size is bounded by limits.output): each costs
            // the program nothing and the store about 0.3 s to read; the stop comes at 0.6 s.
            let names = (0..<16).map { "f\($0)" }
            let collect = names.map { #"{"path": "\#($0)", "max": "64M", "store": true}"# }.joined(separator: ", ")
            let spec = #"{"processes": [{"args": ["/usr/bin/truncate", "-s", "64M", "\#(names.joined(separator: "\", \""))"], "limits": {"output": "64M"}}], "collect": [\#(collect)]}"#
            let ids = try await queue.enqueue([NewJob(spec: Data(spec.utf8))])
            let worker = try WorkerProcess.start(urlFile: file, ["--no-isolate", "--parallelism", "1", "--shutdown-grace", "0.3s",
                                                                 "--file-store", tmp.file("store"), "--max-output", "64M"])
            #expect(try await Self.wait(queue, ids[0], for: [.running])?.state == .running)
            try await Task.sleep(for: .milliseconds(300))
            kill(worker.process.pid, SIGTERM)
            let result = worker.process.wait(timeout: 60)
            #expect(result.status == 0, "\(result.standardError)")
            let record = try await queue.get(ids[0])
            #expect(record?.state == .queued, "given back to the queue, not \(record?.state.rawValue ?? "gone"): \(String(decoding: (record?.report ?? Data()).prefix(600), as: UTF8.self))")
            #expect(try await queue.cancel(ids[0]) == .cancelledQueued)
            await queue.close()
        }
    }

    @Test("a worker admits each job it claims under its own ceilings: a queued job over its --max-job-time gets the 400's error as its report, and never runs")
    func workerAdmitsUnderItsOwnJobTime() async throws {
        try await TestPostgres.withDatabase { url in
            let tmp = TemporaryDirectory()
            defer { tmp.remove() }
            let file = try WorkerProcess.urlFile(url, in: tmp)
            let queue = try await PostgresJobQueue.open(url: url)
            // Queued by a server with the default ceiling (1h): 60 s of wall time is within it.
            let marker = "3.\(Int.random(in: 1000...9999))"
            let long = NewJob(spec: Data(#"{"processes": [{"args": ["/bin/sh", "-c", "sleep \#(marker); echo ran"], "limits": {"wallTime": 60}}]}"#.utf8))
            let ids = try await queue.enqueue([long, Self.job("echo short")])
            let worker = try WorkerProcess.start(urlFile: file, ["--no-isolate", "--parallelism", "1", "--max-job-time", "30s"])
            let refused = try await Self.wait(queue, ids[0], for: [.done])
            let short = try await Self.wait(queue, ids[1], for: [.done])
            #expect(refused?.state == .done)
            let report = try #require(refused?.report.flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] })
            #expect((report["error"] as? String)?.contains("--max-job-time") == true, "\(report)")
            #expect(report["path"] as? String == "processes", "\(report)")
            #expect(report["processes"] == nil, "the job ran: \(report)")
            #expect(Self.stdout(short) == "short\n", "a job within the ceiling runs on the same worker")
            kill(worker.process.pid, SIGTERM)
            #expect(worker.process.wait(timeout: 30).status == 0)
            await queue.close()
        }
    }
}
