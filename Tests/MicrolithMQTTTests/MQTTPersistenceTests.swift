import Foundation
import MicrolithJSON
import MicrolithStore
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import MicrolithMQTT

/// Sessions that outlive their connection, the QoS 1 and 2 messages owed to them and plain retained
/// messages, kept in the store across a restart of the broker (MQTT 5 §4.1: the session state lasts
/// for its expiry interval, whatever happens to the server process).
@Suite("MQTT persistence")
struct MQTTPersistenceTests {
    /// A QoS 1 publish to the publisher.
    private func publish(
        _ client: TestClient, _ topic: String, _ payload: String, id: UInt16, retain: Bool = false, properties: MQTTProperties = .init()
    ) async throws {
        try await client.send(
            .publish(
                MQTTPublish(
                    topic: topic, payload: ByteBuffer(string: payload), qos: .atLeastOnce, retain: retain, packetID: id, properties: properties)))
        guard case .ack(let ack) = try await client.receive() else {
            Issue.record("expected PUBACK")
            throw CancellationError()
        }
        #expect(ack.kind == .puback && ack.packetID == id && ack.reasonCode == 0)
    }

    /// Waits until the broker has handled every packet the client sent before (it answers in order
    /// while none of the client's publishes waits to be stored).
    private func ping(_ client: TestClient) async throws {
        try await client.send(.pingreq)
        guard case .pingresp = try await client.receive() else { throw CancellationError() }
    }

    /// The properties and the subscription identifier are kept with the message.
    @Test("a QoS 1 message acknowledged to its publisher is in the store: a broker opened after a crash sends it [MQTT-4.1.0-1]")
    func aMessageAcknowledgedToItsPublisherSurvivesACrash() async throws {
        try await withTemporaryDirectory { directory in
            try await withBroker(in: directory) { _, server in
                let subscriber = try await TestClient.connect(port: server.port)
                try await subscriber.handshake(clientID: "keeper", sessionExpiry: 3600)
                var properties = MQTTProperties()
                properties.subscriptionIdentifiers = [7]
                let subscription = MQTTSubscription(topicFilter: "news/#", qos: .atLeastOnce)
                try await subscriber.send(.subscribe(MQTTSubscribe(packetID: 1, subscriptions: [subscription], properties: properties)))
                guard case .suback = try await subscriber.receive() else { throw CancellationError() }
                await subscriber.close()
                #expect(try await subscriber.closed())

                let publisher = try await TestClient.connect(port: server.port)
                try await publisher.handshake(clientID: "publisher")
                var tagged = MQTTProperties()
                tagged.userProperties = [MQTTUserProperty(name: "source", value: "wire")]
                tagged.contentType = "text/plain"
                tagged.messageExpiryInterval = 3600
                try await publish(publisher, "news/1", "m1", id: 1)
                try await publish(publisher, "news/2", "m2", id: 2, properties: tagged)
                try await publish(publisher, "news/3", "m3", id: 3)

                // The crash: this broker never stops; a second one opens the same files and finds
                // what was committed before each PUBACK.
                try await withBroker(in: directory) { _, second in
                    let back = try await TestClient.connect(port: second.port)
                    let ack = try await back.handshake(clientID: "keeper", cleanStart: false, sessionExpiry: 3600)
                    #expect(ack.sessionPresent)
                    let got = try await back.publishes(expected: 3, acknowledge: true)
                    #expect(got.map { String(buffer: $0.payload) } == ["m1", "m2", "m3"])
                    #expect(got.allSatisfy { $0.qos == .atLeastOnce && $0.properties.subscriptionIdentifiers == [7] })
                    #expect(got.count == 3 && got[1].properties.userProperties == tagged.userProperties)
                    #expect(got.count == 3 && got[1].properties.contentType == "text/plain")
                    #expect((got.count == 3 ? got[1].properties.messageExpiryInterval ?? 0 : 0) > 3500)
                    // The subscription itself came back too.
                    let live = try await TestClient.connect(port: second.port)
                    try await live.handshake(clientID: "publisher-2")
                    try await publish(live, "news/4", "m4", id: 1)
                    let more = try await back.publishes(expected: 1, acknowledge: true)
                    #expect(more.map { String(buffer: $0.payload) } == ["m4"])
                    #expect(more.first?.properties.subscriptionIdentifiers == [7])
                }
            }
        }
    }

