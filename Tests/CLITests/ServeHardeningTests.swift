import Corral
import CorralTestSupport
import Foundation
import LoopbackHTTP
import Testing

/// Attacks on a real `corral serve`: clients that never finish a request, more connections
/// than it takes, bodies larger than its memory budget; its fail-closed start and its token.
/// In the `corral serve` suite (serialized with its other tests).
extension ServeCommandTests {
    @Test("200 half-sent requests are closed after --idle-timeout, a body sent a byte at a time after --body-timeout; descriptors come back")
    func slowClients() async throws {
        let server = try Server.start(["--no-isolate", "--idle-timeout", "1s", "--body-timeout", "2s", "--log-level", "warning"])
        defer { server.tmp.remove() }
        let before = server.resources().fds
        let clients = try (0..<200).map { _ in try RawClient(port: server.port) }
        for (index, client) in clients.enumerated() {
            client.send(index.isMultiple(of: 2) ? "POST /v1/run HTTP/1.1\r\nHost: x\r\nContent-Le" : "GET /v1/vers")
        }
        let sent = Date()
        #expect(Self.wait(10) { server.resources().fds >= before + 200 }, "the server did not take the 200 connections")
        #expect(Self.wait(10) { clients.allSatisfy { $0.closedByPeer() } },
                "\(clients.filter { !$0.closedByPeer() }.count) of 200 half-sent requests still open")
        let elapsed = Date().timeIntervalSince(sent)
        #expect(elapsed >= 0.9, "closed \(elapsed) s after they were sent, before the idle timeout of 1 s")
        #expect(Self.wait(5) { server.resources().fds <= before + 2 }, "descriptors \(before) → \(server.resources().fds)")

