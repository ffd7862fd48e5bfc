import Foundation
import HTTPTypes
import MicrolithCache
import MicrolithHTTP
import MicrolithJSON
import MicrolithModules
import MicrolithSchema
import MicrolithStore
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Testing

/// The event-loop fast path for cache hits, driven through an embedded channel: what it answers
/// itself, what it leaves to the router, and that pipelined responses keep their order.
@Suite struct CachedReadHandlerTests {
    /// Runs `body` with a channel holding a `CachedReadHandler` over a store with `Todo/1` cached.
    func withChannel(responses: [any ResponseCache] = [], _ body: (EmbeddedChannel, CachedRecord) throws -> Void) async throws {
        let directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-fastpath-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let schema = try SchemaParser.parse(httpSchemaText, file: "schema.graphql")
        let store = try Store.open(schema: schema, configuration: StoreConfiguration(directory: directory, durability: .normal))
        defer { store.close() }
        let table = try #require(store.table(exportName: "Todo"))
        let record = try await store.write { txn in
            try txn.put(table, id: .string("1"), body: ["title": "milk"])
        }
        let endpoint = TableEndpoint(store: store, configuration: HTTPConfiguration())
        let channel = EmbeddedChannel(handler: CachedReadHandler(endpoint: endpoint, serverName: "microlith", responses: responses))
        try body(channel, record)
        _ = try? channel.finish()
    }

    func request(_ path: String, method: HTTPRequest.Method = .get, _ fields: HTTPFields = [:]) -> HTTPRequestPart {
        .head(HTTPRequest(method: method, scheme: nil, authority: "x", path: path, headerFields: fields))
    }

    func send(_ channel: EmbeddedChannel, _ parts: HTTPRequestPart...) throws {
        for part in parts { try channel.writeInbound(part) }
        channel.pipeline.fireChannelReadComplete()
    }

    /// The response parts the handler wrote itself.
    func written(_ channel: EmbeddedChannel) throws -> [HTTPResponsePart] {
        var parts: [HTTPResponsePart] = []
        while let part = try channel.readOutbound(as: HTTPResponsePart.self) { parts.append(part) }
        return parts
    }

    /// The request parts passed on to the router.
    func forwarded(_ channel: EmbeddedChannel) throws -> [HTTPRequestPart] {
        var parts: [HTTPRequestPart] = []
        while let part = try channel.readInbound(as: HTTPRequestPart.self) { parts.append(part) }
        return parts
    }

    @Test func answersACacheHitWithTheStoredBytes() async throws {
        try await withChannel { channel, record in
            try send(channel, request("/Todo/1"), .end(nil))
            #expect(try forwarded(channel).isEmpty)
            let parts = try written(channel)
            try #require(parts.count == 3)
            guard case .head(let head) = parts[0], case .body(let bytes) = parts[1], case .end = parts[2] else {
                Issue.record("expected head, body, end; got \(parts)")
                return
            }
            #expect(head.status == .ok)
            #expect(head.headerFields[.eTag] == record.etag)
            #expect(head.headerFields[.contentType] == "application/json")
            #expect(head.headerFields[.contentLength] == String(record.json.readableBytes))
            #expect(head.headerFields[.server] == "microlith")
            #expect(head.headerFields[.date]?.hasSuffix(" GMT") == true)
            #expect(bytes == record.json)
        }
    }

    @Test func headHasLengthButNoBody() async throws {
        try await withChannel { channel, record in
            try send(channel, request("/Todo/1", method: .head), .end(nil))
            let parts = try written(channel)
            try #require(parts.count == 2)
            guard case .head(let head) = parts[0], case .end = parts[1] else {
                Issue.record("expected head, end; got \(parts)")
                return
            }
            #expect(head.headerFields[.contentLength] == String(record.json.readableBytes))
        }
    }

    @Test func matchingIfNoneMatchIsNotModified() async throws {
        try await withChannel { channel, record in
            try send(channel, request("/Todo/1", [.ifNoneMatch: "\"other\", W/\(record.etag)"]), .end(nil))
            let parts = try written(channel)
            guard case .head(let head) = parts.first else {
                Issue.record("no response: \(parts)")
                return
            }
            #expect(head.status == .notModified)
            #expect(parts.count == 2)
        }
    }

