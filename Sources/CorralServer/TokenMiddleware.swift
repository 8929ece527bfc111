import HTTPTypes
import Hummingbird

/// Requires `Authorization: Bearer <token>` on every route but `/v1/health`, comparing in
/// constant time (the time taken does not depend on where the tokens differ).
struct TokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]
    let onRefused: @Sendable () -> Void

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path == "/v1/health" { return try await next(request, context) }
        let given = request.headers[.authorization].flatMap { value -> [UInt8]? in
            guard value.hasPrefix("Bearer ") else { return nil }
            return Array(value.utf8.dropFirst(7))
        }
        guard let given, Self.equal(given, token) else {
            onRefused()
            throw APIError(.unauthorized, "missing or wrong token (Authorization: Bearer TOKEN)",
                           headers: [.wwwAuthenticate: "Bearer"])
        }
        return try await next(request, context)
    }

    /// Every byte of the longer is looked at whatever the contents.
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count) | (a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}
