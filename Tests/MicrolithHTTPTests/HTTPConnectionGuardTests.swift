import Foundation
import MicrolithHTTP
import MicrolithJSON
import MicrolithNetwork
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// The connection guard and request inspector on an embedded channel with NIO's HTTP codec:
/// deadlines measured on the embedded loop's clock, answers read as bytes off the wire.
@Suite struct HTTPConnectionGuardTests {
    struct Connection {
        let channel: EmbeddedChannel
        let loop: EmbeddedEventLoop
        let responder: RecordingResponder
        let limiter: ConnectionLimiter

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

    func connect(
        limiter: ConnectionLimiter = ConnectionLimiter(maximum: 10, maximumPerAddress: 10), maximumBodyBytes: Int = 1000
    ) throws
        -> Connection
    {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        let guardHandler = HTTPConnectionGuard(limiter: limiter, limits: .init(headerTimeout: .seconds(10), minimumBodyBytesPerSecond: 100))
        let responder = RecordingResponder()
        try channel.pipeline.syncOperations.addHandler(guardHandler)
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false)
        try channel.pipeline.syncOperations.addHandler(HTTPRequestInspector(connection: guardHandler, maximumBodyBytes: maximumBodyBytes))
        try channel.pipeline.syncOperations.addHandler(responder)
        channel.remoteAddress = try SocketAddress(ipAddress: "10.0.0.1", port: 5000)
        try channel.connect(to: SocketAddress(ipAddress: "10.0.0.1", port: 5000)).wait()
        return Connection(channel: channel, loop: loop, responder: responder, limiter: limiter)
    }

    func problem(_ text: String) throws -> JSONObject {
        let body = try #require(text.range(of: "\r\n\r\n")).upperBound
        guard case .object(let o) = try JSONParser.parse(Array(text[body...].utf8)) else { throw CancellationError() }
        return o
    }

    @Test func aWellFormedRequestIsServedAndTheConnectionCounted() throws {
        let c = try connect()
        try c.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try c.written().hasPrefix("HTTP/1.1 200 OK"))
        #expect(c.limiter.openConnections == 1)
        c.loop.advanceTime(by: .seconds(60))
        #expect(c.channel.isActive, "an idle keep-alive connection is the idle timeout's, not the head deadline's")
        _ = try c.channel.close().wait()
        #expect(c.limiter.openConnections == 0)
    }

    @Test func aSilentConnectionGets408AtTheHeaderDeadline() throws {
        let c = try connect()
        c.loop.advanceTime(by: .seconds(9))
        #expect(c.channel.isActive)
        c.loop.advanceTime(by: .seconds(1))
        let text = try c.written()
        #expect(text.hasPrefix("HTTP/1.1 408 Request Timeout"))
        #expect(try problem(text)["code"] == "headerTimeout")
        #expect(!c.channel.isActive)
    }

    @Test func aHeadTrickledOnAKeptAliveConnectionIsTimedFromItsFirstByte() throws {
        let c = try connect()
        try c.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        _ = try c.written()
        c.loop.advanceTime(by: .seconds(30))
        try c.send("GET /x HTTP/1.1\r\n")
        c.loop.advanceTime(by: .seconds(5))
        try c.send("Host: a\r\n")
        c.loop.advanceTime(by: .seconds(5))
        #expect(try c.written().hasPrefix("HTTP/1.1 408"))
        #expect(!c.channel.isActive)
    }

    @Test func aTrickledBodyIsCutOff() throws {
        let c = try connect()
        try c.send("PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 900\r\n\r\n{")
        for _ in 0..<20 {
            c.loop.advanceTime(by: .seconds(1))
            if c.channel.isActive { try c.send(" ") }
        }
        let text = try c.written()
        #expect(text.hasPrefix("HTTP/1.1 408"))
        #expect(try problem(text)["code"] == "bodyTooSlow")
    }

    @Test func aDeclaredBodyOverTheLimitGets413BeforeItArrives() throws {
        let c = try connect(maximumBodyBytes: 100)
        try c.send("PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n")
        let text = try c.written()
        #expect(text.hasPrefix("HTTP/1.1 413"))
        #expect(try problem(text)["code"] == "bodyTooLarge")
        #expect(c.responder.heads.isEmpty)
        #expect(!c.channel.isActive)
    }

    @Test(arguments: [
        "FROB / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "\u{16}\u{3}\u{1}\u{0}\u{A5}\u{1}\u{0}",
    ])
    func anUnparsableFirstRequestGets400AndClose(_ request: String) throws {
        let c = try connect()
        try? c.send(request)
        let text = try c.written()
        #expect(text.hasPrefix("HTTP/1.1 400 Bad Request"))
        #expect(try problem(text)["code"] == "malformedRequest")
        #expect(!c.channel.isActive)
    }

    @Test func anUnparsableLaterRequestGets400AndCloseToo() throws {
        let c = try connect()
        try c.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try c.written().hasPrefix("HTTP/1.1 200"))
        try? c.send("GET /x HTTP/9.9\r\n\r\n")
        #expect(try c.written().hasPrefix("HTTP/1.1 400"))
        #expect(!c.channel.isActive)
    }

    @Test func http10WithoutKeepAliveIsMarkedClose() throws {
        let c = try connect()
        try c.send("GET /x HTTP/1.0\r\n\r\n")
        #expect(c.responder.heads.first?.headers["connection"] == ["close"])
        let d = try connect()
        try d.send("GET /y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        #expect(d.responder.heads.first?.headers["connection"] == ["keep-alive"])
    }

    @Test func aRefusedConnectionGets503() throws {
        let limiter = ConnectionLimiter(maximum: 1, maximumPerAddress: 1)
        let first = try connect(limiter: limiter)
        let second = try connect(limiter: limiter)
        let text = try second.written()
        #expect(text.hasPrefix("HTTP/1.1 503"))
        #expect(text.lowercased().contains("retry-after: 1"))
        #expect(try problem(text)["code"] == "connectionLimit")
        #expect(first.channel.isActive)
        #expect(limiter.openConnections == 1)
    }

    @Test func anIdleKeepAliveConnectionMakesRoomForANewOne() throws {
        let limiter = ConnectionLimiter(maximum: 1, maximumPerAddress: 1)
        let first = try connect(limiter: limiter)
        try first.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        _ = try first.written()
        let second = try connect(limiter: limiter)
        #expect(second.channel.isActive)
        #expect(!first.channel.isActive)
    }
}
