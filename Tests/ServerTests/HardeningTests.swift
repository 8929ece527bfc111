import Corral
import CorralServer
import CorralTestSupport
import Foundation
import Logging
import LoopbackHTTP
import Testing

/// What a client may not do to the server, and how it starts: every error answer is JSON,
/// the host's network only when allowed, no start where it cannot isolate as it says.
@Suite("Server hardening", .serialized, .cgroupExclusive)
struct HardeningTests {
    @Test("404 (an unknown route, a method a route does not take) is {\"error\": ...} as documented")
    func errorsAreJSON() async throws {
        let document = try OpenAPIDocument.load()
        try await withServer { server in
            let schema = try document.schema(named: "Error")
            let port = server.port
            for (method, path) in [("GET", "/v2/run"), ("GET", "/v1/run"), ("POST", "/v1/health"), ("DELETE", "/metrics"), ("PUT", "/")] {
                let answer = try await onThread {
                    try HTTPConnection(port: port).request(method, path, headers: [("Content-Type", "application/json")],
                                                           body: method == "GET" ? nil : Array("{}".utf8))
                }
                #expect(answer.status == 404 || answer.status == 405, "\(method) \(path): \(answer.status)")
                #expect(answer.headers["content-type"]?.hasPrefix("application/json") == true, "\(method) \(path): \(answer.headers)")
                let value = try? JSONSerialization.jsonObject(with: Data(answer.body))
                #expect(value.map { document.validate($0, against: schema) } == [], "\(method) \(path): \(answer.text)")
                #expect((value as? [String: Any])?["error"] as? String == "no route \(method) \(path) (see Docs/openapi.json)", "\(answer.text)")
            }
        }
    }

    @Test("\"network\": \"host\" is a 400 naming processes[i].network unless the server allows it")
    func hostNetwork() async throws {
        let isolating = try CorralServer(configuration: testConfiguration(), logger: .init(label: "probe")).isolation != nil
        let hostNetwork = JobBody(["processes": [["args": ["/bin/true"]],
                                                 ["args": ["/bin/cat", "/proc/net/dev"], "isolate": true, "network": "host"]]])
        let document = try OpenAPIDocument.load()
        for isolate in [true, false] where isolate == false || isolating {
            try await withServer(testConfiguration { $0.isolate = isolate }) { server in
                let refused = try await server.run(hostNetwork)
                #expect(refused.status == 400, "isolate \(isolate): \(refused.text)")
                #expect(refused.json["path"] as? String == "processes[1].network", "\(refused.text)")
                #expect((refused.json["error"] as? String)?.contains("--allow-host-network") == true, "\(refused.text)")
                #expect(document.validate(refused.json, against: try document.responseSchema("POST", "/v1/run", status: 400)).isEmpty)
            }
        }
        guard isolating else {
            print("skipped: isolation is not available on this host, so no job of it gets the host's network")
            return
        }
        try await withServer(testConfiguration { $0.allowHostNetwork = true }) { server in
            let allowed = try await server.run(hostNetwork)
            #expect(allowed.status == 200, "\(allowed.text)")
            let second = (allowed.json["processes"] as? [[String: Any]])?.last ?? [:]
            let devices = ((second["stdout"] as? [String: Any])?["text"] as? String ?? "").split(separator: "\n").count
            #expect(devices > 3, "the host's network has more than a loopback: \(second)")
        }
    }

    @Test("fails closed: without isolation or a seccomp filter the server does not start unless told to go without")
    func failsClosed() throws {
        let logger = Logger(label: "test")
        let cases: [(HostSupport, String)] = [
            (HostSupport(isolation: false, seccomp: false), "--no-isolate"),
            (HostSupport(isolation: true, seccomp: false), "--seccomp none"),
        ]
        for (support, remedy) in cases {
            do {
                _ = try CorralServer(configuration: testConfiguration { $0.isolate = true; $0.seccomp = .standard; $0.hostSupport = support },
                                     logger: logger)
                Issue.record("a server started where \(support) (it should say \(remedy))")
            } catch {
                #expect(error.description.contains(remedy), "\(error.description)")
            }
        }
        let withoutFilter = try CorralServer(configuration: testConfiguration {
            $0.isolate = true
            $0.hostSupport = HostSupport(isolation: true, seccomp: false)
            $0.seccomp = .none
        }, logger: logger)
        #expect(withoutFilter.isolation?.seccomp == SeccompProfile.none)
        #expect(withoutFilter.notices.contains { $0.contains("--seccomp none") })
        let unisolated = try CorralServer(configuration: testConfiguration {
            $0.hostSupport = HostSupport(isolation: false, seccomp: false)
            $0.isolate = false
        }, logger: logger)
        #expect(unisolated.isolation == nil)
        let full = try CorralServer(configuration: testConfiguration {
            $0.isolate = true
            $0.seccomp = .standard
            $0.hostSupport = HostSupport(isolation: true, seccomp: true)
        }, logger: logger)
        #expect(full.isolation?.seccomp == .standard)
    }

    @Test("--token-file: one trailing newline dropped; a file others may read, an empty token, a directory are refused")
    func tokenFile() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        func write(_ name: String, _ text: String, mode: mode_t) throws -> String {
            let path = directory.file(name)
            try text.write(toFile: path, atomically: false, encoding: .utf8)
            chmod(path, mode)
            return path
        }
        #expect(try TokenFile.read(try write("plain", "s3cret\n", mode: 0o600)) == "s3cret")
        #expect(try TokenFile.read(try write("crlf", "s3cret\r\n", mode: 0o400)) == "s3cret")
        #expect(try TokenFile.read(try write("bare", "s3cret", mode: 0o600)) == "s3cret")
        for (path, words) in [(try write("shared", "s3cret\n", mode: 0o640), "chmod 600"),
                              (try write("world", "s3cret\n", mode: 0o604), "chmod 600"),
                              (try write("empty", "\n", mode: 0o600), "empty"),
                              (directory.path, "not a regular file"),
                              (directory.file("missing"), "No such file")] {
            #expect(throws: ServerError.self) { try TokenFile.read(path) }
            do { _ = try TokenFile.read(path) } catch { #expect(error.description.contains(words), "\(error.description)") }
        }
    }
}
