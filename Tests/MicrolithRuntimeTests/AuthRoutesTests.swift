import Foundation
import HTTPTypes
import HummingbirdTesting
import MicrolithJSON
import NIOCore
import Testing

/// `/_auth/token`, `/_auth/refresh` and `/_auth/revoke` on a live server, and bearer tokens on
/// other requests.
@Suite(.timeLimit(.minutes(1))) struct AuthRoutesTests {
    let json: HTTPFields = [.contentType: "application/json"]

    func post(_ client: any TestClientProtocol, _ path: String, _ body: String, headers: HTTPFields? = nil) async throws -> TestResponse {
        try await client.execute(uri: path, method: .post, headers: headers ?? json, body: jsonBody(body))
    }

    func bearer(_ token: JSONValue?) -> HTTPFields {
        [.authorization: "Bearer \(token?.stringValue ?? "")"]
    }

    @Test func aSignedInUserGetsTokensAndUsesThem() async throws {
        try await withLiveServer(environment: adminEnvironment) { _, client in
            let signedIn = try await post(client, "/_auth/token", #"{"username":"root","password":"pw-root"}"#)
            #expect(signedIn.status == .ok, "\(String(buffer: signedIn.body))")
            #expect(signedIn.headers[.cacheControl] == "no-store")
            let tokens = signedIn.json()
            #expect(tokens["token_type"] == "Bearer")
            #expect(tokens["expires_in"] == 900)
            #expect(tokens["refresh_expires_in"] == 2_592_000)

            // The access token opens what its user may do: the job queue is a super user's.
            let jobs = try await client.execute(uri: "/_jobs", method: .get, headers: bearer(tokens["access_token"]))
            #expect(jobs.status == .ok, "\(String(buffer: jobs.body))")

            // A refresh token is good once.
            let refreshed = try await post(client, "/_auth/refresh", #"{"refresh_token":"\#(tokens["refresh_token"]?.stringValue ?? "")"}"#)
            #expect(refreshed.status == .ok)
            #expect(refreshed.json()["refresh_token"] != tokens["refresh_token"])
            try await post(client, "/_auth/refresh", #"{"refresh_token":"\#(tokens["refresh_token"]?.stringValue ?? "")"}"#)
                .expectProblem(.unauthorized, code: "unauthorized")

            // Revoked, the new one is refused too; revoking is 204 whether or not the token was valid.
            let next = refreshed.json()["refresh_token"]?.stringValue ?? ""
            #expect(try await post(client, "/_auth/revoke", #"{"refresh_token":"\#(next)"}"#).status == .noContent)
            #expect(try await post(client, "/_auth/revoke", #"{"refresh_token":"\#(next)"}"#).status == .noContent)
            try await post(client, "/_auth/refresh", #"{"refresh_token":"\#(next)"}"#).expectProblem(.unauthorized, code: "unauthorized")
        }
    }

    @Test func basicCredentialsWithNoBodyGetTokensToo() async throws {
        try await withLiveServer(environment: adminEnvironment) { _, client in
            let response = try await client.execute(uri: "/_auth/token", method: .post, headers: adminHeaders)
            #expect(response.status == .ok, "\(String(buffer: response.body))")
            #expect(response.json()["access_token"]?.stringValue?.isEmpty == false)
        }
    }

    @Test func refusals() async throws {
        try await withLiveServer(environment: adminEnvironment) { _, client in
            let wrong = try await post(client, "/_auth/token", #"{"username":"root","password":"nope"}"#)
            #expect(wrong.expectProblem(.unauthorized, code: "unauthorized")["detail"] == "the user name or password is wrong")
            try await post(client, "/_auth/token", #"{"username":"root"}"#).expectProblem(.badRequest, code: "badRequest")
            try await post(client, "/_auth/token", #"["root"]"#).expectProblem(.badRequest, code: "badRequest")
            try await client.execute(uri: "/_auth/token", method: .post).expectProblem(.badRequest, code: "badRequest")
            try await post(client, "/_auth/refresh", "{}").expectProblem(.badRequest, code: "badRequest")

            let forged = try await client.execute(uri: "/_jobs", method: .get, headers: [.authorization: "Bearer eyJhbGciOiJub25lIn0.e30."])
            forged.expectProblem(.unauthorized, code: "unauthorized")
            #expect(forged.headers[.wwwAuthenticate] == #"Bearer realm="microlith", error="invalid_token""#)

            // An access token does not buy a new pair: that takes the password, or a refresh token.
            let tokens = try await post(client, "/_auth/token", #"{"username":"root","password":"pw-root"}"#).json()
            try await client.execute(uri: "/_auth/token", method: .post, headers: bearer(tokens["access_token"]))
                .expectProblem(.badRequest, code: "badRequest")
        }
    }
}
