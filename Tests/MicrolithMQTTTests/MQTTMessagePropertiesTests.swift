import MicrolithJSON
import MicrolithMQTT
import MicrolithStore
import NIOCore
import Testing

/// MQTT 5 delivery on a real broker: application-message properties forwarded unaltered, message
/// expiry honoured while a message waits, no-local subscriptions, the client's maximum packet size
/// (OASIS MQTT 5.0, statement numbers in the test names).
@Suite("MQTT 5 delivery: message properties, expiry, no-local, the client's maximum packet size")
struct MQTTMessagePropertiesTests {
    /// Every property a publisher may give a message for its subscribers, and a message expiry.
    static func applicationProperties(expiry: UInt32? = 60) -> MQTTProperties {
        var p = MQTTProperties()
        p.payloadFormatIndicator = 1
        p.contentType = "application/json"
        p.responseTopic = "replies/42"
        p.correlationData = ByteBuffer(bytes: [0, 1, 2, 0xFF])
        p.userProperties = [
            MQTTUserProperty(name: "a", value: "1"), MQTTUserProperty(name: "b", value: "2"), MQTTUserProperty(name: "a", value: "3"),
        ]
        p.messageExpiryInterval = expiry
        return p
    }

    /// `received` carries what `sent` gave the message, the expiry at most what was sent.
    static func expectForwarded(_ received: MQTTProperties, from sent: MQTTProperties, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(received.payloadFormatIndicator == sent.payloadFormatIndicator, sourceLocation: sourceLocation)
        #expect(received.contentType == sent.contentType, sourceLocation: sourceLocation)
        #expect(received.responseTopic == sent.responseTopic, sourceLocation: sourceLocation)
        #expect(received.correlationData == sent.correlationData, sourceLocation: sourceLocation)
        #expect(received.userProperties == sent.userProperties, "user properties in order, repeats kept", sourceLocation: sourceLocation)
        if let expiry = sent.messageExpiryInterval {
            #expect((1...expiry).contains(received.messageExpiryInterval ?? 0), sourceLocation: sourceLocation)
        } else {
            #expect(received.messageExpiryInterval == nil, sourceLocation: sourceLocation)
        }
    }

    @Test("PUBLISH properties reach MQTT 5 subscribers unaltered at QoS 0 and 1; MQTT 3.1.1 ones get the payload [MQTT-3.3.2-4, -15 to -18, -20]")
    func propertiesAreForwarded() async throws {
        try await withBroker { _, server in
            let v5 = try await TestClient.connect(port: server.port)
            try await v5.handshake(clientID: "v5")
            _ = try await v5.subscribe(["req/#"], qos: .atLeastOnce)
            let v3 = try await TestClient.connect(port: server.port, version: .v3_1_1)
            try await v3.handshake(clientID: "v3")
            _ = try await v3.subscribe(["req/#"], qos: .atLeastOnce)
            let publisher = try await TestClient.connect(port: server.port)
            try await publisher.handshake(clientID: "publisher")
            let sent = Self.applicationProperties()
            try await publisher.send(.publish(MQTTPublish(topic: "req/a", payload: ByteBuffer(string: "{}"), qos: .atMostOnce, properties: sent)))
            try await publisher.send(
                .publish(MQTTPublish(topic: "req/b", payload: ByteBuffer(string: "{}"), qos: .atLeastOnce, packetID: 1, properties: sent)))
            let received = try await v5.publishes(expected: 2, acknowledge: true)
            #expect(received.map(\.topic) == ["req/a", "req/b"])
            for p in received { Self.expectForwarded(p.properties, from: sent) }
            let old = try await v3.publishes(expected: 2, acknowledge: true)
            #expect(old.map(\.topic) == ["req/a", "req/b"])
            #expect(old.allSatisfy { $0.properties.isEmpty && String(buffer: $0.payload) == "{}" })
        }
    }

