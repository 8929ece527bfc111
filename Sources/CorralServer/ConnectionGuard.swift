import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import Synchronization

/// The connections open at once, against `--max-connections`.
final class ConnectionCounter: Sendable {
    let limit: Int
    private let open = Mutex(0)

    init(limit: Int) {
        self.limit = limit
    }

    var count: Int { open.withLock { $0 } }

    /// Counts one more connection if there is room; false if not.
    func admit() -> Bool {
        open.withLock { open in
            guard open < limit else { return false }
            open += 1
            return true
        }
    }

    func closed() {
        open.withLock { $0 -= 1 }
    }
}

/// HTTP/1.1 as Hummingbird serves it, with Corral's guards: a connection past the limit is
/// answered 503 and closed before anything of it is read; a connection with no request part
/// for `idleTimeout` (waiting for a request, or in the middle of one: a header sent by
/// halves) is closed (Hummingbird's idle timeout); a body that has not arrived within
/// `bodyTimeout` after its header is cut off, closing the connection.
struct GuardedHTTP1: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let inner: HTTP1Channel
    let connections: ConnectionCounter
    let metrics: ServerMetrics

    static func builder(connections: ConnectionCounter, idleTimeout: Duration, bodyTimeout: Duration,
                        metrics: ServerMetrics) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            let configuration = HTTP1Channel.Configuration(additionalChannelHandlers: [BodyDeadline(timeout: TimeAmount(bodyTimeout))],
                                                           idleTimeout: TimeAmount(idleTimeout))
            return GuardedHTTP1(inner: HTTP1Channel(responder: responder, configuration: configuration),
                                connections: connections, metrics: metrics)
        }
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        do {
            try channel.pipeline.syncOperations.addHandler(ConnectionLimit(connections: connections, metrics: metrics))
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return inner.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

/// First in a connection's pipeline: counts it, or, past the limit, answers 503 (raw bytes,
/// nothing of the request read) and closes it.
final class ConnectionLimit: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let connections: ConnectionCounter
    private let metrics: ServerMetrics
    private var decided = false
    private var refused = false

    init(connections: ConnectionCounter, metrics: ServerMetrics) {
        self.connections = connections
        self.metrics = metrics
    }

    static let refusal: String = {
        let body = #"{"error":"this server has as many connections open as it takes (--max-connections); retry later"}"#
        return "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: \(body.utf8.count)\r\n"
            + "retry-after: 1\r\nconnection: close\r\n\r\n" + body
    }()

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { decide(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        decide(context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !refused { context.fireChannelRead(data) } // a refused connection's bytes are dropped
    }

    private func decide(_ context: ChannelHandlerContext) {
        guard !decided else { return }
        decided = true
        if connections.admit() {
            let connections = self.connections
            context.channel.closeFuture.whenComplete { _ in connections.closed() }
            return
        }
        refused = true
        metrics.rejected(.tooManyConnections)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: Self.refusal))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }
}

/// After a request's header: its body must be complete within `timeout`, or the connection
/// is closed (a body sent a byte at a time would otherwise hold its connection and its
/// share of the body budget for good).
final class BodyDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            deadline?.cancel()
            let channel = context.channel
            deadline = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        case .end:
            deadline?.cancel()
            deadline = nil
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }
}
