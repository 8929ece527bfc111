import Crypto
import Foundation
import Logging
import NIOPosix
import NIOSSL
#if canImport(Glibc)
import Glibc
#endif

/// POSTs a finished job's report to its callback URL (`http://`, or `https://` with the
/// certificate verified, see ``CallbackTLS``): signed (`X-Corral-Signature:
/// sha256=HEX`, the HMAC-SHA256 of the body with `--callback-secret-file`'s secret), to an
/// address ``CallbackPolicy`` permits once the name is resolved (the connection goes to that
/// address), redirects never followed, retried with doubling delays (6 attempts in all), each
/// attempt counted in `corral_callback_attempts_total{result}`. The blocking socket work runs
/// on NIO's thread pool, never on the cooperative pool. Deliveries in flight when the process
/// stops are not retried after it (a client can always GET the job).
struct CallbackSender: Sendable {
    enum Result: String, Sendable, CaseIterable {
        /// A 2xx answer.
        case delivered
        /// No connection, a timeout, or another answer: tried again.
        case failed
        /// A destination this server may not call (a resolved address outside the policy, a
        /// redirect): never tried again.
        case refused
    }

    static let attempts = 6

    let policy: CallbackPolicy
    /// The signature's key (`--callback-secret-file`).
    let secret: [UInt8]
    /// The delay before the first retry; each next one doubles.
    let firstDelay: Duration
    /// The TLS client context of `https://` callbacks (verification on; `--callback-ca`).
    let tls: NIOSSLContext?
    let metrics: ServerMetrics
    let logger: Logger

