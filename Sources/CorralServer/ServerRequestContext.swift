import Hummingbird
import NIOCore

/// The request context of Corral's routes: Hummingbird's, plus the connection's channel,
/// which `POST /v1/run` watches to see its client go (``ClientWatch``).
struct ServerRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
