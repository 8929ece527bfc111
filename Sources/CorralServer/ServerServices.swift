import CorralQueue
import Hummingbird
import Logging
import ServiceLifecycle

/// The application plus the shutdown of the runs: on graceful shutdown the server stops
/// accepting and waits for its requests while the dispatcher drains the runs.
struct Serving<App: ApplicationProtocol>: Service {
    let application: App
    let dispatcher: Dispatcher
    /// The local worker of the durable queue: it stops claiming at shutdown, and the jobs it
    /// runs past the grace period go back to the queue.
    let worker: QueueWorker?
    /// The holds of the queued jobs' stored files, kept true against the queue (jobs another
    /// worker of a shared queue finished).
    let fileHolds: (QueuedFileHolds, any JobQueue)?
    let grace: Duration
    let logger: Logger

    func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await application.run() }
            if let worker {
                group.addTask { await worker.run() }
            }
            if let fileHolds {
                let (holds, queue) = fileHolds
                let dispatcher = self.dispatcher
                group.addTask {
                    await holds.run(queue, every: .seconds(5), logger: logger) { dispatcher.isShuttingDown }
                }
            }
            group.addTask {
                try await gracefulShutdown()
                worker?.beginDrain()
                let counts = dispatcher.counts
                logger.notice("shutting down", metadata: ["inFlight": "\(counts.running)", "queued": "\(counts.queued)",
                                                          "grace": "\(grace)"])
                await dispatcher.drain(grace: grace)
            }
        }
    }
}

/// `corral worker`'s service: the queue's worker, drained on graceful shutdown.
struct Working: Service {
    let worker: QueueWorker
    let dispatcher: Dispatcher
    let grace: Duration
    let logger: Logger
    let onReady: @Sendable () async -> Void

    func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await worker.run() }
            group.addTask {
                await onReady()
                try await gracefulShutdown()
                worker.beginDrain()
                let counts = dispatcher.counts
                logger.notice("draining", metadata: ["inFlight": "\(counts.running)", "grace": "\(grace)"])
                await dispatcher.drain(grace: grace)
            }
        }
    }
}
