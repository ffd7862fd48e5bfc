import MicrolithMQTT
import NIOCore
import Testing

@Suite("MQTT 5 properties: decoding rules")
struct MQTTPropertiesTests {
    /// A v5 QoS 0 PUBLISH to "t" with the given property bytes.
    static func publish(_ properties: [UInt8]) -> [UInt8] {
        packetBytes(0x30, mqttString("t") + propertySection(properties))
    }

    /// A v5 CONNECT with the given property bytes.
    static func connect(_ properties: [UInt8]) -> [UInt8] {
        packetBytes(0x10, mqttString("MQTT") + [0x05, 0x02, 0x00, 0x3C] + propertySection(properties) + mqttString("c"))
    }

    @Test func propertyNotAllowedInThePacketType() {
        expectDecodeError(0x81, Self.connect([0x23, 0x00, 0x01]), version: nil, mentioning: "Topic Alias (0x23) is not allowed")
        expectDecodeError(0x81, Self.publish([0x11, 0x00, 0x00, 0x00, 0x01]), version: .v5, mentioning: "Session Expiry Interval")
        expectDecodeError(0x81, [0x40, 0x06, 0x00, 0x01, 0x00, 0x02, 0x24, 0x01], version: .v5, mentioning: "Maximum QoS")
        expectDecodeError(0x81, Self.connect([0x18, 0x00, 0x00, 0x00, 0x01]), version: nil, mentioning: "Will Delay Interval")
    }

    @Test func unknownPropertyIdentifier() {
        expectDecodeError(0x81, Self.publish([0x04, 0x00]), version: .v5, mentioning: "unknown property identifier 0x4")
        expectDecodeError(0x81, Self.publish([0xFF, 0x01, 0x00]), version: .v5, mentioning: "unknown property identifier")
    }

    @Test func propertyAppearingTwice() {
        expectDecodeError(
            0x82,
            Self.connect([0x11, 0x00, 0x00, 0x00, 0x01, 0x11, 0x00, 0x00, 0x00, 0x02]),
            version: nil,
            mentioning: "Session Expiry Interval appears more than once"
        )
        expectDecodeError(0x82, Self.publish([0x03, 0x00, 0x01, 0x61, 0x03, 0x00, 0x01, 0x62]), version: .v5, mentioning: "Content Type")
        // SUBSCRIBE allows one subscription identifier, PUBLISH any number.
        let subscribe = packetBytes(0x82, [0x00, 0x01] + propertySection([0x0B, 0x01, 0x0B, 0x02]) + mqttString("a") + [0x00])
        expectDecodeError(0x82, subscribe, version: .v5, mentioning: "Subscription Identifier appears more than once")
        #expect(decodeError(Self.publish([0x0B, 0x01, 0x0B, 0x02]), version: .v5) == nil)
    }

    @Test func userPropertiesRepeatInOrder() throws {
        let bytes = Self.publish([0x26] + mqttString("a") + mqttString("1") + [0x26] + mqttString("a") + mqttString("2"))
        guard case .publish(let publish) = try decodeOne(bytes, version: .v5) else {
            Issue.record("not a PUBLISH")
            return
        }
        #expect(publish.properties.userProperties == [MQTTUserProperty(name: "a", value: "1"), MQTTUserProperty(name: "a", value: "2")])
    }

    @Test func propertyLengthPastTheEnd() {
        expectDecodeError(0x81, packetBytes(0x30, mqttString("t") + [0x05, 0x01]), version: .v5, mentioning: "past the end")
        expectDecodeError(0x81, packetBytes(0x30, mqttString("t") + [0x80, 0x80, 0x80, 0x80]), version: .v5, mentioning: "longer than 4 bytes")
    }

    @Test func propertyValuePastThePropertiesEnd() {
        // The content type says 5 bytes but the property section ends after 2; the payload must not be read.
        let bytes = packetBytes(0x30, mqttString("t") + [0x05, 0x03, 0x00, 0x05, 0x61, 0x62] + Array("cdefg".utf8))
        expectDecodeError(0x81, bytes, version: .v5, mentioning: "past the end of the properties")
        expectDecodeError(0x81, Self.publish([0x02, 0x00, 0x00]), version: .v5, mentioning: "Message Expiry Interval")
        expectDecodeError(0x81, Self.publish([0x26] + mqttString("a")), version: .v5, mentioning: "User Property value")
        expectDecodeError(0x81, Self.publish([0x0B, 0x80]), version: .v5, mentioning: "Subscription Identifier")
    }

    @Test func forbiddenValues() {
        expectDecodeError(0x82, Self.publish([0x23, 0x00, 0x00]), version: .v5, mentioning: "Topic Alias must not be 0")
        expectDecodeError(0x82, Self.publish([0x0B, 0x00]), version: .v5, mentioning: "Subscription Identifier must not be 0")
        expectDecodeError(0x82, Self.publish([0x01, 0x02]), version: .v5, mentioning: "Payload Format Indicator must be 0 or 1")
        expectDecodeError(0x82, Self.connect([0x21, 0x00, 0x00]), version: nil, mentioning: "Receive Maximum")
        expectDecodeError(0x82, Self.connect([0x27, 0x00, 0x00, 0x00, 0x00]), version: nil, mentioning: "Maximum Packet Size")
        expectDecodeError(0x82, Self.connect([0x17, 0x02]), version: nil, mentioning: "Request Problem Information")
        expectDecodeError(0x82, [0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x02], version: .v5, mentioning: "Maximum QoS")
    }

    @Test func stringsInPropertiesAreValidated() {
        expectDecodeError(0x81, Self.publish([0x03, 0x00, 0x01, 0xFF]), version: .v5, mentioning: "Content Type is not well-formed UTF-8")
        expectDecodeError(0x81, Self.publish([0x26, 0x00, 0x01, 0x00] + mqttString("")), version: .v5, mentioning: "U+0000")
    }

    @Test func willPropertiesUseTheirOwnAllowedSet() {
        let willWithTopicAlias =
            mqttString("MQTT") + [0x05, 0x06, 0x00, 0x3C, 0x00] + mqttString("c")
            + propertySection([0x23, 0x00, 0x01]) + mqttString("w") + mqttString("p")
        expectDecodeError(0x81, packetBytes(0x10, willWithTopicAlias), version: nil, mentioning: "will properties")
        let willWithDelay =
            mqttString("MQTT") + [0x05, 0x06, 0x00, 0x3C, 0x00] + mqttString("c")
            + propertySection([0x18, 0x00, 0x00, 0x00, 0x09]) + mqttString("w") + mqttString("p")
        #expect(decodeError(packetBytes(0x10, willWithDelay), version: nil) == nil)
    }

    @Test func encodedPropertyOrderFollowsIdentifiers() {
        var properties = MQTTProperties()
        properties.userProperties = [MQTTUserProperty(name: "u", value: "v")]
        properties.reasonString = "r"
        let bytes = encodedBytes(.disconnect(MQTTDisconnect(reasonCode: 0x80, properties: properties)), .v5)
        #expect(bytes == [0xE0, 0x0D, 0x80, 0x0B, 0x1F] + mqttString("r") + [0x26] + mqttString("u") + mqttString("v"))
    }
}
