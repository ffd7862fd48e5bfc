import MicrolithJSON
import MicrolithMQTT
import MicrolithStore
import NIOCore
import Testing

@Suite("MQTTBroker over a real TCP connection")
struct MQTTBrokerTests {
    @Test("subscribing to Table/id delivers the record as retained, then every committed change")
    func tableTopicSubscription() async throws {
        try await withBroker { store, server in
            let table = store.sensor
            try await store.write { txn in _ = try txn.put(table, id: .string("s1"), body: ["room": .string("a"), "temp": .double(1)]) }
            let client = try await TestClient.connect(port: server.port)
            let ack = try await client.handshake(clientID: "c1")
            #expect(ack.properties.retainAvailable == 1)
            try await client.send(
                .subscribe(MQTTSubscribe(packetID: 1, subscriptions: [MQTTSubscription(topicFilter: "Sensor/s1", qos: .atLeastOnce)])))
            guard case .suback(let suback) = try await client.receive() else { throw CancellationError() }
            #expect(suback.reasonCodes == [1])
            let retained = try publishOf(try await client.receive())
            #expect(retained.retain)
            #expect(retained.topic == "Sensor/s1")
            #expect(
                try JSONParser.parse(retained.payload.readableBytesView) == .object(["id": .string("s1"), "room": .string("a"), "temp": .double(1)]))
            if let id = retained.packetID { try await client.send(.ack(MQTTAck(kind: .puback, packetID: id))) }
            try await store.write { txn in _ = try txn.delete(table, id: .string("s1")) }
            let deleted = try publishOf(try await client.receive())
            #expect(deleted.topic == "Sensor/s1")
            #expect(deleted.payload.readableBytes == 0)
            #expect(!deleted.retain)
            await client.close()
        }
    }

    @Test("a retained publish to Table/id writes the record, an empty one deletes it, a bad one is refused with 0x99")
    func publishWritesRecords() async throws {
        try await withBroker { store, server in
            let table = store.sensor
            let client = try await TestClient.connect(port: server.port)
            try await client.handshake(clientID: "writer")
            try await client.send(
                .publish(
                    MQTTPublish(topic: "Sensor/s9", payload: ByteBuffer(string: #"{"temp":21.5}"#), qos: .atLeastOnce, retain: true, packetID: 7)))
            guard case .ack(let ok) = try await client.receive() else { throw CancellationError() }
            #expect(ok.kind == .puback && ok.packetID == 7 && ok.reasonCode == 0)
            #expect(try await store.get(table, .string("s9"))?.record["temp"] == .double(21.5))

            // Schema violation (temp is required) and a payload that is not JSON: nothing stored.
            try await client.send(
                .publish(
                    MQTTPublish(topic: "Sensor/s10", payload: ByteBuffer(string: #"{"room":"x"}"#), qos: .atLeastOnce, retain: true, packetID: 8)))
            guard case .ack(let invalid) = try await client.receive() else { throw CancellationError() }
            #expect(invalid.reasonCode == 0x99)
            try await client.send(
                .publish(MQTTPublish(topic: "Sensor/s10", payload: ByteBuffer(string: "nope"), qos: .atLeastOnce, retain: true, packetID: 9)))
            guard case .ack(let notJSON) = try await client.receive() else { throw CancellationError() }
            #expect(notJSON.reasonCode == 0x99)
            #expect(try await store.get(table, .string("s10")) == nil)

            try await client.send(.publish(MQTTPublish(topic: "Sensor/s9", payload: ByteBuffer(), qos: .atLeastOnce, retain: true, packetID: 10)))
            guard case .ack(let gone) = try await client.receive() else { throw CancellationError() }
            #expect(gone.reasonCode == 0)
            #expect(try await store.get(table, .string("s9")) == nil)
            await client.close()
        }
    }

    @Test("plain topics: wildcards, QoS 1 acknowledgements, retained messages for later subscribers")
    func plainTopics() async throws {
        try await withBroker { _, server in
            let sub = try await TestClient.connect(port: server.port)
            try await sub.handshake(clientID: "sub")
            try await sub.send(
                .subscribe(MQTTSubscribe(packetID: 1, subscriptions: [MQTTSubscription(topicFilter: "home/+/temp", qos: .atLeastOnce)])))
            _ = try await sub.receive()
            let pub = try await TestClient.connect(port: server.port, version: .v3_1_1)
            try await pub.handshake(clientID: "pub")
            try await pub.send(
                .publish(MQTTPublish(topic: "home/kitchen/temp", payload: ByteBuffer(string: "21"), qos: .atLeastOnce, retain: true, packetID: 3)))
            guard case .ack(let ack) = try await pub.receive() else { throw CancellationError() }
            #expect(ack.packetID == 3)
            try await pub.send(.publish(MQTTPublish(topic: "home/kitchen/humidity", payload: ByteBuffer(string: "40"))))
            let got = try publishOf(try await sub.receive())
            #expect(got.topic == "home/kitchen/temp" && String(buffer: got.payload) == "21" && got.qos == .atLeastOnce)
            let later = try await TestClient.connect(port: server.port)
            try await later.handshake(clientID: "later")
            try await later.send(.subscribe(MQTTSubscribe(packetID: 1, subscriptions: [MQTTSubscription(topicFilter: "home/#", qos: .atMostOnce)])))
            _ = try await later.receive()
            let retained = try publishOf(try await later.receive())
            #expect(retained.retain && retained.topic == "home/kitchen/temp" && retained.qos == .atMostOnce)
            try await Task.sleep(for: .milliseconds(100))
            #expect(sub.pending.isEmpty)
        }
    }

    @Test("a malformed packet after CONNECT gets DISCONNECT 0x81 and a close; other clients carry on")
    func malformedPacket() async throws {
        try await withBroker { _, server in
            let bystander = try await TestClient.connect(port: server.port)
            try await bystander.handshake(clientID: "bystander")
            try await bystander.send(.subscribe(MQTTSubscribe(packetID: 1, subscriptions: [MQTTSubscription(topicFilter: "t", qos: .atMostOnce)])))
            _ = try await bystander.receive()
            let bad = try await TestClient.connect(port: server.port)
            try await bad.handshake(clientID: "bad")
            try await bad.sendRaw(ByteBuffer(bytes: [0x36, 0x02, 0x00, 0x01]))  // PUBLISH with QoS 3
            guard case .disconnect(let d) = try await bad.receive() else { throw CancellationError() }
            #expect(d.reasonCode == 0x81)
            #expect(try await bad.closed())
            let pub = try await TestClient.connect(port: server.port)
            try await pub.handshake(clientID: "pub")
            try await pub.send(.publish(MQTTPublish(topic: "t", payload: ByteBuffer(string: "still here"))))
            #expect(String(buffer: try publishOf(try await bystander.receive()).payload) == "still here")
        }
    }

    @Test("a client silent past 1.5 × its keep-alive is disconnected and its will published")
    func keepAliveAndWill() async throws {
        try await withBroker { _, server in
            let watcher = try await TestClient.connect(port: server.port)
            try await watcher.handshake(clientID: "watcher")
            try await watcher.send(
                .subscribe(MQTTSubscribe(packetID: 1, subscriptions: [MQTTSubscription(topicFilter: "wills/#", qos: .atMostOnce)])))
            _ = try await watcher.receive()
            let silent = try await TestClient.connect(port: server.port)
            let will = MQTTWill(
                topic: "wills/silent", payload: ByteBuffer(string: "gone"), qos: .atMostOnce, retain: false, properties: MQTTProperties())
            try await silent.send(
                .connect(
                    MQTTConnect(
                        version: .v5, clientID: "silent", cleanStart: true, keepAlive: 1, username: nil, password: nil, will: will,
                        properties: MQTTProperties())))
            _ = try await silent.receive()
            #expect(try await silent.closed(within: 4))
            #expect(String(buffer: try publishOf(try await watcher.receive()).payload) == "gone")
        }
    }

    @Test("a client asking for no keep-alive is held to mqtt.maxKeepAliveSeconds, told by the Server Keep Alive [MQTT-3.2.2-21]")
    func maximumKeepAlive() async throws {
        try await withBroker({ $0.maximumKeepAliveSeconds = 1 }) { _, server in
            let v5 = try await TestClient.connect(port: server.port)
            let ack = try await v5.handshake(clientID: "forever", keepAlive: 0)
            #expect(ack.properties.serverKeepAlive == 1)
            let v3 = try await TestClient.connect(port: server.port, version: .v3_1_1)
            try await v3.handshake(clientID: "forever-311", keepAlive: 0)
            #expect(try await v5.closed(within: 4), "a silent MQTT 5 client is closed after 1.5 × the server keep-alive")
            #expect(try await v3.closed(within: 4), "a silent MQTT 3.1.1 client too")
            let within = try await TestClient.connect(port: server.port)
            let fine = try await within.handshake(clientID: "short", keepAlive: 1)
            #expect(fine.properties.serverKeepAlive == nil, "a keep-alive within the maximum is the client's own")
        }
    }

    @Test("a persistent session gets the table changes and QoS 1 messages it missed while away")
    func persistentSessionReplay() async throws {
        try await withBroker { store, server in
            let table = store.sensor
            let first = try await TestClient.connect(port: server.port, version: .v3_1_1)
            try await first.handshake(clientID: "durable", cleanStart: false)
            try await first.send(
                .subscribe(
                    MQTTSubscribe(
                        packetID: 1,
                        subscriptions: [
                            MQTTSubscription(topicFilter: "Sensor/+", qos: .atLeastOnce), MQTTSubscription(topicFilter: "news", qos: .atLeastOnce),
                        ]
                    )))
            _ = try await first.receive()
            try await first.send(.disconnect(MQTTDisconnect(reasonCode: 0, properties: MQTTProperties())))
            #expect(try await first.closed())
            try await store.write { txn in _ = try txn.put(table, id: .string("s1"), body: ["temp": .double(5)]) }
            let pub = try await TestClient.connect(port: server.port)
            try await pub.handshake(clientID: "pub")
            try await pub.send(
                .publish(MQTTPublish(topic: "news", payload: ByteBuffer(string: "while you were out"), qos: .atLeastOnce, packetID: 2)))
            _ = try await pub.receive()
            let back = try await TestClient.connect(port: server.port, version: .v3_1_1)
            let ack = try await back.handshake(clientID: "durable", cleanStart: false)
            #expect(ack.sessionPresent)
            var topics: [String] = []
            for _ in 0..<2 {
                let p = try publishOf(try await back.receive())
                topics.append(p.topic)
                if let id = p.packetID { try await back.send(.ack(MQTTAck(kind: .puback, packetID: id))) }
            }
            #expect(topics.sorted() == ["Sensor/s1", "news"])
        }
    }
}