    @Test("messages the client acknowledged are not sent again after a restart")
    func acknowledgedMessagesAreNotSentAgain() async throws {
        try await withTemporaryDirectory { directory in
            try await withBroker(in: directory) { _, server in
                let subscriber = try await TestClient.connect(port: server.port)
                try await subscriber.handshake(clientID: "reader", sessionExpiry: 3600)
                _ = try await subscriber.subscribe(["jobs/+"], qos: .atLeastOnce)
                let publisher = try await TestClient.connect(port: server.port)
                try await publisher.handshake(clientID: "publisher")
                try await publish(publisher, "jobs/a", "a", id: 1)
                try await publish(publisher, "jobs/b", "b", id: 2)
                let got = try await subscriber.publishes(expected: 2, acknowledge: true)
                #expect(got.count == 2)
                try await ping(subscriber)
                await subscriber.close()
                #expect(try await subscriber.closed())
                // The one sent while it was away is owed.
                try await publish(publisher, "jobs/c", "c", id: 3)
            }
            try await withBroker(in: directory) { _, server in
                let back = try await TestClient.connect(port: server.port)
                let ack = try await back.handshake(clientID: "reader", cleanStart: false, sessionExpiry: 3600)
                #expect(ack.sessionPresent)
                let got = try await back.publishes(expected: 1, acknowledge: true)
                #expect(got.map { String(buffer: $0.payload) } == ["c"])
            }
        }
    }

    @Test("retained messages of plain topics survive a restart; an empty retained publish removes one for good [MQTT-3.3.1-6, -10]")
    func retainedMessagesSurviveARestart() async throws {
        try await withTemporaryDirectory { directory in
            try await withBroker(in: directory) { _, server in
                let publisher = try await TestClient.connect(port: server.port)
                try await publisher.handshake(clientID: "publisher")
                try await publish(publisher, "config/a", "1", id: 1, retain: true)
                try await publish(publisher, "config/b", "2", id: 2, retain: true)
                try await publish(publisher, "config/b", "", id: 3, retain: true)
                try await publish(publisher, "config/a", "3", id: 4, retain: true)
            }
            try await withBroker(in: directory) { _, server in
                let subscriber = try await TestClient.connect(port: server.port)
                try await subscriber.handshake(clientID: "late")
                _ = try await subscriber.subscribe(["config/#"], qos: .atLeastOnce)
                let got = try await subscriber.publishes(expected: 1, acknowledge: true)
                #expect(got.map { "\($0.topic)=\(String(buffer: $0.payload))" } == ["config/a=3"])
                #expect(got.first?.retain == true)
            }
        }
    }

    @Test("a session whose expiry passed while the broker was down is gone; one within it is back [MQTT-3.1.2-23]")
    func aSessionExpiredWhileTheBrokerWasDownIsGone() async throws {
        try await withTemporaryDirectory { directory in
            try await withBroker(in: directory) { _, server in
                for (id, expiry) in [("short", UInt32(60)), ("long", UInt32(7200))] {
                    let client = try await TestClient.connect(port: server.port)
                    try await client.handshake(clientID: id, sessionExpiry: expiry)
                    _ = try await client.subscribe(["x"], qos: .atLeastOnce)
                    await client.close()
                    #expect(try await client.closed())
                }
            }
            // Two minutes later.
            try await withBroker(in: directory, wallClock: { HybridLogicalClock.systemMilliseconds() + 120_000 }) { _, server in
                let short = try await TestClient.connect(port: server.port)
                #expect(try await short.handshake(clientID: "short", cleanStart: false, sessionExpiry: 60).sessionPresent == false)
                let long = try await TestClient.connect(port: server.port)
                #expect(try await long.handshake(clientID: "long", cleanStart: false, sessionExpiry: 7200).sessionPresent == true)
            }
        }
    }

