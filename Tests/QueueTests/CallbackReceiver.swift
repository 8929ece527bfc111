import CorralTestSupport
import Foundation
import Synchronization

/// A local HTTP receiver for callbacks on 127.0.0.1: records each request (its header lines
/// and body) and answers 500 to the first `failures` of them, 200 after.
final class CallbackReceiver: Sendable {
    struct Received: Sendable {
        let headers: [String: String]
        let body: Data
    }

    let port: UInt16
    private let listener: Int32
    private let failures: Int
    private let state = Mutex<[Received]>([])
    private let stopped = Atomic<Bool>(false)

    init(failures: Int = 0) throws {
        let socket = try LoopbackListener()
        port = socket.port
        listener = dup(socket.fileDescriptor)
        self.failures = failures
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    var received: [Received] { state.withLock { $0 } }

    func stop() {
        stopped.store(true, ordering: .relaxed)
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func serve() {
        while !stopped.load(ordering: .relaxed) {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            var data: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            var headers: [String: String] = [:]
            var bodyStart: Int?
            var length = 0
            while true {
                let got = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress!, $0.count, 0) }
                guard got > 0 else { break }
                data += buffer[..<got]
                if bodyStart == nil, let end = Self.find(data, [13, 10, 13, 10]) {
                    bodyStart = end + 4
                    for line in String(decoding: data[..<end], as: UTF8.self).split(separator: "\r\n").dropFirst() {
                        let parts = line.split(separator: ":", maxSplits: 1)
                        if parts.count == 2 { headers[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces) }
                    }
                    length = Int(headers["content-length"] ?? "0") ?? 0
                }
                if let bodyStart, data.count >= bodyStart + length { break }
            }
            let body = bodyStart.map { Data(data[$0..<min(data.count, $0 + length)]) } ?? Data()
            let count = state.withLock { list in
                list.append(Received(headers: headers, body: body))
                return list.count
            }
            let status = count <= failures ? "500 Internal Server Error" : "200 OK"
            let answer = Array("HTTP/1.1 \(status)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
            _ = answer.withUnsafeBytes { send(connection, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            close(connection)
        }
    }

    static func find(_ data: [UInt8], _ pattern: [UInt8]) -> Int? {
        guard data.count >= pattern.count else { return nil }
        for index in 0...(data.count - pattern.count) where Array(data[index..<index + pattern.count]) == pattern { return index }
        return nil
    }
}
