import NIOCore
import Testing

@testable import MicrolithMQTT

@Suite("MQTTSessions: wills and expiry")
struct MQTTSessionsTests {
    @Test("a will waits its delay capped by the session's expiry interval, on the virtual clock")
    func willDelayCappedByExpiry() async throws {
        try await withBroker { _, server in
            let client = VirtualTransport()
            try await connect(client, to: server.broker, clientID: "w", willDelay: 30, sessionExpiry: 10)
            client.close()
            await client.settle()
            #expect(server.broker.connectionCount == 0)
            await client.advance(seconds: 9)
            #expect(wills(server.broker).isEmpty)
            await client.advance(seconds: 1)
            #expect(wills(server.broker) == ["wills/w"])
        }
    }

    @Test("a client that comes back within its will's delay cancels the will; one that does not gets it published")
    func returningClientCancelsItsWill() async throws {
        try await withBroker { _, server in
            let first = VirtualTransport()
            try await connect(first, to: server.broker, clientID: "back", willDelay: 5, sessionExpiry: 600)
            let other = VirtualTransport()
            try await connect(other, to: server.broker, clientID: "gone", willDelay: 5, sessionExpiry: 600)
            first.close()
            other.close()
            await first.settle()
            await other.settle()
            await first.advance(seconds: 3)
            await other.advance(seconds: 3)
            let again = VirtualTransport()
            try await connect(again, to: server.broker, clientID: "back", cleanStart: false, willDelay: 5, sessionExpiry: 600)
            await first.advance(seconds: 10)
            await other.advance(seconds: 10)
            #expect(wills(server.broker) == ["wills/gone"])
        }
    }

    @Test("a session outlives its connection for its expiry interval, then ends and gives its subscriptions back")
    func expiry() async throws {
        try await withBroker { _, server in
            let broker = server.broker
            let client = VirtualTransport()
            try await connect(client, to: broker, clientID: "e", willDelay: nil, sessionExpiry: 1)
            try await client.receive(.subscribe(MQTTSubscribe(packetID: 1, subscriptions: [MQTTSubscription(topicFilter: "a/#")])))
            await client.settle()
            #expect(broker.subscriptionCount == 1)
            client.close()
            await client.settle()
            broker.sessions.expire()
            #expect(broker.subscriptionCount == 1)
            try await Task.sleep(for: .milliseconds(1100))
            broker.sessions.expire()
            #expect(broker.subscriptionCount == 0)
        }
    }

    /// CONNECT (MQTT 5) with a retained will to `wills/<clientID>` when `willDelay` is given; the CONNACK read.
    private func connect(
        _ client: VirtualTransport, to broker: MQTTBroker, clientID: String, cleanStart: Bool = true, willDelay: UInt32?, sessionExpiry: UInt32
    ) async throws {
        var properties = MQTTProperties()
        properties.sessionExpiryInterval = sessionExpiry
        var will: MQTTWill?
        if let willDelay {
            var willProperties = MQTTProperties()
            willProperties.willDelayInterval = willDelay
            will = MQTTWill(topic: "wills/\(clientID)", payload: ByteBuffer(string: "gone"), retain: true, properties: willProperties)
        }
        try await client.connect(to: broker)
        try await client.receive(
            .connect(
                MQTTConnect(version: .v5, clientID: clientID, cleanStart: cleanStart, keepAlive: 0, will: will, properties: properties)))
        await client.settle()
        guard case .connack(let ack) = try client.packets().first else { throw CancellationError() }
        #expect(ack.reasonCode == 0)
    }

    /// The topics of the retained wills the broker holds.
    private func wills(_ broker: MQTTBroker) -> [String] {
        var tree = MQTTTopicTree<String, MQTTSubscription>()
        tree.insert(filter: "wills/#", key: "wills/#", value: MQTTSubscription(topicFilter: "wills/#", qos: .atLeastOnce))
        return broker.retained.matching(tree).map(\.topic).sorted()
    }
}
