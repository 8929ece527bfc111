import CorralTestSupport
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// Certificates made by openssl at test time: a CA, a server certificate it signed for
/// `localhost` only (no IP entry), and a self-signed one for `localhost` that no one trusts.
struct TestCertificates {
    let directory: String
    var caFile: String { directory + "/ca.pem" }

    init(_ tmp: TemporaryDirectory) throws {
        directory = tmp.path + "/tls"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try Self.openssl(["req", "-x509"] + ec + ["-keyout", directory + "/ca.key", "-out", caFile, "-days", "1",
                          "-subj", "/CN=corral test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                          "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        try Self.openssl(["req"] + ec + ["-keyout", directory + "/server.key", "-out", directory + "/server.csr", "-subj", "/CN=localhost"])
        let extensions = directory + "/server.ext"
        try "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n".write(toFile: extensions, atomically: true, encoding: .utf8)
        try Self.openssl(["x509", "-req", "-in", directory + "/server.csr", "-CA", caFile, "-CAkey", directory + "/ca.key",
                          "-CAcreateserial", "-out", directory + "/server.pem", "-days", "1", "-extfile", extensions])
        try Self.openssl(["req", "-x509"] + ec + ["-keyout", directory + "/untrusted.key", "-out", directory + "/untrusted.pem", "-days", "1",
                          "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
    }

    static func openssl(_ arguments: [String]) throws {
        let result = try Spawn.run("/usr/bin/openssl", arguments)
        guard result.status == 0 else { throw FixtureError("openssl \(arguments.joined(separator: " ")): \(result.standardError)") }
    }
}

/// An HTTPS receiver for callbacks on 127.0.0.1 (swift-nio-ssl): records each request that
/// arrives complete over TLS and answers 200.
final class TLSCallbackReceiver: Sendable {
    let port: Int
    private let channel: any Channel
    private let requests: RequestLog

    final class RequestLog: Sendable {
        private let list = Mutex<[CallbackReceiver.Received]>([])
        var all: [CallbackReceiver.Received] { list.withLock { $0 } }
        func add(_ request: CallbackReceiver.Received) { list.withLock { $0.append(request) } }
    }

    init(certificate: String, key: String) async throws {
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        let context = try NIOSSLContext(configuration: configuration)
        let requests = RequestLog()
        self.requests = requests
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try child.pipeline.syncOperations.addHandler(RequestHandler(log: requests))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress?.port ?? 0
    }

    var received: [CallbackReceiver.Received] { requests.all }

    func stop() async {
        try? await channel.close()
    }

    /// Reads one request (header and Content-Length body), records it, answers 200, closes.
    final class RequestHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let log: RequestLog
        var data: [UInt8] = []

        init(log: RequestLog) { self.log = log }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            self.data += buffer.readableBytesView
            guard let end = CallbackReceiver.find(self.data, [13, 10, 13, 10]) else { return }
            var headers: [String: String] = [:]
            for line in String(decoding: self.data[..<end], as: UTF8.self).split(separator: "\r\n").dropFirst() {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2 { headers[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces) }
            }
            let length = Int(headers["content-length"] ?? "0") ?? 0
            guard self.data.count >= end + 4 + length else { return }
            log.add(CallbackReceiver.Received(headers: headers, body: Data(self.data[(end + 4)..<(end + 4 + length)])))
            let answer = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(answer)).whenComplete { _ in channel.close(promise: nil) }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