    @Test("a session the client ended (clean start, no expiry) is not kept across a restart")
    func aSessionEndedByItsClientIsNotKept() async throws {
        try await withTemporaryDirectory { directory in
            try await withBroker(in: directory) { _, server in
                let first = try await TestClient.connect(port: server.port)
                try await first.handshake(clientID: "again", sessionExpiry: 3600)
                _ = try await first.subscribe(["y"], qos: .atLeastOnce)
                await first.close()
                #expect(try await first.closed())
                let second = try await TestClient.connect(port: server.port)
                try await second.handshake(clientID: "again", cleanStart: true, sessionExpiry: 0)
                await second.close()
                #expect(try await second.closed())
                let publisher = try await TestClient.connect(port: server.port)
                try await publisher.handshake(clientID: "publisher")
                try await publish(publisher, "y", "lost", id: 1)
            }
            try await withBroker(in: directory) { _, server in
                let back = try await TestClient.connect(port: server.port)
                #expect(try await back.handshake(clientID: "again", cleanStart: false, sessionExpiry: 3600).sessionPresent == false)
                #expect(try await back.publishes(expected: 0).isEmpty)
            }
        }
    }

    @Test("a session connected when the broker crashed counts as away from the restart on: its expiry runs out across further restarts")
    func aSessionConnectedAtACrashExpiresAcrossRestarts() async throws {
        try await withTemporaryDirectory { directory in
            try await withBroker(in: directory) { _, server in
                let client = try await TestClient.connect(port: server.port)
                try await client.handshake(clientID: "present", sessionExpiry: 60)
                _ = try await client.subscribe(["z"], qos: .atLeastOnce)
                // The crash: the client is still connected (its row says so) while the next broker
                // opens the files, and the one after, two minutes later; the first never writes again
                // before that.
                try await withBroker(in: directory) { _, _ in }
                try await withBroker(in: directory, wallClock: { HybridLogicalClock.systemMilliseconds() + 120_000 }) { _, later in
                    let back = try await TestClient.connect(port: later.port)
                    #expect(try await back.handshake(clientID: "present", cleanStart: false, sessionExpiry: 60).sessionPresent == false)
                }
            }
        }
    }

    @Test("after a crash, a session connected then is replayed the table changes it had not acknowledged, not those it had")
    func tableChangesReplayFromWhatWasAcknowledged() async throws {
        try await withTemporaryDirectory { directory in
            try await withBroker(in: directory) { store, server in
                let table = store.sensor
                let client = try await TestClient.connect(port: server.port)
                try await client.handshake(clientID: "watcher", sessionExpiry: 3600)
                _ = try await client.subscribe(["Sensor/+"], qos: .atLeastOnce)
                // The records as they are when the subscription starts come in the background: one
                // read after the write of `a` is a second, retained, copy of it. Every copy of `a`
                // is acknowledged; `b` is not.
                func next(_ topic: String) async throws -> MQTTPublish {
                    while true {
                        let publish = try publishOf(try await client.receive())
                        if publish.topic == topic, !publish.retain { return publish }
                        #expect(publish.topic == "Sensor/a")
                        try await client.send(.ack(MQTTAck(kind: .puback, packetID: publish.packetID ?? 0)))
                    }
                }
                try await store.write { txn in _ = try txn.put(table, id: .string("a"), body: ["temp": .double(1)]) }
                let first = try await next("Sensor/a")
                try await client.send(.ack(MQTTAck(kind: .puback, packetID: first.packetID ?? 0)))
                try await store.write { txn in _ = try txn.put(table, id: .string("b"), body: ["temp": .double(2)]) }
                let second = try await next("Sensor/b")
                #expect(second.topic == "Sensor/b")  // and never acknowledged
                // The broker writes where a replay would start every half second.
                try await Task.sleep(for: .seconds(1.5))
                try await withBroker(in: directory) { _, later in
                    let back = try await TestClient.connect(port: later.port)
                    #expect(try await back.handshake(clientID: "watcher", cleanStart: false, sessionExpiry: 3600).sessionPresent)
                    let replayed = try await back.publishes(expected: 1, acknowledge: true)
                    #expect(replayed.map(\.topic) == ["Sensor/b"])
                }
            }
        }
    }

    @Test("a client gone before its CONNECT is answered leaves no session holding a dead connection")
    func aClientGoneBeforeItsConnackLeavesNoSession() async throws {
        try await withBroker({ $0.maximumSessions = 1 }) { _, server in
            let vanishing = VirtualTransport()
            try await vanishing.connect(to: server.broker)
            try await vanishing.receiveAndVanish(connectPacket(clientID: "vanishing"))
            await vanishing.settle()
            let next = try await TestClient.connect(port: server.port)
            #expect(try await next.connect(clientID: "next", username: nil, password: nil).reasonCode == 0)
        }
    }

