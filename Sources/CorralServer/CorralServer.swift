import Corral
import CorralQueue
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// The HTTP API of Corral (`corral serve`): `POST /v1/run` runs a job spec and answers with
/// its report; `GET /v1/health`, `/v1/version`, `/v1/doctor` and `/metrics` say how it is.
/// See `Docs/openapi.json`.
///
/// ```swift
/// let server = try CorralServer(configuration: ServerConfiguration(port: 5050), logger: logger)
/// try await server.run()   // until SIGTERM or SIGINT
/// ```
public struct CorralServer: Sendable {
    public let configuration: ServerConfiguration
    /// The isolation every process gets; nil when off (`--no-isolate`). Where the host cannot
    /// isolate as configured, the server does not start (``init(configuration:logger:)`` throws).
    public let isolation: Isolation?
    /// What the server decided at start that an operator should know (logged by ``run(onListening:)``).
    public let notices: [String]
    let logger: Logger
    let dispatcher: Dispatcher
    let metrics: ServerMetrics
    /// The memory request bodies in flight may take (``ServerConfiguration/maxBodiesInFlight``).
    let bodyBudget: BodyBudget
    /// Open connections (``ServerConfiguration/maxConnections``).
    let connections: ConnectionCounter
    /// ``ServerConfiguration/hostFiles``, resolved once at start.
    let hostFiles: [String]
    /// ``ServerConfiguration/workdirLimit`` where it can be kept (as root), else nil.
    public let workdirLimit: UInt64?
    /// The file store (`/v1/files`, `files[].fileId`, `collect[].store`); nil without
    /// ``ServerConfiguration/fileStore``.
    public let fileStore: FileStore?
    /// What the store holds for the queued jobs that name its files.
    let fileHolds: QueuedFileHolds?
    /// The TLS context of `https://` callbacks (nil: callbacks off).
    let callbackTLS: NIOSSLContext?

    public init(configuration: ServerConfiguration, logger: Logger) throws(ServerError) {
        try configuration.validate()
        self.configuration = configuration
        hostFiles = try configuration.resolvedHostFiles()
        self.logger = logger
        var notices: [String] = []
        var isolation: Isolation?
        if configuration.isolate {
            // Fail closed: a server that cannot isolate as it says refuses to start.
            let support = configuration.hostSupport ?? HostSupport.probe(configuration: configuration.runner)
            guard support.isolation else {
                throw ServerError("isolation is not available on this host (see corral doctor); --no-isolate serves without it")
            }
            if configuration.seccomp != .none && !support.seccomp {
                throw ServerError("no seccomp filter can be had here (libseccomp.so.2 cannot be loaded, or the kernel lacks filters; see corral doctor); --seccomp none isolates without one")
            }
            isolation = Isolation(seccomp: configuration.seccomp)
            if configuration.seccomp == .none {
                notices.append("isolated processes run without a seccomp filter (--seccomp none)")
            }
        }
        self.isolation = isolation
        if configuration.workdirLimit != nil && geteuid() != 0 {
            notices.append("a job's working directory cannot be size-limited without root (--max-disk): it is a plain directory")
            workdirLimit = nil
        } else {
            workdirLimit = configuration.workdirLimit
        }
        let metrics = ServerMetrics()
        self.metrics = metrics
        if let store = configuration.fileStore {
            do {
                fileStore = try FileStore(directory: store.directory, maxBytes: store.maxBytes, maxFileBytes: store.maxFileBytes,
                                          sealedCopyBytes: store.sealedCopyBytes) {
                    metrics.fileStore($0)
                }
            } catch {
                throw ServerError(error.message)
            }
            notices += fileStore?.notices ?? []
        } else {
            fileStore = nil
        }
        fileHolds = fileStore.map { QueuedFileHolds(store: $0) }
        callbackTLS = try configuration.callbackAllow.isEmpty ? nil : CallbackTLS.context(caFile: configuration.callbackCA)
        self.notices = notices
        bodyBudget = BodyBudget(capacity: configuration.maxBodiesInFlight) { metrics.bodyBytes($0) }
        connections = ConnectionCounter(limit: configuration.maxConnections)
        dispatcher = Dispatcher(parallelism: configuration.parallelism, queueLimit: configuration.queue, cpus: configuration.cpus,
                                jobDeadline: configuration.ceilings.jobDeadline) { metrics.update($0) }
    }

