import Corral
import CorralServer
import CorralTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import LoopbackHTTP
import NIOCore

/// What this host offers isolation, probed once.
let testHostSupport = HostSupport.probe(configuration: RunnerConfiguration())

/// A configuration for tests: two slots, a small queue, isolation on when the host allows it
/// (a server refuses to start where it cannot isolate as configured: the tests say what
/// this host can do), without a seccomp filter where there is none.
func testConfiguration(_ change: (inout ServerConfiguration) -> Void = { _ in }) -> ServerConfiguration {
    var configuration = ServerConfiguration(port: 0, parallelism: 2, queue: 4, isolate: testHostSupport.isolation,
                                            seccomp: testHostSupport.seccomp ? .standard : .none, shutdownGrace: .seconds(1))
    change(&configuration)
    return configuration
}

/// A server on a real loopback socket (HummingbirdTesting's live framework) for the time of
/// `body`.
func withServer<T: Sendable>(_ configuration: ServerConfiguration = testConfiguration(),
                             _ body: @Sendable (ServerHarness) async throws -> T) async throws -> T {
    var logger = Logger(label: "corral-test")
    logger.logLevel = .warning
    let server = try CorralServer(configuration: configuration, logger: logger)
    return try await server.application().test(.live) { client in
        try await body(ServerHarness(server: server, client: client, port: client.port ?? 0))
    }
}

struct Answer: Sendable {
    let status: Int
    let headers: [String: String]
    let body: Data

    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:]
    }
    var text: String { String(decoding: body, as: UTF8.self) }
}

struct ServerHarness: Sendable {
    let server: CorralServer
    let client: any TestClientProtocol
    let port: Int

    func get(_ path: String, token: String? = nil) async throws -> Answer {
        try await execute(path, .get, body: nil, token: token)
    }

    func post(_ path: String = "/v1/run", json: String, token: String? = nil) async throws -> Answer {
        try await execute(path, .post, body: Data(json.utf8), token: token)
    }

    func run(_ job: JobBody, token: String? = nil) async throws -> Answer {
        try await execute("/v1/run", .post, body: job.data, token: token)
    }

    /// GET routes through HummingbirdTesting's client; POST on a connection of its own, from
    /// a thread of its own (a blocking client), so that several can be in flight.
    private func execute(_ path: String, _ method: HTTPRequest.Method, body: Data?, token: String?) async throws -> Answer {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        guard method == .get else {
            let port = self.port
            let fields = headers.map { ($0.name.rawName, $0.value) }
            return try await onThread {
                let response = try HTTPConnection(port: port).request(method.rawValue, path, headers: fields, body: body.map(Array.init))
                return Answer(status: response.status, headers: response.headers, body: Data(response.body))
            }
        }
        let response = try await client.executeRequest(uri: path, method: method, headers: headers, body: nil)
        var names: [String: String] = [:]
        for field in response.headers { names[field.name.canonicalName] = field.value }
        return Answer(status: Int(response.status.code), headers: names, body: Data(buffer: response.body))
    }

    /// A request on a connection of its own, from a thread of its own (for concurrent ones).
    func runOnOwnConnection(_ job: JobBody) async throws -> Answer {
        let body = job.data
        let port = self.port
        return try await onThread {
            let connection = HTTPConnection(port: port)
            let response = try connection.request("POST", "/v1/run", headers: [("Content-Type", "application/json")], body: Array(body))
            return Answer(status: response.status, headers: response.headers, body: Data(response.body))
        }
    }

    /// `GET /metrics`, as name{labels} → value.
    func metrics() async throws -> [String: Double] {
        let answer = try await get("/metrics")
        var values: [String: Double] = [:]
        for line in answer.text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let value = Double(parts[1]) { values[String(parts[0])] = value }
        }
        return values
    }
}

/// A job spec as JSON bytes.
struct JobBody: Sendable {
    let data: Data

    init(_ object: [String: Any]) {
        data = try! JSONSerialization.data(withJSONObject: object)
    }
}

/// A single-process job.
func job(_ args: [String], limits: [String: Any] = [:], extra: [String: Any] = [:], files: [[String: Any]] = [],
         collect: [[String: Any]] = []) -> JobBody {
    var process: [String: Any] = ["args": args]
    if !limits.isEmpty { process["limits"] = limits }
    for (key, value) in extra { process[key] = value }
    var job: [String: Any] = ["processes": [process]]
    if !files.isEmpty { job["files"] = files }
    if !collect.isEmpty { job["collect"] = collect }
    return JobBody(job)
}

/// Polls `condition` every 10 ms for up to `seconds`.
func eventually(_ seconds: Double = 10, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}

/// The first process's report of a job report.
extension Answer {
    var process: [String: Any] {
        ((json["processes"] as? [[String: Any]])?.first) ?? [:]
    }
}
