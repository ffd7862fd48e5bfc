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
    _ body: @Sendable (any TestClientProtocol, Store) async throws -> Void
) async throws {
    let directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-http-tests-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let schema = try SchemaParser.parse(httpSchemaText, file: "schema.graphql")
    let store = try Store.open(schema: schema, configuration: StoreConfiguration(directory: directory, durability: .normal))
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

    /// Checks that this is an RFC 9457 problem with `status`, and returns its JSON body.
    @discardableResult
    func expectProblem(_ status: HTTPResponse.Status, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> JSONValue {
        #expect(self.status == status, "body: \(text)", sourceLocation: sourceLocation)
        #expect(headers[.contentType] == "application/problem+json", sourceLocation: sourceLocation)
        let problem = json(sourceLocation: sourceLocation)
        #expect(problem["type"] == "about:blank", sourceLocation: sourceLocation)
        #expect(problem["status"] == .int(Int64(status.code)), sourceLocation: sourceLocation)
        #expect(problem["title"]?.stringValue?.isEmpty == false, sourceLocation: sourceLocation)
        #expect(problem["detail"]?.stringValue?.isEmpty == false, sourceLocation: sourceLocation)
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
