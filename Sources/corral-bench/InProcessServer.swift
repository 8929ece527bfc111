import CorralServer
import Logging
import Synchronization

/// A `corral serve` inside the bench process, on a loopback port of its own, for the HTTP
/// measurements; cancelled when the measurement ends.
struct InProcessServer {
    let server: CorralServer
    let port: Int
    let serving: Task<Void, any Error>

    /// Starts it and waits until it listens; nil when it cannot start.
    static func start(_ configuration: ServerConfiguration, logger: Logger) async -> InProcessServer? {
        guard let server = try? CorralServer(configuration: configuration, logger: logger) else { return nil }
        let port = Mutex<Int?>(nil)
        let application = server.application { _, bound in port.withLock { $0 = bound } }
        let serving = Task { try await application.run() }
        while port.withLock({ $0 }) == nil {
            try? await Task.sleep(for: .milliseconds(5))
            if serving.isCancelled { return nil }
        }
        return InProcessServer(server: server, port: port.withLock { $0 }!, serving: serving)
    }
}
