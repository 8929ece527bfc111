import Corral
import CorralServer
import Foundation
import Logging
import LoopbackHTTP
import Synchronization

/// Issue 6's figure: jobs per second of a `/bin/true` job through `corral serve`'s HTTP API
/// (the server in this process, clients on loopback, one keep-alive connection per client
/// thread), next to the library's own `JobRunner`
/// at the same parallelism, interleaved in small batches (library, HTTP, library, ...) so
/// that the machine's drift falls on both alike.
struct ServerBenchResult: Sendable {
    struct Level: Sendable {
        let parallelism: Int
        let libraryRate: Double
        let httpRate: Double
        var ratio: Double { httpRate / libraryRate }
    }

    let jobs: Int
    let batch: Int
    let isolated: Bool
    let levels: [Level]

    var json: String {
        let items = levels.map {
            "{\"parallelism\": \($0.parallelism), \"libraryJobsPerSecond\": \(Int($0.libraryRate)), "
                + "\"httpJobsPerSecond\": \(Int($0.httpRate)), \"ratio\": \(String(format: "%.3f", $0.ratio))}"
        }
        return "{\"jobs\": \(jobs), \"batch\": \(batch), \"isolated\": \(isolated), \"levels\": [\(items.joined(separator: ", "))]}"
    }

    var table: String {
        levels.map {
            "server, \(jobs) /bin/true jobs at parallelism \($0.parallelism)\(isolated ? ", isolated" : "") (interleaved in batches of \(batch)): "
                + "library \(Int($0.libraryRate))/s, HTTP \(Int($0.httpRate))/s, ratio \(String(format: "%.3f", $0.ratio))"
        }.joined(separator: "\n")
    }
}

enum ServerBench {
    static func measure(jobs: Int, isolated: Bool) async -> ServerBenchResult? {
        var logger = Logger(label: "corral-bench")
        logger.logLevel = .critical // the server is cancelled at the end, which it logs as an error
        let parallelism = [1, 2]
        let configuration = ServerConfiguration(port: 0, parallelism: parallelism.max()!, queue: 64, isolate: isolated)
        guard let running = await InProcessServer.start(configuration, logger: logger) else { return nil }
        defer { running.serving.cancel() }
        let server = running.server, bound = running.port

        // The job as the server runs it: its defaults filled in, its isolation, its working
        // directory (a tmpfs of --max-disk).
        let limits = Limits(cpuTime: .seconds(10), wallTime: .seconds(21), memory: 512 << 20, output: 16 << 20, processes: 64)
        let spec = JobSpec(processes: [ProcessSpec(name: "p0", args: ["/bin/true"], limits: limits, isolation: server.isolation)])
        let body = Array(#"{"processes": [{"args": ["/bin/true"]}]}"#.utf8)
        let runner = JobRunner(workdirLimit: server.workdirLimit)

        // Warm up both paths.
        guard await library(runner, spec, jobs: 20, parallelism: 2) != nil,
              await http(bound, body, jobs: 20, parallelism: 2) != nil else { return nil }
        var levels: [ServerBenchResult.Level] = []
        let batch = 50
        for level in parallelism {
            var librarySeconds = 0.0
            var httpSeconds = 0.0
            var done = 0
            while done < jobs {
                let count = min(batch, jobs - done)
                guard let librarySpent = await self.library(runner, spec, jobs: count, parallelism: level),
                      let httpSpent = await self.http(bound, body, jobs: count, parallelism: level) else { return nil }
                librarySeconds += librarySpent
                httpSeconds += httpSpent
                done += count
            }
            levels.append(.init(parallelism: level, libraryRate: Double(jobs) / librarySeconds, httpRate: Double(jobs) / httpSeconds))
        }
        return ServerBenchResult(jobs: jobs, batch: batch, isolated: server.isolation != nil, levels: levels)
    }

    /// Seconds for `jobs` jobs through `JobRunner`, `parallelism` tasks each running its share.
    private static func library(_ runner: JobRunner, _ spec: JobSpec, jobs: Int, parallelism: Int) async -> Double? {
        let start = monotonicNanos()
        let ok = await withTaskGroup(of: Bool.self) { group in
            for worker in 0..<parallelism {
                group.addTask {
                    for _ in stride(from: worker, to: jobs, by: parallelism) {
                        guard let report = try? await runner.run(spec), report.status == .ok else { return false }
                    }
                    return true
                }
            }
            return await group.allSatisfy { $0 }
        }
        return ok ? Double(monotonicNanos() - start) / 1e9 : nil
    }

    /// Seconds for `jobs` jobs through HTTP, `parallelism` client threads each sending its share.
    /// Blocking sockets, so on threads of their own, and waited for off the cooperative pool,
    /// which the server in this process needs.
    private static func http(_ port: Int, _ body: [UInt8], jobs: Int, parallelism: Int) async -> Double? {
        await withCheckedContinuation { continuation in
            Thread {
                let failures = Atomic<Int>(0)
                let done = DispatchGroup()
                let start = monotonicNanos()
                for worker in 0..<parallelism {
                    done.enter()
                    Thread {
                        defer { done.leave() }
                        let connection = HTTPConnection(port: port)
                        for _ in stride(from: worker, to: jobs, by: parallelism) {
                            guard let response = try? connection.request("POST", "/v1/run", headers: [("Content-Type", "application/json")], body: body),
                                  response.status == 200, response.text.contains("\"status\":\"ok\"") else { // one process: ok iff the job is
                                failures.add(1, ordering: .relaxed)
                                return
                            }
                        }
                    }.start()
                }
                done.wait()
                let seconds = Double(monotonicNanos() - start) / 1e9
                continuation.resume(returning: failures.load(ordering: .relaxed) == 0 ? seconds : nil)
            }.start()
        }
    }
}