    func signature(_ body: Data) -> String {
        "sha256=" + HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: secret)).map { String(format: "%02x", $0) }.joined()
    }

    func deliver(jobID: String, url: String, body: Data) async {
        let target: CallbackPolicy.Target
        do throws(CallbackRefusal) {
            target = try policy.check(url)
        } catch {
            metrics.callback(.refused)
            logger.warning("callback refused", metadata: ["job.id": .string(jobID), "reason": .string(error.message)])
            return
        }
        let signature = signature(body)
        var delay = firstDelay
        for attempt in 1...Self.attempts {
            let (result, detail) = await self.attempt(target, jobID: jobID, body: body, signature: signature)
            metrics.callback(result)
            switch result {
            case .delivered:
                logger.debug("callback delivered", metadata: ["job.id": .string(jobID), "attempt": .stringConvertible(attempt)])
                return
            case .refused:
                logger.warning("callback refused", metadata: ["job.id": .string(jobID), "reason": .string(detail)])
                return
            case .failed:
                logger.notice("callback failed", metadata: ["job.id": .string(jobID), "attempt": .stringConvertible(attempt), "reason": .string(detail)])
            }
            if attempt < Self.attempts {
                try? await Task.sleep(for: delay)
                delay *= 2
            }
        }
    }

    /// One attempt: the name resolved and every address checked (on the thread pool), then
    /// the request over plain TCP (blocking, on the thread pool) or TLS (NIO, ``CallbackTLS``).
    private func attempt(_ target: CallbackPolicy.Target, jobID: String, body: Data, signature: String) async -> (Result, String) {
        let pool = NIOThreadPool.singleton
        guard let checked = try? await pool.runIfActive({ self.addresses(of: target) }) else {
            return (.failed, "the thread pool is not running")
        }
        let addresses: [[UInt8]]
        switch checked {
        case .success(let list): addresses = list
        case .failure(let refusal): return (refusal.result, refusal.detail)
        }
        let hostHeader = target.host.contains(":") && !target.host.hasPrefix("[") ? "[\(target.host)]" : target.host
        var request = "POST \(target.path) HTTP/1.1\r\nHost: \(hostHeader):\(target.port)\r\nContent-Type: application/json\r\n"
        request += "Content-Length: \(body.count)\r\nX-Corral-Signature: \(signature)\r\nX-Corral-Job-Id: \(jobID)\r\nConnection: close\r\n\r\n"
        let bytes = Array(request.utf8) + Array(body)
        let answer: [UInt8]
        if target.secure {
            guard let tls else { return (.refused, "https callbacks are not set up on this server") }
            switch await CallbackTLS.exchange(addresses: addresses, port: target.port, host: target.host, literal: target.literal != nil,
                                              request: bytes, context: tls) {
            case .success(let got): answer = got
            case .failure(let failure): return (.failed, failure.message)
            }
        } else {
            guard let got = try? await pool.runIfActive({ Self.exchangePlain(addresses, port: target.port, request: bytes) }) else {
                return (.failed, "the thread pool is not running")
            }
            switch got {
            case .success(let bytes): answer = bytes
            case .failure(let failure): return (.failed, failure.message)
            }
        }
        let line = String(decoding: answer.prefix { $0 != 0x0D && $0 != 0x0A }, as: UTF8.self)
        let parts = line.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else { return (.failed, "no HTTP answer") }
        switch status {
        case 200..<300: return (.delivered, "")
        case 300..<400: return (.refused, "answered \(status): redirects are not followed")
        default: return (.failed, "answered \(status)")
        }
    }

    struct Refusal: Error {
        let result: Result
        let detail: String
    }

    /// The addresses to connect to (blocking: resolves the name); refused when one of them is
    /// not allowed: a name that also points inside cannot be used to reach it.
    private func addresses(of target: CallbackPolicy.Target) -> Swift.Result<[[UInt8]], Refusal> {
        if let literal = target.literal { return .success([literal]) }
        let addresses = Self.resolve(target.host)
        guard !addresses.isEmpty else { return .failure(Refusal(result: .failed, detail: "\(target.host) does not resolve")) }
        guard addresses.allSatisfy({ policy.permits($0, named: true) }) else {
            return .failure(Refusal(result: .refused, detail: "\(target.host) resolves to an address this server may not call"))
        }
        return .success(addresses)
    }

    /// Plain TCP (blocking): the request to the first checked address that takes the
    /// connection; the answer's first bytes.
    private static func exchangePlain(_ addresses: [[UInt8]], port: Int, request bytes: [UInt8]) -> Swift.Result<[UInt8], CallbackTLSFailure> {
        var connected: Int32?
        for address in addresses {
            if let fd = Self.connect(address, port: port) { connected = fd; break }
        }
        guard let fd = connected else { return .failure(CallbackTLSFailure(message: "cannot connect: \(String(cString: strerror(errno)))")) }
        defer { close(fd) }
        var sent = 0
        while sent < bytes.count {
            let wrote = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if wrote < 0 && errno == EINTR { continue }
            guard wrote > 0 else { return .failure(CallbackTLSFailure(message: "send: \(String(cString: strerror(errno)))")) }
            sent += wrote
        }
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 512)
        while !answer.contains(0x0A) && answer.count < 4096 {
            let got = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { break }
            answer += chunk[..<got]
        }
        return .success(answer)
    }

    static func resolve(_ host: String) -> [[UInt8]] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0 else { return [] }
        defer { freeaddrinfo(list) }
        var addresses: [[UInt8]] = []
        var next = list
        while let entry = next {
            if entry.pointee.ai_family == AF_INET, let raw = entry.pointee.ai_addr {
                var address = raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                addresses.append(withUnsafeBytes(of: &address) { Array($0) })
            } else if entry.pointee.ai_family == AF_INET6, let raw = entry.pointee.ai_addr {
                var address = raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                let bytes = withUnsafeBytes(of: &address) { Array($0) }
                let mapped = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
                addresses.append(mapped ? Array(bytes[12...]) : bytes)
            }
            next = entry.pointee.ai_next
        }
        return addresses
    }

    /// A TCP connection to `address` (4 or 16 bytes), with 5-second send and receive timeouts
    /// (the connect too); nil on failure, errno set.
    static func connect(_ address: [UInt8], port: Int) -> Int32? {
        let family = address.count == 4 ? AF_INET : AF_INET6
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let result: Int32
        if family == AF_INET {
            var socketAddress = sockaddr_in()
            socketAddress.sin_family = sa_family_t(AF_INET)
            socketAddress.sin_port = in_port_t(UInt16(port).bigEndian)
            withUnsafeMutableBytes(of: &socketAddress.sin_addr) { $0.copyBytes(from: address) }
            result = withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        } else {
            var socketAddress = sockaddr_in6()
            socketAddress.sin6_family = sa_family_t(AF_INET6)
            socketAddress.sin6_port = in_port_t(UInt16(port).bigEndian)
            withUnsafeMutableBytes(of: &socketAddress.sin6_addr) { $0.copyBytes(from: address) }
            result = withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            errno = code
            return nil
        }
        return fd
    }
}
