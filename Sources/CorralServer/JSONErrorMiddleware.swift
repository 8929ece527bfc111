import HTTPTypes
import Hummingbird

/// Makes every error answer `{"error": MESSAGE}`, as documented: Hummingbird's own (404 for
/// a route or method the server does not have) and any error a route throws that is not an
/// ``APIError`` (500). ``APIError``s pass through as they are.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            throw APIError(error.status, Self.message(error, request), headers: error.headers)
        } catch let error as any HTTPResponseError {
            throw APIError(error.status, error.status.reasonPhrase)
        } catch {
            throw APIError(.internalServerError, "internal error")
        }
    }

    static func message(_ error: HTTPError, _ request: Request) -> String {
        switch error.status {
        case .notFound: "no route \(request.method.rawValue) \(request.uri.path) (see Docs/openapi.json)"
        case .methodNotAllowed: "\(request.uri.path) does not take \(request.method.rawValue)"
        default: error.body ?? error.status.reasonPhrase
        }
    }
}
