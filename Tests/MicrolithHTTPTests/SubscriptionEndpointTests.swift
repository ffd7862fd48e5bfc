import Foundation
import HTTPTypes
import HummingbirdTesting
import MicrolithHTTP
import MicrolithJSON
import MicrolithRealtime
import Testing

/// SSE subscriptions on a live server, read through raw sockets: clients that stop reading are
/// cut off within a bound while the others get every event in order, and bad subscription URLs
/// get problems.
@Suite(.timeLimit(.minutes(1))) struct SubscriptionEndpointTests {
    static let eventBytes = 128 * 1024
    /// Per-subscriber buffer: far less than the events written.
    static let bufferBytes = 512 * 1024
    /// The stream's end in chunked encoding.
    static let endOfStream = "\r\n0\r\n\r\n"

    /// Puts big records until the hub has dropped a subscriber (`remaining` are left), at most 200.
    func overflow(_ server: SubscriptionServer, leaving remaining: Int) async throws -> [String] {
        var ids: [String] = []
        while server.hub.subscriptionCount > remaining {
            try #require(ids.count < 200, "no subscriber overflowed after \(ids.count) events of \(Self.eventBytes) bytes")
            let id = String(format: "r%03d", ids.count)
            try await server.putTodo(id, noteBytes: Self.eventBytes)
            ids.append(id)
        }
        return ids
    }

    @Test(arguments: [
        ("text/event-stream", true), ("Text/Event-Stream", true), ("text/html, TEXT/EVENT-STREAM;q=0.9", true),
        ("text/html,application/xhtml+xml,*/*;q=0.8", false), ("text/event-strea", false), ("", false),
        ("text/event-streamer", true),
    ])
    func anEventStreamIsAskedForByAccept(_ accept: String, _ wanted: Bool) {
        var fields = HTTPFields()
        fields[.accept] = accept
        #expect(SubscriptionEndpoint.wantsEventStream(fields) == wanted)
        #expect(!SubscriptionEndpoint.wantsEventStream(HTTPFields()))
    }

    @Test func aSubscriberThatNeverReadsIsDisconnectedWhileAnotherGetsEveryEvent() async throws {
        let grace = Duration.seconds(1)
        try await withSubscriptionServer(bufferBytes: Self.bufferBytes, closeGrace: grace) { server in
            let stuck = try await server.subscribe("/Todo/", receiveBufferBytes: 4096)
            let reader = try await server.subscribe("/Todo/")
            async let readAll = reader.read(for: .seconds(60)) { $0.contains("\"id\":\"last\"") }
            let ids = try await overflow(server, leaving: 1)
            let overflowed = ContinuousClock.now
            try await server.putTodo("last")
            // Cut off within the grace and a margin (what the kernel still held for it is read first).
            #expect(try await stuck.readUntilClosed(within: grace + .seconds(4)), "the SSE subscriber that never reads is still connected")
            #expect(ContinuousClock.now - overflowed < grace + .seconds(4))
            #expect(putIDs(stuck.text).count < ids.count, "the stuck subscriber got every event")
            #expect(try await readAll, "the reading subscriber did not get the last event")
            #expect(putIDs(reader.text) == ids + ["last"])
            #expect(!reader.text.contains("event: overflow"))
            #expect(!reader.closed)
        }
    }

    @Test func aSubscriberThatReadsTheEndOfItsOverflowedStreamButKeepsTheConnectionIsDisconnected() async throws {
        let grace = Duration.seconds(3)
        try await withSubscriptionServer(bufferBytes: Self.bufferBytes, closeGrace: grace) { server in
            let late = try await server.subscribe("/Todo/", receiveBufferBytes: 4096)
            let ids = try await overflow(server, leaving: 0)
            let overflowed = ContinuousClock.now
            // Reading now, within the grace, the client gets the overflow and the end of the stream...
            let ended = try await late.read(for: grace) { $0.hasSuffix(Self.endOfStream) }
            #expect(ended && late.text.hasSuffix(Self.endOfStream), "the stream did not end: \(late.text.suffix(300))")
            let overflow = try #require(late.text.range(of: "event: overflow"))
            #expect(putIDs(String(late.text[overflow.upperBound...])).isEmpty, "events after the overflow")
            #expect(putIDs(late.text).count < ids.count)
            // ...and the server closes the connection once the grace has passed, though the client
            // keeps it open and sends nothing more.
            #expect(try await late.readUntilClosed(within: grace + .seconds(3)), "the overflowed SSE connection was left open")
            // Not at once: the grace runs from the server's overflow, a moment before `overflowed`
            // was read here, hence the margin.
            #expect(ContinuousClock.now - overflowed >= grace - .seconds(1))
        }
    }

    @Test func aResumedSubscriptionReplaysWhatItMissedInOrderBeforeSubscribed() async throws {
        try await withSubscriptionServer { server in
            for id in ["a", "b", "c"] { try await server.putTodo(id) }
            let connection = try await server.subscribe("/Todo/", headers: "Last-Event-ID: 1\r\n")
            let text = connection.text
            #expect(text.contains("HTTP/1.1 200 OK"))
            #expect(putIDs(text) == ["b", "c"], "\(text)")
            let subscribed = try #require(text.range(of: "event: subscribed"))
            #expect(putIDs(String(text[subscribed.upperBound...])).isEmpty, "replayed events come before subscribed")
            try await server.putTodo("d")
            #expect(try await connection.read(for: .seconds(10)) { $0.contains("\"id\":\"d\"") })
            #expect(putIDs(connection.text) == ["b", "c", "d"])
            #expect(connection.text.contains("id: 4\nevent: put"), "the event id is the change-log position")
        }
    }

    @Test func aRecordSubscriptionGetsOnlyItsRecord() async throws {
        try await withSubscriptionServer { server in
            let connection = try await server.subscribe("/Todo/one")
            try await server.putTodo("two")
            try await server.putTodo("one")
            #expect(try await connection.read(for: .seconds(10)) { $0.contains("\"id\":\"one\"") })
            #expect(putIDs(connection.text) == ["one"])
        }
    }

    @Test(arguments: [
        ("/Todo/?lastEventId=soon", 400, "resume position"),
        ("/Todo/?lastEventId=-1", 400, "resume position"),
        ("/Todo/x/?done==true", 400, "names the table only"),
        ("/Todo/%ZZ/", 400, "prefix"),
        ("/Todo/?done=zz=1", 400, "zz"),
        ("/Hidden/", 404, "no exported table"),
    ])
    func aBadSubscriptionURLGetsAProblem(path: String, status: Int, detail: String) async throws {
        try await withSubscriptionServer { server in
            let response = try await server.client.execute(uri: path, method: .get, headers: [.accept: "text/event-stream"])
            let problem = response.expectProblem(HTTPResponse.Status(code: status))
            #expect(problem["detail"]?.stringValue?.contains(detail) == true, "\(response.text)")
        }
    }
}
