#if canImport(Glibc)
import Glibc
#endif

/// A TCP socket listening on an ephemeral port of the host's 127.0.0.1, for checking
/// whether a sandboxed program can reach the host's loopback. Closed on deinit.
public final class LoopbackListener {
    public let port: UInt16
    private let descriptor: Int32
    /// The listening socket's descriptor in this process.
    public var fileDescriptor: Int32 { descriptor }

    public init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw FixtureError("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0, listen(descriptor, 16) == 0 else {
            let error = errno
            close(descriptor)
            throw FixtureError("bind/listen on 127.0.0.1: errno \(error)")
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        self.descriptor = descriptor
        port = UInt16(bigEndian: address.sin_port)
    }

    deinit {
        close(descriptor)
    }
}
