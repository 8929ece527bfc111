import Crypto
import CorralTestSupport
import Foundation
import LoopbackHTTP
import Testing

/// `https://` callbacks against a local TLS receiver whose certificates openssl makes at test
/// time: trusted through `--callback-ca`, delivered signed; a certificate no one trusts, and
/// one for another name, are refused (failed attempts, retried, never delivered).
@Suite("HTTPS callbacks", .serialized)
struct HTTPSCallbackTests {
    typealias Callbacks = CallbackTests

    static func start(_ tmp: TemporaryDirectory, _ certificates: TestCertificates) throws -> ServeProcess {
        // localhost by name; its loopback addresses (both families) named as networks.
        try ServeProcess.start(["--parallelism", "1", "--callback-allow", "localhost", "--callback-allow", "127.0.0.1",
                                "--callback-allow", "::1", "--callback-ca", certificates.caFile,
                                "--callback-secret-file", try Callbacks.secretFile(tmp), "--callback-retry-delay", "50ms",
                                "--log-level", "warning"])
    }

    static func queue(_ server: ServeProcess, callback url: String) throws -> String {
        let answer = try JobsRouteTests.call(server, "POST", "/v1/jobs?callback=\(url.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)",
                                             JobsRouteTests.job("echo secure"))
        #expect(answer.status == 202, "\(answer.text)")
        let id = try #require(answer.json["id"] as? String)
        #expect(try JobsRouteTests.wait(server, id).json["state"] as? String == "done")
        return id
    }

    /// Waits until the failed attempts reach `count`.
    static func failures(_ server: ServeProcess, reach count: Double) throws -> Double? {
        let name = #"corral_callback_attempts_total{result="failed"}"#
        let deadline = Date().addingTimeInterval(20)
        while (try Callbacks.metric(server, name) ?? 0) < count && Date() < deadline { usleep(50_000) }
        return try Callbacks.metric(server, name)
    }

    @Test("an https callback to a receiver with a certificate of the --callback-ca CA arrives signed (the name verified, the checked address connected)")
    func delivered() async throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let certificates = try TestCertificates(tmp)
        let receiver = try await TLSCallbackReceiver(certificate: certificates.directory + "/server.pem", key: certificates.directory + "/server.key")
        let server = try Self.start(tmp, certificates)
        defer { server.stop() }
        let id = try Self.queue(server, callback: "https://localhost:\(receiver.port)/hook?x=1")
        let deadline = Date().addingTimeInterval(10)
        while receiver.received.isEmpty && Date() < deadline { usleep(20_000) }
        await receiver.stop()
        let received = receiver.received
        #expect(received.count == 1, "delivered once")
        let request = try #require(received.first)
        let expected = "sha256=" + HMAC<SHA256>.authenticationCode(for: request.body, using: SymmetricKey(data: Data(Callbacks.secret.utf8)))
            .map { String(format: "%02x", $0) }.joined()
        #expect(request.headers["x-corral-signature"] == expected)
        #expect(request.headers["x-corral-job-id"] == id)
        let report = try #require(try JSONSerialization.jsonObject(with: request.body) as? [String: Any])
        #expect(report["status"] as? String == "ok")
        #expect(try Callbacks.metric(server, #"corral_callback_attempts_total{result="delivered"}"#) == 1)
    }

    @Test("an untrusted certificate (self-signed) is refused: every attempt counted failed, retried, never delivered")
    func untrustedRefused() async throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let certificates = try TestCertificates(tmp)
        let receiver = try await TLSCallbackReceiver(certificate: certificates.directory + "/untrusted.pem",
                                                     key: certificates.directory + "/untrusted.key")
        let server = try Self.start(tmp, certificates)
        defer { server.stop() }
        _ = try Self.queue(server, callback: "https://localhost:\(receiver.port)/hook")
        #expect(try Self.failures(server, reach: 6) == 6, "6 attempts, all failed")
        try await Task.sleep(for: .milliseconds(300))
        await receiver.stop()
        #expect(receiver.received.isEmpty, "no request reached the receiver over an unverified connection")
        #expect(try Callbacks.metric(server, #"corral_callback_attempts_total{result="delivered"}"#) ?? 0 == 0)
    }

    @Test("a trusted certificate for another name is refused: https://127.0.0.1 to a certificate made for localhost only")
    func wrongNameRefused() async throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let certificates = try TestCertificates(tmp)
        let receiver = try await TLSCallbackReceiver(certificate: certificates.directory + "/server.pem", key: certificates.directory + "/server.key")
        let server = try Self.start(tmp, certificates)
        defer { server.stop() }
        _ = try Self.queue(server, callback: "https://127.0.0.1:\(receiver.port)/hook")
        #expect(try Self.failures(server, reach: 6) == 6, "6 attempts, all failed")
        await receiver.stop()
        #expect(receiver.received.isEmpty, "the certificate does not name 127.0.0.1: nothing sent")
    }
}
