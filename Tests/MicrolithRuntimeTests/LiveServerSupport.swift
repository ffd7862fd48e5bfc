import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MicrolithHTTP
import MicrolithJSON
import MicrolithJobs
import MicrolithMQTT
import MicrolithModules
import MicrolithRuntime
import MicrolithStore
import NIOCore
import Testing

struct Greeting: Codable, Sendable, Equatable {
    var text: String
}

struct GreetRequest: Codable, Sendable {
    var name: String
}

enum Desk {
    static let greet = Operation<GreetRequest, Greeting>(module: "desk", name: "greet")
    /// Enqueues `note`, or `failing` for the name "fail".
    static let file = Operation<GreetRequest, Greeting>(module: "desk", name: "file")
    static let note = Job<GreetRequest>(module: "desk", name: "note")
    static let failing = Job<GreetRequest>(module: "desk", name: "failing", retry: RetryPolicy(maximumAttempts: 1))
}

/// An operation that answers or refuses, one that enqueues jobs, a job that succeeds and one that always fails.
struct DeskModule: Module {
    let name = "desk"

    func register(_ builder: inout ModuleBuilder) {
        builder.handle(Desk.greet) { request, _ in
            guard !request.name.isEmpty else { throw OperationError.badRequest("a name is needed") }
            guard request.name != "nobody" else { throw OperationError.notFound("no one is called nobody") }
            return Greeting(text: "hello \(request.name)")
        }
        builder.handle(Desk.file) { request, context in
            try await context.write { txn in
                if request.name == "fail" {
                    try txn.enqueue(Desk.failing, request)
                } else {
                    try txn.enqueue(Desk.note, request)
                }
                return Greeting(text: "filed \(request.name)")
            }
        }
        builder.job(Desk.note) { _, _ in }
        builder.job(Desk.failing) { request, _ in throw OperationError.conflict("\(request.name) never works") }
    }
}

/// Runs a microlith with `modules` (and more app-folder `files`) on a free loopback port, built as `microlith serve` builds it
/// (guarded connections, fast path, WebSocket upgrades, its services), while `body` runs with a
/// client connected to it; then stops it and closes the store.
func withLiveServer(
    schema: String = todoSchema, modules: [any Module] = [DeskModule()], roles: [String]? = nil, files: [String: String] = [:],
    environment: [String: String] = [:], configure: (inout RuntimeConfiguration) -> Void = { _ in },
    _ body: @escaping @Sendable (MicrolithServer, any TestClientProtocol) async throws -> Void
) async throws {
    let app = try TemporaryApp(files.merging(["schema.graphql": schema]) { _, schema in schema })
    defer { app.remove() }
    let server = try await MicrolithServer.start(appDirectory: app.path, modules: modules, environment: environment) { c in
        c.http.host = "127.0.0.1"
        c.http.port = 0
        c.mqtt.enabled = false
        c.store.directory = app.file("data")
        c.logLevel = "error"
        c.roles = roles
        // Hashes at a low cost: many tests run at once, and the hash's cost is not what they test.
        c.passwordIterations = 1_000
        configure(&c)
    }
    defer { server.store.close() }
    try await server.makeApplication().test(.live) { client in try await body(server, client) }
}

/// Makes `root` (password `pw-root`), a super user, at first start: for the administrative endpoints.
let adminEnvironment = ["MICROLITH_ADMIN_USER": "root", "MICROLITH_ADMIN_PASSWORD": "pw-root"]

/// HTTP Basic credentials of the user ``adminEnvironment`` makes.
let adminHeaders: HTTPFields = [.authorization: "Basic cm9vdDpwdy1yb290"]

/// A JSON request body.
func jsonBody(_ text: String) -> ByteBuffer {
    ByteBuffer(string: text)
}

extension TestResponse {
    /// The body parsed as JSON; records an issue and returns `null` when it is not JSON.
    func json(sourceLocation: Testing.SourceLocation = #_sourceLocation) -> JSONValue {
        do {
            return try JSONParser.parse(Array(body.readableBytesView))
        } catch {
            Issue.record("the body is not JSON (\(error)): \(String(buffer: body))", sourceLocation: sourceLocation)
            return .null
        }
    }

    /// Checks that this is a problem+json answer with `status` and `code`, and returns its body.
    @discardableResult
    func expectProblem(_ status: HTTPResponse.Status, code: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> JSONValue {
        #expect(self.status == status, "body: \(String(buffer: body))", sourceLocation: sourceLocation)
        #expect(headers[.contentType] == "application/problem+json", sourceLocation: sourceLocation)
        let problem = json(sourceLocation: sourceLocation)
        #expect(problem["status"] == .int(Int64(status.code)), sourceLocation: sourceLocation)
        #expect(problem["code"] == .string(code), "body: \(String(buffer: body))", sourceLocation: sourceLocation)
        #expect(problem["detail"]?.stringValue?.isEmpty == false, sourceLocation: sourceLocation)
        return problem
    }
}
