import Crypto
import CorralTestSupport
import Foundation
import LoopbackHTTP
import Testing

/// Job callbacks against a real local receiver: signed, retried, counted; and the SSRF
/// attempts refused (at enqueue, and after DNS resolution at send).
@Suite("Callbacks", .serialized)
struct CallbackTests {
    static let secret = "callback-secret-\(UUID().uuidString)"

    static func secretFile(_ tmp: TemporaryDirectory) throws -> String {
        let path = tmp.path + "/callback-secret"
        try Data(secret.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o600)
        return path
    }

    static func metric(_ server: ServeProcess, _ name: String) throws -> Double? {
        let text = String(decoding: try HTTPConnection(port: server.port).request("GET", "/metrics").body, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1))
        }
        return nil
    }

    @Test("the report is POSTed signed (HMAC-SHA256), retried after failures, every attempt in the metrics")
    func signedAndRetried() async throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let receiver = try CallbackReceiver(failures: 2)
        defer { receiver.stop() }
        let server = try ServeProcess.start(["--parallelism", "1", "--callback-allow", "127.0.0.1", "--callback-secret-file",
                                             try Self.secretFile(tmp), "--callback-retry-delay", "100ms", "--log-level", "warning"])
        defer { server.stop() }
        let url = "http://127.0.0.1:\(receiver.port)/hook?x=1"
        let answer = try JobsRouteTests.call(server, "POST", "/v1/jobs?callback=\(url.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)",
                                             JobsRouteTests.job("echo called"))
        #expect(answer.status == 202, "\(answer.text)")
        let id = try #require(answer.json["id"] as? String)
        let done = try JobsRouteTests.wait(server, id)
        #expect(done.json["state"] as? String == "done")
        let deadline = Date().addingTimeInterval(10)
        while receiver.received.count < 3 && Date() < deadline { usleep(20_000) }
        let received = receiver.received
        #expect(received.count == 3, "two failures, then delivered")
        for request in received {
            let expected = "sha256=" + HMAC<SHA256>.authenticationCode(for: request.body, using: SymmetricKey(data: Data(Self.secret.utf8)))
                .map { String(format: "%02x", $0) }.joined()
            #expect(request.headers["x-corral-signature"] == expected)
            #expect(request.headers["x-corral-job-id"] == id)
        }
        let report = try #require(try JSONSerialization.jsonObject(with: received.last?.body ?? Data()) as? [String: Any])
        #expect(report["status"] as? String == "ok")
        #expect(try Self.metric(server, #"corral_callback_attempts_total{result="failed"}"#) == 2)
        #expect(try Self.metric(server, #"corral_callback_attempts_total{result="delivered"}"#) == 1)
    }

    @Test("SSRF: callbacks off by default; loopback, metadata and unlisted hosts refused at enqueue; an allowed name that resolves to loopback refused at send")
    func ssrfRefused() async throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let receiver = try CallbackReceiver()
        defer { receiver.stop() }
        let off = try ServeProcess.start(["--parallelism", "1", "--log-level", "warning"])
        let refusedOff = try JobsRouteTests.call(off, "POST", "/v1/jobs?callback=http://127.0.0.1:\(receiver.port)/", JobsRouteTests.job("true"))
        #expect(refusedOff.status == 400 && refusedOff.json["path"] as? String == "callback", "\(refusedOff.text)")
        off.stop()

        // "localhost" is allowed by name: its addresses are loopback, never called unless a
        // network entry names them.
        let server = try ServeProcess.start(["--parallelism", "1", "--callback-allow", "localhost", "--callback-allow", "hooks.example",
                                             "--callback-secret-file", try Self.secretFile(tmp), "--callback-retry-delay", "50ms",
                                             "--log-level", "warning"])
        defer { server.stop() }
        for url in ["http://127.0.0.1:\(receiver.port)/", "http://169.254.169.254/latest/meta-data/", "http://[::1]:\(receiver.port)/",
                    "http://other.example/", "ftp://hooks.example/", "file:///etc/passwd", "http://user:pw@hooks.example/"] {
            let answer = try JobsRouteTests.call(server, "POST", "/v1/jobs?callback=\(url.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)",
                                                 JobsRouteTests.job("true"))
            #expect(answer.status == 400, "\(url): \(answer.text)")
            #expect(answer.json["path"] as? String == "callback", "\(url): \(answer.text)")
        }
        let accepted = try JobsRouteTests.call(server, "POST", "/v1/jobs?callback=http://localhost:\(receiver.port)/", JobsRouteTests.job("true"))
        #expect(accepted.status == 202, "\(accepted.text)")
        let id = try #require(accepted.json["id"] as? String)
        #expect(try JobsRouteTests.wait(server, id).json["state"] as? String == "done")
        let deadline = Date().addingTimeInterval(5)
        while try Self.metric(server, #"corral_callback_attempts_total{result="refused"}"#) != 1 && Date() < deadline { usleep(20_000) }
        #expect(try Self.metric(server, #"corral_callback_attempts_total{result="refused"}"#) == 1)
        try await Task.sleep(for: .milliseconds(300))
        #expect(receiver.received.isEmpty, "nothing reached the loopback receiver")
    }

    @Test("SSRF through IPv6 forms that carry an IPv4 address: NAT64, IPv4-compatible, 6to4, Teredo, local-use NAT64 refused even inside an allowed IPv6 network")
    func embeddedIPv4Refused() async throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        // The operator allows every IPv6 address (and the public 2000::/3 again): each URL
        // below is inside, yet carries loopback, link-local or the metadata address.
        let server = try ServeProcess.start(["--parallelism", "1", "--callback-allow", "::/0", "--callback-allow", "2000::/3",
                                             "--callback-secret-file", try Self.secretFile(tmp), "--log-level", "warning"])
        defer { server.stop() }
        for host in ["64:ff9b::a9fe:a9fe", "64:ff9b::127.0.0.1", "::127.0.0.1", "::169.254.169.254", "::ffff:169.254.169.254",
                     "2002:a9fe:a9fe::1", "2002:7f00:1::", "2002:0:1::", "2001:0:a9fe:a9fe::1", "2001:0:808:808:0:0:80ff:fffe",
                     "64:ff9b:1::a9fe:a9fe", "64:ff9b:1:a9fe:a9:fe00::"] {
            let url = "http://[\(host)]:8080/hook"
            let answer = try JobsRouteTests.call(server, "POST", "/v1/jobs?callback=\(url.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)",
                                                 JobsRouteTests.job("true"))
            #expect(answer.status == 400, "\(host): \(answer.text)")
            #expect(answer.json["path"] as? String == "callback", "\(host): \(answer.text)")
        }
        // The same forms carrying a public IPv4 address are inside the allowed network: taken.
        for host in ["64:ff9b::808:808", "2002:808:808::1", "2001:db8::1"] {
            let url = "http://[\(host)]:8080/hook"
            let answer = try JobsRouteTests.call(server, "POST", "/v1/jobs?callback=\(url.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)",
                                                 JobsRouteTests.job("true"))
            #expect(answer.status == 202, "\(host): \(answer.text)")
        }
    }
}
