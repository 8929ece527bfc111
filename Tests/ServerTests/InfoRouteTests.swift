import Corral
import CorralServer
import CorralTestSupport
import Foundation
import Testing

/// `/v1/health`, `/v1/version`, `/v1/doctor`, `/metrics`, checked against the OpenAPI document.
@Suite("GET routes and the OpenAPI document", .cgroupExclusive)
struct InfoRouteTests {
    @Test("health, version and doctor answer as documented")
    func documented() async throws {
        let document = try OpenAPIDocument.load()
        try await withServer { server in
            for path in ["/v1/health", "/v1/version", "/v1/doctor"] {
                let answer = try await server.get(path)
                #expect(answer.status == 200, "\(path)")
                let problems = document.validate(try JSONSerialization.jsonObject(with: answer.body),
                                                 against: try document.responseSchema("GET", path, status: 200))
                #expect(problems.isEmpty, "\(path): \(problems)")
            }
            let health = try await server.get("/v1/health").json
            #expect(health["ready"] as? Bool == true)
            #expect(health["inFlight"] as? Int == 0)
            #expect(health["queued"] as? Int == 0)
            #expect(health["parallelism"] as? Int == 2)
            #expect(health["queueLimit"] as? Int == 4)
            let version = try await server.get("/v1/version").json
            #expect(version["version"] as? String == CorralVersion.string)
            #expect(try await server.get("/v1/doctor").json["kernel"] as? String == HostReport.inspect().kernel)
            let unknown = try await server.get("/v2/run")
            #expect(unknown.status == 404)
        }
    }

    @Test("every route the server has is in the document, and the document has no other")
    func routesDocumented() throws {
        let document = try OpenAPIDocument.load()
        #expect(Set(document.paths.keys) == ["/v1/run", "/v1/jobs", "/v1/jobs/batch", "/v1/jobs/{id}", "/v1/health", "/v1/version", "/v1/doctor", "/metrics", "/v1/files", "/v1/files/{id}"])
        #expect(document.root["openapi"] as? String == "3.1.0")
        // Every schema a response refers to exists.
        for (path, operations) in document.paths {
            for (method, operation) in operations {
                for (status, response) in (operation as? [String: Any])?["responses"] as? [String: Any] ?? [:] {
                    // No body (204, HEAD) or bytes (a stored file): no schema to check.
                    let content = (response as? [String: Any])?["content"] as? [String: Any] ?? [:]
                    if content["application/json"] == nil && content["text/plain"] == nil { continue }
                    _ = try document.responseSchema(method, path, status: Int(status)!)
                }
            }
        }
    }

    @Test("/metrics is Prometheus text, every name prefixed corral_, with the documented series")
    func metrics() async throws {
        try await withServer { server in
            _ = try await server.run(job(["/bin/true"]))
            let answer = try await server.get("/metrics")
            #expect(answer.status == 200)
            #expect(answer.headers["content-type"]?.hasPrefix("text/plain") == true)
            var names = Set<String>()
            for line in answer.text.split(separator: "\n") {
                if line.hasPrefix("# TYPE ") {
                    names.insert(String(line.split(separator: " ")[2]))
                } else if !line.hasPrefix("#") {
                    let name = String(line.prefix { $0 != "{" && $0 != " " })
                    #expect(name.hasPrefix("corral_"), "\(line)")
                }
            }
            for expected in ["corral_runs_total", "corral_run_wall_seconds", "corral_run_cpu_seconds", "corral_run_memory_peak_bytes",
                             "corral_queue_depth", "corral_runs_in_flight", "corral_setup_errors_total", "corral_rejected_requests_total"] {
                #expect(names.contains(expected), "\(expected) missing from \(names.sorted())")
            }
            let values = try await server.metrics()
            #expect(values["corral_runs_total{status=\"ok\"}"] == 1)
            #expect(values["corral_run_memory_peak_bytes_count"] == 1)
            #expect(values["corral_runs_in_flight"] == 0)
            #expect(values["corral_queue_depth"] == 0)
        }
    }
}
