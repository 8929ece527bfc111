import Corral
import CorralQueue
import Foundation
import Logging
import Synchronization

/// Runs the jobs of a ``JobQueue``: `lanes` loops, each claims a job (under a lease kept
/// alive by heartbeats), takes a slot of the ``Dispatcher`` (shared with `POST /v1/run` in
/// a server), admits the spec under this process's own rules, runs it and writes its report
/// once, only while its lease is still held. A job cancelled meanwhile, or whose lease was
/// lost, is stopped and its report discarded. On ``drain(grace:)`` it claims nothing more,
/// lets the runs go on for the grace period, then stops them and gives them back to the queue.
/// `corral serve` runs one over its own queue; `corral worker` is one of these without HTTP.
final class QueueWorker: Sendable {
    struct Settings: Sendable {
        var lanes: Int
        var lease: Duration = .seconds(30)
        /// How long an idle lane waits for the queue's ``WorkSignal`` before it looks again
        /// anyway (for a lease that ran out, which nobody signals).
        var poll: Duration = .milliseconds(500)
        /// Finished jobs are removed this long after they finished.
        var resultTTL: Duration = .seconds(86_400)
        var name = "\(ProcessInfo.processInfo.hostName):\(getpid())"
    }

    let queue: any JobQueue
    let settings: Settings
    let dispatcher: Dispatcher
    let admission: JobAdmission
    let runner: JobRunner
    let metrics: ServerMetrics
    let logger: Logger
    /// Where finished jobs' reports are POSTed (nil: callbacks off).
    let callbacks: CallbackSender?
    /// What the file store holds for queued jobs: a job's holds go once it is done.
    let fileHolds: QueuedFileHolds?

    private struct State {
        var draining = false
        /// The stops of the jobs this worker runs, by job id (`DELETE /v1/jobs/{id}` stops one at once).
        var stops: [String: RunStop] = [:]
    }
    private let state = Mutex(State())

    init(queue: any JobQueue, settings: Settings, dispatcher: Dispatcher, admission: JobAdmission, runner: JobRunner,
         metrics: ServerMetrics, logger: Logger, callbacks: CallbackSender? = nil, fileHolds: QueuedFileHolds? = nil) {
        self.callbacks = callbacks
        self.fileHolds = fileHolds
        self.queue = queue
        self.settings = settings
        self.dispatcher = dispatcher
        self.admission = admission
        self.runner = runner
        self.metrics = metrics
        self.logger = logger
    }

    var isDraining: Bool { state.withLock { $0.draining } }

    /// Runs the lanes and the expiry of old results until ``drain(grace:)`` ends them.
    func run() async {
        await withDiscardingTaskGroup { group in
            for _ in 0..<settings.lanes {
                group.addTask { await self.lane() }
            }
            group.addTask { await self.expireLoop() }
        }
    }

    /// Stop claiming; the lanes end once their runs have (``Dispatcher/drain(grace:)`` stops
    /// those past the grace period, and each is given back to the queue).
    func beginDrain() {
        state.withLock { $0.draining = true }
        // Idle lanes see it now, not at their next look.
        queue.workSignal.signal()
    }

    /// Stops the run of job `id` here, if it runs here (its cancel was written already).
    func stopLocal(_ id: String) {
        state.withLock { $0.stops[id] }?.stop(reason: "the job was cancelled (DELETE /v1/jobs/\(id))")
    }

