import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import MicrolithHTTP
import MicrolithJSON
import MicrolithSchema
import MicrolithStore
import NIOCore
import Synchronization
import Testing

let httpSchemaText = """
    type Todo @table @export {
        id: ID @primaryKey
        title: String!
        done: Boolean @indexed
        tags: [String] @indexed
        priority: Int @indexed
        notes: String
        createdAt: Long @createdTime
    }

    type Counter @table @export(name: "counters") {
        id: Int @primaryKey
        value: Int
    }

    type Hidden @table {
        id: ID @primaryKey
    }
    """

/// Builds the REST router exactly as the server does, over a store in a new temporary folder,
/// runs `body` with a router test client, then closes the store and deletes the folder.
func withREST(
    _ configuration: HTTPConfiguration = HTTPConfiguration(),
    busyTimeoutMilliseconds: Int = 2000,
    schema schemaText: String = httpSchemaText,
    _ body: @Sendable (any TestClientProtocol, Store) async throws -> Void
) async throws {
    let directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-http-tests-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let schema = try SchemaParser.parse(schemaText, file: "schema.graphql")
    let store = try Store.open(
        schema: schema,
        configuration: StoreConfiguration(directory: directory, durability: .normal, busyTimeoutMilliseconds: busyTimeoutMilliseconds))
    defer { store.close() }
    let endpoint = TableEndpoint(store: store, configuration: configuration)
    let router = RESTRouter.make(
        endpoint: endpoint, openAPI: OpenAPIDocument.make(schema: store.schema), logger: Logger(label: "microlith.tests"))
    let app = Application(router: router)
    try await app.test(.router) { client in try await body(client, store) }
}

/// A JSON request body.
func json(_ text: String) -> ByteBuffer {
    ByteBuffer(string: text)
}

extension TestResponse {
    /// The body as text.
    var text: String { String(buffer: body) }

    /// The body parsed as JSON; records an issue and returns `null` when it is not JSON.
    func json(sourceLocation: Testing.SourceLocation = #_sourceLocation) -> JSONValue {
        do {
            return try JSONParser.parse(Array(body.readableBytesView))
        } catch {
            Issue.record("the body is not JSON (\(error)): \(text)", sourceLocation: sourceLocation)
            return .null
        }
    }

    /// Checks that this is an RFC 9457 problem with `status` (and `code` when given) carrying a
    /// code and the request id of its `X-Request-Id`, and returns its JSON body.
    @discardableResult
    func expectProblem(
        _ status: HTTPResponse.Status, code: String? = nil, sourceLocation: Testing.SourceLocation = #_sourceLocation
    ) -> JSONValue {
        #expect(self.status == status, "body: \(text)", sourceLocation: sourceLocation)
        #expect(headers[.contentType] == "application/problem+json", sourceLocation: sourceLocation)
        let problem = json(sourceLocation: sourceLocation)
        #expect(problem["type"] == "about:blank", sourceLocation: sourceLocation)
        #expect(problem["status"] == .int(Int64(status.code)), sourceLocation: sourceLocation)
        #expect(problem["title"]?.stringValue?.isEmpty == false, sourceLocation: sourceLocation)
        #expect(problem["detail"]?.stringValue?.isEmpty == false, sourceLocation: sourceLocation)
        #expect(problem["code"]?.stringValue?.isEmpty == false, "body: \(text)", sourceLocation: sourceLocation)
        if let code { #expect(problem["code"] == .string(code), "body: \(text)", sourceLocation: sourceLocation) }
        let requestID = headers[RequestLogMiddleware<BasicRequestContext>.requestID]
        #expect(requestID != nil, sourceLocation: sourceLocation)
        #expect(problem["requestId"]?.stringValue == requestID, "body: \(text)", sourceLocation: sourceLocation)
        return problem
    }
}

extension HTTPField.Name {
    static let serverTiming = HTTPField.Name("Server-Timing")!
    static let warning = HTTPField.Name("Warning")!
}

/// `PUT uri` with a JSON body.
@discardableResult
func put(_ client: any TestClientProtocol, _ uri: String, _ body: String, headers: HTTPFields = [:]) async throws -> TestResponse {
    var fields: HTTPFields = [.contentType: "application/json"]
    for field in headers { fields[field.name] = field.value }
    return try await client.execute(uri: uri, method: .put, headers: fields, body: json(body))
}

/// A second store on `store`'s folder whose writer holds the database's write lock (inside a
/// write transaction that waits) until ``release()``.
final class WriteLockHolder: Sendable {
    private let other: Store
    private let gate = DispatchSemaphore(value: 0)
    private let task: Task<Void, any Error>

    private final class Flag: Sendable {
        let value = Atomic(false)
    }

    init(on store: Store) async throws {
        let other = try Store.open(
            schema: store.schema, configuration: StoreConfiguration(directory: store.configuration.directory, durability: .normal))
        self.other = other
        let gate = gate
        let held = Flag()
        task = Task {
            try await other.write { _ in
                held.value.store(true, ordering: .releasing)
                gate.wait()
            }
        }
        while !held.value.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(5)) }
    }

    /// Ends the other store's transaction and closes it.
    func release() async throws {
        gate.signal()
        try await task.value
        other.close()
    }
}
