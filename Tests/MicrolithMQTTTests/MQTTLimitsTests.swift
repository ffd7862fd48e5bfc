import Foundation
import MicrolithJSON
import MicrolithMQTT
import MicrolithRealtime
import MicrolithStore
import NIOCore
import Testing

/// What a hostile client can make the broker hold or send: timeouts (on a virtual clock), subscription
/// caps with their reason codes, one retained delivery per topic per SUBSCRIBE, and byte bounds.
@Suite("MQTT broker limits")
struct MQTTLimitsTests {
    // MARK: Timeouts

    @Test("a connection that sends nothing is closed mqtt.connectTimeoutSeconds after it opened (section 3.1.4), not before")
    func silentConnection() async throws {
        try await withBroker({ $0.connectTimeoutSeconds = 10 }) { _, server in
            let client = VirtualTransport()
            try await client.connect(to: server.broker)
            await client.advance(seconds: 9)
            #expect(!client.isClosed)
            await client.advance(seconds: 1)
            #expect(client.isClosed)
            #expect(try client.packets().isEmpty)
        }
    }

    @Test("a CONNECT trickled a byte a second is closed at the connect timeout although bytes keep coming")
    func trickledConnect() async throws {
        try await withBroker({ $0.connectTimeoutSeconds = 10 }) { _, server in
            var out = ByteBuffer()
            connectPacket(clientID: "trickler").encode(version: .v5, into: &out)
            let bytes = Array(out.readableBytesView)
            #expect(bytes.count > 12)
            let client = VirtualTransport()
            try await client.connect(to: server.broker)
            for byte in bytes.prefix(9) {
                try await client.receive([byte])
                await client.advance(seconds: 1)
                #expect(!client.isClosed)
            }
            try await client.receive([bytes[9]])
            await client.advance(seconds: 1)
            #expect(client.isClosed)
            #expect(try client.packets().isEmpty)
        }
    }

    @Test("a CONNECT completed within the timeout gets CONNACK, and the connect timeout no longer applies")
    func connectInTime() async throws {
        try await withBroker({ $0.connectTimeoutSeconds = 10 }) { _, server in
            let client = VirtualTransport()
            try await client.connect(to: server.broker)
            await client.advance(seconds: 9)
            try await client.receive(connectPacket(clientID: "punctual"))
            await client.settle()
            guard case .connack(let ack) = try client.packets().first else { throw CancellationError() }
            #expect(ack.reasonCode == 0)
            await client.advance(seconds: 120)
            #expect(!client.isClosed)
        }
    }

    @Test("after CONNECT, a packet not finished within mqtt.packetTimeoutSeconds of its first byte closes the connection with DISCONNECT 0x8D")
    func trickledPacket() async throws {
        try await withBroker({ $0.packetTimeoutSeconds = 30 }) { _, server in
            let client = VirtualTransport()
            try await client.connect(to: server.broker)
            try await client.receive(connectPacket(clientID: "slow", keepAlive: 0))
            await client.settle()
            #expect(try client.packets().count == 1)
            // Whole packets, however slowly split, keep the connection: PINGREQ's two bytes 29 s apart.
            for _ in 0..<3 {
                try await client.receive([0xC0])
                await client.advance(seconds: 29)
                try await client.receive([0x00])
                await client.settle()
            }
            #expect(!client.isClosed)
            #expect(try client.packets() == [.pingresp, .pingresp, .pingresp])
            // A PUBLISH that starts and then trickles: closed 30 s after its first byte.
            try await client.receive([0x30, 0x20, 0x00])
            for _ in 0..<29 {
                await client.advance(seconds: 1)
                try await client.receive([0x61])
            }
            #expect(!client.isClosed)
            await client.advance(seconds: 1)
            #expect(client.isClosed)
            guard case .disconnect(let d) = try client.packets().last else { throw CancellationError() }
            #expect(d.reasonCode == 0x8D)
        }
    }