    @Test("a message queued for an absent session is dropped once its expiry passes, and sent with the time it has left [MQTT-3.3.2-5, -6]")
    func expiryWhileQueued() async throws {
        try await withBroker { _, server in
            let away = try await TestClient.connect(port: server.port)
            try await away.handshake(clientID: "away", cleanStart: true, sessionExpiry: 300)
            _ = try await away.subscribe(["exp/#"], qos: .atLeastOnce)
            try await away.send(.disconnect(MQTTDisconnect(reasonCode: 0, properties: MQTTProperties())))
            #expect(try await away.closed())
            let publisher = try await TestClient.connect(port: server.port)
            try await publisher.handshake(clientID: "publisher")
            try await publisher.send(
                .publish(
                    MQTTPublish(
                        topic: "exp/short", payload: ByteBuffer(string: "stale"), qos: .atLeastOnce, packetID: 1,
                        properties: Self.applicationProperties(expiry: 1))))
            try await publisher.send(
                .publish(
                    MQTTPublish(
                        topic: "exp/long", payload: ByteBuffer(string: "fresh"), qos: .atLeastOnce, packetID: 2,
                        properties: Self.applicationProperties(expiry: 100))))
            for _ in 0..<2 {
                guard case .ack(let ack) = try await publisher.receive() else {
                    Issue.record("expected PUBACK")
                    return
                }
                #expect(ack.kind == .puback)
            }
            try await Task.sleep(for: .milliseconds(2200))
            let back = try await TestClient.connect(port: server.port)
            let ack = try await back.handshake(clientID: "away", cleanStart: false, sessionExpiry: 300)
            #expect(ack.sessionPresent)
            let received = try await back.publishes(expected: 1, quiet: 1, acknowledge: true)
            #expect(received.map(\.topic) == ["exp/long"], "the expired message is not delivered")
            #expect((1...98).contains(received.first?.properties.messageExpiryInterval ?? 0), "100 s less the 2 s it waited")
        }
    }

    @Test("a retained message is sent with its properties until its expiry passes, then no longer [MQTT-3.3.2-5]")
    func retainedExpiry() async throws {
        try await withBroker { _, server in
            let publisher = try await TestClient.connect(port: server.port)
            try await publisher.handshake(clientID: "publisher")
            let lasting = Self.applicationProperties(expiry: nil)
            try await publisher.send(
                .publish(MQTTPublish(topic: "state/kept", payload: ByteBuffer(string: "on"), qos: .atMostOnce, retain: true, properties: lasting)))
            try await publisher.send(
                .publish(
                    MQTTPublish(
                        topic: "state/brief", payload: ByteBuffer(string: "soon gone"), qos: .atMostOnce, retain: true,
                        properties: Self.applicationProperties(expiry: 5))))
            // Long enough for a loaded machine to subscribe before it passes.
            let early = try await TestClient.connect(port: server.port)
            try await early.handshake(clientID: "early")
            _ = try await early.subscribe(["state/#"])
            let first = try await early.publishes(expected: 2)
            // The broker took the message before this subscriber got it: from here, 5 s is past its expiry.
            let received = ContinuousClock.now
            #expect(Set(first.map(\.topic)) == ["state/kept", "state/brief"])
            for p in first where p.topic == "state/kept" { Self.expectForwarded(p.properties, from: lasting) }
            try await Task.sleep(until: received + .milliseconds(5200))
            let late = try await TestClient.connect(port: server.port)
            try await late.handshake(clientID: "late")
            _ = try await late.subscribe(["state/#"])
            let second = try await late.publishes(expected: 1, quiet: 1)
            #expect(second.map(\.topic) == ["state/kept"])
            #expect(second.allSatisfy { $0.retain })
        }
    }

    @Test("no-local: a client's own messages do not come back on its no-local subscription; everyone else's do [MQTT-3.8.3-3]")
    func noLocal() async throws {
        try await withBroker { _, server in
            let a = try await TestClient.connect(port: server.port)
            try await a.handshake(clientID: "a")
            _ = try await a.subscribe([MQTTSubscription(topicFilter: "chat/#", qos: .atMostOnce, noLocal: true)])
            let b = try await TestClient.connect(port: server.port)
            try await b.handshake(clientID: "b")
            _ = try await b.subscribe([MQTTSubscription(topicFilter: "chat/#", qos: .atMostOnce, noLocal: true)])
            try await a.send(.publish(MQTTPublish(topic: "chat/room", payload: ByteBuffer(string: "from a"), qos: .atMostOnce)))
            try await b.send(.publish(MQTTPublish(topic: "chat/room", payload: ByteBuffer(string: "from b"), qos: .atMostOnce)))
            #expect(try await a.publishes(expected: 1).map { String(buffer: $0.payload) } == ["from b"])
            #expect(try await b.publishes(expected: 1).map { String(buffer: $0.payload) } == ["from a"])
            // Another subscription of the same client without no-local still gets its own messages, once.
            _ = try await a.subscribe([MQTTSubscription(topicFilter: "chat/+", qos: .atMostOnce)], packetID: 2)
            try await a.send(.publish(MQTTPublish(topic: "chat/room", payload: ByteBuffer(string: "echo"), qos: .atMostOnce)))
            #expect(try await a.publishes(expected: 1).map { String(buffer: $0.payload) } == ["echo"])
        }
    }

