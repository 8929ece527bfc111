import Corral
import CorralServer
import Foundation
import Logging
import LoopbackHTTP
import Synchronization

/// The judge figure over HTTP: one `POST /v1/run` of a job of one step with N tests
/// (`/bin/cat`, `exact`) against N `POST /v1/run` of a one-process job of the same run,
/// through `corral serve`'s API (the server in this process, one keep-alive client on
/// loopback), interleaved repeat by repeat; once as the server runs without isolation and,
/// where the host allows it, isolated (its default). The server's defaults apply to both
/// (limits, a tmpfs working directory of --max-disk).
enum JudgeHTTPBench {
    struct Result: Sendable {
        var isolated: Bool
        var tests: Int
        var repeats: Int
        /// Medians over the repeats, in ms.
        var jobWall: Double
        var sumOfTestRuns: Double
        var separateRequests: Double
        var jobOverSeparate: Double
        var overheadOverRuns: Double

        var text: String {
            String(format: "judge over HTTP%@, %d tests (median of %d interleaved repeats): one request %.1f ms; %d requests %.1f ms (job/requests %.3f); "
                   + "sum of the job's test runs %.1f ms (overhead %+.1f %%)",
                   isolated ? ", isolated" : "", tests, repeats, jobWall, tests, separateRequests, jobOverSeparate, sumOfTestRuns, overheadOverRuns * 100)
        }

        var json: String {
            func f(_ value: Double) -> String { String(format: "%.3f", value) }
            return "{\"isolated\": \(isolated), \"tests\": \(tests), \"repeats\": \(repeats), \"jobMillis\": \(f(jobWall)), "
                + "\"separateRequestsMillis\": \(f(separateRequests)), \"sumOfTestRunsMillis\": \(f(sumOfTestRuns)), "
                + "\"jobOverSeparate\": \(f(jobOverSeparate)), \"overheadOverRuns\": \(f(overheadOverRuns))}"
        }
    }

    static func measure(tests: Int, repeats: Int, isolated: Bool) async -> Result? {
        var logger = Logger(label: "corral-bench")
        logger.logLevel = .critical // the server is cancelled at the end, which it logs as an error
        let configuration = ServerConfiguration(port: 0, parallelism: 1, queue: 64, isolate: isolated)
        guard let running = await InProcessServer.start(configuration, logger: logger) else { return nil }
        defer { running.serving.cancel() }
        let server = running.server, bound = running.port
        if isolated && server.isolation == nil { return nil } // the host cannot isolate

        let lines = (0..<tests).map { "\($0 * 7919)\\n" }
        let testItems = lines.map { #"{"stdin": {"content": "\#($0)"}, "answer": {"content": "\#($0)"}}"# }.joined(separator: ", ")
        let stepsBody = Array(#"{"steps": [{"name": "test", "processes": [{"args": ["/bin/cat"]}], "checker": "exact", "tests": [\#(testItems)]}]}"#.utf8)
        let jobBodies = lines.map { Array(#"{"processes": [{"args": ["/bin/cat"], "stdin": {"content": "\#($0)"}}]}"#.utf8) }

        var jobs: [Double] = [], sums: [Double] = [], separates: [Double] = [], ratios: [Double] = [], overheads: [Double] = []
        for repeatIndex in 0..<(repeats + 1) {
            guard let measured = await onThread({ () -> (job: Double, runs: Double, separate: Double)? in
                let connection = HTTPConnection(port: bound)
                defer { connection.close() }
                func job() -> (Double, Double)? {
                    let started = monotonicNanos()
                    guard let response = try? connection.request("POST", "/v1/run", headers: [("Content-Type", "application/json")], body: stepsBody),
                          response.status == 200 else { return nil }
                    let wall = Double(monotonicNanos() - started) / 1e6
                    guard let runs = sumOfRuns(response.text, tests: tests) else { return nil }
                    return (wall, runs)
                }
                func separate() -> Double? {
                    let started = monotonicNanos()
                    for body in jobBodies {
                        guard let response = try? connection.request("POST", "/v1/run", headers: [("Content-Type", "application/json")], body: body),
                              response.status == 200, response.text.contains("\"status\":\"ok\"") else { return nil }
                    }
                    return Double(monotonicNanos() - started) / 1e6
                }
                // Alternate the order, so that a drift of the machine favours neither.
                if repeatIndex % 2 == 0 {
                    guard let job = job(), let separate = separate() else { return nil }
                    return (job.0, job.1, separate)
                }
                guard let separate = separate(), let job = job() else { return nil }
                return (job.0, job.1, separate)
            }) else { return nil }
            if repeatIndex == 0 { continue } // warm-up
            jobs.append(measured.job)
            sums.append(measured.runs)
            separates.append(measured.separate)
            ratios.append(measured.job / measured.separate)
            overheads.append(measured.job / measured.runs - 1)
        }
        func median(_ values: [Double]) -> Double { Summary(values).median }
        return Result(isolated: server.isolation != nil, tests: tests, repeats: repeats, jobWall: median(jobs), sumOfTestRuns: median(sums),
                      separateRequests: median(separates), jobOverSeparate: median(ratios), overheadOverRuns: median(overheads))
    }

    /// The sum of the tests' runs' wall times in a steps answer, in ms; nil unless every test passed.
    private static func sumOfRuns(_ text: String, tests: Int) -> Double? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              (object["ok"] as? Bool) == true,
              let steps = object["steps"] as? [[String: Any]], let items = steps.first?["tests"] as? [[String: Any]], items.count == tests else { return nil }
        var sum = 0.0
        for item in items {
            guard let processes = item["processes"] as? [[String: Any]], let wall = (processes.first?["wallTime"] as? NSNumber)?.doubleValue else { return nil }
            sum += wall
        }
        return sum * 1e3
    }

    /// Blocking client work on a thread of its own, waited for off the cooperative pool (the
    /// server in this process needs the pool).
    private static func onThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: work()) }.start()
        }
    }
}