    @Test("while a packet waits for a store write, the transport stops reading past a packet's worth of bytes, then resumes")
    func readingPausesWhileBusy() async throws {
        try await withBroker({ $0.maximumPacketBytes = 1024 }) { store, server in
            let client = VirtualTransport()
            try await client.connect(to: server.broker)
            try await client.receive(connectPacket(clientID: "writer"))
            await client.settle()
            _ = try client.packets()
            var out = ByteBuffer()
            MQTTPacket.publish(
                MQTTPublish(topic: "Sensor/w1", payload: ByteBuffer(string: #"{"temp":1}"#), qos: .atLeastOnce, retain: true, packetID: 1)
            ).encode(version: .v5, into: &out)
            for _ in 0..<600 { MQTTPacket.pingreq.encode(version: .v5, into: &out) }
            try await client.receive(Array(out.readableBytesView))
            #expect(!client.isReading)
            let deadline = ContinuousClock.now + .seconds(10)
            while !client.isReading, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
                await client.settle()
            }
            #expect(client.isReading)
            // The transport resumes reading from inside the loop's turn that still has the 600 PINGRESP
            // writes queued; one more turn, queued behind it, sees them all written.
            await client.settle()
            let packets = try client.packets()
            #expect(packets.first == .ack(MQTTAck(kind: .puback, packetID: 1)))
            #expect(packets.dropFirst().allSatisfy { $0 == .pingresp } && packets.count == 601)
            #expect(try await store.get(store.sensor, .string("w1")) != nil)
        }
    }

    // MARK: Subscription caps

    @Test(
        "filters past mqtt.maxTopicFiltersPerPacket are refused, one code per filter: 0x97 in MQTT 5 [MQTT-3.8.4-6], 0x80 in 3.1.1 [MQTT-3.9.3-1]",
        arguments: [MQTTProtocolVersion.v5, .v3_1_1])
    func perPacketCap(version: MQTTProtocolVersion) async throws {
        try await withBroker({ $0.maximumTopicFiltersPerPacket = 3 }) { _, server in
            let client = try await TestClient.connect(port: server.port, version: version)
            try await client.handshake(clientID: "many")
            let refused: UInt8 = version == .v5 ? 0x97 : 0x80
            #expect(try await client.subscribe(["a", "b", "c", "d", "e"]) == [0, 0, 0, refused, refused])
            #expect(server.broker.subscriptionCount == 3)
        }
    }

    @Test(
        "past mqtt.maxSubscriptionsPerClient new filters are refused (0x97 / 0x80); replacing one is not a new one [MQTT-3.8.4-3]",
        arguments: [MQTTProtocolVersion.v5, .v3_1_1])
    func perClientCap(version: MQTTProtocolVersion) async throws {
        try await withBroker({ $0.maximumSubscriptionsPerClient = 3 }) { _, server in
            let client = try await TestClient.connect(port: server.port, version: version)
            try await client.handshake(clientID: "greedy")
            let refused: UInt8 = version == .v5 ? 0x97 : 0x80
            #expect(try await client.subscribe(["a", "b"], packetID: 1) == [0, 0])
            #expect(try await client.subscribe(["c", "d", "a", "c"], qos: .atLeastOnce, packetID: 2) == [1, refused, 1, 1])
            try await client.send(.unsubscribe(MQTTUnsubscribe(packetID: 3, topicFilters: ["b"])))
            guard case .unsuback = try await client.receive() else { throw CancellationError() }
            #expect(try await client.subscribe(["d"], packetID: 4) == [0])
            #expect(server.broker.subscriptionCount == 3)
        }
    }

    @Test("mqtt.maxSubscriptionsTotal counts every session; a session that ends gives its subscriptions back")
    func totalCap() async throws {
        try await withBroker({ $0.maximumSubscriptionsTotal = 4 }) { _, server in
            let first = try await TestClient.connect(port: server.port)
            try await first.handshake(clientID: "first")
            #expect(try await first.subscribe(["a", "b", "c"]) == [0, 0, 0])
            let second = try await TestClient.connect(port: server.port, version: .v3_1_1)
            try await second.handshake(clientID: "second")
            #expect(try await second.subscribe(["a", "b"]) == [0, 0x80])
            try await first.send(.disconnect(MQTTDisconnect()))
            let deadline = ContinuousClock.now + .seconds(5)
            while server.broker.subscriptionCount != 1, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            #expect(server.broker.subscriptionCount == 1)
            #expect(try await second.subscribe(["b", "c", "d", "e"], packetID: 2) == [0, 0, 0, 0x80])
        }
    }

    // MARK: Retained delivery

    @Test("60 × Sensor/# and Sensor/+ in one SUBSCRIBE deliver each record once, at the highest QoS granted (section 3.3.4)")
    func duplicateFiltersDeliverOnce() async throws {
        try await withBroker { store, server in
            try await writeSensors(store, server, count: 30)
            let client = try await TestClient.connect(port: server.port)
            try await client.handshake(clientID: "dup")
            let subscriptions =
                Array(repeating: MQTTSubscription(topicFilter: "Sensor/#", qos: .atMostOnce), count: 60)
                + [MQTTSubscription(topicFilter: "Sensor/+", qos: .atLeastOnce), MQTTSubscription(topicFilter: "Sensor/s7", qos: .atMostOnce)]
            #expect(try await client.subscribe(subscriptions) == Array(repeating: 0, count: 60) + [1, 0])
            let got = try await client.publishes(expected: 30, acknowledge: true)
            #expect(got.count == 30)
            #expect(Set(got.map(\.topic)).count == 30)
            #expect(got.allSatisfy { $0.retain && $0.qos == .atLeastOnce })
            #expect(server.broker.subscriptionCount == 3)
            // Subscribing again in a later packet sends the records again, once ([MQTT-3.8.4-3]).
            #expect(try await client.subscribe(["Sensor/#", "Sensor/#"], packetID: 2) == [0, 0])
            let again = try await client.publishes(expected: 30)
            #expect(again.count == 30 && Set(again.map(\.topic)).count == 30)
        }
    }

    @Test("plain retained messages: once per SUBSCRIBE whatever the repeated and overlapping filters")
    func duplicatePlainFilters() async throws {
        try await withBroker { _, server in
            let publisher = try await TestClient.connect(port: server.port)
            try await publisher.handshake(clientID: "publisher")
            for room in ["a", "b", "c"] {
                try await publisher.send(.publish(MQTTPublish(topic: "home/\(room)/temp", payload: ByteBuffer(string: room), retain: true)))
            }
            try await publisher.send(.pingreq)
            _ = try await publisher.receive()
            let client = try await TestClient.connect(port: server.port)
            try await client.handshake(clientID: "plain")
            _ = try await client.subscribe(Array(repeating: "home/#", count: 20) + ["home/+/temp", "+/a/temp"])
            let got = try await client.publishes(expected: 3)
            #expect(got.map(\.topic).sorted() == ["home/a/temp", "home/b/temp", "home/c/temp"])
        }
    }

    @Test("a table larger than a page arrives whole, each record once, in key order, at QoS 0 and at QoS 1 with acknowledgements")
    func pagedTableDelivery() async throws {
        try await withBroker({ $0.bufferBytes = 65536 }) { store, server in
            try await writeSensors(store, server, count: 900, padding: 200)
            for qos in [MQTTQoS.atMostOnce, .atLeastOnce] {
                let client = try await TestClient.connect(port: server.port)
                try await client.handshake(clientID: "pages-\(qos.rawValue)")
                _ = try await client.subscribe(["Sensor/+"], qos: qos)
                let got = try await client.publishes(expected: 900, acknowledge: true)
                #expect(got.count == 900)
                #expect(got.allSatisfy { $0.retain })
                #expect(got.map(\.topic) == got.map(\.topic).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
                #expect(Set(got.map(\.topic)).count == 900)
                #expect(got.allSatisfy { $0.qos == qos })
                await client.close()
            }
        }
    }

    @Test("a client that stops reading during a table burst is dropped after mqtt.writeTimeoutSeconds; others are served")
    func stalledReaderIsDropped() async throws {
        try await withBroker({
            $0.bufferBytes = 65536
            $0.writeTimeoutSeconds = 1
        }) { store, server in
            try await writeSensors(store, server, count: 3000, padding: 1000)
            let stalled = try await TestClient.connect(port: server.port, receiveBuffer: 4096)
            try await stalled.handshake(clientID: "stalled")
            try await stalled.stopReading()
            try await stalled.send(.subscribe(MQTTSubscribe(packetID: 1, subscriptions: [MQTTSubscription(topicFilter: "Sensor/#")])))
            let healthy = try await TestClient.connect(port: server.port)
            try await healthy.handshake(clientID: "healthy")
            let deadline = ContinuousClock.now + .seconds(10)
            while server.broker.connectionCount > 1, ContinuousClock.now < deadline {
                try await healthy.send(.pingreq)
                #expect(try await healthy.receive() == .pingresp)
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(server.broker.connectionCount == 1)
        }
    }

    @Test("QoS 1 messages kept for an offline session stop at mqtt.bufferBytes bytes, however many mqtt.maxQueuedMessages allows")
    func offlineQueueBytes() async throws {
        try await withBroker({ $0.bufferBytes = 65536 }) { _, server in
            let away = try await TestClient.connect(port: server.port)
            try await away.handshake(clientID: "away", cleanStart: false, sessionExpiry: 600)
            _ = try await away.subscribe(["big/#"], qos: .atLeastOnce)
            try await away.send(.disconnect(MQTTDisconnect()))
            #expect(try await away.closed())
            let publisher = try await TestClient.connect(port: server.port)
            try await publisher.handshake(clientID: "publisher")
            let payload = ByteBuffer(repeating: 0x61, count: 10_000)
            for id in 1...20 {
                try await publisher.send(.publish(MQTTPublish(topic: "big/x", payload: payload, qos: .atLeastOnce, packetID: UInt16(id))))
                _ = try await publisher.receive()
            }
            let back = try await TestClient.connect(port: server.port)
            let ack = try await back.handshake(clientID: "away", cleanStart: false, sessionExpiry: 600)
            #expect(ack.sessionPresent)
            let got = try await back.publishes(expected: 6, acknowledge: true)
            #expect(got.count == 6)
        }
    }
}

/// Writes `count` Sensor records s0000… (with `padding` bytes of room name each) and waits until the
/// broker has seen their changes go by (so that they reach no later subscriber as live changes).
func writeSensors(_ store: Store, _ server: MQTTServer, count: Int, padding: Int = 0) async throws {
    let table = store.sensor
    let room = String(repeating: "r", count: padding)
    try await store.write { txn in
        for i in 0..<count {
            _ = try txn.put(
                table, id: .string(String(format: "s%04d", i)), body: ["room": .string(room), "temp": .double(Double(i))])
        }
    }
    _ = await server.broker.hub.perform { true }
}
