import Foundation
import HTTPTypes
import HummingbirdTesting
import MicrolithAuth
import MicrolithJSON
import MicrolithRuntime
import NIOCore
import Testing

/// `/_users` and `/_roles` on a live server: a super user manages users over REST; nobody else may.
@Suite(.timeLimit(.minutes(1))) struct UserRoutesTests {
    static let roles = "anonymous:\n  tables:\n    Todo: read\nclerk:\n  tables:\n    Todo:\n      verbs: [read, update]\n      readOnly: [done]\n"
    let admin: HTTPFields = [.contentType: "application/json", .authorization: "Basic cm9vdDpwdy1yb290"]

    func send(
        _ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, _ body: String? = nil, headers: HTTPFields? = nil
    )
        async throws -> TestResponse
    {
        try await client.execute(uri: path, method: method, headers: headers ?? admin, body: body.map { jsonBody($0) })
    }

    @Test func aSuperUserManagesUsers() async throws {
        try await withLiveServer(files: ["roles.yaml": Self.roles], environment: adminEnvironment) { _, client in
            let added = try await send(client, .post, "/_users", #"{"name":"cleo","password":"pw-cleo","roles":["clerk"]}"#)
            #expect(added.status == .created, "\(String(buffer: added.body))")
            #expect(added.json() == ["name": "cleo", "roles": ["clerk"]])
            #expect(
                try await send(client, .get, "/_users").json() == [["name": "cleo", "roles": ["clerk"]], ["name": "root", "roles": ["super_user"]]])
            let cleo: HTTPFields = [.authorization: "Basic Y2xlbzpwdy1jbGVv"]
            #expect(try await client.execute(uri: "/Todo/", method: .get, headers: cleo).status == .ok)

            try await send(client, .post, "/_users", #"{"name":"cleo","password":"x"}"#).expectProblem(.conflict, code: "conflict")
            try await send(client, .post, "/_users", #"{"name":"dan","password":"x","roles":["wizard"]}"#)
                .expectProblem(.badRequest, code: "badRequest")
            try await send(client, .post, "/_users", #"{"name":"has space","password":"x"}"#).expectProblem(.badRequest, code: "badRequest")

            // A new password takes effect at once: the old one is forgotten.
            let changed = try await send(client, .patch, "/_users/cleo", #"{"password":"pw-new"}"#)
            #expect(changed.status == .ok && changed.json()["roles"] == ["clerk"])
            try await client.execute(uri: "/Todo/", method: .get, headers: cleo).expectProblem(.unauthorized, code: "unauthorized")
            try await send(client, .patch, "/_users/cleo", #"{"name":"x"}"#).expectProblem(.badRequest, code: "badRequest")
            try await send(client, .patch, "/_users/nobody", #"{"roles":[]}"#).expectProblem(.notFound, code: "notFound")

            #expect(try await send(client, .delete, "/_users/cleo").status == .noContent)
            try await send(client, .delete, "/_users/cleo").expectProblem(.notFound, code: "notFound")

            let roles = try await send(client, .get, "/_roles").json()
            #expect(roles["declared"] == true)
            let clerk = roles["roles"]?.arrayValue?.first { $0["name"] == "clerk" }
            #expect(clerk?["tables"]?["Todo"] == ["verbs": ["read", "update"], "readOnly": ["done"]])
        }
    }

    @Test func nobodyElseMay() async throws {
        try await withLiveServer(files: ["roles.yaml": Self.roles], environment: adminEnvironment) { server, client in
            try await server.authenticator.users.add("cleo", password: "pw-cleo", roles: ["clerk"])
            let cleo: HTTPFields = [.contentType: "application/json", .authorization: "Basic Y2xlbzpwdy1jbGVv"]
            try await send(client, .get, "/_users", headers: [:]).expectProblem(.unauthorized, code: "unauthorized")
            let refused = try await send(client, .post, "/_users", #"{"name":"x","password":"y"}"#, headers: cleo)
            #expect(refused.expectProblem(.forbidden, code: "forbidden")["detail"] == "user cleo (roles: clerk) may not add users")
            try await send(client, .get, "/_roles", headers: cleo).expectProblem(.forbidden, code: "forbidden")
        }
    }
}
