import Foundation
import HTTPTypes
import HummingbirdTesting
import MicrolithHTTP
import MicrolithRuntime
import NIOCore
import Testing

/// Failed sign-ins over HTTP count per client address too: the connection's peer, or, through a
/// trusted proxy, the address it appends to `X-Forwarded-For`.
@Suite(.timeLimit(.minutes(1))) struct SignInAddressTests {
    func basic(_ user: String, _ password: String, forwardedFor: String? = nil) -> HTTPFields {
        var fields: HTTPFields = [.authorization: "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()]
        if let forwardedFor { fields[HTTPField.Name("X-Forwarded-For")!] = forwardedFor }
        return fields
    }

    @Test func twentyFailuresFromOneAddressRefuseEveryNameForAWhile() async throws {
        try await withLiveServer(environment: adminEnvironment) { _, client in
            // 20 names that each fail once: no name reaches its own limit, the address does.
            for n in 0..<20 {
                let refused = try await client.execute(uri: "/_jobs", method: .get, headers: basic("guess\(n)", "wrong"))
                #expect(refused.status == .unauthorized)
            }
            let root = try await client.execute(uri: "/_jobs", method: .get, headers: basic("root", "pw-root"))
            #expect(root.status == .tooManyRequests, "\(String(buffer: root.body))")
            #expect(root.headers[.retryAfter] != nil)
            // /_auth/token counts the same address.
            let token = try await client.execute(
                uri: "/_auth/token", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"username":"root","password":"pw-root"}"#))
            #expect(token.status == .tooManyRequests)
        }
    }

    /// `POST /_auth/token` as root from `forwardedFor`: always checked against the store (never
    /// the cache of verified credentials), so the limits always apply.
    func signIn(_ client: any TestClientProtocol, forwardedFor: String) async throws -> HTTPResponse.Status {
        var headers: HTTPFields = [.contentType: "application/json"]
        headers[HTTPField.Name("X-Forwarded-For")!] = forwardedFor
        return try await client.execute(
            uri: "/_auth/token", method: .post, headers: headers, body: ByteBuffer(string: #"{"username":"root","password":"pw-root"}"#)
        ).status
    }

    @Test func behindATrustedProxyTheForwardedAddressCounts() async throws {
        try await withLiveServer(environment: adminEnvironment, configure: { $0.http.trustedProxies = ["127.0.0.1"] }) { _, client in
            // One client's 20 failures, whatever it writes to the left of the header, block that client only.
            for n in 0..<20 {
                let refused = try await client.execute(
                    uri: "/_jobs", method: .get, headers: basic("other\(n)", "wrong", forwardedFor: "10.9.9.\(n), 203.0.113.200"))
                #expect(refused.status == .unauthorized)
            }
            #expect(try await signIn(client, forwardedFor: "203.0.113.200") == .tooManyRequests)
            #expect(try await signIn(client, forwardedFor: "203.0.113.201") == .ok)
            // Failures spread over many clients of the proxy reach no address's limit.
            for n in 0..<20 {
                let refused = try await client.execute(
                    uri: "/_jobs", method: .get, headers: basic("guess\(n)", "wrong", forwardedFor: "198.51.100.\(n + 1)"))
                #expect(refused.status == .unauthorized)
            }
            #expect(try await signIn(client, forwardedFor: "198.51.100.200") == .ok)
        }
    }
}