    @Test("a will message carries the will's properties, not its will delay (§3.1.3.2)")
    func willProperties() async throws {
        try await withBroker { _, server in
            let watcher = try await TestClient.connect(port: server.port)
            try await watcher.handshake(clientID: "watcher")
            _ = try await watcher.subscribe(["wills/#"])
            var properties = Self.applicationProperties()
            properties.willDelayInterval = 0
            let will = MQTTWill(topic: "wills/w", payload: ByteBuffer(string: "gone"), qos: .atMostOnce, retain: false, properties: properties)
            let dying = try await TestClient.connect(port: server.port)
            try await dying.send(
                .connect(
                    MQTTConnect(
                        version: .v5, clientID: "dying", cleanStart: true, keepAlive: 60, username: nil, password: nil, will: will,
                        properties: MQTTProperties())))
            _ = try await dying.receive()
            await dying.close()
            let received = try await watcher.publishes(expected: 1)
            #expect(received.map { String(buffer: $0.payload) } == ["gone"])
            if let p = received.first {
                Self.expectForwarded(p.properties, from: properties)
                #expect(p.properties.willDelayInterval == nil)
            }
        }
    }

    @Test("a PUBLISH over the client's Maximum Packet Size is not sent and counts as delivered; smaller ones flow [MQTT-3.1.2-24, -25]")
    func clientMaximumPacketSize() async throws {
        try await withBroker { _, server in
            let small = try await TestClient.connect(port: server.port)
            try await small.handshake(clientID: "small") { $0.maximumPacketSize = 256 }
            _ = try await small.subscribe(["big/#"], qos: .atLeastOnce)
            let publisher = try await TestClient.connect(port: server.port)
            try await publisher.handshake(clientID: "publisher")
            let large = ByteBuffer(repeating: UInt8(ascii: "x"), count: 1000)
            // More large QoS 1 messages than the in-flight window (100): dropped ones must not hold slots.
            for i in 0..<150 {
                try await publisher.send(
                    .publish(
                        MQTTPublish(
                            topic: "big/\(i % 2)", payload: large, qos: i % 3 == 0 ? .atMostOnce : .atLeastOnce,
                            packetID: i % 3 == 0 ? nil : UInt16(i + 1))))
            }
            try await publisher.send(.publish(MQTTPublish(topic: "big/last", payload: ByteBuffer(string: "fits"), qos: .atLeastOnce, packetID: 999)))
            let received = try await small.publishes(expected: 1, quiet: 0.5, acknowledge: true)
            #expect(received.map(\.topic) == ["big/last"])
            #expect(try await !small.closed(within: 0.2), "the client stays connected")
        }
    }

    /// SUBSCRIBE to `filters` with subscription identifier `identifier` (none when `nil`).
    static func subscribe(_ client: TestClient, _ filters: [String], identifier: Int?, packetID: UInt16) async throws {
        var properties = MQTTProperties()
        if let identifier { properties.subscriptionIdentifiers = [identifier] }
        try await client.send(
            .subscribe(
                MQTTSubscribe(
                    packetID: packetID, subscriptions: filters.map { MQTTSubscription(topicFilter: $0, qos: .atLeastOnce) },
                    properties: properties)))
        guard case .suback(let ack) = try await client.receive() else {
            Issue.record("expected SUBACK")
            throw CancellationError()
        }
        #expect(ack.reasonCodes.allSatisfy { $0 == 1 })
    }

