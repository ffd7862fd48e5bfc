import Foundation
import Logging
import MicrolithTestSupport
import NIOCore
import Testing

@testable import MicrolithNATS

/// The client against a real nats-server.
@Suite(.serialized, .timeLimit(.minutes(1))) struct NATSClientTests {
    func configuration(_ servers: [String], _ options: NATSConnectOptions = NATSConnectOptions(name: "test")) throws -> NATSClient.Configuration {
        var c = NATSClient.Configuration(servers: try servers.map { try NATSServerAddress(parsing: $0) }, options: options)
        c.connectTimeout = .seconds(2)
        c.reconnectWait = .milliseconds(20)
        c.maximumReconnectWait = .milliseconds(200)
        return c
    }

    /// The address of a port nothing listens on (a server's own, once it is stopped).
    static func deadServerURL() throws -> String {
        let dead = try NATSServerProcess()
        dead.stop()
        return dead.url
    }

    /// The next message of `subscription` (`nil` once it ended), or a failure after `seconds`.
    func next(_ subscription: NATSSubscription, seconds: Double = 5) async throws -> NATSMessage? {
        try await withThrowingTaskGroup(of: NATSMessage?.self) { group in
            group.addTask {
                var it = subscription.makeAsyncIterator()
                return try await it.next()
            }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                throw NATSError(.timeout, "no message within \(seconds) s")
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
    }

    @Test func messagesGoToMatchingSubscriptionsWithTheirHeaders() async throws {
        let server = try NATSServerProcess()
        let client = try await NATSClient.connect(try configuration([server.url]))
        #expect(client.serverInfo?.headers == true)
        let all = try client.subscribe("orders.>")
        let one = try client.subscribe("orders.*.paid")
        var headers = NATSHeaders([("Nats-Msg-Id", "n1:1")])
        headers.add(name: "Trace", value: "a")
        headers.add(name: "Trace", value: "b")
        try client.publish("orders.7.paid", payload: ByteBuffer(string: #"{"total":12}"#), headers: headers)
        try client.publish("orders.7.shipped", payload: ByteBuffer(string: "x"))
        try client.publish("other", payload: ByteBuffer(string: "y"))
        try await client.flush()

        let first = try #require(try await next(all))
        #expect(first.subject == "orders.7.paid" && String(buffer: first.payload) == #"{"total":12}"#)
        #expect(first.headers?.values("Trace") == ["a", "b"] && first.headers?["Nats-Msg-Id"] == "n1:1")
        #expect(try await next(all)?.subject == "orders.7.shipped")
        #expect(try await next(one)?.subject == "orders.7.paid")

        one.unsubscribe()
        #expect(try await next(one) == nil, "iteration ends once unsubscribed")
        await client.close()
    }

    @Test func requestsGetTheirAnswerOrSayWhyNot() async throws {
        let server = try NATSServerProcess()
        let client = try await NATSClient.connect(try configuration([server.url]))
        let responder = try client.subscribe("time.now", queueGroup: "clocks")
        let answering = Task {
            for try await message in responder {
                guard let reply = message.replyTo else { continue }
                try client.publish(reply, payload: ByteBuffer(string: "answer to " + String(buffer: message.payload)))
            }
        }
        try await client.flush()
        let answer = try await client.request("time.now", payload: ByteBuffer(string: "q1"))
        #expect(String(buffer: answer.payload) == "answer to q1")
        async let second = client.request("time.now", payload: ByteBuffer(string: "q2"))
        async let third = client.request("time.now", payload: ByteBuffer(string: "q3"))
        #expect(try await [second, third].map { String(buffer: $0.payload) } == ["answer to q2", "answer to q3"])

        await #expect(throws: NATSError(.noResponders, "nobody answers requests on that subject (503 no responders)")) {
            try await client.request("nobody.here", payload: ByteBuffer())
        }
        let silent = try client.subscribe("silent")
        try await client.flush()
        let started = ContinuousClock.now
        let error = await #expect(throws: NATSError.self) {
            try await client.request("silent", payload: ByteBuffer(), timeout: .milliseconds(200))
        }
        #expect(error?.kind == .timeout)
        #expect(ContinuousClock.now - started < .seconds(3))
        silent.unsubscribe()
        answering.cancel()
        await client.close()
        await #expect(throws: NATSError.self) { try await client.request("time.now", payload: ByteBuffer()) }
    }

    @Test func credentialsAreCheckedAndARefusalSaysWhy() async throws {
        let server = try NATSServerProcess(["--user", "node", "--pass", "s3cret"])
        let refused = await #expect(throws: NATSError.self) {
            _ = try await NATSClient.connect(try configuration([server.url], NATSConnectOptions(user: "node", password: "wrong")))
        }
        #expect(refused?.kind == .connectionFailed)
        #expect(refused?.message.contains("Authorization Violation") == true, "\(String(describing: refused))")
        let client = try await NATSClient.connect(try configuration([server.url], NATSConnectOptions(user: "node", password: "s3cret")))
        try await client.flush()
        await client.close()
        // Credentials in the URL win over the options'.
        let fromURL = try await NATSClient.connect(
            try configuration(["nats://node:s3cret@127.0.0.1:\(server.port)"], NATSConnectOptions(user: "node", password: "wrong")))
        try await fromURL.flush()
        await fromURL.close()

        let tokenServer = try NATSServerProcess(["--auth", "t0ken"])
        let withToken = try await NATSClient.connect(try configuration([tokenServer.url], NATSConnectOptions(token: "t0ken")))
        try await withToken.flush()
        await withToken.close()
    }

    @Test func theListIsTriedInTurnAndAnEmptyOrDeadListFails() async throws {
        let server = try NATSServerProcess()
        let deadURL = try Self.deadServerURL()
        let client = try await NATSClient.connect(try configuration([deadURL, server.url]))
        try await client.flush()
        await client.close()
        let error = await #expect(throws: NATSError.self) { _ = try await NATSClient.connect(try configuration([deadURL])) }
        #expect(error?.kind == .connectionFailed && error?.message.contains(deadURL) == true)
        await #expect(throws: NATSError(.invalid, "no NATS server to connect to")) {
            _ = try await NATSClient.connect(NATSClient.Configuration(servers: []))
        }
    }

    @Test func aReconnectTriesEveryServerOfTheList() async throws {
        let live = try NATSServerProcess()
        let deadURL = try Self.deadServerURL()
        let client = try await NATSClient.connect(try configuration([deadURL, live.url]))
        let sub = try client.subscribe("x")
        for round in 1...3 {
            live.stop()
            try live.start()
            let back = ContinuousClock.now
            while client.reconnectCount < round && ContinuousClock.now - back < .seconds(5) { try await Task.sleep(for: .milliseconds(5)) }
            while !client.isConnected && ContinuousClock.now - back < .seconds(5) { try await Task.sleep(for: .milliseconds(5)) }
            #expect(client.isConnected, "round \(round): the second server of the list is tried")
        }
        try client.publish("x", payload: ByteBuffer(string: "back"), headers: NATSHeaders())
        try await client.flush()
        let m = try await next(sub)
        #expect(m.map { String(buffer: $0.payload) } == "back")
        #expect(m?.headers == nil, "empty headers are sent as none (PUB, not HPUB)")
        await client.close()
    }

    @Test func mistakesAreRefusedBeforeTheyReachTheServer() async throws {
        let server = try NATSServerProcess()
        let client = try await NATSClient.connect(try configuration([server.url]))
        #expect(throws: NATSError.self) { try client.publish("bad subject", payload: ByteBuffer()) }
        #expect(throws: NATSError.self) { try client.publish("a.*", payload: ByteBuffer()) }
        #expect(throws: NATSError.self) { try client.publish("a", payload: ByteBuffer(), headers: NATSHeaders([("X", "1\r\nY: 2")])) }
        #expect(throws: NATSError.self) { _ = try client.subscribe("a..b") }
        let limit = try #require(client.serverInfo?.maxPayload)
        let tooBig = #expect(throws: NATSError.self) {
            try client.publish("a", payload: ByteBuffer(repeating: 0, count: limit + 1))
        }
        #expect(tooBig?.message.contains("over the server's") == true)
        // The connection is still good.
        let sub = try client.subscribe("a")
        try client.publish("a", payload: ByteBuffer(string: "fine"))
        try await client.flush()
        #expect(try await next(sub).map { String(buffer: $0.payload) } == "fine")
        #expect(client.reconnectCount == 0)
        await client.close()
    }

    @Test func aServerRestartMidStreamLosesNeitherSubscriptionsNorBufferedPublishes() async throws {
        let server = try NATSServerProcess()
        let client = try await NATSClient.connect(try configuration([server.url]))
        let sub = try client.subscribe("stream.>")
        for i in 1...50 { try client.publish("stream.before", payload: ByteBuffer(string: "\(i)")) }
        try await client.flush()
        for i in 1...50 { #expect(try await next(sub).map { String(buffer: $0.payload) } == "\(i)") }

        server.stop()
        // Until the client notices, publishes go to the dead socket and are lost (core NATS);
        // once it knows, they wait in the reconnect buffer.
        let noticed = ContinuousClock.now
        while client.isConnected && ContinuousClock.now - noticed < .seconds(5) { try await Task.sleep(for: .milliseconds(5)) }
        #expect(!client.isConnected)
        for i in 1...20 { try client.publish("stream.during", payload: ByteBuffer(string: "\(i)")) }
        let lateSub = try client.subscribe("late")
        try server.start()
        let back = ContinuousClock.now
        while !client.isConnected && ContinuousClock.now - back < .seconds(10) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(client.isConnected)
        #expect(client.reconnectCount == 1)
        try await client.flush()
        for i in 1...20 {
            let m = try await next(sub)
            #expect(m?.subject == "stream.during" && m.map { String(buffer: $0.payload) } == "\(i)")
        }
        try client.publish("stream.after", payload: ByteBuffer(string: "a"))
        try client.publish("late", payload: ByteBuffer(string: "l"))
        try await client.flush()
        #expect(try await next(sub)?.subject == "stream.after")
        #expect(try await next(lateSub)?.subject == "late", "a subscription made while disconnected is sent on reconnect")
        await client.close()
    }

    @Test func aServerThatStopsAnsweringIsLeftForOneThatDoes() async throws {
        let server = try NATSServerProcess()
        var c = try configuration([server.url])
        c.pingInterval = .milliseconds(100)
        c.maximumPingsOut = 2
        c.connectTimeout = .milliseconds(300)
        let client = try await NATSClient.connect(c)
        let sub = try client.subscribe("alive")
        server.pause(true)
        let paused = ContinuousClock.now
        while client.isConnected && ContinuousClock.now - paused < .seconds(5) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(!client.isConnected, "two unanswered pings end the connection")
        #expect(ContinuousClock.now - paused < .seconds(4))
        server.pause(false)
        let resumed = ContinuousClock.now
        while !client.isConnected && ContinuousClock.now - resumed < .seconds(10) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(client.isConnected)
        try client.publish("alive", payload: ByteBuffer(string: "yes"))
        try await client.flush()
        #expect(try await next(sub).map { String(buffer: $0.payload) } == "yes")
        await client.close()
    }

    @Test func aReaderThatFallsBehindIsToldSoAndTheRestGoesOn() async throws {
        let server = try NATSServerProcess()
        var c = try configuration([server.url])
        c.maximumPendingMessages = 10
        let client = try await NATSClient.connect(c)
        let slow = try client.subscribe("fast")
        let other = try client.subscribe("other")
        for i in 1...100 { try client.publish("fast", payload: ByteBuffer(string: "\(i)")) }
        try client.publish("other", payload: ByteBuffer(string: "fine"))
        try await client.flush()
        var received = 0
        let error = await #expect(throws: NATSError.self) {
            for try await _ in slow { received += 1 }
        }
        #expect(error?.kind == .slowConsumer)
        #expect(received == 10)
        #expect(try await next(other).map { String(buffer: $0.payload) } == "fine")
        await client.close()
    }

    @Test func closingEndsSubscriptionsAndRefusesWhatFollows() async throws {
        let server = try NATSServerProcess()
        let client = try await NATSClient.connect(try configuration([server.url]))
        let sub = try client.subscribe("x")
        await client.close()
        #expect(try await next(sub) == nil)
        #expect(throws: NATSError(.closed, "the NATS client is closed")) { try client.publish("x", payload: ByteBuffer()) }
        #expect(throws: NATSError(.closed, "the NATS client is closed")) { _ = try client.subscribe("x") }
        await client.close()
    }
}