    @Test("the stored forms of roles, subscriptions and positions read back as written; cut-short bytes read as nothing")
    func storedListsRoundTrip() throws {
        typealias Coding = MQTTPersistence.Coding
        let subscriptions = [
            MQTTSubscription(
                topicFilter: "a/+", qos: .exactlyOnce, noLocal: true, retainAsPublished: true, retainHandling: 2, identifier: 268_435_455),
            MQTTSubscription(topicFilter: "ü/#", qos: .atMostOnce),
        ]
        let bytes = Coding.subscriptions(subscriptions)
        #expect(Coding.readSubscriptions(Data(bytes.readableBytesView)) == subscriptions)
        #expect(Coding.readSubscriptions(Data(bytes.readableBytesView.dropLast())) == nil)
        #expect(Coding.readStrings(Data(Coding.strings(["admin", "", "ü"]).readableBytesView)) == ["admin", "", "ü"])
        #expect(Coding.readPositions(Data(Coding.positions(["main": 42, "b": -1]).readableBytesView)) == ["main": 42, "b": -1])
        #expect(Coding.readStrings(nil) == nil)
        #expect(Coding.readPositions(Data([0, 0, 0, 1])) == nil)
    }

    @Test("past mqtt.maxSessions a new session is refused: CONNACK 0x97 Quota exceeded (MQTT 5), 0x03 Server unavailable (3.1.1)")
    func sessionsPastTheLimitAreRefused() async throws {
        try await withBroker({ $0.maximumSessions = 1 }) { _, server in
            let first = try await TestClient.connect(port: server.port)
            try await first.handshake(clientID: "one", sessionExpiry: 3600)
            for version in [MQTTProtocolVersion.v5, .v3_1_1] {
                let other = try await TestClient.connect(port: server.port, version: version)
                let ack = try await other.connect(clientID: "two", username: nil, password: nil)
                #expect(ack.reasonCode == (version == .v5 ? 0x97 : 0x03))
                #expect(try await other.closed())
            }
            // The holder of the session may come back.
            let again = try await TestClient.connect(port: server.port)
            #expect(try await again.connect(clientID: "one", username: nil, password: nil, cleanStart: false, sessionExpiry: 3600).reasonCode == 0)
        }
    }

    @Test("a message stored and acknowledged within one batch writes no row; other rows, and deletes of earlier batches' rows, are kept")
    func aBatchDropsTheMessagesAcknowledgedWithinIt() {
        func message(_ id: Int64) -> MQTTPersistence.Operation {
            .insertMessage(
                clientID: "c",
                MQTTPersistence.MessageRow(
                    id: id, topic: "t", payload: ByteBuffer(), qos: .atLeastOnce, retain: false, properties: nil, expiresAt: nil, identifiers: []))
        }
        func describe(_ operations: [MQTTPersistence.Operation]) -> [String] {
            operations.map { operation in
                switch operation {
                case .insertMessage(_, let m): return "insert \(m.id)"
                case .deleteMessages(let ids): return "delete \(ids.map(String.init).joined(separator: ","))"
                case .removeSession(let id): return "remove \(id)"
                case .saveSession(let row): return "save \(row.clientID)"
                case .retain(let topic, _): return "retain \(topic)"
                case .inflight(let id, let packetID, let released): return "inflight \(id) \(packetID) \(released)"
                case .received(let clientID, let packetIDs): return "received \(clientID) \(packetIDs)"
                }
            }
        }
        let batch: [MQTTPersistence.Operation] = [
            .deleteMessages([3]), message(1), message(2), message(3), .deleteMessages([1, 7]), .removeSession("gone"), .deleteMessages([2]),
        ]
        // 1 and 2 were stored and acknowledged here; 7 was stored before; 3 is deleted before its (second) insert.
        #expect(describe(MQTTPersistence.coalesced(batch)) == ["delete 3", "insert 3", "delete 7", "remove gone"])
        #expect(describe(MQTTPersistence.coalesced([message(4)])) == ["insert 4"])
    }

