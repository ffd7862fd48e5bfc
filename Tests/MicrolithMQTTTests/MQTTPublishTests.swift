import MicrolithMQTT
import NIOCore
import Testing

@Suite("PUBLISH: byte-exact vectors")
struct MQTTPublishTests {
    @Test func qos0() throws {
        let bytes: [UInt8] = [0x30, 0x07] + mqttString("a/b") + Array("hi".utf8)
        let publish = MQTTPacket.publish(MQTTPublish(topic: "a/b", payload: byteBuffer("hi")))
        #expect(encodedBytes(publish, .v3_1_1) == bytes)
        #expect(try decodeOne(bytes, version: .v3_1_1) == publish)
    }

    @Test func qos1Retained() throws {
        let bytes: [UInt8] = [0x33, 0x09] + mqttString("a/b") + [0x00, 0x0A] + Array("hi".utf8)
        let publish = MQTTPacket.publish(MQTTPublish(topic: "a/b", payload: byteBuffer("hi"), qos: .atLeastOnce, retain: true, packetID: 10))
        #expect(encodedBytes(publish, .v3_1_1) == bytes)
        #expect(try decodeOne(bytes, version: .v3_1_1) == publish)
    }

    @Test func qos2Duplicate() throws {
        let bytes: [UInt8] = [0x3C, 0x06] + mqttString("t") + [0xFF, 0xFF] + Array("x".utf8)
        let publish = MQTTPacket.publish(MQTTPublish(topic: "t", payload: byteBuffer("x"), qos: .exactlyOnce, dup: true, packetID: 0xFFFF))
        #expect(encodedBytes(publish, .v3_1_1) == bytes)
        #expect(try decodeOne(bytes, version: .v3_1_1) == publish)
    }

    @Test func v5WithoutProperties() throws {
        let bytes: [UInt8] = [0x30, 0x08] + mqttString("a/b") + [0x00] + Array("hi".utf8)
        let publish = MQTTPacket.publish(MQTTPublish(topic: "a/b", payload: byteBuffer("hi")))
        #expect(encodedBytes(publish, .v5) == bytes)
        #expect(try decodeOne(bytes, version: .v5) == publish)
    }

    @Test func v5WithProperties() throws {
        let properties: [UInt8] = [
            0x01, 0x01,  // payload format indicator: UTF-8
            0x02, 0x00, 0x00, 0x00, 0x3C,  // message expiry interval 60
            0x23, 0x00, 0x03,  // topic alias 3
            0x26, 0x00, 0x01, 0x6B, 0x00, 0x01, 0x76,  // user property k = v
        ]
        let bytes: [UInt8] = [0x3A, 0x1B] + mqttString("a/b") + [0x12, 0x34] + propertySection(properties) + Array("hi".utf8)
        var publishProperties = MQTTProperties()
        publishProperties.payloadFormatIndicator = 1
        publishProperties.messageExpiryInterval = 60
        publishProperties.topicAlias = 3
        publishProperties.userProperties = [MQTTUserProperty(name: "k", value: "v")]
        let publish = MQTTPacket.publish(
            MQTTPublish(topic: "a/b", payload: byteBuffer("hi"), qos: .atLeastOnce, dup: true, packetID: 0x1234, properties: publishProperties)
        )
        #expect(encodedBytes(publish, .v5) == bytes)
        #expect(try decodeOne(bytes, version: .v5) == publish)
    }

    @Test func v5EmptyTopicWithTopicAlias() throws {
        let bytes: [UInt8] = [0x30, 0x06] + mqttString("") + propertySection([0x23, 0x00, 0x07]) + []
        var properties = MQTTProperties()
        properties.topicAlias = 7
        let publish = MQTTPacket.publish(MQTTPublish(topic: "", payload: ByteBuffer(), properties: properties))
        #expect(encodedBytes(publish, .v5) == bytes)
        #expect(try decodeOne(bytes, version: .v5) == publish)
    }

    @Test func v5RepeatedSubscriptionIdentifiers() throws {
        let bytes: [UInt8] = [0x30, 0x0C] + mqttString("t") + propertySection([0x0B, 0x01, 0x0B, 0x80, 0x01, 0x0B, 0x05]) + Array("p".utf8)
        var properties = MQTTProperties()
        properties.subscriptionIdentifiers = [1, 128, 5]
        let publish = MQTTPacket.publish(MQTTPublish(topic: "t", payload: byteBuffer("p"), properties: properties))
        #expect(encodedBytes(publish, .v5) == bytes)
        #expect(try decodeOne(bytes, version: .v5) == publish)
    }

    @Test func v311DropsProperties() {
        var properties = MQTTProperties()
        properties.contentType = "text/plain"
        let publish = MQTTPacket.publish(MQTTPublish(topic: "a/b", payload: byteBuffer("hi"), properties: properties))
        #expect(encodedBytes(publish, .v3_1_1) == [0x30, 0x07] + mqttString("a/b") + Array("hi".utf8))
    }

    @Test func multiByteRemainingLengths() throws {
        for size in [124, 125, 16_380, 16_381, 2_097_148, 2_097_149] {
            let publish = MQTTPacket.publish(MQTTPublish(topic: "t", payload: ByteBuffer(repeating: 0x5A, count: size)))
            let bytes = encodedBytes(publish, .v3_1_1)
            let remaining = size + 3
            let lengthBytes = variableByteInteger(remaining)
            #expect(Array(bytes[1...lengthBytes.count]) == lengthBytes)
            #expect(bytes.count == 1 + lengthBytes.count + remaining)
            var decoder = MQTTPacketDecoder(maximumPacketSize: 4 << 20, version: .v3_1_1)
            var input = ByteBuffer(bytes: bytes)
            #expect(try decoder.decode(&input) == publish)
        }
        #expect(variableByteInteger(127).count == 1 && variableByteInteger(128).count == 2)
    }
}