        // A byte every 0.3 s never lets the idle timeout pass: the body timeout cuts it.
        let dribbler = try RawClient(port: server.port)
        let started = Date()
        dribbler.send("POST /v1/run HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        let cut: Double? = try await onThread {
            while Date().timeIntervalSince(started) < 12 {
                usleep(300_000)
                if dribbler.closedByPeer() { return Date().timeIntervalSince(started) }
                dribbler.send(" ")
            }
            return nil
        }
        #expect(cut.map { $0 >= 1.9 && $0 < 6 } == true, "a dribbled body was cut after \(cut.map { "\($0) s" } ?? "never") (body timeout 2 s)")
        #expect(try server.request("GET", "/v1/version").status == 200)
        kill(server.process.pid, SIGTERM)
        #expect(server.process.wait(timeout: 30).status == 0)
    }

    @Test("connections past --max-connections are answered 503 (JSON) and closed, none held; the server serves again once the others go")
    func connectionLimit() async throws {
        let server = try Server.start(["--no-isolate", "--max-connections", "8", "--log-level", "warning"])
        defer { server.tmp.remove() }
        let before = server.resources().fds
        let held = try (0..<8).map { _ in try RawClient(port: server.port) }
        #expect(Self.wait(10) { server.resources().fds >= before + 8 })
        var answers: [String] = []
        for _ in 0..<100 {
            let (answer, closed) = try RawClient(port: server.port).readUntilClosed(timeout: 3)
            answers.append(closed ? answer : "still open after 3 s: \(answer)")
            if !closed { break } // the old server: no point waiting for 99 more
        }
        #expect(answers.count == 100 && answers.allSatisfy { $0.hasPrefix("HTTP/1.1 503 ") }, "\(answers.prefix(2))")
        let first = answers.first ?? ""
        let body = first.range(of: "\r\n\r\n").map { String(first[$0.upperBound...]) } ?? ""
        let error = (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["error"] as? String
        #expect(error?.contains("--max-connections") == true, "\(body)")
        #expect(answers.first?.lowercased().contains("retry-after: 1\r\n") == true)
        #expect(server.resources().fds <= before + 8 + 2, "descriptors \(before) → \(server.resources().fds)")
        for client in held { client.close() }
        // The server may see a request before the closes of the held connections: that one is refused too, and counted.
        var refusedWhileClosing = 0
        #expect(Self.wait(5) {
            let status = try? server.request("GET", "/v1/version").status
            if status == 503 { refusedWhileClosing += 1 }
            return status == 200
        })
        let metrics = try server.request("GET", "/metrics").text
        let expected = 100 + refusedWhileClosing
        #expect(metrics.contains("corral_rejected_requests_total{reason=\"too-many-connections\"} \(expected)\n"), "\(metrics)")
        kill(server.process.pid, SIGTERM)
        #expect(server.process.wait(timeout: 30).status == 0)
    }

    @Test("bodies past --max-bodies-in-flight get 503 or 413 and the server's memory does not grow by them; the budget comes back to 0")
    func bodyBudget() async throws {
        let mib = 1 << 20
        let server = try Server.start(["--no-isolate", "--max-body", "64M", "--max-bodies-in-flight", "64M", "--log-level", "warning"])
        defer { server.tmp.remove() }
        @Sendable func budgetInUse() -> Double? {
            let metrics = (try? server.request("GET", "/metrics").text) ?? ""
            let line = metrics.split(separator: "\n").first { $0.hasPrefix("corral_body_bytes_in_flight ") }
            return line.flatMap { Double($0.split(separator: " ")[1]) }
        }
        @Sendable func post(_ body: [UInt8]) throws -> HTTPResponse {
            try HTTPConnection(port: server.port).request("POST", "/v1/run", headers: [("Content-Type", "application/json")], body: body)
        }
        @Sendable func content(_ size: Int) -> [UInt8] {
            Array(#"{"processes": [{"args": ["/bin/true"]}], "files": [{"path": "big", "content": ""#.utf8)
                + [UInt8](repeating: UInt8(ascii: "x"), count: size) + Array(#""}]}"#.utf8)
        }
        #expect(try post(content(1000)).status == 200) // warm up
        let peakBefore = Self.peakKiB(server.process.pid)

        // A client declares 40 MiB and sends one byte: the 40 MiB are held before anything is read.
        let holder = try RawClient(port: server.port)
        holder.send("POST /v1/run HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(40 * mib)\r\n\r\n{")
        #expect(Self.wait(10) { budgetInUse() == Double(40 * mib) }, "in use: \(budgetInUse() ?? -1)")
        // Six bodies of 30 MiB at once (180 MiB): none fits beside it.
        let big = content(30 * mib)
        let answers = try await withThrowingTaskGroup(of: HTTPResponse.self) { group in
            for _ in 0..<6 { group.addTask { try await onThread { try post(big) } } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(answers.allSatisfy { $0.status == 503 && $0.headers["retry-after"] == "1" }, "\(answers.map { "\($0.status) \($0.text.prefix(160))" })")
        #expect(answers.first?.text.contains("--max-bodies-in-flight") == true)
        holder.close()
        #expect(Self.wait(10) { budgetInUse() == 0 }, "in use: \(budgetInUse() ?? -1)")

        // 8 MiB of [0,0,...]: small as text, a gigabyte parsed. Refused before parsing.
        let values = Array(#"{"processes": [{"args": ["/bin/true"]}], "pad": ["#.utf8) + Array(repeating: Array("0,".utf8), count: 4 * mib).flatMap { $0 } + Array("0]}".utf8)
        for _ in 0..<2 {
            let answer = try await onThread { try post(values) }
            #expect(answer.status == 413, "\(answer.status) \(answer.text.prefix(200))")
        }
        // What fits runs.
        let fits = try await onThread { try post(content(8 * mib)) }
        #expect(fits.status == 200 && Self.status(of: fits) == "ok", "\(fits.status) \(fits.text.prefix(200))")
        #expect(Self.wait(10) { budgetInUse() == 0 }, "in use: \(budgetInUse() ?? -1)")

        let sent = (6 * 30 + 2 * 8 + 8) * mib / 1024
        let grown = Self.peakKiB(server.process.pid) - peakBefore
        print("body budget: \(sent / 1024) MiB sent, the server's peak grew by \(grown / 1024) MiB (budget 64 MiB)")
        #expect(grown < (64 + 32) * 1024, "peak RSS grew by \(grown / 1024) MiB for \(sent / 1024) MiB of bodies, over a budget of 64 MiB")
        kill(server.process.pid, SIGTERM)
        #expect(server.process.wait(timeout: 30).status == 0)
    }

    @Test("fails closed: no isolation or no seccomp filter here refuses to start (exit 125, one line) unless --no-isolate or --seccomp none")
    func failsClosed() throws {
        func start(_ arguments: [String], lacking: String) throws -> Spawn.Result {
            let process = try Spawn.start(corralPath, ["serve", "--port", "0"] + arguments,
                                          environment: ["CORRAL_TEST_HOST_LACKS=\(lacking)", "PATH=/usr/bin:/bin"])
            return process.wait(timeout: 20) // the old server would serve: killed then, and not 125
        }
        let noSeccomp = try start([], lacking: "seccomp")
        #expect(noSeccomp.status == 125, "\(noSeccomp.standardError)")
        #expect(noSeccomp.standardError.split(separator: "\n").count == 1, "\(noSeccomp.standardError)")
        #expect(noSeccomp.standardError.contains("--seccomp none"), "\(noSeccomp.standardError)")
        let noIsolation = try start(["--seccomp", "none"], lacking: "isolation,seccomp")
        #expect(noIsolation.status == 125, "\(noIsolation.standardError)")
        #expect(noIsolation.standardError.contains("--no-isolate"), "\(noIsolation.standardError)")
        #expect(noIsolation.standardError.split(separator: "\n").count == 1, "\(noIsolation.standardError)")

        // Said explicitly, the operator gets what was asked for.
        let withoutFilter = try Server.start(["--seccomp", "none"], environment: ["CORRAL_TEST_HOST_LACKS": "seccomp"])
        defer { withoutFilter.tmp.remove() }
        #expect(try withoutFilter.request("GET", "/v1/version").status == 200)
        kill(withoutFilter.process.pid, SIGTERM)
        let stopped = withoutFilter.process.wait(timeout: 30)
        #expect(stopped.status == 0)
        #expect(stopped.standardError.contains("without a seccomp filter (--seccomp none)"), "\(stopped.standardError)")
        let unisolated = try Server.start(["--no-isolate"], environment: ["CORRAL_TEST_HOST_LACKS": "isolation,seccomp"])
        defer { unisolated.tmp.remove() }
        #expect(try unisolated.request("GET", "/v1/version").status == 200)
        kill(unisolated.process.pid, SIGTERM)
        #expect(unisolated.process.wait(timeout: 30).status == 0)
        let badProfile = try corral("serve", "--seccomp", "strict", "--port", "0")
        #expect(badProfile.status == 125 && badProfile.standardError.contains("--seccomp"), "\(badProfile.standardError)")
    }

    @Test("--token-file keeps the token out of /proc/PID/cmdline; a file others may read is refused; --token warns")
    func tokenFile() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let token = "file-token-\(getpid())"
        let path = directory.file("token")
        try (token + "\n").write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, 0o600)
        let server = try Server.start(["--no-isolate", "--token-file", path])
        defer { server.tmp.remove() }
        let commandLine = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(server.process.pid)/cmdline"))) ?? Data()
        #expect(!commandLine.isEmpty && !String(decoding: commandLine, as: UTF8.self).contains(token))
        #expect(try server.request("GET", "/v1/version").status == 401)
        let authorized = try HTTPConnection(port: server.port).request("GET", "/v1/version", headers: [("Authorization", "Bearer \(token)")])
        #expect(authorized.status == 200, "the file's token, its newline dropped, is the token")
        kill(server.process.pid, SIGTERM)
        let stopped = server.process.wait(timeout: 30)
        #expect(stopped.status == 0)
        #expect(!stopped.standardError.contains("warning: --token"), "\(stopped.standardError)")

        chmod(path, 0o644)
        let readable = try Spawn.start(corralPath, ["serve", "--no-isolate", "--port", "0", "--token-file", path]).wait(timeout: 20)
        #expect(readable.status == 125, "\(readable.standardError)")
        #expect(readable.standardError.contains("chmod 600"), "\(readable.standardError)")

        let onCommandLine = try Server.start(["--no-isolate", "--token", token])
        defer { onCommandLine.tmp.remove() }
        kill(onCommandLine.process.pid, SIGTERM)
        let warned = onCommandLine.process.wait(timeout: 30)
        #expect(warned.standardError.contains("warning: --token on the command line can be read by other processes"), "\(warned.standardError)")
    }

    /// The peak resident memory (VmHWM) of a process, KiB.
    static func peakKiB(_ pid: pid_t) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
        return Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "") ?? -1
    }
}

/// A client socket that sends exactly what it is told (half a request, say) and can tell
/// whether the server closed it.
final class RawClient: @unchecked Sendable { // used from one thread at a time
    private var fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw FixtureError("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw FixtureError("connect: \(reason)")
        }
    }

    deinit { close() }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Sends `text`; a connection the server closed is left as it is.
    func send(_ text: String) {
        var bytes = Array(text.utf8)
        _ = Glibc.send(fd, &bytes, bytes.count, Int32(MSG_NOSIGNAL))
    }

    /// Whether the server has closed the connection (end of file or reset), looking without
    /// waiting; what it sent before is read and dropped.
    func closedByPeer() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let got = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if got == 0 { return true }
            if got < 0 { return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR }
        }
    }

    /// What the server sends until it closes the connection, or until `timeout` seconds
    /// pass (then `closed` is false).
    func readUntilClosed(timeout: Double) -> (text: String, closed: Bool) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 50) > 0 else { continue }
            let got = recv(fd, &buffer, buffer.count, 0)
            if got <= 0 { return (String(decoding: received, as: UTF8.self), true) }
            received += buffer[..<got]
        }
        return (String(decoding: received, as: UTF8.self), false)
    }
}
