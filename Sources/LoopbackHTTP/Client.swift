#if canImport(Glibc)
import Glibc
#endif

/// A blocking HTTP/1.1 client with keep-alive, for loopback: Corral's server tests and
/// benchmark. It speaks just enough HTTP for them (Content-Length and chunked bodies) and
/// nothing more; every call blocks the calling thread, so call it from a thread of its own,
/// never from a Swift concurrency task that a server in the same process needs.
public final class HTTPConnection {
    public let host: String
    public let port: Int
    /// A read or write that takes longer fails.
    public let timeoutSeconds: Int
    private var fd: Int32 = -1
    private var buffer: [UInt8] = []

    public init(host: String = "127.0.0.1", port: Int, timeoutSeconds: Int = 120) {
        self.host = host
        self.port = port
        self.timeoutSeconds = timeoutSeconds
    }

    deinit { close() }

    /// Opens the connection (a request opens it by itself when needed).
    public func connect() throws(HTTPClientError) {
        close()
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socketFD >= 0 else { throw HTTPClientError("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &address.sin_addr) == 1 else {
            _ = Glibc.close(socketFD)
            throw HTTPClientError("not an IPv4 address: \(host)")
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        _ = setsockopt(socketFD, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(socketFD, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        _ = setsockopt(socketFD, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let error = errno
            _ = Glibc.close(socketFD)
            throw HTTPClientError("connect \(host):\(port): errno \(error)")
        }
        fd = socketFD
        buffer = []
    }

    public var isOpen: Bool { fd >= 0 }

    public func close() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
        buffer = []
    }

    /// Sends a request and reads the whole answer.
    public func request(_ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil)
        throws(HTTPClientError) -> HTTPResponse {
        try send(method, path, headers: headers, body: body)
        return try readResponse()
    }

    /// Sends a request without reading the answer (see ``readResponse()``).
    public func send(_ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil)
        throws(HTTPClientError) {
        if fd < 0 { try connect() }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        try write(Array(head.utf8) + (body ?? []))
    }

    /// Writes raw bytes on the connection.
    public func write(_ bytes: [UInt8]) throws(HTTPClientError) {
        if fd < 0 { try connect() }
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0 {
                if errno == EINTR { continue }
                let error = errno
                close()
                throw HTTPClientError("send: errno \(error)")
            }
            offset += written
        }
    }

    public func readResponse() throws(HTTPClientError) -> HTTPResponse {
        let headEnd = try readUntil([13, 10, 13, 10])
        let head = String(decoding: buffer[..<headEnd], as: UTF8.self)
        buffer.removeFirst(headEnd + 4)
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw HTTPClientError("bad status line: \(head)") }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingSpaces()
        }
        var body: [UInt8] = []
        if headers["transfer-encoding"]?.lowercased() == "chunked" {
            while true {
                let lineEnd = try readUntil([13, 10])
                let sizeText = String(decoding: buffer[..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
                buffer.removeFirst(lineEnd + 2)
                guard let size = Int(sizeText.trimmingSpaces(), radix: 16) else { throw HTTPClientError("bad chunk size") }
                try fill(size + 2)
                body += buffer[..<size]
                buffer.removeFirst(size + 2)
                if size == 0 { break }
            }
        } else if let length = headers["content-length"].flatMap({ Int($0) }) {
            try fill(length)
            body = Array(buffer[..<length])
            buffer.removeFirst(length)
        } else if headers["connection"]?.lowercased() == "close" {
            while try readMore() {}
            body = buffer
            buffer = []
        }
        if headers["connection"]?.lowercased() == "close" { close() }
        return HTTPResponse(status: status, headers: headers, body: body)
    }

    private func readUntil(_ marker: [UInt8]) throws(HTTPClientError) -> Int {
        var searched = 0
        while true {
            if buffer.count >= marker.count {
                for start in searched...(buffer.count - marker.count) where buffer[start..<start + marker.count].elementsEqual(marker) {
                    return start
                }
                searched = buffer.count - marker.count + 1
            }
            guard try readMore() else { throw HTTPClientError("connection closed before the answer was complete") }
        }
    }

    private func fill(_ count: Int) throws(HTTPClientError) {
        while buffer.count < count {
            guard try readMore() else { throw HTTPClientError("connection closed before the answer was complete") }
        }
    }

    /// False at end of stream.
    private func readMore() throws(HTTPClientError) -> Bool {
        guard fd >= 0 else { return false }
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            if count < 0 {
                let error = errno
                close()
                throw HTTPClientError(error == EAGAIN ? "timed out after \(timeoutSeconds) s" : "recv: errno \(error)")
            }
            if count == 0 { return false }
            buffer += chunk[..<count]
            return true
        }
    }
}

public struct HTTPResponse: Sendable {
    public let status: Int
    /// Names in lower case.
    public let headers: [String: String]
    public let body: [UInt8]

    public var text: String { String(decoding: body, as: UTF8.self) }
}

public struct HTTPClientError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension StringProtocol {
    fileprivate func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}
