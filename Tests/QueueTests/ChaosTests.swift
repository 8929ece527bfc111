import CorralQueue
import CorralTestSupport
import Foundation
import Testing

/// Many jobs, four `corral worker` processes on this machine, two of them SIGKILLed at random
/// moments and started again: every job ends done exactly once with its report, none lost,
/// none reported twice, the queue empty, no run left alive. 200 jobs by default (the suite's
/// time); `CORRAL_CHAOS_JOBS=2000` runs the issue's full count.
@Suite("chaos", .enabled(if: TestPostgres.url != nil, TestPostgres.skipped))
struct ChaosTests {
    static let count = ProcessInfo.processInfo.environment["CORRAL_CHAOS_JOBS"].flatMap(Int.init) ?? 200

    @Test("jobs on 4 workers, 2 SIGKILLed and restarted: each done once with its report, none lost, nothing left")
    func killedWorkers() async throws {
        try await TestPostgres.withDatabase { url in
            let tmp = TemporaryDirectory()
            defer { tmp.remove() }
            let file = try WorkerProcess.urlFile(url, in: tmp)
            let queue = try await PostgresJobQueue.open(url: url)
            var ids: [String] = []
            for start in stride(from: 0, to: Self.count, by: 500) {
                let jobs = (start..<min(start + 500, Self.count)).map { index in
                    WorkerTests.job(index % 10 == 0 ? "sleep 0.2; echo job-\(index)" : "echo job-\(index)")
                }
                ids += try await queue.enqueue(jobs)
            }
            let arguments = ["--parallelism", "1", "--lease", "1s", "--log-level", "info"]
            var workers = try (0..<4).map { _ in try WorkerProcess.start(urlFile: file, arguments) }
            var everyWorker = workers.map(\.process)
            var logs = ""

            // Two kills at random moments while the queue drains, each followed by a restart.
            let victims = Array((0..<4).shuffled().prefix(2))
            for (round, victim) in victims.enumerated() {
                let target = Int(Double(Self.count) * (round == 0 ? Double.random(in: 0.1...0.35) : Double.random(in: 0.45...0.7)))
                let deadline = Date().addingTimeInterval(120)
                while try await (queue.counts()[.done] ?? 0) < target && Date() < deadline {
                    try await Task.sleep(for: .milliseconds(Int.random(in: 5...40)))
                }
                kill(workers[victim].process.pid, SIGKILL)
                logs += workers[victim].process.wait(timeout: 10).standardError
                try await Task.sleep(for: .milliseconds(200))
                workers[victim] = try WorkerProcess.start(urlFile: file, arguments)
                everyWorker.append(workers[victim].process)
            }

            let deadline = Date().addingTimeInterval(Double(Self.count) * 0.5 + 60)
            while try await (queue.counts()[.done] ?? 0) < Self.count && Date() < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            let counts = try await queue.counts()
            #expect(counts == [.queued: 0, .running: 0, .done: Self.count, .cancelled: 0], "\(counts)")
            for worker in workers { kill(worker.process.pid, SIGTERM) }
            for worker in workers {
                let result = worker.process.wait(timeout: 30)
                #expect(result.status == 0, "a surviving worker drains and exits 0")
                logs += result.standardError
            }
            // Each job: done, with its own report, written once (at most one "job done" line
            // across every worker, the killed ones included; a worker killed between its
            // write and its log line leaves none).
            var written: [String: Int] = [:]
            for line in logs.split(separator: "\n") where line.contains("job done") {
                if let range = line.range(of: #"job\.id=[0-9a-f-]{36}"#, options: .regularExpression) {
                    written[String(line[range].dropFirst(7)), default: 0] += 1
                }
            }
            var missing = 0
            var ranAgain = 0
            for (index, id) in ids.enumerated() {
                let record = try await queue.get(id)
                if (record?.attempts ?? 0) > 1 { ranAgain += 1 }
                if record?.state != .done || WorkerTests.stdout(record) != "job-\(index)\n" { missing += 1 }
                #expect((written[id] ?? 0) <= 1, "job \(id) was reported \(written[id] ?? 0) times")
            }
            #expect(missing == 0, "\(missing) jobs without their report")
            #expect(written.values.reduce(0, +) >= Self.count - 4, "nearly every completion was logged once")
            let cleared = Date().addingTimeInterval(10)
            while everyWorker.contains(where: { !CgroupCheck.busyRunCgroups(owner: $0.pid).isEmpty }) && Date() < cleared {
                usleep(50_000)
            }
            for process in everyWorker {
                #expect(!Leftovers.isRunning(process.pid))
                #expect(CgroupCheck.busyRunCgroups(owner: process.pid).isEmpty, "a run of worker \(process.pid) is left")
            }
            print("chaos: \(Self.count) jobs, workers \(victims) SIGKILLed and restarted, \(written.count) completions logged, \(ranAgain) jobs taken again after a lost lease")
            await queue.close()
        }
    }
}