    @Test("publishes sent back to back are acknowledged in their order [MQTT-4.6.0-2] while their messages are stored, and all are kept")
    func backToBackPublishesAreAcknowledgedInOrderAndKept() async throws {
        try await withTemporaryDirectory { directory in
            try await withBroker(in: directory) { _, server in
                let subscriber = try await TestClient.connect(port: server.port)
                try await subscriber.handshake(clientID: "keeper", sessionExpiry: 3600)
                _ = try await subscriber.subscribe(["stream/kept"], qos: .atLeastOnce)
                await subscriber.close()
                #expect(try await subscriber.closed())

                let publisher = try await TestClient.connect(port: server.port)
                try await publisher.handshake(clientID: "publisher")
                // Every fifth goes to a topic no session keeps: acknowledged at once, but still in its place.
                let ids = (1...300).map { UInt16($0) }
                for id in ids {
                    let topic = id % 5 == 0 ? "stream/unkept" : "stream/kept"
                    try await publisher.send(
                        .publish(MQTTPublish(topic: topic, payload: ByteBuffer(string: "m\(id)"), qos: .atLeastOnce, packetID: id)))
                }
                var acknowledged: [UInt16] = []
                while acknowledged.count < ids.count {
                    guard case .ack(let ack) = try await publisher.receive(within: 20) else { throw CancellationError() }
                    #expect(ack.kind == .puback && ack.reasonCode == 0)
                    acknowledged.append(ack.packetID)
                }
                #expect(acknowledged == ids)
            }
            // The crash: a broker opened on the same files sends every kept message, in order.
            try await withBroker(in: directory) { _, later in
                let back = try await TestClient.connect(port: later.port)
                #expect(try await back.handshake(clientID: "keeper", cleanStart: false, sessionExpiry: 3600).sessionPresent)
                let delivered = try await back.publishes(expected: 240, acknowledge: true)
                #expect(delivered.map { String(buffer: $0.payload) } == (1...300).filter { $0 % 5 != 0 }.map { "m\($0)" })
            }
        }
    }

    @Test("a QoS 2 publish repeated while its PUBREC waits for the store is not handed on again [MQTT-4.3.3-9]; both get their PUBREC in order")
    func aRepeatedQoS2PublishWaitingForItsPUBRECIsDeliveredOnce() async throws {
        try await withTemporaryDirectory { directory in
            try await withBroker(in: directory) { _, server in
                let subscriber = try await TestClient.connect(port: server.port)
                try await subscriber.handshake(clientID: "keeper", sessionExpiry: 3600)
                _ = try await subscriber.subscribe(["dup/t"], qos: .exactlyOnce)
                await subscriber.close()
                #expect(try await subscriber.closed())

                let publisher = try await TestClient.connect(port: server.port)
                try await publisher.handshake(clientID: "publisher")
                // The publish and its repetition in one write: the second is read while the first waits.
                var bytes = ByteBuffer()
                for dup in [false, true] {
                    MQTTPacket.publish(
                        MQTTPublish(topic: "dup/t", payload: ByteBuffer(string: "once"), qos: .exactlyOnce, dup: dup, packetID: 9)
                    ).encode(version: .v5, into: &bytes)
                }
                try await publisher.sendRaw(bytes)
                for _ in 0..<2 {
                    guard case .ack(let ack) = try await publisher.receive() else { throw CancellationError() }
                    #expect(ack.kind == .pubrec && ack.packetID == 9 && ack.reasonCode == 0)
                }
                try await publisher.send(.ack(MQTTAck(kind: .pubrel, packetID: 9)))
                guard case .ack(let complete) = try await publisher.receive() else { throw CancellationError() }
                #expect(complete.kind == .pubcomp && complete.packetID == 9)

                let back = try await TestClient.connect(port: server.port)
                #expect(try await back.handshake(clientID: "keeper", cleanStart: false, sessionExpiry: 3600).sessionPresent)
                let delivered = try await back.publishes(expected: 1, quiet: 1)
                #expect(delivered.map { String(buffer: $0.payload) } == ["once"])
            }
        }
    }

