import Corral
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `/v1/files`: the file store over HTTP. `POST` streams the body to disk (never whole in
/// memory: one chunk of at most ``chunk`` bytes per upload, taken from the body budget) and
/// answers `201 {"id", "size"}`; `GET`, `HEAD` and `DELETE` take `/v1/files/{id}`. An id is
/// checked (64 lowercase hex digits) before the store sees it.
struct FilesHandler: Sendable {
    let store: FileStore
    let budget: BodyBudget
    let metrics: ServerMetrics
    /// Bytes buffered before they are written: what an upload holds of the body budget.
    static let chunk = 1 << 20

    struct Created: Encodable {
        let id: String
        let size: UInt64
    }

    func upload(_ request: Request) async throws -> Response {
        if let length = request.headers[.contentLength].flatMap(UInt64.init), length > store.maxFileBytes {
            metrics.rejected(.tooLarge)
            throw APIError(.contentTooLarge, "the file is \(length) bytes, over the file store's limit of \(store.maxFileBytes) bytes a file (--file-store-max-file)")
        }
        let reservation = BodyBudget.Reservation(budget)
        defer { reservation.releaseAll() }
        guard reservation.grow(to: Self.chunk) else {
            metrics.rejected(.bodyBudget)
            throw APIError(.serviceUnavailable, "the bodies in flight take this server's memory budget for them (--max-bodies-in-flight); retry later",
                           headers: [.retryAfter: "1"])
        }
        let upload = try await call { () async throws(FileStoreError) in try await store.startUpload() }
        do {
            var pending: [UInt8] = []
            pending.reserveCapacity(Self.chunk)
            for try await buffer in request.body {
                var buffer = buffer
                while buffer.readableBytes > 0 {
                    let take = min(buffer.readableBytes, Self.chunk - pending.count)
                    pending.append(contentsOf: buffer.readBytes(length: take)!)
                    if pending.count == Self.chunk {
                        let full = pending
                        try await call { () async throws(FileStoreError) in try await upload.append(full) }
                        pending.removeAll(keepingCapacity: true)
                    }
                }
            }
            if !pending.isEmpty {
                let rest = pending
                try await call { () async throws(FileStoreError) in try await upload.append(rest) }
            }
            let stored = try await call { () async throws(FileStoreError) in try await upload.finish() }
            return try Self.json(Created(id: stored.id.hex, size: stored.size), status: .created)
        } catch {
            upload.abandon()
            throw error
        }
    }

    func download(_ request: Request, context: some RequestContext, head: Bool) async throws -> Response {
        let id = try Self.id(context)
        let reader = try await call { () async throws(FileStoreError) in try await store.openReader(id) }
        var headers: HTTPFields = [.contentType: "application/octet-stream", .contentLength: String(reader.size)]
        headers[HTTPField.Name("ETag")!] = "\"\(id.hex)\""
        if head {
            reader.close()
            return Response(status: .ok, headers: headers, body: ResponseBody())
        }
        let size = reader.size
        headers[.contentLength] = nil
        return Response(status: .ok, headers: headers, body: ResponseBody(contentLength: Int(size)) { writer in
            defer { reader.close() }
            while true {
                let chunk = try await reader.read()
                if chunk.isEmpty { break }
                try await writer.write(ByteBuffer(bytes: chunk))
            }
            try await writer.finish(nil)
        })
    }

    func delete(_ context: some RequestContext) async throws -> Response {
        let id = try Self.id(context)
        try await call { () async throws(FileStoreError) in try await store.delete(id) }
        return Response(status: .noContent)
    }

    /// The `{id}` of the path: 400 unless it is 64 lowercase hex digits.
    static func id(_ context: some RequestContext) throws -> FileId {
        let text = context.parameters.get("id") ?? ""
        do {
            return try FileId(text)
        } catch {
            throw APIError(.badRequest, error.description)
        }
    }

    /// A store call, its refusal as the answer it means.
    private func call<T>(_ body: () async throws(FileStoreError) -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            switch error.kind {
            case .notFound: throw APIError(.notFound, error.message)
            case .tooLarge: metrics.rejected(.tooLarge); throw APIError(.contentTooLarge, error.message)
            case .full: throw APIError(.init(code: 507, reasonPhrase: "Insufficient Storage"), error.message)
            case .inUse: throw APIError(.conflict, error.message)
            case .system: throw APIError(.internalServerError, error.message)
            }
        }
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}