    @Test("one copy per message carries the subscription identifiers of every matching subscription [MQTT-3.3.4-3, -4]")
    func subscriptionIdentifiers() async throws {
        try await withBroker { store, server in
            let client = try await TestClient.connect(port: server.port)
            let ack = try await client.handshake(clientID: "ids")
            #expect(ack.properties.subscriptionIdentifiersAvailable != 0, "CONNACK does not say identifiers are unavailable")
            try await Self.subscribe(client, ["ids/+"], identifier: 7, packetID: 1)
            try await Self.subscribe(client, ["ids/#"], identifier: 9, packetID: 2)
            try await Self.subscribe(client, ["ids/x"], identifier: nil, packetID: 3)
            let publisher = try await TestClient.connect(port: server.port)
            try await publisher.handshake(clientID: "publisher")
            try await publisher.send(.publish(MQTTPublish(topic: "ids/x", payload: ByteBuffer(string: "1"), qos: .atMostOnce)))
            try await publisher.send(.publish(MQTTPublish(topic: "ids/y/z", payload: ByteBuffer(string: "2"), qos: .atMostOnce)))
            let live = try await client.publishes(expected: 2, acknowledge: true)
            #expect(live.map(\.topic) == ["ids/x", "ids/y/z"], "one copy each")
            #expect(live.map { Set($0.properties.subscriptionIdentifiers) } == [[7, 9], [9]])

            // A retained message and table records sent on SUBSCRIBE carry the identifier of the filter
            // that matched; a later change on a table topic too.
            try await publisher.send(
                .publish(MQTTPublish(topic: "kept/a", payload: ByteBuffer(string: "r"), qos: .atMostOnce, retain: true)))
            try await store.write { txn in _ = try txn.put(store.sensor, id: .string("s1"), body: ["temp": .double(1)]) }
            try await Self.subscribe(client, ["kept/#", "Sensor/+"], identifier: 11, packetID: 4)
            let retained = try await client.publishes(expected: 2, acknowledge: true)
            #expect(Set(retained.map(\.topic)) == ["kept/a", "Sensor/s1"])
            #expect(retained.allSatisfy { $0.properties.subscriptionIdentifiers == [11] })
            try await store.write { txn in _ = try txn.put(store.sensor, id: .string("s1"), body: ["temp": .double(2)]) }
            let change = try await client.publishes(expected: 1, acknowledge: true)
            #expect(change.map(\.properties.subscriptionIdentifiers) == [[11]])

            // Subscribing again without an identifier takes it away.
            try await Self.subscribe(client, ["ids/#"], identifier: nil, packetID: 5)
            try await publisher.send(.publish(MQTTPublish(topic: "ids/y/z", payload: ByteBuffer(string: "3"), qos: .atMostOnce)))
            let after = try await client.publishes(expected: 1, acknowledge: true)
            #expect(after.map(\.properties.subscriptionIdentifiers) == [[]])
        }
    }

    @Test(
        "topic aliases: a topic with an alias sets it, an empty topic uses it, subscribers see the topic; a bad alias ends the connection [MQTT-3.3.2-7, -12]"
    )
    func topicAliases() async throws {
        try await withBroker { _, server in
            let watcher = try await TestClient.connect(port: server.port)
            try await watcher.handshake(clientID: "watcher")
            _ = try await watcher.subscribe(["aliased/#"])
            let client = try await TestClient.connect(port: server.port)
            let ack = try await client.handshake(clientID: "aliasing")
            let maximum = try #require(ack.properties.topicAliasMaximum)
            #expect(maximum > 0)
            var set = MQTTProperties()
            set.topicAlias = 3
            try await client.send(.publish(MQTTPublish(topic: "aliased/a", payload: ByteBuffer(string: "1"), properties: set)))
            try await client.send(.publish(MQTTPublish(topic: "", payload: ByteBuffer(string: "2"), properties: set)))
            try await client.send(.publish(MQTTPublish(topic: "aliased/b", payload: ByteBuffer(string: "3"), properties: set)))
            try await client.send(.publish(MQTTPublish(topic: "", payload: ByteBuffer(string: "4"), properties: set)))
            let received = try await watcher.publishes(expected: 4)
            #expect(received.map(\.topic) == ["aliased/a", "aliased/a", "aliased/b", "aliased/b"])
            #expect(received.map { String(buffer: $0.payload) } == ["1", "2", "3", "4"])
            #expect(received.allSatisfy { $0.properties.topicAlias == nil })

            // A new connection does not inherit the aliases of the last one [MQTT-3.3.2-7]: using one
            // that was never set on it is a protocol error.
            await client.close()
            let again = try await TestClient.connect(port: server.port)
            try await again.handshake(clientID: "aliasing")
            try await again.send(.publish(MQTTPublish(topic: "", payload: ByteBuffer(string: "?"), properties: set)))
            guard case .disconnect(let first) = try await again.receive() else {
                Issue.record("expected DISCONNECT")
                return
            }
            #expect(first.reasonCode == 0x82)
            #expect(try await again.closed())

            // An alias above the maximum: Topic Alias invalid.
            let third = try await TestClient.connect(port: server.port)
            try await third.handshake(clientID: "aliasing")
            var above = MQTTProperties()
            above.topicAlias = maximum + 1
            try await third.send(.publish(MQTTPublish(topic: "aliased/c", payload: ByteBuffer(string: "x"), properties: above)))
            guard case .disconnect(let second) = try await third.receive() else {
                Issue.record("expected DISCONNECT")
                return
            }
            #expect(second.reasonCode == 0x94)
            #expect(try await watcher.publishes().isEmpty)
        }
    }