    @Test(arguments: [
        "/Todo/2",  // not in the cache
        "/Todo/1?select(title)",  // a query string
        "/Nope/1",  // no such table
        "/Todo/1/x",  // a longer path
        "/Todo/",  // the collection
        "/counters/abc",  // an id of the wrong key type
    ])
    func leavesEverythingElseToTheRouter(path: String) async throws {
        try await withChannel { channel, _ in
            try send(channel, request(path), .end(nil))
            #expect(try written(channel).isEmpty)
            let parts = try forwarded(channel)
            #expect(parts.count == 2)
            guard case .head(let head) = parts.first else {
                Issue.record("the head was not forwarded")
                return
            }
            #expect(head.path == path)
        }
    }

    @Test func leavesOtherMethodsAndConnectionHeadersToTheRouter() async throws {
        try await withChannel { channel, _ in
            try send(channel, request("/Todo/1", method: .delete), .end(nil))
            try send(channel, request("/Todo/1", [.connection: "close"]), .end(nil))
            #expect(try written(channel).isEmpty)
            #expect(try forwarded(channel).count == 4)
        }
    }

    @Test func aGetWithABodyGoesToTheRouterWhole() async throws {
        try await withChannel { channel, _ in
            try send(channel, request("/Todo/1"), .body(ByteBuffer(string: "{}")), .end(nil))
            #expect(try written(channel).isEmpty)
            let parts = try forwarded(channel)
            #expect(parts.count == 3)
            if case .head(let head) = parts.first { #expect(head.path == "/Todo/1") } else { Issue.record("head missing") }
        }
    }

    @Test func pipelinedHitWaitsForTheRouterToAnswerFirst() async throws {
        try await withChannel { channel, record in
            // A request for the router, then a cache hit on the same connection, before any answer.
            try send(channel, request("/Todo/?limit(1)"), .end(nil), request("/Todo/1"), .end(nil))
            #expect(try written(channel).isEmpty, "the hit must not overtake the earlier request")
            #expect(try forwarded(channel).count == 4)
            // The router answers the first request: a hit still waits for the second one.
            try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
            try channel.writeOutbound(HTTPResponsePart.end(nil))
            _ = try written(channel)
            try send(channel, request("/Todo/1"), .end(nil))
            #expect(try written(channel).isEmpty)
            #expect(try forwarded(channel).count == 2)
            // Once the router has answered everything, the fast path serves hits again.
            for _ in 0..<2 {
                try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
                try channel.writeOutbound(HTTPResponsePart.end(nil))
            }
            _ = try written(channel)
            try send(channel, request("/Todo/1"), .end(nil))
            let parts = try written(channel)
            #expect(parts.count == 3)
            if case .body(let bytes) = parts.dropFirst().first { #expect(bytes == record.json) } else { Issue.record("no body") }
        }
    }

    struct Pages: ResponseCache {
        func response(for target: String) -> CachedResponse? {
            guard target == "/page?sort=name" || target == "/" else { return nil }
            return CachedResponse(headers: [("Content-Type", "text/html"), ("X-Page-Cache", "hit")], body: ByteBuffer(string: "<p>hi</p>"))
        }
    }

    @Test func keptApplicationResponsesAreAnsweredInTheEventLoop() async throws {
        try await withChannel(responses: [Pages()]) { channel, _ in
            for target in ["/page?sort=name", "/"] {
                try send(channel, request(target), .end(nil))
                #expect(try forwarded(channel).isEmpty)
                let parts = try written(channel)
                guard parts.count == 3, case .head(let head) = parts[0], case .body(let bytes) = parts[1] else {
                    Issue.record("expected head, body, end; got \(parts)")
                    return
                }
                #expect(head.status == .ok)
                #expect(head.headerFields[.contentType] == "text/html")
                #expect(head.headerFields[HTTPField.Name("X-Page-Cache")!] == "hit")
                #expect(head.headerFields[.contentLength] == "9")
                #expect(head.headerFields[HTTPField.Name("X-Request-Id")!] != nil)
                #expect(String(buffer: bytes) == "<p>hi</p>")
            }
            // Other targets, and records with queries, still go to the router.
            try send(channel, request("/page?sort=price"), .end(nil))
            #expect(try forwarded(channel).count == 2)
            #expect(try written(channel).isEmpty)
        }
    }
}
