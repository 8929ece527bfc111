import Corral
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `POST /v1/run`: read the body (at most `maxBody` bytes), admit the job, wait for a slot,
/// run it, answer with the job report. One log line per job. A client that goes away while
/// its job waits or runs cancels it (the run is killed and cleaned up).
struct RunHandler: Sendable {
    let maxBody: Int
    let budget: BodyBudget
    let admission: JobAdmission
    let dispatcher: Dispatcher
    let watcher: ClientWatcher
    let runner: JobRunner
    let metrics: ServerMetrics

    func handle(_ request: Request, watch: ClientWatch, logger: Logger) async throws -> Response {
        // Held until the answer is made: the body, then the job parsed from it.
        let reservation = BodyBudget.Reservation(budget)
        defer { reservation.releaseAll() }
        let body = try await read(request.body, length: request.headers[.contentLength].flatMap(Int.init), into: reservation)
        let document: JobDocument
        do throws(SpecError) {
            document = try admission.admitDocument(body)
        } catch {
            metrics.rejected(.badRequest)
            throw APIError(.badRequest, error.message, path: error.path.isEmpty ? nil : error.path)
        }

        let id = UUID().uuidString.lowercased()
        let runner = self.runner
        let outcome: Result<AnyJobReport, CorralError>
        // The job runs in this task; the watcher stops it (or takes it out of the queue)
        // when its client goes away, and a shutdown stops it through the dispatcher.
        let stop = RunStop()
        let ticket = dispatcher.ticket()
        let watching = watcher.add(.init(watch: watch, stop: stop, ticket: ticket))
        var clientGone = false
        defer { _ = watcher.remove(watching) }
        do {
            let dispatcher = self.dispatcher
            outcome = try await dispatcher.run(ticket, stop: stop, inSlot: { slot in
                do throws(CorralError) {
                    switch dispatcher.pinned(document, slot: slot) {
                    case .job(let spec):
                        // The answer goes while the working directory is removed (bounded).
                        let report = try await dispatcher.removals.withRoom { () async throws(CorralError) in
                            try await runner.runReportingFirst(spec, stop: stop)
                        }
                        return .success(.job(report))
                    case .steps(let steps): return .success(.steps(try await StepsRunner(jobs: runner).run(steps, stop: stop)))
                    }
                } catch {
                    return .failure(error)
                }
            })
            clientGone = watcher.remove(watching)
        } catch Dispatcher.Refusal.overloaded(let retryAfter) {
            metrics.rejected(.overloaded)
            throw APIError(.serviceUnavailable, "every slot and every place in the queue is taken; retry later",
                           headers: [.retryAfter: String(retryAfter)])
        } catch Dispatcher.Refusal.shuttingDown {
            metrics.rejected(.shuttingDown)
            throw APIError(.serviceUnavailable, "the server is shutting down")
        }

        let report: AnyJobReport
        switch outcome {
        case .success(let made): report = made
        case .failure(let error):
            if error.kind == .invalidJob {
                metrics.rejected(.badRequest)
                throw APIError(.badRequest, error.message)
            }
            metrics.recordSetupError()
            logger.error("run failed", metadata: ["run.id": .string(id), "error": .string(error.description)])
            throw APIError(.internalServerError, error.description)
        }
        let answer: [UInt8]
        switch report {
        case .job(let job):
            metrics.record(job)
            answer = ReportJSON.encode(job)
        case .steps(let steps):
            metrics.record(steps)
            answer = StepsJSON.encode(steps)
        }
        if logger.logLevel <= .info {
            var metadata = report.metadata(id)
            if clientGone { metadata["client"] = "gone" }
            logger.info("run", metadata: metadata)
        }
        if clientGone { throw CancellationError() }

        return Response(
            status: .ok,
            headers: [.contentType: "application/json; charset=utf-8", HTTPField.Name("X-Corral-Run-Id")!: id],
            body: .init(byteBuffer: ByteBuffer(bytes: answer))
        )
    }

    /// The body, at most ``maxBody`` bytes, within the budget: its declared length is
    /// reserved before a byte is read, what streams in past it as it comes, and what parsing
    /// it will cost before it is parsed. Over ``maxBody``: 413; over what the budget has left:
    /// 503 (413 when the budget could never hold it).
    func read(_ stream: RequestBody, length: Int?, into reservation: BodyBudget.Reservation) async throws -> Data {
        if let length, length > maxBody {
            metrics.rejected(.tooLarge)
            throw APIError(.contentTooLarge, "the body is \(length) bytes, over this server's limit of \(maxBody) (--max-body)")
        }
        try reserve(length ?? 0, reservation)
        var body = Data(capacity: length ?? 0)
        for try await chunk in stream {
            guard body.count + chunk.readableBytes <= maxBody else {
                metrics.rejected(.tooLarge)
                throw APIError(.contentTooLarge, "the body is over this server's limit of \(maxBody) bytes (--max-body)")
            }
            let needed = body.count + chunk.readableBytes
            // Without a declared length, Data grows by doubling: what it may take, not what it holds.
            try reserve(length == nil ? max(needed, min(body.count * 2, maxBody)) : needed, reservation)
            chunk.withUnsafeReadableBytes { body.append($0.bindMemory(to: UInt8.self)) }
        }
        let cost = body.withUnsafeBytes { BodyBudget.parseCost(of: $0.bindMemory(to: UInt8.self)) }
        try reserve(body.count + cost, reservation)
        return body
    }

    private func reserve(_ bytes: Int, _ reservation: BodyBudget.Reservation) throws {
        guard !reservation.grow(to: bytes) else { return }
        if bytes > budget.capacity {
            metrics.rejected(.tooLarge)
            throw APIError(.contentTooLarge, "this body would take \(bytes) bytes of memory to read and parse, over this server's budget for bodies of \(budget.capacity) (--max-bodies-in-flight)")
        }
        metrics.rejected(.bodyBudget)
        throw APIError(.serviceUnavailable, "the bodies in flight take this server's memory budget for them (--max-bodies-in-flight); retry later",
                       headers: [.retryAfter: "1"])
    }

    static func metadata(_ id: String, _ report: JobReport) -> Logger.Metadata {
        func format(_ value: Double) -> Logger.MetadataValue { .string(String(format: "%.3f", value)) }
        return [
            "run.id": .string(id),
            "status": .string(report.status.rawValue),
            "processes": .stringConvertible(report.processes.count),
            "wall": format(report.wallTime),
            "cpu": format(report.processes.reduce(0) { $0 + $1.report.cpuTime }),
            "memory": .stringConvertible(report.processes.reduce(0) { $0 + $1.report.memoryPeak }),
            "containment": .string(report.processes.first?.report.containment.rawValue ?? "none"),
        ]
    }
}

