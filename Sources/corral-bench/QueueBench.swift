import CorralQueue
import Foundation
import LoopbackHTTP
#if canImport(Glibc)
import Glibc
#endif

/// Issue 16's figures, with `--queue N` (PostgreSQL's URL in `CORRAL_BENCH_POSTGRES_URL`):
/// the queue's own cost per job (enqueue + claim + complete, one job at a time, p50 and p99),
/// on PostgreSQL and on the embedded SQLite; then jobs per second of N `/bin/true` jobs
/// (isolated, as a server runs them by default) run by 1, 2 and 4 `corral worker` processes
/// (one job at a time each) on PostgreSQL, against one `corral serve` (SQLite, parallelism =
/// CPUs) running the same batch itself. The corral binary is the one beside corral-bench.
enum QueueBench {
    static func run(jobs: Int) async -> String? {
        guard let url = ProcessInfo.processInfo.environment["CORRAL_BENCH_POSTGRES_URL"], !url.isEmpty else {
            Console.error("corral-bench: --queue needs CORRAL_BENCH_POSTGRES_URL (e.g. \"$(bash Scripts/test-postgres)\")\n")
            return nil
        }
        let tmp = NSTemporaryDirectory() + "corral-bench-queue-\(getpid())"
        mkdir(tmp, 0o700)
        defer { _ = try? FileManager.default.removeItem(atPath: tmp) }
        do {
            let postgres = try await PostgresJobQueue.open(url: url)
            // Claims that wait for the disk, as before 2026-11-30's change: compared in the
            // same rounds, interleaved.
            let waiting = try await PostgresJobQueue.open(url: url, relaxedClaims: false)
            let rounds = max(jobs, 200)
            var postgresOverhead: [Double] = [], waitingOverhead: [Double] = [], step: [Double] = [], separateStep: [Double] = []
            for round in 0..<rounds {
                // The order alternates, so neither always runs first.
                let pairs: [(any JobQueue, Bool)] = round % 2 == 0 ? [(postgres, true), (waiting, false)] : [(waiting, false), (postgres, true)]
                for (queue, relaxed) in pairs {
                    let sample = try await overhead(queue, rounds: 1)[0]
                    if relaxed { postgresOverhead.append(sample) } else { waitingOverhead.append(sample) }
                }
                let steps = try await workerStep(postgres, waiting)
                step.append(steps.combined)
                separateStep.append(steps.separate)
            }
            await waiting.close()
            _ = try await postgres.expire(finishedBefore: .nanoseconds(1))
            let sqlite = try await SQLiteJobQueue.open(path: tmp + "/bench.sqlite")
            let sqliteOverhead = try await overhead(sqlite, rounds: rounds)
            await sqlite.close()

            let urlFile = tmp + "/url"
            FileManager.default.createFile(atPath: urlFile, contents: Data(url.utf8), attributes: [.posixPermissions: 0o600])
            let latency = try await idleLatency(postgres, urlFile: urlFile, stateDirectory: tmp + "/idle-state", rounds: min(max(jobs / 4, 50), 300))
            var rates: [(String, Double)] = []
            for workers in [1, 2, 4] {
                rates.append(("\(workers) worker\(workers == 1 ? "" : "s")", try await workerRate(postgres, urlFile: urlFile, workers: workers, jobs: jobs)))
            }
            rates.append(("serve", try serveRate(jobs: jobs, stateDirectory: tmp + "/state")))
            await postgres.close()
            func figure(_ samples: [Double]) -> String {
                String(format: "{\"p50Millis\": %.3f, \"p99Millis\": %.3f}", Summary.percentile(samples.sorted(), 0.5), Summary.percentile(samples.sorted(), 0.99))
            }
            // The queue's part of an idle worker's figure: its percentiles less the direct run's.
            func difference(_ queued: [Double], _ direct: [Double]) -> String {
                let (a, b) = (queued.sorted(), direct.sorted())
                return String(format: "{\"p50Millis\": %.3f, \"p99Millis\": %.3f}", Summary.percentile(a, 0.5) - Summary.percentile(b, 0.5),
                              Summary.percentile(a, 0.99) - Summary.percentile(b, 0.99))
            }
            let rateItems = rates.map { String(format: "{\"runner\": \"%@\", \"jobsPerSecond\": %.1f}", $0.0, $0.1) }
            var load = [Double](repeating: 0, count: 3)
            _ = getloadavg(&load, 3)
            return "{\"queue\": {\"jobs\": \(jobs), \"loadAverage\": \(String(format: "%.2f", load[0])), "
                + "\"overhead\": {\"postgres\": \(figure(postgresOverhead)), \"postgresClaimWaitsForDisk\": \(figure(waitingOverhead)), "
                + "\"postgresWorkerStep\": \(figure(step)), \"postgresWorkerStepSeparate\": \(figure(separateStep)), "
                + "\"sqlite\": \(figure(sqliteOverhead)), "
                + "\"postgresIdleWorker\": \(figure(latency.worker)), \"serveIdleRun\": \(figure(latency.serve)), "
                + "\"postgresIdleWorkerOverServe\": \(difference(latency.worker, latency.serve))}, "
                + "\"rates\": [\(rateItems.joined(separator: ", "))]}}"
        } catch {
            Console.error("corral-bench: the queue benchmark failed: \(error)\n")
            return nil
        }
    }