    @Test("shared subscriptions: each message goes to one member of the group, in turn; no retained messages on subscribing (§4.8.2)")
    func sharedSubscriptions() async throws {
        try await withBroker { _, server in
            let publisher = try await TestClient.connect(port: server.port)
            try await publisher.handshake(clientID: "publisher")
            try await publisher.send(.publish(MQTTPublish(topic: "jobs/old", payload: ByteBuffer(string: "kept"), retain: true)))
            var members: [TestClient] = []
            for name in ["w1", "w2", "w3"] {
                let member = try await TestClient.connect(port: server.port)
                try await member.handshake(clientID: name)
                #expect(try await member.subscribe(["$share/workers/jobs/+"], qos: .atLeastOnce) == [1])
                members.append(member)
            }
            let plain = try await TestClient.connect(port: server.port)
            try await plain.handshake(clientID: "plain")
            _ = try await plain.subscribe(["jobs/+"])
            #expect(try await plain.publishes(expected: 1).map(\.topic) == ["jobs/old"], "a plain subscription gets the retained message")
            for i in 0..<9 {
                try await publisher.send(.publish(MQTTPublish(topic: "jobs/\(i)", payload: ByteBuffer(string: "\(i)"), qos: .atMostOnce)))
            }
            var counts: [Int] = []
            var topics: [String] = []
            for member in members {
                let got = try await member.publishes(acknowledge: true)
                counts.append(got.count)
                topics += got.map(\.topic)
            }
            #expect(counts == [3, 3, 3], "one member per message, in turn")
            #expect(Set(topics) == Set((0..<9).map { "jobs/\($0)" }), "every message delivered once, none retained")
            #expect(try await plain.publishes(expected: 9).count == 9, "other subscribers are not affected")

            // A member that goes away is passed over; the group ends with its last member.
            try await members[0].send(.unsubscribe(MQTTUnsubscribe(packetID: 9, topicFilters: ["$share/workers/jobs/+"])))
            _ = try await members[0].receive()
            await members[1].close()
            try await Task.sleep(for: .milliseconds(200))
            try await publisher.send(.publish(MQTTPublish(topic: "jobs/x", payload: ByteBuffer(string: "x"), qos: .atMostOnce)))
            #expect(try await members[2].publishes(expected: 1).map(\.topic) == ["jobs/x"])
            #expect(try await members[0].publishes().isEmpty)

            // No Local on a shared subscription is a protocol error [MQTT-3.8.3-4]; a bad share name is refused.
            #expect(try await members[2].subscribe([MQTTSubscription(topicFilter: "$share/a+b/jobs/#")], packetID: 3) == [0x8F])
            try await members[2].send(
                .subscribe(MQTTSubscribe(packetID: 4, subscriptions: [MQTTSubscription(topicFilter: "$share/g/jobs/#", noLocal: true)])))
            guard case .disconnect(let refusal) = try await members[2].receive() else {
                Issue.record("expected DISCONNECT")
                return
            }
            #expect(refusal.reasonCode == 0x82)
        }
    }
}