    private func lane() async {
        // The job claimed together with the completion of the one before (one round trip).
        var next: ClaimedJob?
        while !Task.isCancelled {
            if isDraining {
                if let next { _ = try? await queue.release(next.lease) }
                return
            }
            if let job = next {
                next = nil
                if job.tookOverExpiredLease { metrics.leaseExpired() }
                next = await execute(job)
                continue
            }
            // Read before the claim: a job queued after it wakes the wait below at once.
            let generation = queue.workSignal.generation
            let claimed: ClaimedJob?
            do {
                claimed = try await queue.claim(worker: settings.name, lease: settings.lease)
            } catch {
                logger.error("cannot claim a job", metadata: ["error": .string(error.description)])
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            guard let claimed else {
                await queue.workSignal.wait(since: generation, upTo: settings.poll)
                continue
            }
            if claimed.tookOverExpiredLease { metrics.leaseExpired() }
            next = await execute(claimed)
        }
    }

    /// Runs `job` and writes its outcome; the next job, when it was claimed with the report.
    private func execute(_ job: ClaimedJob) async -> ClaimedJob? {
        let stop = RunStop()
        state.withLock { $0.stops[job.lease.id] = stop }
        defer { _ = state.withLock { $0.stops.removeValue(forKey: job.lease.id) } }
        let lost = Mutex(false)
        // Heartbeats keep the lease; a lost one (cancelled, or taken over) stops the run.
        let heartbeat = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: settings.lease / 3)
                if Task.isCancelled { return }
                do {
                    if try await !queue.heartbeat(job.lease, extend: settings.lease) {
                        lost.withLock { $0 = true }
                        stop.stop()
                        return
                    }
                } catch {
                    logger.warning("heartbeat failed", metadata: ["job.id": .string(job.lease.id), "error": .string("\(error)")])
                }
            }
        }
        let result = await outcome(of: job, stop: stop)
        heartbeat.cancel()
        if lost.withLock({ $0 }) {
            logger.notice("job cancelled or its lease lost: its report is discarded", metadata: ["job.id": .string(job.lease.id)])
            return nil
        }
        var next: ClaimedJob?
        do {
            switch result {
            case .giveBack:
                _ = try await queue.release(job.lease)
            case .report(let report, let made):
                let completion = try await queue.complete(job.lease, report: report, thenClaimFor: isDraining ? nil : settings.name,
                                                          lease: settings.lease)
                next = completion.next
                if completion.completed {
                    fileHolds?.release(job.lease.id)
                    if let made { metrics.record(made) }
                    if logger.logLevel <= .info {
                        var metadata = made.map { RunHandler.metadata(job.lease.id, $0) } ?? ["status": "error"]
                        metadata["job.id"] = .string(job.lease.id)
                        metadata["attempt"] = .stringConvertible(job.attempt)
                        logger.info("job done", metadata: metadata)
                    }
                    if let url = job.callback, let callbacks {
                        let id = job.lease.id
                        Task { await callbacks.deliver(jobID: id, url: url, body: report) }
                    }
                } else {
                    logger.notice("job no longer ours: its report is discarded", metadata: ["job.id": .string(job.lease.id)])
                }
            }
        } catch {
            logger.error("cannot write a job's outcome", metadata: ["job.id": .string(job.lease.id), "error": .string(error.description)])
        }
        return next
    }

    private enum Outcome {
        /// The report's JSON, and the report when the job ran.
        case report(Data, JobReport?)
        /// Stopped by a shutdown: queued again, to run after it.
        case giveBack
    }

    private func outcome(of job: ClaimedJob, stop: RunStop) async -> Outcome {
        let spec: JobSpec
        do throws(SpecError) {
            spec = try admission.admit(job.spec)
        } catch {
            return .report(Self.errorJSON(error.message, path: error.path), nil)
        }
        while true {
            let ticket = dispatcher.ticket()
            do {
                let dispatcher = self.dispatcher
                let result: Result<JobReport, CorralError> = try await dispatcher.run(ticket, stop: stop, inSlot: { slot in
                    do throws(CorralError) {
                        // The report is written while the working directory is removed
                        // (bounded; a drain waits for the removals).
                        let report = try await dispatcher.removals.withRoom { () async throws(CorralError) in
                            try await runner.runReportingFirst(dispatcher.pinned(spec, slot: slot), stop: stop)
                        }
                        return .success(report)
                    } catch {
                        return .failure(error)
                    }
                })
                switch result {
                case .success(let report):
                    // Cut by the drain (a run cancelled, a file not collected): run again after it.
                    if stop.isStopped && report.cutByStop && isDraining && !Dispatcher.stoppedAtDeadline(stop) { return .giveBack }
                    return .report(Data(ReportJSON.encode(report)), report)
                case .failure(let error):
                    metrics.recordSetupError()
                    return .report(Self.errorJSON(error.description, path: nil), nil)
                }
            } catch Dispatcher.Refusal.overloaded {
                // Every slot and place is taken by /v1/run: wait, the lease kept alive meanwhile.
                try? await Task.sleep(for: .milliseconds(100))
                if stop.isStopped { return .report(Self.errorJSON("cancelled before it ran", path: nil), nil) }
            } catch {
                return .giveBack // shutting down
            }
        }
    }

    private func expireLoop() async {
        let every = max(.milliseconds(250), min(settings.resultTTL / 4, .seconds(60)))
        while !isDraining && !Task.isCancelled {
            do {
                let removed = try await queue.expire(finishedBefore: settings.resultTTL)
                if removed > 0 { logger.debug("expired results", metadata: ["count": .stringConvertible(removed)]) }
            } catch {
                logger.warning("cannot expire results", metadata: ["error": .string(error.description)])
            }
            // In short steps, so that a drain does not wait for the next round.
            let next = ContinuousClock.now + every
            while ContinuousClock.now < next && !isDraining && !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// `{"error": MESSAGE, "path": FIELD}`: the report of a job that could not run.
    static func errorJSON(_ message: String, path: String?) -> Data {
        struct Body: Encodable { let error: String; let path: String? }
        return (try? JSONEncoder().encode(Body(error: message, path: path?.isEmpty == false ? path : nil))) ?? Data("{}".utf8)
    }
}
