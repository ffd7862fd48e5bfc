import MicrolithMQTT
import NIOCore
import Testing

/// QoS 2 from the broker to a subscriber (OASIS MQTT 5.0 §4.3.3, statement numbers in the test
/// names): PUBLISH, PUBREC, PUBREL, PUBCOMP, the in-flight slot held until PUBCOMP, and a returning
/// client owed the PUBREL, not the message again.
@Suite("MQTT outbound QoS 2")
struct MQTTOutboundQoS2Tests {
    /// Publishes `text` to `topic` at QoS 2 from `publisher`, completing its own handshake.
    func publishExactlyOnce(_ publisher: TestClient, _ topic: String, _ text: String, packetID: UInt16) async throws {
        try await publisher.send(.publish(MQTTPublish(topic: topic, payload: ByteBuffer(string: text), qos: .exactlyOnce, packetID: packetID)))
        guard case .ack(let rec) = try await publisher.receive(), rec.kind == .pubrec else { throw CancellationError() }
        try await publisher.send(.ack(MQTTAck(kind: .pubrel, packetID: packetID)))
        guard case .ack(let comp) = try await publisher.receive(), comp.kind == .pubcomp else { throw CancellationError() }
    }

    /// The next packet as an acknowledgement of `kind`.
    func ack(_ packet: MQTTPacket, _ kind: MQTTAck.Kind, sourceLocation: SourceLocation = #_sourceLocation) throws -> MQTTAck {
        guard case .ack(let a) = packet, a.kind == kind else {
            Issue.record("expected \(kind), got \(packet)", sourceLocation: sourceLocation)
            throw CancellationError()
        }
        return a
    }

    @Test("a QoS 2 subscription is granted QoS 2 and gets QoS 2 messages through the four-packet exchange [MQTT-4.3.3-1 to -5]")
    func exchange() async throws {
        try await withBroker { _, server in
            let subscriber = try await TestClient.connect(port: server.port)
            try await subscriber.handshake(clientID: "sub")
            #expect(try await subscriber.subscribe(["q2/#"], qos: .exactlyOnce) == [2])
            let publisher = try await TestClient.connect(port: server.port)
            try await publisher.handshake(clientID: "pub")
            try await publishExactlyOnce(publisher, "q2/a", "once", packetID: 5)
            let message = try publishOf(try await subscriber.receive())
            #expect(message.qos == .exactlyOnce && String(buffer: message.payload) == "once" && !message.dup)
            let id = try #require(message.packetID)
            try await subscriber.send(.ack(MQTTAck(kind: .pubrec, packetID: id)))
            let release = try ack(try await subscriber.receive(), .pubrel)
            #expect(release.packetID == id && release.reasonCode == 0)
            // A repeated PUBREC gets the PUBREL again.
            try await subscriber.send(.ack(MQTTAck(kind: .pubrec, packetID: id)))
            #expect(try ack(try await subscriber.receive(), .pubrel).packetID == id)
            try await subscriber.send(.ack(MQTTAck(kind: .pubcomp, packetID: id)))
            // A PUBREC for an id not in flight: PUBREL with 0x92, Packet Identifier not found.
            try await subscriber.send(.ack(MQTTAck(kind: .pubrec, packetID: id)))
            let unknown = try ack(try await subscriber.receive(), .pubrel)
            #expect(unknown.packetID == id && unknown.reasonCode == 0x92)
            // A QoS 1 subscription still gets a QoS 2 message at QoS 1.
            let low = try await TestClient.connect(port: server.port)
            try await low.handshake(clientID: "low")
            #expect(try await low.subscribe(["q2/#"], qos: .atLeastOnce) == [1])
            try await publishExactlyOnce(publisher, "q2/b", "downgraded", packetID: 6)
            #expect(try publishOf(try await low.receive()).qos == .atLeastOnce)
        }
    }

    @Test("a message keeps its in-flight slot until PUBCOMP, and a refused one frees it at PUBREC [MQTT-4.9.0-2]")
    func slotHeldUntilComplete() async throws {
        try await withBroker { _, server in
            let subscriber = try await TestClient.connect(port: server.port)
            try await subscriber.handshake(clientID: "narrow") { $0.receiveMaximum = 1 }
            #expect(try await subscriber.subscribe(["q2/#"], qos: .exactlyOnce) == [2])
            let publisher = try await TestClient.connect(port: server.port)
            try await publisher.handshake(clientID: "pub")
            for (n, text) in ["first", "second", "third"].enumerated() {
                try await publishExactlyOnce(publisher, "q2/x", text, packetID: UInt16(10 + n))
            }
            let first = try publishOf(try await subscriber.receive())
            #expect(String(buffer: first.payload) == "first")
            try await subscriber.send(.ack(MQTTAck(kind: .pubrec, packetID: first.packetID!)))
            _ = try ack(try await subscriber.receive(), .pubrel)
            // Received but not completed: the one slot is still taken.
            #expect(try await subscriber.publishes(quiet: 0.5).isEmpty)
            try await subscriber.send(.ack(MQTTAck(kind: .pubcomp, packetID: first.packetID!)))
            let second = try publishOf(try await subscriber.receive())
            #expect(String(buffer: second.payload) == "second")
            // Refused (0x80, unspecified error): done with at once, no PUBREL, the next one comes.
            try await subscriber.send(.ack(MQTTAck(kind: .pubrec, packetID: second.packetID!, reasonCode: 0x80)))
            let third = try publishOf(try await subscriber.receive())
            #expect(String(buffer: third.payload) == "third")
        }
    }

    @Test("a returning client is sent the PUBREL of what it received and the PUBLISH, with DUP, of what it did not [MQTT-4.4.0-1]")
    func resumedSession() async throws {
        try await withBroker { _, server in
            let first = try await TestClient.connect(port: server.port)
            try await first.handshake(clientID: "durable", cleanStart: false, sessionExpiry: 60)
            #expect(try await first.subscribe(["q2/#"], qos: .exactlyOnce) == [2])
            let publisher = try await TestClient.connect(port: server.port)
            try await publisher.handshake(clientID: "pub")
            try await publishExactlyOnce(publisher, "q2/r", "received", packetID: 1)
            try await publishExactlyOnce(publisher, "q2/u", "unanswered", packetID: 2)
            let received = try publishOf(try await first.receive())
            let unanswered = try publishOf(try await first.receive())
            #expect(String(buffer: received.payload) == "received" && String(buffer: unanswered.payload) == "unanswered")
            try await first.send(.ack(MQTTAck(kind: .pubrec, packetID: received.packetID!)))
            _ = try ack(try await first.receive(), .pubrel)
            await first.close()

            let back = try await TestClient.connect(port: server.port)
            #expect(try await back.handshake(clientID: "durable", cleanStart: false, sessionExpiry: 60).sessionPresent)
            let release = try ack(try await back.receive(), .pubrel)
            #expect(release.packetID == received.packetID)
            let again = try publishOf(try await back.receive())
            #expect(again.packetID == unanswered.packetID && again.dup && again.qos == .exactlyOnce)
            #expect(String(buffer: again.payload) == "unanswered")
            try await back.send(.ack(MQTTAck(kind: .pubcomp, packetID: received.packetID!)))
            try await back.send(.ack(MQTTAck(kind: .pubrec, packetID: again.packetID!)))
            _ = try ack(try await back.receive(), .pubrel)
            try await back.send(.ack(MQTTAck(kind: .pubcomp, packetID: again.packetID!)))
            // Both done: nothing more is owed.
            #expect(try await back.publishes(quiet: 0.5).isEmpty)
        }
    }
}
