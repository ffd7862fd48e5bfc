import Foundation
import Hummingbird
import MicrolithAuth
import MicrolithHTTP
import MicrolithJSON
import MicrolithTables
import NIOCore

/// Bearer tokens over REST (the Roles article):
///
/// - `POST /_auth/token` with `{"username": …, "password": …}` (or HTTP Basic and no body): an
///   access token and a refresh token for that user.
/// - `POST /_auth/refresh` with `{"refresh_token": …}`: a new pair for the token, which is spent.
/// - `POST /_auth/revoke` with `{"refresh_token": …}`: the token spent (signing out); 204.
///
/// Answers carry `Cache-Control: no-store`. Wrong credentials are a 401 and count towards the
/// sign-in limits, as Basic's do.
enum AuthRoutes {
    static func add(
        to router: Router<MicrolithRequestContext>, authenticator: Authenticator, tokens: TokenIssuer, maximumBodyBytes: Int,
        clientAddress: ClientAddress = ClientAddress()
    ) {
        router.post("/_auth/token") { request, context -> Response in
            let body = try await object(request, limit: maximumBodyBytes)
            let principal: Principal
            let name: String
            let password: String
            if body.isEmpty {
                // Credentials in the Authorization header (a bearer token does not buy a new pair).
                guard let header = request.headers[.authorization], let (user, secret) = Authenticator.basic(header) else {
                    throw Problem(
                        .badRequest, "send {\"username\": …, \"password\": …} as JSON, or HTTP Basic credentials with no body",
                        code: "badRequest")
                }
                (name, password) = (user, secret)
            } else {
                name = try text(body, "username")
                password = try text(body, "password")
            }
            let checked: Int64
            do {
                // Checked against the store, not the minute-long cache: a password changed a moment ago
                // must not still buy a refresh token.
                let address = AuthenticationMiddleware.address(request, context: context, clientAddress: clientAddress)
                switch await authenticator.signIn(name, password: password, address: address, fresh: true) {
                case .success(let signedIn):
                    principal = signedIn.principal
                    checked = signedIn.checked
                case .failure(let refusal) where refusal.status == 429:
                    throw Problem(
                        .tooManyRequests, refusal.message, code: "tooManySignIns", headers: [.retryAfter: String(refusal.retryAfter ?? 1)])
                case .failure(let refusal):
                    throw Problem(.unauthorized, refusal.message, code: "unauthorized")
                }
            }
            do {
                // A change to the user since the version the password was checked against refuses the pair.
                return answer(try await tokens.issue(for: principal, unchangedSince: checked))
            } catch let refusal as TokenIssuer.Refusal {
                throw Problem(.unauthorized, refusal.description, code: "unauthorized")
            }
        }
        router.post("/_auth/refresh") { request, _ -> Response in
            let token = try text(try await object(request, limit: maximumBodyBytes), "refresh_token")
            do {
                return answer(try await tokens.refresh(token))
            } catch let refusal as TokenIssuer.Refusal {
                throw Problem(.unauthorized, refusal.description, code: "unauthorized")
            }
        }
        router.post("/_auth/revoke") { request, _ -> Response in
            let token = try text(try await object(request, limit: maximumBodyBytes), "refresh_token")
            try await tokens.revoke(token)
            // Whether or not it was valid: a client signing out learns nothing about other tokens.
            return Response(status: .noContent, headers: [.cacheControl: "no-store"])
        }
    }

    /// The request's JSON object body (empty when there is no body).
    static func object(_ request: Request, limit: Int) async throws -> JSONObject {
        let buffer = try await TableEndpoint.body(request, limit: limit)
        guard buffer.readableBytes > 0 else { return JSONObject() }
        try TableEndpoint.requireJSON(request)
        return try TableEndpoint.jsonObject(buffer)
    }

    /// The string member `name` of `body`.
    static func text(_ body: JSONObject, _ name: String) throws -> String {
        guard case .string(let value)? = body[name], !value.isEmpty else {
            throw Problem(.badRequest, "the body needs \"\(name)\", a non-empty string", code: "badRequest")
        }
        return value
    }

    /// The token answer of RFC 6749 §5.1.
    static func answer(_ tokens: TokenIssuer.Tokens) -> Response {
        let body: JSONValue = [
            "access_token": .string(tokens.accessToken), "token_type": "Bearer", "expires_in": .int(Int64(tokens.expiresIn)),
            "refresh_token": .string(tokens.refreshToken), "refresh_expires_in": .int(Int64(tokens.refreshExpiresIn)),
        ]
        return Response(
            status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: JSONWriter.encode(body))))
    }
}
