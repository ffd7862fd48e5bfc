import HTTPTypes
import HummingbirdTesting
import MicrolithAuth
import MicrolithJSON
import MicrolithModules
import MicrolithRuntime
import MicrolithTables
import NIOCore
import Testing

enum Vault {
    static let open = Operation<GreetRequest, Greeting>(module: "vault", name: "open")
    static let peek = Operation<GreetRequest, Greeting>(module: "vault", name: "peek")
    static let wipe = Operation<GreetRequest, Greeting>(module: "vault", name: "wipe")
    static let count = Operation<GreetRequest, Greeting>(module: "vault", name: "count")
    static let touch = Operation<GreetRequest, Greeting>(module: "vault", name: "touch")
}

/// One operation per kind of permission, each answering who called it.
struct VaultModule: Module {
    let name = "vault"
    var countNeeds = "Todo"

    func register(_ builder: inout ModuleBuilder) {
        let answer: @Sendable (GreetRequest, OperationContext) async throws -> Greeting = { request, _ in
            Greeting(text: "\(request.name) by \(Principal.current.user ?? "anonymous")")
        }
        builder.handle(Vault.open, requires: .role("clerk"), answer)
        builder.handle(Vault.peek, requires: .signedIn, answer)
        builder.handle(Vault.wipe, requires: .superUser, answer)
        builder.handle(Vault.count, requires: .table(countNeeds, .read), answer)
        builder.handle(Vault.touch, requires: .table("Todo", .update), answer)
    }
}

/// `requires:` on an operation: checked for callers over HTTP against their roles, refusals worded
/// as table refusals are, and shown in `/openapi.json`.
@Suite(.timeLimit(.minutes(1))) struct OperationPermissionTests {
    static let roles = "anonymous:\n  tables:\n    Todo: read\nclerk:\n  tables:\n    Todo: [read, update]\n"
    let json: HTTPFields = [.contentType: "application/json"]
    /// `cleo:pw-cleo`, a clerk.
    let cleo: HTTPFields = [.contentType: "application/json", .authorization: "Basic Y2xlbzpwdy1jbGVv"]
    /// `root`, the super user of `adminEnvironment`.
    let root: HTTPFields = [.contentType: "application/json", .authorization: "Basic cm9vdDpwdy1yb290"]

    func call(_ client: any TestClientProtocol, _ operation: String, _ headers: HTTPFields) async throws -> TestResponse {
        try await client.execute(uri: "/_operations/vault/\(operation)", method: .post, headers: headers, body: jsonBody(#"{"name":"x"}"#))
    }

    @Test func eachOperationIsCalledOnlyByWhoHoldsItsPermission() async throws {
        try await withLiveServer(modules: [VaultModule()], files: ["roles.yaml": Self.roles], environment: adminEnvironment) { server, client in
            try await server.authenticator.users.add("cleo", password: "pw-cleo", roles: ["clerk"])

            let anonymous = try await call(client, "open", json).expectProblem(.unauthorized, code: "unauthorized")
            #expect(anonymous["detail"]?.stringValue?.hasPrefix("the anonymous role may not call vault.open") == true, "\(anonymous)")
            #expect(try await call(client, "open", cleo).json() == ["text": "x by cleo"])
            #expect(try await call(client, "open", root).json() == ["text": "x by root"], "a super user holds every permission")

            try await call(client, "peek", json).expectProblem(.unauthorized, code: "unauthorized")
            #expect(try await call(client, "peek", cleo).status == .ok)

            let refused = try await call(client, "wipe", cleo).expectProblem(.forbidden, code: "forbidden")
            #expect(refused["detail"] == "user cleo (roles: clerk) may not call vault.wipe")
            #expect(try await call(client, "wipe", root).status == .ok)

            #expect(try await call(client, "count", json).json() == ["text": "x by anonymous"], "roles.yaml lets anyone read Todo")
            try await call(client, "touch", json).expectProblem(.unauthorized, code: "unauthorized")
            #expect(try await call(client, "touch", cleo).status == .ok, "clerks may update Todo")
        }
    }

    @Test func theOpenAPIDocumentSaysWhatAnOperationRequires() async throws {
        try await withLiveServer(modules: [VaultModule()]) { _, client in
            let document = try await client.execute(uri: "/openapi.json", method: .get).json()
            let open = document["paths"]?["/_operations/vault/open"]?["post"]
            #expect(open?["description"] == "Requires the role clerk.")
            #expect(open?["security"] == [["basicAuth": []], ["bearerAuth": []]])
            #expect(open?["responses"]?["401"] != nil && open?["responses"]?["403"] != nil)
            let greet = document["paths"]?["/_operations/desk/greet"]?["post"]
            #expect(greet == nil || greet?["security"] == nil)
        }
    }

    @Test func anOperationNamingATableTheSchemaLacksStopsTheStart() async throws {
        await #expect(throws: RuntimeError.self) {
            try await withLiveServer(modules: [VaultModule(countNeeds: "Todos")]) { _, _ in }
        }
        do {
            try await withLiveServer(modules: [VaultModule(countNeeds: "Todos")]) { _, _ in }
        } catch let error as RuntimeError {
            #expect(error.message == "operation vault.count requires a permission on table 'Todos', which the schema does not declare")
        }
    }
}
