import Foundation
import HTTPTypes
import MicrolithCache
import MicrolithHTTP
import MicrolithJSON
import MicrolithModules
import MicrolithNetwork
import MicrolithSchema
import MicrolithStore
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// The fast path a connection starts with: cache hits answered from the bytes read, everything
/// else handed, in order, to the full pipeline (NIO's HTTP codec, the inspector and a responder
/// here), installed only then; the guard's limits hold either way.
@Suite struct CachedReadFastPathTests {
    struct Pages: ResponseCache {
        func response(for target: String) -> CachedResponse? {
            switch target {
            case "/page": return CachedResponse(headers: [("Content-Type", "text/html")], body: ByteBuffer(string: "<p>hi</p>"))
            case "/odd":
                // What an application's headers may hold: a name that is no field name, a value
                // with CR/LF in it, fields the server sets itself.
                let headers = [
                    ("Bad Name", "x"), ("X-Note", "a\r\nInjected: yes"), ("Date", "Mon, 01 Jan 2001 00:00:00 GMT"),
                    ("Content-Length", "999"), ("Content-Type", "text/plain"),
                ]
                return CachedResponse(headers: headers, body: ByteBuffer(string: "odd"))
            default: return nil
            }
        }
    }

    final class Connection {
        let channel: EmbeddedChannel
        let loop: EmbeddedEventLoop
        let router = RecordingResponder(body: "router")
        let limiter: ConnectionLimiter
        let record: CachedRecord
        var installs = 0

        init(channel: EmbeddedChannel, loop: EmbeddedEventLoop, limiter: ConnectionLimiter, record: CachedRecord) {
            self.channel = channel
            self.loop = loop
            self.limiter = limiter
            self.record = record
        }

        /// Everything written to the socket so far, as text.
        func written() throws -> String {
            var text = ""
            while var buffer = try channel.readOutbound(as: ByteBuffer.self) { text += buffer.readString(length: buffer.readableBytes) ?? "" }
            return text
        }

        func send(_ text: String) throws {
            try channel.writeInbound(ByteBuffer(string: text))
            channel.pipeline.fireChannelReadComplete()
        }
    }

