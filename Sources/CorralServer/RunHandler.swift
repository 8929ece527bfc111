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
    let admission: JobAdmission
    let dispatcher: Dispatcher
    let watcher: ClientWatcher
    let runner: JobRunner
    let metrics: ServerMetrics

    func handle(_ request: Request, watch: ClientWatch, logger: Logger) async throws -> Response {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBody {
            metrics.rejected(.tooLarge)
            throw APIError(.contentTooLarge, "the body is \(length) bytes, over this server's limit of \(maxBody) (--max-body)")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maxBody)
        } catch is NIOTooManyBytesError {
            metrics.rejected(.tooLarge)
            throw APIError(.contentTooLarge, "the body is over this server's limit of \(maxBody) bytes (--max-body)")
        }
        let spec: JobSpec
        do throws(SpecError) {
            spec = try admission.admit(Data(buffer: buffer))
        } catch {
            metrics.rejected(.badRequest)
            throw APIError(.badRequest, error.message, path: error.path.isEmpty ? nil : error.path)
        }

        let id = UUID().uuidString.lowercased()
        let runner = self.runner
        let outcome: Result<JobReport, CorralError>
        // The job runs in this task; the watcher stops it (or takes it out of the queue)
        // when its client goes away, and a shutdown stops it through the dispatcher.
        let stop = RunStop()
        let ticket = dispatcher.ticket()
        let watching = watcher.add(.init(watch: watch, stop: stop, ticket: ticket))
        var clientGone = false
        defer { _ = watcher.remove(watching) }
        do {
            outcome = try await dispatcher.run(ticket, stop: stop) {
                do throws(CorralError) {
                    return .success(try await runner.run(spec, stop: stop))
                } catch {
                    return .failure(error)
                }
            }
            clientGone = watcher.remove(watching)
        } catch Dispatcher.Refusal.overloaded(let retryAfter) {
            metrics.rejected(.overloaded)
            throw APIError(.serviceUnavailable, "every slot and every place in the queue is taken; retry later",
                           headers: [.retryAfter: String(retryAfter)])
        } catch Dispatcher.Refusal.shuttingDown {
            metrics.rejected(.shuttingDown)
            throw APIError(.serviceUnavailable, "the server is shutting down")
        }

        let report: JobReport
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
        metrics.record(report)
        if logger.logLevel <= .info {
            var metadata = Self.metadata(id, report)
            if clientGone { metadata["client"] = "gone" }
            logger.info("run", metadata: metadata)
        }
        if clientGone { throw CancellationError() }

        return Response(
            status: .ok,
            headers: [.contentType: "application/json; charset=utf-8", HTTPField.Name("X-Corral-Run-Id")!: id],
            body: .init(byteBuffer: ByteBuffer(bytes: ReportJSON.encode(report)))
        )
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

