import HTTPTypes
import Hummingbird

extension CorralServer {
    /// `/v1/files` (``FilesHandler``); without a file store every such request is a 404
    /// that says so.
    func addFileRoutes(to router: Router<ServerRequestContext>) {
        guard let store = fileStore else {
            let refuse: @Sendable (Request, ServerRequestContext) async throws -> Response = { _, _ in
                throw APIError(.notFound, "this server has no file store (corral serve --file-store DIR)")
            }
            router.post("/v1/files", use: refuse)
            for method in [HTTPRequest.Method.get, .head, .delete] { router.on("/v1/files/:id", method: method, use: refuse) }
            return
        }
        let handler = FilesHandler(store: store, budget: bodyBudget, metrics: metrics)
        router.post("/v1/files") { request, _ in try await handler.upload(request) }
        router.get("/v1/files/:id") { request, context in try await handler.download(request, context: context, head: false) }
        router.head("/v1/files/:id") { request, context in try await handler.download(request, context: context, head: true) }
        router.delete("/v1/files/:id") { _, context in try await handler.delete(context) }
    }
}