    /// Milliseconds of enqueue + claim + complete of one job, `rounds` times.
    static func overhead(_ queue: any JobQueue, rounds: Int) async throws -> [Double] {
        let spec = Data(#"{"processes": [{"args": ["/bin/true"]}]}"#.utf8)
        var samples: [Double] = []
        for _ in 0..<rounds {
            let start = ContinuousClock.now
            _ = try await queue.enqueue([NewJob(spec: spec)])
            guard let job = try await queue.claim(worker: "bench", lease: .seconds(30)) else { throw QueueError("nothing to claim") }
            _ = try await queue.complete(job.lease, report: Data("{}".utf8))
            samples.append((ContinuousClock.now - start) / .milliseconds(1))
        }
        return samples
    }

    /// What a busy worker pays between two jobs, milliseconds: the report of one and the claim
    /// of the next in one statement (`combined`, PostgreSQL's claims not waiting for the disk),
    /// against a completion then a claim that waits for the disk (`separate`, as before).
    static func workerStep(_ queue: PostgresJobQueue, _ waiting: PostgresJobQueue) async throws -> (combined: Double, separate: Double) {
        let spec = Data(#"{"processes": [{"args": ["/bin/true"]}]}"#.utf8)
        _ = try await queue.enqueue([NewJob(spec: spec), NewJob(spec: spec), NewJob(spec: spec)])
        guard let first = try await queue.claim(worker: "bench", lease: .seconds(30)) else { throw QueueError("nothing to claim") }
        var start = ContinuousClock.now
        let completion = try await queue.complete(first.lease, report: Data("{}".utf8), thenClaimFor: "bench", lease: .seconds(30))
        let combined = (ContinuousClock.now - start) / .milliseconds(1)
        guard completion.completed, let second = completion.next else { throw QueueError("the combined step claimed nothing") }
        start = ContinuousClock.now
        _ = try await waiting.complete(second.lease, report: Data("{}".utf8))
        guard let third = try await waiting.claim(worker: "bench", lease: .seconds(30)) else { throw QueueError("nothing to claim") }
        let separate = (ContinuousClock.now - start) / .milliseconds(1)
        _ = try await queue.complete(third.lease, report: Data("{}".utf8))
        return (combined, separate)
    }

    /// Milliseconds a job spends outside its own run when one idle `corral worker` takes it:
    /// from the enqueue until its report is readable, less the job's own wall time (what the
    /// worker waited before claiming, the claim, admission, the sandbox's setup, the report
    /// and its write), one job at a time, `rounds` times; the report is looked for every
    /// 0.5 ms. Against the same run through an idle `corral serve`'s `POST /v1/run` (from the
    /// request until the answer, less the same wall time: admission, the sandbox's setup, the
    /// answer), round by round, the order alternating: the queue's part is the difference.
    static func idleLatency(_ queue: any JobQueue, urlFile: String, stateDirectory: String, rounds: Int) async throws
        -> (worker: [Double], serve: [Double]) {
        _ = try await queue.expire(finishedBefore: .nanoseconds(1))
        let (worker, _) = try start(["worker", "--queue-file", urlFile, "--parallelism", "1", "--file-store", "none", "--log-level", "error"], ready: "worker ready")
        defer { worker.terminate(); worker.waitUntilExit() }
        let (serve, said) = try start(["serve", "--port", "0", "--parallelism", "1", "--state-dir", stateDirectory, "--file-store", "none",
                                       "--log-level", "error"], ready: "listening on")
        defer { serve.terminate(); serve.waitUntilExit() }
        guard let port = said.split(separator: ":").last.flatMap({ Int($0.prefix(while: \.isNumber)) }) else { throw QueueError("no port in \(said)") }
        let connection = HTTPConnection(port: port)
        let text = #"{"processes": [{"args": ["/bin/true"]}]}"#
        let spec = Data(text.utf8)
        func wall(_ report: Data) throws -> Double {
            let object = (try? JSONSerialization.jsonObject(with: report)) as? [String: Any]
            guard let wall = object?["wallTime"] as? Double else { throw QueueError("a report without wallTime: \(String(decoding: report, as: UTF8.self))") }
            return wall * 1000
        }
        func throughQueue() async throws -> Double {
            let begin = ContinuousClock.now
            guard let id = try await queue.enqueue([NewJob(spec: spec)]).first else { throw QueueError("no id") }
            var report: Data?
            while report == nil {
                if let record = try await queue.get(id), record.state == .done { report = record.report } else { try await Task.sleep(for: .microseconds(500)) }
            }
            return (ContinuousClock.now - begin) / .milliseconds(1) - (try wall(report ?? Data()))
        }
        func direct() throws -> Double {
            let begin = ContinuousClock.now
            let answer = try connection.request("POST", "/v1/run", headers: [("Content-Type", "application/json")], body: Array(text.utf8))
            guard answer.status == 200 else { throw QueueError("POST /v1/run answered \(answer.status)") }
            return (ContinuousClock.now - begin) / .milliseconds(1) - (try wall(Data(answer.body)))
        }
        var workerSamples: [Double] = [], serveSamples: [Double] = []
        for round in 0..<(rounds + 5) {
            for queueFirst in round % 2 == 0 ? [true, false] : [false, true] {
                // Idle first, as a worker (or a server) between jobs is.
                try await Task.sleep(for: .milliseconds(Int.random(in: 20...80)))
                let sample = queueFirst ? try await throughQueue() : try direct()
                guard round >= 5 else { continue }
                if queueFirst { workerSamples.append(sample) } else { serveSamples.append(sample) }
            }
        }
        return (workerSamples, serveSamples)
    }

    static var corral: String {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("corral").path
    }

    /// Starts `corral ARGUMENTS`; returns once its stdout said `ready`, with what it said.
    static func start(_ arguments: [String], ready: String) throws -> (Process, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: corral)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        var seen = ""
        while !seen.contains(ready) {
            let data = output.fileHandleForReading.availableData
            guard !data.isEmpty else { throw QueueError("corral \(arguments[0]) did not start") }
            seen += String(decoding: data, as: UTF8.self)
        }
        return (process, seen)
    }

    static func workerRate(_ queue: any JobQueue, urlFile: String, workers: Int, jobs: Int) async throws -> Double {
        _ = try await queue.expire(finishedBefore: .nanoseconds(1))
        let started = try (0..<workers).map { _ in
            try start(["worker", "--queue-file", urlFile, "--parallelism", "1", "--file-store", "none", "--log-level", "error"], ready: "worker ready")
        }
        let spec = Data(#"{"processes": [{"args": ["/bin/true"]}]}"#.utf8)
        let begin = ContinuousClock.now
        _ = try await queue.enqueue(Array(repeating: NewJob(spec: spec), count: jobs))
        let deadline = ContinuousClock.now + .seconds(600)
        while try await (queue.counts()[.done] ?? 0) < jobs {
            guard ContinuousClock.now < deadline else { throw QueueError("\(workers) workers did not finish \(jobs) jobs in 10 minutes") }
            try await Task.sleep(for: .milliseconds(5))
        }
        let seconds = (ContinuousClock.now - begin) / .seconds(1)
        for (process, _) in started { process.terminate(); process.waitUntilExit() }
        return Double(jobs) / seconds
    }

    static func serveRate(jobs: Int, stateDirectory: String) throws -> Double {
        let (process, said) = try start(["serve", "--port", "0", "--state-dir", stateDirectory, "--file-store", "none", "--log-level", "error"], ready: "listening on")
        defer { process.terminate(); process.waitUntilExit() }
        guard let port = said.split(separator: ":").last.flatMap({ Int($0.prefix(while: \.isNumber)) }) else { throw QueueError("no port in \(said)") }
        let connection = HTTPConnection(port: port)
        let body = #"{"jobs": ["# + Array(repeating: #"{"processes": [{"args": ["/bin/true"]}]}"#, count: jobs).joined(separator: ",") + "]}"
        let begin = ContinuousClock.now
        let answer = try connection.request("POST", "/v1/jobs/batch", headers: [("Content-Type", "application/json")], body: Array(body.utf8))
        guard answer.status == 202 else { throw QueueError("the batch was refused: \(answer.status)") }
        let deadline = ContinuousClock.now + .seconds(600)
        while true {
            guard ContinuousClock.now < deadline else { throw QueueError("corral serve did not finish \(jobs) jobs in 10 minutes") }
            let metrics = String(decoding: try connection.request("GET", "/metrics").body, as: UTF8.self)
            // A gauge: "corral_jobs{state="done"} 40.0".
            let done = metrics.split(separator: "\n").first { $0.hasPrefix("corral_jobs{state=\"done\"} ") }
            if let done, let value = Double(done.split(separator: " ").last ?? ""), Int(value) >= jobs { break }
            usleep(5_000)
        }
        return Double(jobs) / ((ContinuousClock.now - begin) / .seconds(1))
    }
}
