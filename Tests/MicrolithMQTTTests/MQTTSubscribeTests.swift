import MicrolithMQTT
import NIOCore
import Testing

@Suite("SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK: byte-exact vectors")
struct MQTTSubscribeTests {
    @Test func v311Subscribe() throws {
        let bytes: [UInt8] = [0x82, 0x0E, 0x00, 0x01] + mqttString("a/+") + [0x01] + mqttString("b/#") + [0x00]
        let subscribe = MQTTPacket.subscribe(
            MQTTSubscribe(
                packetID: 1,
                subscriptions: [MQTTSubscription(topicFilter: "a/+", qos: .atLeastOnce), MQTTSubscription(topicFilter: "b/#")]
            )
        )
        #expect(encodedBytes(subscribe, .v3_1_1) == bytes)
        #expect(try decodeOne(bytes, version: .v3_1_1) == subscribe)
    }

    @Test func v311SubscribeWritesOnlyTheQoS() {
        let subscription = MQTTSubscription(topicFilter: "x", qos: .exactlyOnce, noLocal: true, retainAsPublished: true, retainHandling: 2)
        let bytes = encodedBytes(.subscribe(MQTTSubscribe(packetID: 9, subscriptions: [subscription])), .v3_1_1)
        #expect(bytes == [0x82, 0x06, 0x00, 0x09] + mqttString("x") + [0x02])
    }

    @Test func v5SubscribeWithOptionsAndIdentifier() throws {
        // Options: QoS 2, no local (0x04), retain as published (0x08), retain handling 2 (0x20).
        let bytes: [UInt8] = [0x82, 0x0B, 0x00, 0x02, 0x02, 0x0B, 0x05] + mqttString("a/+") + [0x2E]
        var properties = MQTTProperties()
        properties.subscriptionIdentifiers = [5]
        let subscribe = MQTTPacket.subscribe(
            MQTTSubscribe(
                packetID: 2,
                subscriptions: [
                    MQTTSubscription(topicFilter: "a/+", qos: .exactlyOnce, noLocal: true, retainAsPublished: true, retainHandling: 2)
                ],
                properties: properties
            )
        )
        #expect(encodedBytes(subscribe, .v5) == bytes)
        #expect(try decodeOne(bytes, version: .v5) == subscribe)
    }

    @Test func subscribeFiltersAreNotValidatedByTheDecoder() throws {
        let bytes: [UInt8] = [0x82, 0x08, 0x00, 0x01] + mqttString("a#/") + [0x00]
        let decoded = try decodeOne(bytes, version: .v3_1_1)
        #expect(decoded == .subscribe(MQTTSubscribe(packetID: 1, subscriptions: [MQTTSubscription(topicFilter: "a#/")])))
    }

    @Test func subAck() throws {
        let v311: [UInt8] = [0x90, 0x04, 0x00, 0x01, 0x01, 0x80]
        let v311Packet = MQTTPacket.suback(MQTTSubAck(packetID: 1, reasonCodes: [1, 0x80]))
        #expect(encodedBytes(v311Packet, .v3_1_1) == v311)
        #expect(try decodeOne(v311, version: .v3_1_1) == v311Packet)

        let v5: [UInt8] = [0x90, 0x05, 0x00, 0x01, 0x00, 0x00, 0x8F]
        let v5Packet = MQTTPacket.suback(MQTTSubAck(packetID: 1, reasonCodes: [0, 0x8F]))
        #expect(encodedBytes(v5Packet, .v5) == v5)
        #expect(try decodeOne(v5, version: .v5) == v5Packet)
    }

    @Test func unsubscribe() throws {
        let v311: [UInt8] = [0xA2, 0x07, 0x00, 0x03] + mqttString("a/b")
        let packet = MQTTPacket.unsubscribe(MQTTUnsubscribe(packetID: 3, topicFilters: ["a/b"]))
        #expect(encodedBytes(packet, .v3_1_1) == v311)
        #expect(try decodeOne(v311, version: .v3_1_1) == packet)

        let v5: [UInt8] = [0xA2, 0x0D, 0x00, 0x03, 0x00] + mqttString("a/b") + mqttString("+/#")
        let v5Packet = MQTTPacket.unsubscribe(MQTTUnsubscribe(packetID: 3, topicFilters: ["a/b", "+/#"]))
        #expect(encodedBytes(v5Packet, .v5) == v5)
        #expect(try decodeOne(v5, version: .v5) == v5Packet)
    }

    @Test func unsubAck() throws {
        let v311Packet = MQTTPacket.unsuback(MQTTUnsubAck(packetID: 3))
        #expect(encodedBytes(v311Packet, .v3_1_1) == [0xB0, 0x02, 0x00, 0x03])
        #expect(try decodeOne([0xB0, 0x02, 0x00, 0x03], version: .v3_1_1) == v311Packet)
        // MQTT 3.1.1 has no reason codes: they are not written.
        #expect(encodedBytes(.unsuback(MQTTUnsubAck(packetID: 3, reasonCodes: [0x11])), .v3_1_1) == [0xB0, 0x02, 0x00, 0x03])

        let v5: [UInt8] = [0xB0, 0x05, 0x00, 0x03, 0x00, 0x00, 0x11]
        let v5Packet = MQTTPacket.unsuback(MQTTUnsubAck(packetID: 3, reasonCodes: [0x00, 0x11]))
        #expect(encodedBytes(v5Packet, .v5) == v5)
        #expect(try decodeOne(v5, version: .v5) == v5Packet)
    }
}
