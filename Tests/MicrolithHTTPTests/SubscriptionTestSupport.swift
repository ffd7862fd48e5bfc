import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import MicrolithHTTP
import MicrolithJSON
import MicrolithRealtime
import MicrolithSchema
import MicrolithStore
import MicrolithTables
import Testing

/// A live server for subscription tests: the REST router with SSE subscriptions, as the server
/// builds it, on a free loopback port.
struct SubscriptionServer: Sendable {
    let port: Int
    let store: Store
    let hub: EventHub
    let client: any TestClientProtocol

    /// Puts a `Todo` whose `notes` take `noteBytes` bytes.
    func putTodo(_ id: String, noteBytes: Int = 0) async throws {
        let table = try #require(store.tables.first { $0.name == "Todo" })
        let body: JSONObject = ["title": .string("todo \(id)"), "notes": .string(String(repeating: "n", count: noteBytes))]
        try await store.write { txn in _ = try txn.put(table, id: .string(id), body: body) }
    }

    /// Opens a raw connection and subscribes it to `path` as an event stream; returns once the
    /// `subscribed` event has arrived.
    func subscribe(_ path: String, receiveBufferBytes: Int? = nil, headers: String = "") async throws -> RawConnection {
        let connection = try RawConnection(port: port, receiveBufferBytes: receiveBufferBytes)
        try connection.send("GET \(path) HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\(headers)\r\n")
        let subscribed = try await connection.read(for: .seconds(10)) { $0.contains("event: subscribed") }
        #expect(subscribed && !connection.closed, "no subscribed event: \(connection.text.prefix(500))")
        return connection
    }
}

/// Runs `body` with a live server over a store in a new temporary folder, its event hub holding at
/// most `bufferBytes` per subscriber, and SSE connections given `closeGrace` after their
/// subscription ends, and the table `hooks`; then stops the server, closes the store and deletes the folder.
func withSubscriptionServer(
    bufferBytes: Int = EventHub.defaultBufferBytes, closeGrace: Duration = .seconds(5), hooks: [TableHooks] = [],
    _ body: @Sendable (SubscriptionServer) async throws -> Void
) async throws {
    let directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-subscription-tests-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let schema = try SchemaParser.parse(httpSchemaText, file: "schema.graphql")
    let store = try Store.open(schema: schema, configuration: StoreConfiguration(directory: directory, durability: .normal))
    defer { store.close() }
    var logger = Logger(label: "microlith.tests")
    logger.logLevel = .warning
    let hub = try await EventHub.start(store: store, bufferBytes: bufferBytes, logger: logger)
    let endpoint = TableEndpoint(store: store, configuration: HTTPConfiguration(), hooks: hooks)
    let subscriptions = SubscriptionEndpoint(hub: hub, tables: endpoint, closeGrace: closeGrace)
    let router = RESTRouter.make(
        endpoint: endpoint, openAPI: OpenAPIDocument.make(schema: store.schema), logger: logger, subscriptions: subscriptions)
    let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
    try await app.test(.live) { client in
        let port = try #require(client.port)
        try await body(SubscriptionServer(port: port, store: store, hub: hub, client: client))
    }
}

/// The ids of the `put` events in an event stream's text, in order.
func putIDs(_ text: String) -> [String] {
    let marker = "event: put\ndata: {\"type\":\"put\",\"table\":\"Todo\",\"id\":\""
    var ids: [String] = []
    var rest = text[...]
    while let found = rest.range(of: marker) {
        rest = rest[found.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { break }
        ids.append(String(rest[..<end]))
        rest = rest[end...]
    }
    return ids
}