    @Test(
        "after a crash, a QoS 2 message in flight keeps its packet id: the client gets its PUBLISH again with DUP, or its PUBREL once it had received it [MQTT-4.4.0-1]"
    )
    func qos2InFlightSurvivesACrashWithItsPacketID() async throws {
        try await withTemporaryDirectory { directory in
            try await withBroker(in: directory) { _, server in
                let subscriber = try await TestClient.connect(port: server.port)
                try await subscriber.handshake(clientID: "exact", sessionExpiry: 3600)
                _ = try await subscriber.subscribe(["exact/#"], qos: .exactlyOnce)
                let publisher = try await TestClient.connect(port: server.port)
                try await publisher.handshake(clientID: "publisher")
                for (id, text) in [(UInt16(1), "first"), (2, "second")] {
                    try await publisher.send(
                        .publish(MQTTPublish(topic: "exact/\(text)", payload: ByteBuffer(string: text), qos: .exactlyOnce, packetID: id)))
                    guard case .ack(let received) = try await publisher.receive(), received.kind == .pubrec else { throw CancellationError() }
                    try await publisher.send(.ack(MQTTAck(kind: .pubrel, packetID: id)))
                    guard case .ack(let complete) = try await publisher.receive(), complete.kind == .pubcomp else { throw CancellationError() }
                }
                let first = try publishOf(try await subscriber.receive())
                let second = try publishOf(try await subscriber.receive())
                #expect([first.topic, second.topic] == ["exact/first", "exact/second"])
                // The first is received (PUBREC, and the broker's PUBREL comes); neither is completed.
                try await subscriber.send(.ack(MQTTAck(kind: .pubrec, packetID: first.packetID ?? 0)))
                guard case .ack(let release) = try await subscriber.receive(), release.kind == .pubrel else { throw CancellationError() }
                #expect(release.packetID == first.packetID)
                try await Task.sleep(for: .seconds(1))
                // The crash: a broker opened on the same files while this one still runs.
                try await withBroker(in: directory) { _, later in
                    let back = try await TestClient.connect(port: later.port)
                    #expect(try await back.handshake(clientID: "exact", cleanStart: false, sessionExpiry: 3600).sessionPresent)
                    guard case .ack(let again) = try await back.receive() else { throw CancellationError() }
                    #expect(again.kind == .pubrel && again.packetID == first.packetID)
                    let resent = try publishOf(try await back.receive())
                    #expect(resent.topic == "exact/second" && resent.packetID == second.packetID && resent.dup)
                    try await back.send(.ack(MQTTAck(kind: .pubcomp, packetID: first.packetID ?? 0)))
                    try await back.send(.ack(MQTTAck(kind: .pubrec, packetID: second.packetID ?? 0)))
                    guard case .ack(let last) = try await back.receive() else { throw CancellationError() }
                    #expect(last.kind == .pubrel && last.packetID == second.packetID)
                    try await back.send(.ack(MQTTAck(kind: .pubcomp, packetID: second.packetID ?? 0)))
                    #expect(try await back.publishes(expected: 0, quiet: 0.5).isEmpty)
                }
            }
        }
    }

    /// A QoS 2 publish to `topic` with `id` (`dup` for a repeat); expects its PUBREC.
    private func publishExactlyOnce(_ client: TestClient, _ topic: String, _ payload: String, id: UInt16, dup: Bool = false) async throws {
        try await client.send(
            .publish(MQTTPublish(topic: topic, payload: ByteBuffer(string: payload), qos: .exactlyOnce, dup: dup, packetID: id)))
        guard case .ack(let received) = try await client.receive() else { throw CancellationError() }
        #expect(received.kind == .pubrec && received.packetID == id && received.reasonCode == 0)
    }

    /// PUBREL for `id`; returns the PUBCOMP's reason code.
    private func release(_ client: TestClient, id: UInt16) async throws -> UInt8 {
        try await client.send(.ack(MQTTAck(kind: .pubrel, packetID: id)))
        guard case .ack(let complete) = try await client.receive() else { throw CancellationError() }
        #expect(complete.kind == .pubcomp && complete.packetID == id)
        return complete.reasonCode
    }

