import Corral
import CorralQueue
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The asynchronous jobs of the durable queue: `POST /v1/jobs` (one spec, checked now as
/// `/v1/run` checks it, then queued: 202 `{"id"}`), `POST /v1/jobs/batch` (`{"jobs": [...]}`,
/// all queued or none: 202 `{"ids"}`), `GET /v1/jobs/{id}` and `DELETE /v1/jobs/{id}`.
struct JobsHandler: Sendable {
    let reader: RunHandler
    let queue: any JobQueue
    let worker: QueueWorker?
    /// `?callback=URL`: checked now (400 when this server may not call it), and again, with
    /// its name resolved, when the report is sent.
    let callbacks: CallbackPolicy
    let metrics: ServerMetrics
    /// What the file store holds for queued jobs (nil: the server has no store).
    let fileHolds: QueuedFileHolds?

    func add(to router: Router<ServerRequestContext>) {
        router.post("/v1/jobs") { request, context in
            let ids = try await enqueue(request, batch: false)
            return try Self.json(["id": ids[0]], status: .accepted)
        }
        router.post("/v1/jobs/batch") { request, context in
            let ids = try await enqueue(request, batch: true)
            return try Self.json(["ids": ids], status: .accepted)
        }
        router.get("/v1/jobs/:id") { request, context in
            let id = try Self.id(context)
            guard let record = try await call({ () async throws(QueueError) in try await queue.get(id) }) else {
                throw APIError(.notFound, "no job \(id) (never queued here, or its result expired)")
            }
            return Self.recordResponse(record)
        }
        router.delete("/v1/jobs/:id") { request, context in
            let id = try Self.id(context)
            let outcome = try await call({ () async throws(QueueError) in try await queue.cancel(id) })
            switch outcome {
            case .notFound:
                throw APIError(.notFound, "no job \(id) (never queued here, or its result expired)")
            case .alreadyFinished(let state):
                throw APIError(.conflict, "job \(id) is \(state.rawValue) already")
            case .cancelledQueued, .cancelledRunning:
                worker?.stopLocal(id)
                fileHolds?.release(id)
                return try Self.json(["id": id, "state": JobState.cancelled.rawValue])
            }
        }
    }

    private func enqueue(_ request: Request, batch: Bool) async throws -> [String] {
        guard worker?.isDraining != true else {
            metrics.rejected(.shuttingDown)
            throw APIError(.serviceUnavailable, "the server is shutting down")
        }
        let reservation = BodyBudget.Reservation(reader.budget)
        defer { reservation.releaseAll() }
        let body = try await reader.read(request.body, length: request.headers[.contentLength].flatMap(Int.init), into: reservation)
        var specs = [body]
        if batch {
            do throws(BatchBody.Malformed) {
                specs = try BatchBody.split(body)
            } catch {
                metrics.rejected(.badRequest)
                throw APIError(.badRequest, error.message)
            }
        }
        // Every spec is checked before any is queued, with /v1/run's errors (a batch's paths
        // start with jobs[N]), and the stored files it names are held from now on.
        var held: [FileLease?] = []
        // Released unless the jobs were queued (then they belong to them).
        var queued = false
        defer { if !queued { held.forEach { $0?.release() } } }
        for (index, body) in specs.enumerated() {
            let prefix = batch ? "jobs[\(index)]" : ""
            let spec: JobSpec
            do throws(SpecError) {
                spec = try reader.admission.admit(body)
            } catch {
                metrics.rejected(.badRequest)
                throw APIError(.badRequest, error.message, path: Self.path(prefix, error.path))
            }
            guard let fileHolds else { continue }
            do throws(QueuedFileHolds.Missing) {
                held.append(try fileHolds.hold(spec))
            } catch {
                metrics.rejected(.badRequest)
                throw APIError(.badRequest, error.message, path: Self.path(prefix, "files[\(error.index)].fileId"))
            }
        }
        var callback: String?
        if let url = request.uri.queryParameters.get("callback") {
            do throws(CallbackRefusal) {
                _ = try callbacks.check(url)
            } catch {
                metrics.rejected(.badRequest)
                throw APIError(.badRequest, error.message, path: "callback")
            }
            callback = url
        }
        let jobs = specs.map { NewJob(spec: $0, callback: callback) }
        let enqueue = { () async throws -> [String] in try await call({ () async throws(QueueError) in try await queue.enqueue(jobs) }) }
        let ids: [String]
        if let fileHolds, held.contains(where: { $0 != nil }) {
            ids = try await fileHolds.attaching(held, enqueue: enqueue)
        } else {
            ids = try await enqueue()
        }
        queued = true
        return ids
    }

    private static func path(_ prefix: String, _ path: String) -> String? {
        let joined = prefix.isEmpty ? path : path.isEmpty ? prefix : prefix + "." + path
        return joined.isEmpty ? nil : joined
    }

    /// A queue failure is the server's (500), said without the engine's address.
    private func call<T: Sendable>(_ body: () async throws(QueueError) -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw APIError(.internalServerError, error.description)
        }
    }

    private static func id(_ context: ServerRequestContext) throws -> String {
        let id = context.parameters.get("id") ?? ""
        // A job id is a lowercase UUID; anything else names no job.
        guard id.utf8.count == 36, id.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) || $0 == 0x2D }) else {
            throw APIError(.notFound, "no job \(id.prefix(64)) (a job id is a lowercase UUID)")
        }
        return id
    }

    /// `{"id", "state", "attempts", "report"}`: the report as the worker wrote it (null until done).
    static func recordResponse(_ record: JobRecord) -> Response {
        var body = ByteBuffer()
        body.writeString(#"{"attempts":\#(record.attempts),"id":"\#(record.id)","report":"#)
        if let report = record.report { body.writeBytes(report) } else { body.writeString("null") }
        body.writeString(#","state":"\#(record.state.rawValue)"}"#)
        return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: body))
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}
