import Foundation
import HTTPTypes
import HummingbirdTesting
import MicrolithHTTP
import MicrolithJSON
import MicrolithMQTT
import MicrolithRealtime
import MicrolithRuntime
import NIOCore
import Testing

/// WebSocket upgrades on a live server's HTTP port: a table URL becomes a subscription, a record
/// subscription takes published messages, a URL naming no subscription gets an `error` event and
/// close code 4000 + the HTTP status, and a consumer that falls behind is closed with 1008.
@Suite(.timeLimit(.minutes(1))) struct WebSocketUpgradeTests {
    func event(_ frame: WebSocketTestClient.Frame?, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> JSONValue {
        let frame = try #require(frame, "no frame", sourceLocation: sourceLocation)
        #expect(frame.opcode == 0x1, "opcode \(frame.opcode): \(frame.text)", sourceLocation: sourceLocation)
        return try JSONParser.parse(frame.payload)
    }

    func put(_ client: any TestClientProtocol, _ path: String, _ body: String) async throws {
        let response = try await client.execute(uri: path, method: .put, headers: [.contentType: "application/json"], body: jsonBody(body))
        #expect(response.status == .created || response.status == .ok, "\(String(buffer: response.body))")
    }

    @Test func aTableURLBecomesASubscription() async throws {
        try await withLiveServer { _, client in
            let socket = try await WebSocketTestClient(port: try #require(client.port), path: "/Todo/")
            #expect(socket.upgraded, "\(socket.head)")
            #expect(try event(await socket.nextMessage())["type"] == "subscribed")
            try await put(client, "/Todo/a", #"{"title":"first"}"#)
            try await put(client, "/Todo/b", #"{"title":"second"}"#)
            let first = try event(await socket.nextMessage())
            let second = try event(await socket.nextMessage())
            #expect(first["type"] == "put" && first["id"] == "a" && first["value"]?["title"] == "first")
            #expect(second["type"] == "put" && second["id"] == "b")
        }
    }

    @Test func aRecordSubscriptionTakesPublishedMessagesAndAnswersBadOnes() async throws {
        try await withLiveServer { _, client in
            let port = try #require(client.port)
            let publisher = try await WebSocketTestClient(port: port, path: "/Todo/a")
            let listener = try await WebSocketTestClient(port: port, path: "/Todo/a")
            // A record subscription starts with the record as it is (none yet).
            for socket in [publisher, listener] {
                #expect(try event(await socket.nextMessage())["type"] == "subscribed")
                let current = try event(await socket.nextMessage())
                #expect(current["type"] == "current" && current["id"] == "a" && current["value"] == .null, "\(current)")
            }
            try publisher.send(#"{"type":"publish","value":{"hello":"there"}}"#)
            let message = try event(await listener.nextMessage())
            #expect(message["type"] == "message" && message["value"] == ["hello": "there"], "\(message)")
            // The publisher is subscribed to the record too: it gets its message back.
            #expect(try event(await publisher.nextMessage())["value"] == ["hello": "there"])
            try publisher.send("not json")
            let refusal = try event(await publisher.nextMessage())
            #expect(refusal["type"] == "error" && refusal["status"] == 400, "\(refusal)")
            // A table subscription has no record to publish to.
            let table = try await WebSocketTestClient(port: port, path: "/Todo/")
            #expect(try event(await table.nextMessage())["type"] == "subscribed")
            try table.send(#"{"type":"publish","value":1}"#)
            let detail = try event(await table.nextMessage())["detail"]?.stringValue ?? ""
            #expect(detail.contains("published to a record"), "\(detail)")
        }
    }

    @Test(arguments: [
        ("/Nope/", nil, 4404, "no exported table named 'Nope'"),
        ("/Todo/?lastEventId=soon", nil, 4400, "resume position"),
        ("/Todo/?done=zz=1", nil, 4400, "unknown operator"),
        ("/Todo/", "mqtt", 4404, "MQTT broker is turned off"),
    ])
    func aURLNamingNoSubscriptionGetsAnErrorAndACloseCode(path: String, subprotocol: String?, code: Int, detail: String) async throws {
        try await withLiveServer { _, client in
            let socket = try await WebSocketTestClient(port: try #require(client.port), path: path, subprotocol: subprotocol)
            #expect(socket.upgraded, "\(socket.head)")
            let error = try event(await socket.nextMessage())
            #expect(error["type"] == "error" && error["status"] == .int(Int64(code - 4000)), "\(error)")
            #expect(error["detail"]?.stringValue?.contains(detail) == true, "\(error)")
            let close = try #require(try await socket.nextMessage())
            #expect(close.closeCode == code, "opcode \(close.opcode): \(close.text)")
        }
    }

    @Test func withoutTheApiRoleNoTableIsServed() async throws {
        try await withLiveServer(roles: ["desk"]) { _, client in
            let socket = try await WebSocketTestClient(port: try #require(client.port), path: "/Todo/")
            let error = try event(await socket.nextMessage())
            #expect(error["detail"]?.stringValue?.contains("lacks the api role") == true, "\(error)")
            #expect(try await socket.nextMessage()?.closeCode == 4404)
        }
    }

    @Test func aConsumerThatFallsBehindGetsOverflowAndClose1008() async throws {
        try await withLiveServer(configure: { $0.realtimeBufferBytes = 256 * 1024 }) { server, client in
            let socket = try await WebSocketTestClient(port: try #require(client.port), path: "/Todo/", receiveBufferBytes: 4096)
            #expect(try event(await socket.nextMessage())["type"] == "subscribed")
            // Not reading: big records until the hub drops the subscriber.
            let notes = String(repeating: "n", count: 64 * 1024)
            var written = 0
            while server.realtime.subscriptionCount > 0 {
                try #require(written < 400, "the subscriber never overflowed")
                try await put(client, "/Todo/r\(written)", #"{"title":"t","notes":"\#(notes)"}"#)
                written += 1
            }
            // Reading now, within the close grace: some puts, then overflow, then the close frame.
            var puts = 0
            var last: JSONValue = .null
            while let frame = try await socket.nextMessage(), frame.opcode == 0x1 {
                last = try JSONParser.parse(frame.payload)
                if last["type"] == "put" { puts += 1 }
                if last["type"] == "overflow" {
                    let close = try #require(try await socket.nextMessage())
                    #expect(close.closeCode == 1008 && close.closeReason == "slow consumer", "\(close.text)")
                    break
                }
            }
            #expect(last["type"] == "overflow", "\(last)")
            #expect(puts < written)
            #expect(try await socket.waitUntilClosed(within: .seconds(10)), "the connection was left open")
        }
    }
}
