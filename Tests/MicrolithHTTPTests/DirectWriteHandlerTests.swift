import Foundation
import HTTPTypes
import HummingbirdTesting
import MicrolithHTTP
import MicrolithJSON
import MicrolithSchema
import MicrolithStore
import MicrolithTables
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Synchronization
import Testing

/// Anonymous `PUT`s run from the event loop (`DirectWriteHandler`, `DirectWrites`), driven through
/// a testing channel over a real store: what it writes and answers itself, what it leaves to the
/// router untouched, what it hands over after a failed write, and the order of pipelined requests.
@Suite struct DirectWriteHandlerTests {
    /// What the handlers around the one under test saw, in order: `out …` for each response part
    /// written toward the socket and `read` for each read of it, `in …` for each request part,
    /// event or error passed on to the router.
    final class Events: Sendable {
        let log = NIOLockedValueBox<[String]>([])
        func add(_ event: String) { log.withLockedValue { $0.append(event) } }
        var all: [String] { log.withLockedValue { $0 } }
    }

    final class ResponseLog: ChannelOutboundHandler, Sendable {
        typealias OutboundIn = HTTPResponsePart
        let events: Events
        init(_ events: Events) { self.events = events }
        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            switch unwrapOutboundIn(data) {
            case .head(let head): events.add("out \(head.status.code)")
            case .body: events.add("out body")
            case .end: events.add("out end")
            }
            context.write(data, promise: promise)
        }
        func read(context: ChannelHandlerContext) {
            events.add("read")
            context.read()
        }
    }

    final class RequestLog: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPRequestPart
        typealias InboundOut = HTTPRequestPart
        let events: Events
        init(_ events: Events) { self.events = events }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): events.add("in \(head.method) \(head.path ?? "")")
            case .body(let body): events.add("in body \(String(buffer: body))")
            case .end: events.add("in end")
            }
            context.fireChannelRead(data)
        }
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            events.add("in event \(event)")
            context.fireUserInboundEventTriggered(event)
        }
        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            events.add("in error")
            context.fireErrorCaught(error)
        }
    }

    struct Recorded: RequestRecorder {
        let routes = NIOLockedValueBox<[String]>([])
        func record(method: HTTPRequest.Method, route: String, status: Int, duration: Duration) {
            routes.withLockedValue { $0.append("\(method) \(route) \(status)") }
        }
    }

    struct Setup {
        let channel: NIOAsyncTestingChannel
        let writes: DirectWrites
        let store: Store
        let events: Events
        let recorder: Recorded
    }

    /// Runs `body` with a channel holding the handler between two loggers, over a new store.
    func withChannel(
        hooks: [TableHooks] = [], roles: [Roles.Declaration]? = nil, maximumBodyBytes: Int = 1 << 20, bypassed: Bool = false,
        _ body: (Setup) async throws -> Void
    ) async throws {
        let directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-http-tests-direct-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let schema = try SchemaParser.parse(httpSchemaText, file: "schema.graphql")
        let store = try Store.open(schema: schema, configuration: StoreConfiguration(directory: directory, durability: .normal))
        defer { store.close() }
        let access = TableAccess(store: store, hooks: hooks, roles: try roles.map { try Roles($0, store: store) })
        let endpoint = TableEndpoint(access: access, configuration: HTTPConfiguration(maximumBodyBytes: maximumBodyBytes))
        let recorder = Recorded()
        let writes = DirectWrites(endpoint: endpoint, serverName: "microlith", recorder: recorder, bypassed: { bypassed })
        let events = Events()
        let channel = NIOAsyncTestingChannel()
        try await channel.testingEventLoop.executeInContext {
            try channel.pipeline.syncOperations.addHandlers([ResponseLog(events), DirectWriteHandler(writes: writes), RequestLog(events)])
        }
        try await body(Setup(channel: channel, writes: writes, store: store, events: events, recorder: recorder))
        _ = try? await channel.finish()
    }

    func put(_ path: String, _ body: String, _ extra: HTTPFields = [:], method: HTTPRequest.Method = .put) -> [HTTPRequestPart] {
        var fields: HTTPFields = [.contentType: "application/json", .contentLength: String(body.utf8.count)]
        fields.append(contentsOf: extra)
        return [
            .head(HTTPRequest(method: method, scheme: nil, authority: "x", path: path, headerFields: fields)),
            .body(ByteBuffer(string: body)), .end(nil),
        ]
    }

    func send(_ channel: NIOAsyncTestingChannel, _ parts: [HTTPRequestPart]) async throws {
        for part in parts { try await channel.writeInbound(part) }
    }

    /// The next response the handler wrote: head and body (waits up to 10 s for it).
    func response(_ channel: NIOAsyncTestingChannel) async throws -> (HTTPResponse, String) {
        var parts: [HTTPResponsePart] = []
        let deadline = ContinuousClock.now + .seconds(10)
        while parts.count < 3 {
            if let part = try await channel.readOutbound(as: HTTPResponsePart.self) {
                parts.append(part)
            } else {
                guard ContinuousClock.now < deadline else { throw TestFailure("no response within 10 s: \(parts)") }
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        guard case .head(let head) = parts[0], case .body(let body) = parts[1], case .end = parts[2] else {
            throw TestFailure("expected head, body, end; got \(parts)")
        }
        return (head, String(buffer: body))
    }

    struct TestFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    @Test func answersANewRecordThenItsReplacement() async throws {
        try await withChannel { s in
            try await send(s.channel, put("/Todo/a", #"{"title":"milk","tags":["x"]}"#))
            let (created, body) = try await response(s.channel)
            let table = try #require(s.store.table(exportName: "Todo"))
            let stored = try #require(try await s.store.get(table, .string("a")))
            #expect(created.status == .created)
            #expect(created.headerFields[.location] == "/Todo/a")
            #expect(created.headerFields[.eTag] == stored.etag)
            #expect(created.headerFields[.contentType] == "application/json")
            #expect(created.headerFields[.contentLength] == String(stored.json.readableBytes))
            #expect(created.headerFields[.server] == "microlith")
            #expect(created.headerFields[.date]?.hasSuffix(" GMT") == true)
            // As the router makes them: Hummingbird's `RequestID`, in hex.
            #expect(created.headerFields[HTTPField.Name("X-Request-Id")!]?.allSatisfy(\.isHexDigit) == true)
            #expect(body == String(buffer: stored.json))
            #expect(stored.record["title"] == "milk")

            // As a browser or a client library sends it.
            let extra: HTTPFields = [.connection: "keep-alive", .accept: "*/*", .userAgent: "t", .acceptEncoding: "gzip"]
            try await send(s.channel, put("/Todo/a", #"{"title":"bread"}"#, extra))
            let (replaced, _) = try await response(s.channel)
            #expect(replaced.status == .ok)
            #expect(replaced.headerFields[.location] == nil)
            #expect(try await s.store.get(table, .string("a"))?.record["title"] == "bread")
            #expect(try await s.store.get(table, .string("a"))?.record["tags"] == nil)
            #expect(s.events.all.filter { $0.hasPrefix("in") }.isEmpty, "nothing reached the router: \(s.events.all)")
            #expect(s.writes.answered.load(ordering: .relaxed) == 2)
            #expect(s.recorder.routes.withLockedValue { $0 } == ["PUT /Todo/{id} 201", "PUT /Todo/{id} 200"])
        }
    }

    @Test(
        arguments: [
            ("/Todo/a?select(id)", [:], HTTPRequest.Method.put),  // a query string
            ("/Todo/a", [:], .post),  // a record: 405
            ("/Todo/?x=1", [:], .post),  // a query string
            ("/Todo/a", [:], .patch),
            ("/Nope/a", [:], .put),  // no such table
            ("/Hidden/a", [:], .put),  // not exported
            ("/Todo/", [:], .put),  // the collection
            ("/Todo/a/", [:], .put),  // a prefix
            ("/counters/abc", [:], .put),  // a key of the wrong type
            ("/Todo/a", [.authorization: "Basic eDp5"], .put),
            ("/Todo/a", [.cookie: "session=1"], .put),
            ("/Todo/a", [.origin: "http://elsewhere"], .put),
            ("/Todo/a", [.ifMatch: "*"], .put),
            ("/Todo/a", [.ifNoneMatch: "*"], .put),
            ("/Todo/a", [.expect: "100-continue"], .put),
            ("/Todo/a", [.connection: "close"], .put),
            ("/Todo/a", [HTTPField.Name("X-Replicate-To")!: "2"], .put),
            ("/Todo/a", [HTTPField.Name("X-Request-Id")!: "mine"], .put),
            ("/Todo/a", [.accept: "text/event-stream"], .put),
        ] as [(String, HTTPFields, HTTPRequest.Method)])
    func leavesOtherRequestsToTheRouterUntouched(path: String, extra: HTTPFields, method: HTTPRequest.Method) async throws {
        try await withChannel { s in
            try await send(s.channel, put(path, #"{"title":"milk"}"#, extra, method: method))
            #expect(s.events.all == ["in \(method) \(path)", #"in body {"title":"milk"}"#, "in end"])
            #expect(try await s.channel.readOutbound(as: HTTPResponsePart.self) == nil)
            #expect(s.writes.answered.load(ordering: .relaxed) == 0)
            #expect(s.writes.refused.load(ordering: .relaxed) == 0)
        }
    }

    @Test(
        arguments: [
            ([.contentType: "text/html", .contentLength: "16"], #"{"title":"milk"}"#),  // labelled as something else
            ([.contentLength: "80"], String(repeating: " ", count: 64) + #"{"title":"milk"}"#),  // larger than the limit
            ([.transferEncoding: "chunked"], #"{"title":"milk"}"#),  // no length
            ([.contentLength: "0"], ""),  // empty
        ] as [(HTTPFields, String)])
    func bodiesNotLabelledJSONOrTooLargeOrWithoutALengthGoToTheRouter(fields: HTTPFields, body: String) async throws {
        try await withChannel(maximumBodyBytes: 64) { s in
            var parts: [HTTPRequestPart] = [.head(HTTPRequest(method: .put, scheme: nil, authority: "x", path: "/Todo/a", headerFields: fields))]
            if !body.isEmpty { parts.append(.body(ByteBuffer(string: body))) }
            try await send(s.channel, parts + [.end(nil)])
            #expect(s.events.all.first == "in PUT /Todo/a")
            #expect(s.events.all.count == parts.count + 1)
            #expect(s.writes.answered.load(ordering: .relaxed) == 0)
        }
        // The same body, labelled and sized as it should be, is taken.
        try await withChannel { s in
            try await send(s.channel, put("/Todo/a", #"{"title":"milk"}"#, [:]))
            #expect(try await response(s.channel).0.status == .created)
        }
    }

    @Test func tablesWithAHookOrLimitsForTheAnonymousRoleGoToTheRouter() async throws {
        var putHook = TableHooks(table: "Todo", module: "test")
        putHook.put = { body, _, _, _ in body }
        var postHook = TableHooks(table: "Todo", module: "test")
        postHook.post = { body, _, _, _ in body }
        func anonymous(_ verbs: Set<TableVerb>, _ limits: Roles.AttributeLimits = .none) -> [Roles.Declaration] {
            [Roles.Declaration(name: "anonymous", tables: [("Todo", verbs)], attributes: ["Todo": limits])]
        }
        // Hooks, roles, and whether a PUT and a POST are taken.
        let cases: [([TableHooks], [Roles.Declaration]?, Bool, Bool)] = [
            ([], nil, true, true),
            ([putHook], nil, false, true),
            ([postHook], nil, true, false),
            ([], anonymous([.read, .insert, .update]), true, true),
            ([], anonymous([.read, .insert]), false, true),
            ([], anonymous([.read, .update]), false, false),
            ([], anonymous([.read, .insert, .update], .init(hide: ["notes"])), false, false),
            ([], anonymous([.read, .insert, .update], .init(readOnly: ["notes"])), false, false),
        ]
        for (hooks, roles, putTaken, postTaken) in cases {
            for (path, method, taken) in [("/Todo/a", HTTPRequest.Method.put, putTaken), ("/Todo/", .post, postTaken)] {
                try await withChannel(hooks: hooks, roles: roles) { s in
                    try await send(s.channel, put(path, #"{"title":"milk"}"#, method: method))
                    if taken {
                        #expect(try await response(s.channel).0.status == .created)
                    } else {
                        #expect(s.events.all.first == "in \(method) \(path)", "hooks \(hooks.count), roles \(String(describing: roles))")
                    }
                    #expect(s.writes.answered.load(ordering: .relaxed) == (taken ? 1 : 0))
                }
            }
        }
    }

    @Test func aPostGetsTheServersKey() async throws {
        try await withChannel { s in
            try await send(s.channel, put("/Todo/", #"{"title":"milk"}"#, method: .post))
            let (created, body) = try await response(s.channel)
            #expect(created.status == .created)
            let location = try #require(created.headerFields[.location])
            #expect(location.hasPrefix("/Todo/") && location.count > "/Todo/".count)
            let table = try #require(s.store.table(exportName: "Todo"))
            let stored = try #require(try await s.store.get(table, .string(String(location.dropFirst("/Todo/".count)))))
            #expect(body == String(buffer: stored.json))
            #expect(created.headerFields[.eTag] == stored.etag)
            #expect(s.recorder.routes.withLockedValue { $0 } == ["POST /Todo/ 201"])
        }
    }

    @Test(
        arguments: [
            (#"{"title":5}"#, HTTPRequest.Method.put),  // refused by the schema
            ("[1]", .put),  // not a JSON object
            (#"{"title":"#, .put),  // malformed
            (#"{"title":5}"#, .post),
            (#"{"id":"a","title":"x"}"#, .post),  // a key that exists already
        ] as [(String, HTTPRequest.Method)])
    func aRefusedWriteIsAnsweredAsTheRouterAnswersIt(body: String, method: HTTPRequest.Method) async throws {
        let path = method == .put ? "/Todo/b" : "/Todo/"
        // The router's answer to the same request, over a store holding the same record.
        let routed = NIOLockedValueBox<(HTTPResponse.Status, String, JSONValue?)?>(nil)
        try await withREST { client, store in
            let table = try #require(store.table(exportName: "Todo"))
            _ = try await store.write { txn in try txn.put(table, id: .string("a"), body: ["title": "milk"]) }
            let r = try await client.execute(uri: path, method: method, headers: [.contentType: "application/json"], body: json(body))
            let problem = try? r.body.withUnsafeReadableBytes { try JSONParser.parse($0) }
            routed.withLockedValue { $0 = (r.status, r.headers[.contentType] ?? "", problem) }
        }
        let (status, type, problem) = try #require(routed.withLockedValue { $0 })
        try await withChannel { s in
            let table = try #require(s.store.table(exportName: "Todo"))
            _ = try await s.store.write { txn in try txn.put(table, id: .string("a"), body: ["title": "milk"]) }
            try await send(s.channel, put(path, body, method: method))
            let (head, text) = try await response(s.channel)
            #expect(head.status == status)
            #expect(head.headerFields[.contentType] == type)
            #expect(head.headerFields[.contentLength] == String(text.utf8.count))
            guard case .object(var mine) = try ByteBuffer(string: text).withUnsafeReadableBytes({ try JSONParser.parse($0) }),
                case .object(var theirs) = try #require(problem)
            else { throw TestFailure("not JSON objects: \(text)") }
            #expect(mine["requestId"] == head.headerFields[HTTPField.Name("X-Request-Id")!].map { JSONValue.string($0) })
            mine["requestId"] = nil
            theirs["requestId"] = nil
            #expect(mine == theirs)
            #expect(s.events.all.filter { $0.hasPrefix("in") }.isEmpty, "nothing reached the router")
            #expect(s.writes.refused.load(ordering: .relaxed) == 1)
            #expect(try await s.store.get(table, .string("b")) == nil)
            #expect(s.recorder.routes.withLockedValue { $0 } == ["\(method) \(method == .put ? "/Todo/{id}" : "/Todo/") \(status.code)"])
        }
    }

    @Test func nothingIsTakenWhileLoggingOrTracingAsksForTheRouter() async throws {
        try await withChannel(bypassed: true) { s in
            try await send(s.channel, put("/Todo/a", #"{"title":"milk"}"#))
            #expect(s.events.all.first == "in PUT /Todo/a")
            #expect(s.writes.answered.load(ordering: .relaxed) == 0)
        }
    }

    @Test func aWriteWaitsForTheRouterToAnswerEarlierRequests() async throws {
        try await withChannel { s in
            try await send(s.channel, [.head(HTTPRequest(method: .get, scheme: nil, authority: "x", path: "/Todo/", headerFields: [:])), .end(nil)])
            try await send(s.channel, put("/Todo/a", #"{"title":"milk"}"#))
            // Both with the router: the write may not overtake the query.
            #expect(s.events.all.filter { $0.hasPrefix("in") && !$0.hasPrefix("in body") && $0 != "in end" } == ["in GET /Todo/", "in PUT /Todo/a"])
            for _ in 0..<2 {
                try await s.channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
                try await s.channel.writeOutbound(HTTPResponsePart.end(nil))
            }
            while try await s.channel.readOutbound(as: HTTPResponsePart.self) != nil {}
            try await send(s.channel, put("/Todo/b", #"{"title":"bread"}"#))
            #expect(try await response(s.channel).0.status == .created)
        }
    }

    @Test func laterRequestsWaitUntilTheWriteIsAnswered() async throws {
        try await withChannel { s in
            // The requests below arrive while the write runs.
            try await whileTheWriterIsBusy(s.store) {
                try await send(
                    s.channel,
                    put("/Todo/a", #"{"title":"milk"}"#) + [
                        .head(HTTPRequest(method: .get, scheme: nil, authority: "x", path: "/Todo/a", headerFields: [:])), .end(nil),
                    ] + put("/Todo/b", #"{"title":"bread"}"#))
            }
            try await waitUntil { s.events.all.count == 8 }
            // The GET reached the router only after the write's response, and the PUT after it
            // follows it there: the GET is still with the router.
            #expect(
                s.events.all == [
                    "out 201", "out body", "out end", "in GET /Todo/a", "in end", "in PUT /Todo/b", #"in body {"title":"bread"}"#, "in end",
                ])
            #expect(s.writes.answered.load(ordering: .relaxed) == 1)
        }
    }

    @Test func readingResumesWhileTheNextRequestsBodyIsStillComing() async throws {
        try await withChannel { s in
            let next = put("/Todo/b", #"{"title":"bread"}"#)
            guard case .body(let body) = next[1] else { return }
            try await whileTheWriterIsBusy(s.store) {
                // A write, then the next request's head and half its body in the same read.
                try await send(s.channel, put("/Todo/a", #"{"title":"milk"}"#) + [next[0], .body(body.getSlice(at: 0, length: 5)!)])
                try await s.channel.testingEventLoop.executeInContext { s.channel.pipeline.read() }
            }
            try await waitUntil { s.events.all.contains("read") }
            // The read waited for the answer, and was made although the next request is not whole.
            #expect(s.events.all == ["out 201", "out body", "out end", "read"])
            try await send(s.channel, [.body(body.getSlice(at: 5, length: body.readableBytes - 5)!), .end(nil)])
            #expect(try await response(s.channel).0.status == .created)
            #expect(try await response(s.channel).0.status == .created)
        }
    }

    @Test func eventsAndErrorsAfterAWriteWaitForItsAnswer() async throws {
        try await withChannel { s in
            try await whileTheWriterIsBusy(s.store) {
                try await send(s.channel, put("/Todo/a", #"{"title":"milk"}"#))
                try await s.channel.testingEventLoop.executeInContext {
                    s.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
                    s.channel.pipeline.fireErrorCaught(ChannelError.ioOnClosedChannel)
                }
            }
            try await waitUntil { s.events.all.contains("in error") }
            #expect(s.events.all == ["out 201", "out body", "out end", "in event inputClosed", "in error"])
        }
    }

    @Test func anEventBeforeTheBodyEndsHandsTheRequestToTheRouter() async throws {
        try await withChannel { s in
            let parts = put("/Todo/a", #"{"title":"milk"}"#)
            guard case .body(let body) = parts[1] else { return }
            try await send(s.channel, [parts[0], .body(body.getSlice(at: 0, length: 4)!)])
            #expect(s.events.all.isEmpty)
            try await s.channel.testingEventLoop.executeInContext {
                s.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            }
            #expect(s.events.all == ["in PUT /Todo/a", #"in body {"ti"#, "in event inputClosed"])
            #expect(s.writes.answered.load(ordering: .relaxed) == 0)
        }
    }

    /// Runs `body` while a write of the store's writer sleeps for 300 ms: writes submitted meanwhile
    /// are answered only after it.
    func whileTheWriterIsBusy(_ store: Store, _ body: () async throws -> Void) async throws {
        let (started, signal) = AsyncStream.makeStream(of: Void.self)
        let busy = Task {
            try await store.write { _ in
                signal.yield()
                Thread.sleep(forTimeInterval: 0.3)
            }
        }
        var waiting = started.makeAsyncIterator()
        _ = await waiting.next()
        try await body()
        try await busy.value
    }

    /// Waits (up to 10 s) until `condition` holds: the handler answers from a task of its own.
    func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw TestFailure("timed out") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
