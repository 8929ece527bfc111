import NIOCore
import NIOPosix
import NIOSSL

/// The `https://` side of callbacks: TLS (1.2 or later) with the peer's certificate verified
/// against the system's trust store plus `--callback-ca` (a private CA), and its name checked
/// against the URL's host (an address literal: against the address). The connection goes to
/// an address ``CallbackPolicy`` checked after resolving the name; the name travels only in
/// SNI and the verification, so a DNS answer that changes after the check reaches nothing.
enum CallbackTLS {
    /// The client context, made once at start (a CA file that does not load stops the server).
    static func context(caFile: String?) throws(ServerError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .fullVerification
        configuration.minimumTLSVersion = .tlsv12
        if let caFile {
            let certificates: [NIOSSLCertificate]
            do {
                certificates = try NIOSSLCertificate.fromPEMFile(caFile)
            } catch {
                throw ServerError("--callback-ca \(caFile): not a PEM certificate file (\(error))")
            }
            guard !certificates.isEmpty else { throw ServerError("--callback-ca \(caFile): no certificate in it") }
            configuration.additionalTrustRoots = [.certificates(certificates)]
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw ServerError("callbacks over https: cannot make a TLS context: \(error)")
        }
    }

    /// Sends `request` over TLS to the first of `addresses` (all checked) that takes the
    /// connection, verifying the certificate for `host`; the answer's first bytes (up to its
    /// first line), or why there are none. At most 5 s to connect and 10 s in all.
    static func exchange(addresses: [[UInt8]], port: Int, host: String, literal: Bool, request: [UInt8],
                         context: NIOSSLContext) async -> Result<[UInt8], CallbackTLSFailure> {
        var failure = CallbackTLSFailure(message: "no address to connect to")
        for address in addresses {
            let socketAddress: SocketAddress
            do {
                socketAddress = try Self.socketAddress(address, port: port)
            } catch {
                return .failure(CallbackTLSFailure(message: "bad address: \(error)"))
            }
            let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
            do {
                channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connectTimeout(.seconds(5))
                    .connect(to: socketAddress) { channel in
                        channel.eventLoop.makeCompletedFuture {
                            // SNI and the name check: the URL's name; an address literal is
                            // checked against the certificate's IP entries instead.
                            let tls = try NIOSSLClientHandler(context: context, serverHostname: literal ? nil : host)
                            try channel.pipeline.syncOperations.addHandler(tls)
                            return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                        }
                    }
            } catch {
                failure = CallbackTLSFailure(message: "cannot connect: \(error)")
                continue
            }
            let raw = channel.channel
            let deadline = raw.eventLoop.scheduleTask(in: .seconds(10)) { raw.close(promise: nil) }
            defer { deadline.cancel() }
            do {
                let answer = try await channel.executeThenClose { inbound, outbound in
                    try await outbound.write(ByteBuffer(bytes: request))
                    var answer: [UInt8] = []
                    for try await chunk in inbound {
                        answer += chunk.readableBytesView
                        if answer.contains(0x0A) || answer.count >= 4096 { break }
                    }
                    return answer
                }
                return .success(answer)
            } catch {
                // A certificate that does not verify ends here: never tried over plain TCP.
                return .failure(CallbackTLSFailure(message: "TLS: \(error)"))
            }
        }
        return .failure(failure)
    }

    static func socketAddress(_ address: [UInt8], port: Int) throws -> SocketAddress {
        if address.count == 4 {
            return try SocketAddress(ipAddress: address.map(String.init).joined(separator: "."), port: port)
        }
        var groups: [String] = []
        for index in stride(from: 0, to: 16, by: 2) {
            groups.append(String(UInt16(address[index]) << 8 | UInt16(address[index + 1]), radix: 16))
        }
        return try SocketAddress(ipAddress: groups.joined(separator: ":"), port: port)
    }
}

struct CallbackTLSFailure: Error, Sendable {
    let message: String
}