    /// The Hummingbird application: its routes, bound as configured. `onListening` gets the
    /// address and port once the socket is bound (the port is the real one when 0 was asked).
    public func application(
        onListening: @escaping @Sendable (String, Int) async -> Void = { _, _ in }
    ) -> some ApplicationProtocol {
        application(onListening: onListening, jobs: nil)
    }

    func application(
        onListening: @escaping @Sendable (String, Int) async -> Void, jobs: (queue: any JobQueue, worker: QueueWorker?)?
    ) -> some ApplicationProtocol {
        Application(
            router: router(jobs: jobs),
            server: GuardedHTTP1.builder(connections: connections, idleTimeout: configuration.idleTimeout,
                                         bodyTimeout: configuration.bodyTimeout, metrics: metrics),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "corral/\(CorralVersion.string)"),
            onServerRunning: { channel in
                await onListening(configuration.host, channel.localAddress?.port ?? configuration.port)
            },
            logger: logger
        )
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully: stops accepting, refuses
    /// what waits in the queue (503), lets the runs in flight go on for the grace period,
    /// kills what is left, and returns once every run has ended and been cleaned up.
    public func run(onListening: @escaping @Sendable (String, Int) async -> Void = { _, _ in }) async throws {
        for notice in notices { logger.warning("\(notice)") }
        let queue = try await openQueue()
        // Before the first upload or claim: the queued jobs' files are held again.
        await fileHolds?.restore(from: queue, logger: logger)
        let worker = configuration.acceptOnly ? nil : queueWorker(queue)
        let service = Serving(application: application(onListening: onListening, jobs: (queue, worker)), dispatcher: dispatcher,
                              worker: worker, fileHolds: fileHolds.map { ($0, queue) }, grace: configuration.shutdownGrace, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch let error as IOError {
            await queue.close()
            throw ServerError("cannot listen on \(configuration.host):\(configuration.port): \(String(cString: strerror(error.errnoCode)))")
        } catch {
            await queue.close()
            throw error
        }
        await queue.close()
    }

    /// `corral worker`: runs the jobs of the shared queue (``ServerConfiguration/queueURL``)
    /// with this configuration's parallelism, admission and isolation, until SIGTERM or SIGINT;
    /// then it claims nothing more, lets its runs go on for the grace period, and gives back
    /// to the queue those it had to stop. `onReady` is called once the queue is open.
    public func runWorker(onReady: @escaping @Sendable () async -> Void = {}) async throws {
        guard configuration.queueURL != nil else {
            throw ServerError("a worker needs a shared queue: --queue-file FILE or CORRAL_QUEUE_URL (postgres://…)")
        }
        for notice in notices { logger.warning("\(notice)") }
        let queue = try await openQueue()
        let worker = queueWorker(queue)
        let service = Working(worker: worker, dispatcher: dispatcher, grace: configuration.shutdownGrace, logger: logger, onReady: onReady)
        let group = ServiceGroup(configuration: .init(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            await queue.close()
            throw error
        }
        await queue.close()
    }

    func queueWorker(_ queue: any JobQueue) -> QueueWorker {
        QueueWorker(queue: queue, settings: .init(lanes: configuration.parallelism, lease: configuration.lease,
                                                  resultTTL: configuration.resultTTL),
                    dispatcher: dispatcher, admission: admission(), runner: jobRunner(), metrics: metrics, logger: logger,
                    callbacks: callbackSender(), fileHolds: fileHolds)
    }

    /// The policy of `--callback-allow` (checked valid by ``ServerConfiguration/validate()``).
    func callbackPolicy() -> CallbackPolicy {
        (try? CallbackPolicy(allow: configuration.callbackAllow)) ?? CallbackPolicy.none
    }

    func callbackSender() -> CallbackSender? {
        let policy = callbackPolicy()
        guard policy.isEnabled, let secret = configuration.callbackSecret else { return nil }
        return CallbackSender(policy: policy, secret: secret, firstDelay: configuration.callbackRetryDelay, tls: callbackTLS,
                              metrics: metrics, logger: logger)
    }

    /// The shared PostgreSQL queue when a URL was given, else the SQLite queue under the state
    /// directory (made when missing).
    func openQueue() async throws(ServerError) -> any JobQueue {
        if let url = configuration.queueURL {
            do throws(QueueError) {
                return try await PostgresJobQueue.open(url: url, logger: logger, connections: configuration.parallelism + 4)
            } catch {
                throw ServerError(error.description)
            }
        }
        let directory = configuration.stateDirectory ?? StateDirectory.defaultPath()
        do throws(QueueError) {
            try await StateDirectory.prepare(directory)
            return try await SQLiteJobQueue.open(path: directory + "/queue.sqlite", logger: logger)
        } catch {
            throw ServerError(error.description)
        }
    }

    func admission() -> JobAdmission {
        JobAdmission(ceilings: configuration.ceilings, defaults: configuration.defaults, isolation: isolation,
                     hostFiles: hostFiles, allowHostNetwork: configuration.allowHostNetwork, cpus: configuration.cpus)
    }

    func jobRunner() -> JobRunner {
        JobRunner(runner: Runner(configuration: configuration.runner), workdirLimit: workdirLimit, fileStore: fileStore)
    }

    func router(jobs: (queue: any JobQueue, worker: QueueWorker?)? = nil) -> Router<ServerRequestContext> {
        let router = Router(context: ServerRequestContext.self)
        let metrics = self.metrics
        // Outermost: every error answer, Hummingbird's own (404) included, is JSON.
        router.add(middleware: JSONErrorMiddleware())
        if let token = configuration.token {
            router.add(middleware: TokenMiddleware(token: Array(token.utf8)) { metrics.rejected(.unauthorized) })
        }
        // /v1/run and the queue's jobs share one admission and the dispatcher's slots.
        let handler = RunHandler(maxBody: configuration.maxBody, budget: bodyBudget, admission: admission(),
                                 dispatcher: dispatcher, watcher: ClientWatcher(dispatcher: dispatcher), runner: jobRunner(),
                                 metrics: metrics)
        if let jobs {
            JobsHandler(reader: handler, queue: jobs.queue, worker: jobs.worker, callbacks: callbackPolicy(), metrics: metrics,
                        fileHolds: fileHolds).add(to: router)
        }
        let queue = jobs?.queue
        router.post("/v1/run") { request, context in
            try await handler.handle(request, watch: ClientWatch(channel: context.channel), logger: context.logger)
        }
        addFileRoutes(to: router)
        let dispatcher = self.dispatcher
        let configuration = self.configuration
        let isolated = isolation != nil
        router.get("/v1/health") { _, _ in
            let counts = dispatcher.counts
            let shuttingDown = dispatcher.isShuttingDown
            return try Self.json(HealthBody(status: shuttingDown ? "shutting-down" : "ready", ready: !shuttingDown,
                                            inFlight: counts.running, queued: counts.queued,
                                            parallelism: configuration.parallelism, queueLimit: configuration.queue,
                                            isolation: isolated))
        }
        router.get("/v1/version") { _, _ in
            try Self.json(VersionBody(version: CorralVersion.string, api: "v1"))
        }
        router.get("/v1/doctor") { _, _ in
            try Self.json(HostReport.inspect(configuration: configuration.runner))
        }
        router.get("/metrics") { _, _ in
            if let queue, let counts = try? await queue.counts() { metrics.jobs(counts) }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: metrics.exposition())))
        }
        return router
    }

    static func json(_ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}