    @Test(
        "a QoS 2 publish repeated on the session's next connection before its PUBREL is acknowledged, not handed on again [MQTT-4.3.3-10, MQTT-4.4.0-1]"
    )
    func aQoS2PublishRepeatedOnTheNextConnectionIsDeliveredOnce() async throws {
        try await withBroker { _, server in
            let subscriber = try await TestClient.connect(port: server.port)
            try await subscriber.handshake(clientID: "reader")
            _ = try await subscriber.subscribe(["once/#"], qos: .atLeastOnce)
            let publisher = try await TestClient.connect(port: server.port)
            try await publisher.handshake(clientID: "writer", sessionExpiry: 3600)
            try await publishExactlyOnce(publisher, "once/t", "one", id: 5)
            // The connection drops before the client saw its PUBREC: it sends the PUBLISH again.
            await publisher.close()
            #expect(try await publisher.closed())
            let back = try await TestClient.connect(port: server.port)
            #expect(try await back.handshake(clientID: "writer", cleanStart: false, sessionExpiry: 3600).sessionPresent)
            try await publishExactlyOnce(back, "once/t", "one", id: 5, dup: true)
            #expect(try await release(back, id: 5) == 0)
            // Released: the id is free, and a new message with it is one.
            try await publishExactlyOnce(back, "once/t", "two", id: 5)
            #expect(try await release(back, id: 5) == 0)
            let delivered = try await subscriber.publishes(expected: 2, quiet: 0.5, acknowledge: true)
            #expect(delivered.map { String(buffer: $0.payload) } == ["one", "two"])
        }
    }

    @Test(
        "after a crash, a QoS 2 publish repeated before its PUBREL is acknowledged, not handed on again; an id released before the crash is a new message [MQTT-4.3.3-10]"
    )
    func qos2ReceiptsSurviveACrash() async throws {
        try await withTemporaryDirectory { directory in
            try await withBroker(in: directory) { _, server in
                let keeper = try await TestClient.connect(port: server.port)
                try await keeper.handshake(clientID: "keeper", sessionExpiry: 3600)
                _ = try await keeper.subscribe(["kept/#"], qos: .atLeastOnce)
                await keeper.close()
                #expect(try await keeper.closed())
                let publisher = try await TestClient.connect(port: server.port)
                try await publisher.handshake(clientID: "writer", sessionExpiry: 3600)
                // Id 2 is received (PUBREC) and not released; id 1 then goes through and is completed.
                try await publishExactlyOnce(publisher, "kept/t", "first", id: 2)
                try await publishExactlyOnce(publisher, "kept/t", "second", id: 1)
                #expect(try await release(publisher, id: 1) == 0)
                // The crash: a broker opened on the same files while this one still runs.
                try await withBroker(in: directory) { _, later in
                    let back = try await TestClient.connect(port: later.port)
                    #expect(try await back.handshake(clientID: "writer", cleanStart: false, sessionExpiry: 3600).sessionPresent)
                    try await publishExactlyOnce(back, "kept/t", "first", id: 2, dup: true)
                    #expect(try await release(back, id: 2) == 0)
                    try await publishExactlyOnce(back, "kept/t", "third", id: 1)
                    #expect(try await release(back, id: 1) == 0)
                    // Released twice: nothing is left to complete (MQTT 5: packet identifier not found).
                    #expect(try await release(back, id: 1) == 0x92)
                    let reader = try await TestClient.connect(port: later.port)
                    #expect(try await reader.handshake(clientID: "keeper", cleanStart: false, sessionExpiry: 3600).sessionPresent)
                    let delivered = try await reader.publishes(expected: 3, quiet: 0.5, acknowledge: true)
                    #expect(delivered.map { String(buffer: $0.payload) } == ["first", "second", "third"])
                }
            }
        }
    }

    /// A client of a session kept for an hour whose CONNECT carries a will on `wills/<clientID>` with
    /// `delay` seconds of will delay.
    private func connectWithWill(_ port: Int, clientID: String, delay: UInt32) async throws -> TestClient {
        let client = try await TestClient.connect(port: port)
        var willProperties = MQTTProperties()
        willProperties.willDelayInterval = delay
        willProperties.contentType = "text/plain"
        let will = MQTTWill(
            topic: "wills/\(clientID)", payload: ByteBuffer(string: "\(clientID) is gone"), qos: .atLeastOnce, properties: willProperties)
        var properties = MQTTProperties()
        properties.sessionExpiryInterval = 3600
        try await client.send(
            .connect(
                MQTTConnect(
                    version: .v5, clientID: clientID, cleanStart: true, keepAlive: 60, username: nil, password: nil, will: will,
                    properties: properties)))
        guard case .connack(let ack) = try await client.receive() else { throw CancellationError() }
        #expect(ack.reasonCode == 0)
        return client
    }

