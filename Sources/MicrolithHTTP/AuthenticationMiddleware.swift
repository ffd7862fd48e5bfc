import Foundation
public import Hummingbird
public import MicrolithAuth
import MicrolithTables

/// Verifies a request's `Authorization` header (HTTP Basic or a bearer access token; for an event
/// stream also an `access_token` query parameter) and serves the request as the user it names
/// (``Principal/current``); a request without one is served as the anonymous role. Bad
/// credentials are a 401 with a `WWW-Authenticate` challenge; too many failed sign-ins for a user
/// name, or from the client's address (``ClientAddress``, when the context knows the peer), a 429.
public struct AuthenticationMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The challenge of a 401: HTTP Basic, UTF-8 (RFC 7617).
    public static var challenge: String { #"Basic realm="microlith", charset="UTF-8""# }

    let authenticator: Authenticator
    let clientAddress: ClientAddress

    public init(authenticator: Authenticator, clientAddress: ClientAddress = ClientAddress()) {
        self.authenticator = authenticator
        self.clientAddress = clientAddress
    }

    /// The address a request in `context` comes from: its peer's, or what a trusted proxy says.
    public static func address(_ request: Request, context: Context, clientAddress: ClientAddress) -> String? {
        clientAddress.of(peer: (context as? any PeerAddressContext)?.peerAddress, headers: request.headers)
    }

    /// `Bearer <token>` for an `access_token` query parameter (RFC 6750 §2.3) of an event stream
    /// request: a browser's `EventSource` cannot set headers. Other requests send the header.
    static func eventStreamToken(_ request: Request) -> String? {
        // Most requests have no such parameter: that is checked first, before the header is lowered.
        guard request.method == .get, let token = accessToken(query: request.uri.query),
            request.headers[.accept]?.lowercased().contains("text/event-stream") == true
        else { return nil }
        return token
    }

    /// `Bearer <token>` for the `access_token` parameter of `query`, if there is one.
    public static func accessToken(query: String?) -> String? {
        guard let query, query.contains("access_token=") else { return nil }
        for item in query.split(separator: "&") where item.hasPrefix("access_token=") {
            let value = item.dropFirst("access_token=".count)
            return "Bearer " + (value.removingPercentEncoding ?? String(value))
        }
        return nil
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] ?? Self.eventStreamToken(request) else { return try await next(request, context) }
        let address = Self.address(request, context: context, clientAddress: clientAddress)
        switch await authenticator.authenticate(header, address: address) {
        case .success(let verified):
            // Only an event stream outlives its request: it needs to know when the user was checked.
            guard SubscriptionEndpoint.wantsEventStream(request.headers) else {
                return try await Principal.$current.withValue(verified.principal) { try await next(request, context) }
            }
            return try await Principal.$current.withValue(verified.principal) {
                try await LiveSessions.$checkedSince.withValue(verified.checked) { try await next(request, context) }
            }
        case .failure(let refusal):
            if refusal.status == 429 {
                throw Problem(
                    .tooManyRequests, refusal.message, code: "tooManySignIns", headers: [.retryAfter: String(refusal.retryAfter ?? 1)])
            }
            // A refused bearer token is challenged as one (RFC 6750 §3): the client refreshes it.
            let challenge = Authenticator.bearer(header) != nil ? #"Bearer realm="microlith", error="invalid_token""# : Self.challenge
            throw Problem(.unauthorized, refusal.message, code: "unauthorized", headers: [.wwwAuthenticate: challenge])
        }
    }
}
