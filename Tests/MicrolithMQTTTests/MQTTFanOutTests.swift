import NIOCore
import Testing

@testable import MicrolithMQTT

@Suite("MQTTFanOut: one delivery per session at the QoS its subscriptions grant")
struct MQTTFanOutTests {
    @Test("overlapping filters of one client make one target at their highest QoS, with retain-as-published if any asks for it")
    func targets() {
        var tree = MQTTTopicTree<String, MQTTSubscription>()
        func add(_ client: String, _ filter: String, _ qos: MQTTQoS, retainAsPublished: Bool = false) {
            tree.insert(filter: filter, key: client, value: MQTTSubscription(topicFilter: filter, qos: qos, retainAsPublished: retainAsPublished))
        }
        add("a", "Sensor/#", .atMostOnce)
        add("a", "Sensor/+", .atLeastOnce)
        add("a", "+/s1", .atMostOnce, retainAsPublished: true)
        add("a", "Sensor/s1", .atMostOnce)
        add("b", "Sensor/s2", .atLeastOnce)
        add("c", "#", .atMostOnce)
        add("c", "Sensor/s1", .atMostOnce)
        add("d", "+/+", .atLeastOnce)
        add("d", "#", .atMostOnce)
        #expect(
            MQTTFanOut.targets(of: "Sensor/s1", in: tree) == [
                "a": .init(qos: .atLeastOnce, retainAsPublished: true),
                "c": .init(qos: .atMostOnce, retainAsPublished: false),
                "d": .init(qos: .atLeastOnce, retainAsPublished: false),
            ])
        #expect(
            MQTTFanOut.targets(of: "Sensor/s2/x", in: tree) == [
                "a": .init(qos: .atMostOnce, retainAsPublished: false), "c": .init(qos: .atMostOnce, retainAsPublished: false),
                "d": .init(qos: .atMostOnce, retainAsPublished: false),
            ])
        #expect(MQTTFanOut.targets(of: "$SYS/x", in: tree).isEmpty)
    }

    @Test("a message reaches each subscribed session once, at the highest QoS granted but never above its own; retain only as published")
    func deliver() async throws {
        try await withBroker { _, server in
            let broker = server.broker
            let a = try await connected(broker, "a")
            let b = try await connected(broker, "b")
            let c = try await connected(broker, "c")
            try await subscribe(
                a,
                [
                    MQTTSubscription(topicFilter: "plain/#"), MQTTSubscription(topicFilter: "plain/+", qos: .atLeastOnce),
                    MQTTSubscription(topicFilter: "+/t", retainAsPublished: true),
                ])
            try await subscribe(b, [MQTTSubscription(topicFilter: "plain/t"), MQTTSubscription(topicFilter: "#")])
            try await subscribe(c, [MQTTSubscription(topicFilter: "other/#", qos: .atLeastOnce)])

            broker.fanOut.deliver(
                MQTTSession.Outgoing(topic: "plain/t", payload: ByteBuffer(string: "one"), qos: .atLeastOnce, retain: true), keepOffline: true)
            broker.fanOut.deliver(
                MQTTSession.Outgoing(topic: "plain/t", payload: ByteBuffer(string: "two"), qos: .atMostOnce, retain: false), keepOffline: true)
            for client in [a, b, c] { await client.settle() }

            let toA = try a.packets().map { try publishOf($0) }
            #expect(toA.map { String(buffer: $0.payload) } == ["one", "two"])
            #expect(toA.map(\.qos) == [.atLeastOnce, .atMostOnce])
            #expect(toA.map(\.retain) == [true, false])
            let toB = try b.packets().map { try publishOf($0) }
            #expect(toB.map { String(buffer: $0.payload) } == ["one", "two"])
            #expect(toB.map(\.qos) == [.atMostOnce, .atMostOnce])
            #expect(toB.map(\.retain) == [false, false])
            #expect(try c.packets().isEmpty)
        }
    }

    @Test("a topic's subscribers are kept between publishes and matched afresh after a subscription or a session changes")
    func keptSubscribers() async throws {
        try await withBroker { _, server in
            let broker = server.broker
            func publish(_ text: String) {
                broker.fanOut.deliver(
                    MQTTSession.Outgoing(topic: "plain/t", payload: ByteBuffer(string: text), qos: .atMostOnce, retain: false), keepOffline: true)
            }
            func received(_ client: VirtualTransport) async throws -> [String] {
                await client.settle()
                return try client.packets().map { String(buffer: try publishOf($0).payload) }
            }
            let a = try await connected(broker, "a")
            try await subscribe(a, [MQTTSubscription(topicFilter: "plain/#")])
            publish("one")
            #expect(broker.sessions.keptTopics == 1)
            publish("two")
            #expect(try await received(a) == ["one", "two"])

            let b = try await connected(broker, "b")
            try await subscribe(b, [MQTTSubscription(topicFilter: "plain/t")])
            publish("three")
            #expect(try await received(a) == ["three"])
            #expect(try await received(b) == ["three"])

            try await a.receive(.unsubscribe(MQTTUnsubscribe(packetID: 2, topicFilters: ["plain/#"])))
            await a.settle()
            _ = try a.packets()
            publish("four")
            #expect(try await received(a).isEmpty)
            #expect(try await received(b) == ["four"])

            // b connects again with a clean start: a new session, without the subscription.
            b.close()
            await b.settle()
            let again = try await connected(broker, "b")
            publish("five")
            #expect(try await received(again).isEmpty)
            #expect(try await received(a).isEmpty)
        }
    }

    @Test("the kept subscribers stay within their bound, dropping other topics first; a topic past the bound alone is not kept")
    func keptSubscribersBound() {
        let sessions = (0..<30_000).map { MQTTSession(clientID: "c\($0)") }
        let entry = MQTTMatchCache.Entry(
            subscribers: sessions.map { ($0, MQTTFanOut.Target(qos: .atMostOnce, retainAsPublished: false)) }, noLocal: [])
        var cache = MQTTMatchCache()
        cache.keep(entry, for: "a")
        cache.keep(entry, for: "b")
        #expect(cache.count == 2)
        #expect(cache.held == 60_000)
        cache.keep(entry, for: "c")
        #expect(cache.count == 2)
        #expect(cache.held == 60_000)
        #expect(cache["c"] != nil)
        cache.keep(MQTTMatchCache.Entry(subscribers: [], noLocal: []), for: "d")
        #expect(cache.count == 3)
        #expect(cache.held == 60_001)
        let huge = MQTTMatchCache.Entry(
            subscribers: Array(repeating: entry.subscribers[0], count: MQTTMatchCache.maximumSubscribers + 1), noLocal: [])
        cache.keep(huge, for: "e")
        #expect(cache["e"] == nil)
        #expect(cache.count == 3)
        cache.removeAll()
        #expect(cache.count == 0)
        #expect(cache.held == 0)
    }

    /// A client on a virtual transport, connected (MQTT 5) with its CONNACK read.
    private func connected(_ broker: MQTTBroker, _ clientID: String) async throws -> VirtualTransport {
        let client = VirtualTransport()
        try await client.connect(to: broker)
        try await client.receive(connectPacket(clientID: clientID))
        await client.settle()
        guard case .connack(let ack) = try client.packets().first else { throw CancellationError() }
        #expect(ack.reasonCode == 0)
        return client
    }

    /// SUBSCRIBE, its SUBACK read.
    private func subscribe(_ client: VirtualTransport, _ subscriptions: [MQTTSubscription]) async throws {
        try await client.receive(.subscribe(MQTTSubscribe(packetID: 1, subscriptions: subscriptions)))
        await client.settle()
        guard case .suback(let ack) = try client.packets().first else { throw CancellationError() }
        #expect(ack.reasonCodes == subscriptions.map(\.qos.rawValue))
    }
}
