import Foundation
import HTTPTypes
import Hummingbird

/// An error answer: the status and `{"error": MESSAGE, "path": FIELD}` (`path` only for a
/// job spec that does not validate).
struct APIError: HTTPResponseError {
    let status: HTTPResponse.Status
    let message: String
    let path: String?
    let headers: HTTPFields

    init(_ status: HTTPResponse.Status, _ message: String, path: String? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.path = path
        self.headers = headers
    }

    struct Body: Encodable {
        let error: String
        let path: String?
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        let data = try JSONEncoder().encode(Body(error: message, path: path))
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