    /// Runs `body` with a connection through guard and fast path, over a store with `Todo/1` cached.
    func withConnection(
        limiter: ConnectionLimiter = ConnectionLimiter(maximum: 10, maximumPerAddress: 10), idleTimeout: TimeAmount? = nil,
        _ body: (Connection) throws -> Void
    ) async throws {
        let directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-fastpath-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let schema = try SchemaParser.parse(httpSchemaText, file: "schema.graphql")
        let store = try Store.open(schema: schema, configuration: StoreConfiguration(directory: directory, durability: .normal))
        defer { store.close() }
        let table = try #require(store.table(exportName: "Todo"))
        let record = try await store.write { txn in
            try txn.put(table, id: .string("1"), body: ["title": "milk"])
        }
        let answers = CachedAnswers(
            endpoint: TableEndpoint(store: store, configuration: HTTPConfiguration()), serverName: "microlith", responses: [Pages()])
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        let guardHandler = HTTPConnectionGuard(
            limiter: limiter, limits: .init(headerTimeout: .seconds(10), minimumBodyBytesPerSecond: 100, idleTimeout: idleTimeout))
        let c = Connection(channel: channel, loop: loop, limiter: limiter, record: record)
        let fastPath = CachedReadFastPath(answers: answers, connection: guardHandler) { [c] context in
            c.installs += 1
            let pipeline = context.pipeline.syncOperations
            do {
                try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false)
                try pipeline.addHandler(HTTPRequestInspector(connection: guardHandler, maximumBodyBytes: 1000))
                try pipeline.addHandler(c.router)
                return context.eventLoop.makeSucceededVoidFuture()
            } catch {
                return context.eventLoop.makeFailedFuture(error)
            }
        }
        try channel.pipeline.syncOperations.addHandler(guardHandler)
        try channel.pipeline.syncOperations.addHandler(fastPath)
        channel.remoteAddress = try SocketAddress(ipAddress: "10.0.0.1", port: 5000)
        try await channel.connect(to: SocketAddress(ipAddress: "10.0.0.1", port: 5000)).get()
        try body(c)
        _ = try? channel.finish()
    }

    /// The head of a response (up to the blank line), its body, and what follows.
    func split(_ text: String) -> (head: String, rest: String) {
        guard let r = text.range(of: "\r\n\r\n") else { return (text, "") }
        return (String(text[..<r.lowerBound]), String(text[r.upperBound...]))
    }

    @Test func aHitIsAnsweredFromTheBytesWithoutTheFullPipeline() async throws {
        try await withConnection { (c: Connection) throws in
            try c.send("GET /Todo/1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n")
            let (head, body) = split(try c.written())
            #expect(head.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(head.lowercased().contains("etag: \(c.record.etag.lowercased())"))
            #expect(head.lowercased().contains("content-type: application/json"))
            #expect(head.lowercased().contains("content-length: \(c.record.json.readableBytes)"))
            #expect(head.lowercased().contains("server: microlith"))
            #expect(head.lowercased().contains("x-request-id: "))
            #expect(!head.lowercased().contains("connection:"))
            #expect(body == String(buffer: c.record.json))
            #expect(c.installs == 0)
            #expect(c.channel.isActive)
        }
    }

    @Test func aKeptResponsesHeadersAreWrittenAsAnHTTPEncoderWould() async throws {
        try await withConnection { (c: Connection) throws in
            try c.send("GET /odd HTTP/1.1\r\nHost: a\r\n\r\n")
            let (head, body) = split(try c.written())
            let lines = head.components(separatedBy: "\r\n")
            #expect(lines.first == "HTTP/1.1 200 OK")
            let names = lines.dropFirst().map { $0.prefix { $0 != ":" }.lowercased() }
            #expect(!names.contains("bad name"))
            #expect(!names.contains("injected"), "a CR/LF in a value must not start a header line: \(lines)")
            #expect(names.filter { $0 == "date" }.count == 1)
            #expect(names.filter { $0 == "content-length" }.count == 1)
            #expect(lines.contains("Content-Length: 3"))
            #expect(!head.contains("2001"))
            #expect(names.contains("x-note") && names.contains("content-type") && names.contains("x-request-id"))
            #expect(body == "odd")
            // A kept response's lines are prepared once, when it is kept, the same way.
            let prepared = CachedResponse.fieldLines([("Bad Name", "x"), ("X-Note", "a\r\nb"), ("Server", "s"), ("ETag", "\"1\"")])
            #expect(String(buffer: prepared) == "X-Note: a  b\r\nETag: \"1\"\r\n")
        }
    }

    @Test func headAndIfNoneMatchAreAnsweredAsTheRouterWould() async throws {
        try await withConnection { (c: Connection) throws in
            try c.send("HEAD /Todo/1 HTTP/1.1\r\nHost: a\r\n\r\n")
            let (head, body) = split(try c.written())
            #expect(head.lowercased().contains("content-length: \(c.record.json.readableBytes)"))
            #expect(body.isEmpty)
            try c.send("GET /Todo/1 HTTP/1.1\r\nHost: a\r\nIf-None-Match: \(c.record.etag)\r\n\r\n")
            let (notModified, nothing) = split(try c.written())
            #expect(notModified.hasPrefix("HTTP/1.1 304 Not Modified"))
            #expect(nothing.isEmpty)
            #expect(c.installs == 0)
        }
    }

    @Test func connectionCloseIsAnsweredSoAndClosed() async throws {
        try await withConnection { (c: Connection) throws in
            try c.send("GET /page HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /Todo/1 HTTP/1.1\r\n\r\n")
            let text = try c.written()
            let (head, body) = split(text)
            #expect(head.hasPrefix("HTTP/1.1 200 OK"))
            #expect(head.lowercased().contains("connection: close"))
            #expect(body == "<p>hi</p>", "nothing is answered after a request that closes")
            #expect(!c.channel.isActive)
            #expect(c.limiter.openConnections == 0)
            #expect(c.installs == 0)
        }
    }

    @Test(arguments: [
        "GET /Todo/2 HTTP/1.1\r\nHost: a\r\n\r\n",  // a miss
        "POST /Todo/1 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",  // another method
        "GET /Todo/1 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",  // a declared body
        "GET /Todo/1 HTTP/1.0\r\nHost: a\r\n\r\n",  // HTTP/1.0
        "GET /Todo/1 HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",  // an upgrade
        "GET /Todo/1 HTTP/1.1\r\nHost: a\r\nAccept: text/event-stream\r\n\r\n",  // a subscription
        "GET /Todo/1 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",  // two hosts
        "GET /Todo/1 HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",  // an expectation
        "GET /Todo/1 HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, TE\r\n\r\n",  // another connection option
    ])
    func everythingElseGoesToTheFullPipeline(_ request: String) async throws {
        try await withConnection { (c: Connection) throws in
            try c.send(request)
            #expect(c.installs == 1)
            #expect(c.router.heads.count == 1)
            let (head, body) = split(try c.written())
            #expect(head.hasPrefix("HTTP/1.1 200 OK"))
            #expect(body == "router")
        }
    }

    @Test func pipelinedRequestsKeepTheirOrderAcrossTheHandOver() async throws {
        try await withConnection { (c: Connection) throws in
            try c.send("GET /page HTTP/1.1\r\nHost: a\r\n\r\nGET /Todo/2 HTTP/1.1\r\nHost: a\r\n\r\nGET /page HTTP/1.1\r\nHost: a\r\n\r\n")
            let text = try c.written()
            let bodies = text.components(separatedBy: "\r\n\r\n").dropFirst().map { $0.components(separatedBy: "HTTP/1.1").first ?? "" }
            // The first hit is answered here; from the miss on, the full pipeline answers, in order.
            #expect(bodies == ["<p>hi</p>", "router", "router"])
            #expect(text.components(separatedBy: "HTTP/1.1 200 OK").count == 4, "three answers, in order")
            #expect(c.installs == 1)
        }
    }

    @Test func aHeadCutAcrossReadsIsReadByTheFullDecoder() async throws {
        try await withConnection { (c: Connection) throws in
            try c.send("GET /page HTTP/1.1\r\nHo")
            #expect(c.installs == 1)
            try c.send("st: a\r\n\r\n")
            #expect(split(try c.written()).rest == "router")
        }
    }

    @Test func aHeadCutAfterAnAnsweredRequestIsOnTheHeaderClock() async throws {
        try await withConnection(idleTimeout: .seconds(60)) { (c: Connection) throws in
            try c.send("GET /page HTTP/1.1\r\nHost: a\r\n\r\nGET /page HTTP/1.1\r\n")
            #expect(try c.written().hasPrefix("HTTP/1.1 200 OK"))
            c.loop.advanceTime(by: .seconds(10))
            #expect(try c.written().hasPrefix("HTTP/1.1 408"))
            #expect(!c.channel.isActive)
        }
    }

    @Test func theHeaderDeadlineHoldsOnTheFastPath() async throws {
        try await withConnection { (c: Connection) throws in
            c.loop.advanceTime(by: .seconds(9))
            #expect(c.channel.isActive)
            c.loop.advanceTime(by: .seconds(1))
            #expect(try c.written().hasPrefix("HTTP/1.1 408"))
            #expect(!c.channel.isActive)
        }
    }

    @Test func aKeptAliveConnectionServedHereIsIdleForTheLimiterAndTheIdleTimeout() async throws {
        let limiter = ConnectionLimiter(maximum: 1, maximumPerAddress: 1)
        try await withConnection(limiter: limiter, idleTimeout: .seconds(30)) { (c: Connection) throws in
            try c.send("GET /page HTTP/1.1\r\nHost: a\r\n\r\n")
            _ = try c.written()
            #expect(c.limiter.counters.evicted == 0)
            c.loop.advanceTime(by: .seconds(20))
            try c.send("GET /page HTTP/1.1\r\nHost: a\r\n\r\n")
            _ = try c.written()
            c.loop.advanceTime(by: .seconds(29))
            #expect(c.channel.isActive, "the idle clock restarts with every answer")
            c.loop.advanceTime(by: .seconds(1))
            #expect(!c.channel.isActive)
            #expect(limiter.openConnections == 0)
        }
    }

    @Test func anIdleConnectionServedHereMakesRoomForANewOne() async throws {
        let limiter = ConnectionLimiter(maximum: 1, maximumPerAddress: 1)
        try await withConnection(limiter: limiter) { (c: Connection) throws in
            try c.send("GET /page HTTP/1.1\r\nHost: a\r\n\r\n")
            _ = try c.written()
            let other = EmbeddedChannel()
            other.remoteAddress = try SocketAddress(ipAddress: "10.0.0.2", port: 5000)
            _ = try limiter.admit(other).get()
            #expect(!c.channel.isActive)
            #expect(limiter.counters.evicted == 1)
        }
    }

    @Test func aPeerThatClosesItsSideGetsItsAnswersThenTheConnectionCloses() async throws {
        try await withConnection { (c: Connection) throws in
            try c.send("GET /page HTTP/1.1\r\nHost: a\r\n\r\nGET /Todo/1 HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(c.channel.isActive)
            c.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            let text = try c.written()
            #expect(text.components(separatedBy: "HTTP/1.1 200 OK").count == 3, "both answers are written first")
            #expect(!c.channel.isActive)
            #expect(c.limiter.openConnections == 0)
            #expect(c.installs == 0)
        }
    }

    @Test func aPeerThatClosesItsSideBeforeAnyRequestIsClosed() async throws {
        try await withConnection { (c: Connection) throws in
            c.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            #expect(try c.written().isEmpty)
            #expect(!c.channel.isActive)
            #expect(c.limiter.openConnections == 0)
        }
    }

    @Test func onceTheFullPipelineHasTheConnectionItDecidesOnItsEnd() async throws {
        try await withConnection { (c: Connection) throws in
            try c.send("GET /Todo/2 HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(c.installs == 1)
            _ = try c.written()
            c.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            #expect(c.channel.isActive, "the fast path has left; the full pipeline's own handling of the event applies")
        }
    }

    @Test func aGracefulShutdownClosesAConnectionServedHere() async throws {
        try await withConnection { (c: Connection) throws in
            try c.send("GET /page HTTP/1.1\r\nHost: a\r\n\r\n")
            _ = try c.written()
            c.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            #expect(!c.channel.isActive)
        }
    }
}
