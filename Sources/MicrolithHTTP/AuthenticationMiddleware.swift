public import Hummingbird
public import MicrolithAuth
import MicrolithTables

/// Verifies a request's `Authorization` header (HTTP Basic) and serves the request as the user it
/// names (``Principal/current``); a request without one is served as the anonymous role. Bad
/// credentials are a 401 with a `WWW-Authenticate` challenge; too many failed sign-ins for a user
/// name a 429.
public struct AuthenticationMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The challenge of a 401: HTTP Basic, UTF-8 (RFC 7617).
    public static var challenge: String { #"Basic realm="microlith", charset="UTF-8""# }

    let authenticator: Authenticator

    public init(authenticator: Authenticator) {
        self.authenticator = authenticator
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else { return try await next(request, context) }
        // Hummingbird's basic context does not carry the peer's address: failures are limited per user name.
        switch await authenticator.authenticate(header, address: nil) {
        case .success(let principal):
            return try await Principal.$current.withValue(principal) { try await next(request, context) }
        case .failure(let refusal):
            if refusal.status == 429 {
                throw Problem(
                    .tooManyRequests, refusal.message, code: "tooManySignIns", headers: [.retryAfter: String(refusal.retryAfter ?? 1)])
            }
            throw Problem(.unauthorized, refusal.message, code: "unauthorized", headers: [.wwwAuthenticate: Self.challenge])
        }
    }
}