    /// Waits until `condition` holds of the broker's session `clientID` (its connection let go, say),
    /// then until the broker's store has everything queued so far.
    private func settled(
        _ server: MQTTServer, _ clientID: String, _ condition: @escaping @Sendable (MQTTSession.State) -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while server.broker.sessions.session(clientID)?.state.withLock({ condition($0) }) != true {
            guard ContinuousClock.now < deadline else {
                Issue.record("the session of \(clientID) did not settle")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        #expect(try await server.broker.persistence!.written(on: loop).get())
    }

    @Test(
        "the will of a client connected when the broker crashed, and one waiting for its delay, are published after the restart, when due; one discarded by DISCONNECT is not (MQTT 5 §3.1.2.5, §4.1: the will is part of the session)"
    )
    func willsSurviveACrash() async throws {
        try await withTemporaryDirectory { directory in
            try await withBroker(in: directory) { _, server in
                // A watcher whose session outlives its connection: wills published while it is away wait for it.
                let watcher = try await TestClient.connect(port: server.port)
                try await watcher.handshake(clientID: "watcher", sessionExpiry: 3600)
                _ = try await watcher.subscribe(["wills/#"], qos: .atLeastOnce)
                await watcher.close()
                #expect(try await watcher.closed())
                // Connected at the crash, with a will delayed 1 s.
                let connected = try await connectWithWill(server.port, clientID: "connected", delay: 1)
                // Gone before the crash without DISCONNECT: its will waits a minute.
                let away = try await connectWithWill(server.port, clientID: "away", delay: 60)
                await away.close()
                #expect(try await away.closed())
                // Gone with DISCONNECT (normal): its will is discarded.
                let polite = try await connectWithWill(server.port, clientID: "polite", delay: 1)
                try await polite.send(.disconnect(MQTTDisconnect(reasonCode: 0, properties: MQTTProperties())))
                #expect(try await polite.closed())
                try await settled(server, "away") { $0.connection == nil && $0.will != nil }
                try await settled(server, "polite") { $0.connection == nil && $0.will == nil }
                // The crash: a broker opened on the same files while this one still runs (whose own
                // timer for the will of `away` is a minute off), its clock two minutes on, so that
                // will is due at once.
                try await withBroker(in: directory, wallClock: { HybridLogicalClock.systemMilliseconds() + 120_000 }) { _, later in
                    let back = try await TestClient.connect(port: later.port)
                    #expect(try await back.handshake(clientID: "watcher", cleanStart: false, sessionExpiry: 3600).sessionPresent)
                    let wills = try await back.publishes(expected: 2, quiet: 1.5, acknowledge: true)
                    #expect(wills.map(\.topic).sorted() == ["wills/away", "wills/connected"])
                    #expect(wills.allSatisfy { $0.properties.contentType == "text/plain" })
                    #expect(wills.map { String(buffer: $0.payload) }.sorted() == ["away is gone", "connected is gone"])
                }
                await connected.close()
            }
        }
    }

    @Test("a client back within its will delay after a restart cancels the will [MQTT-3.1.3-9]")
    func aClientBackAfterARestartCancelsItsWill() async throws {
        try await withTemporaryDirectory { directory in
            try await withBroker(in: directory) { _, server in
                let first = try await connectWithWill(server.port, clientID: "device", delay: 5)
                try await settled(server, "device") { $0.will != nil }
                try await withBroker(in: directory) { _, later in
                    let watcher = try await TestClient.connect(port: later.port)
                    try await watcher.handshake(clientID: "watcher")
                    _ = try await watcher.subscribe(["wills/#"], qos: .atLeastOnce)
                    let back = try await TestClient.connect(port: later.port)
                    #expect(try await back.handshake(clientID: "device", cleanStart: false, sessionExpiry: 3600).sessionPresent)
                    #expect(try await watcher.publishes(expected: 0, quiet: 6).isEmpty)
                }
                await first.close()
            }
        }
    }
}
