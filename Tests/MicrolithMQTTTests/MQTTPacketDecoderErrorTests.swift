import MicrolithMQTT
import NIOCore
import Testing

@Suite("MQTTPacketDecoder: fixed header errors")
struct MQTTFixedHeaderErrorTests {
    @Test func remainingLengthOverFourBytes() {
        expectDecodeError(0x81, [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], version: .v5, mentioning: "longer than 4 bytes")
        // Known as soon as the fourth length byte says "more".
        expectDecodeError(0x81, [0x30, 0x80, 0x80, 0x80, 0x80], version: .v5)
    }

    @Test func largestRemainingLengthIsAccepted() throws {
        var decoder = MQTTPacketDecoder(maximumPacketSize: Int.max, version: .v5)
        var input = ByteBuffer(bytes: [0x30, 0xFF, 0xFF, 0xFF, 0x7F])
        #expect(try decoder.decode(&input) == nil)
    }

    @Test func packetTooLargeWithoutWaitingForTheBody() {
        // Remaining length 1000, no body yet.
        expectDecodeError(0x95, [0x30, 0xE8, 0x07], version: .v5, mentioning: "1003 bytes", maximumPacketSize: 100)
        expectDecodeError(0x95, [0x10, 0x7F], version: nil, maximumPacketSize: 128)
    }

    @Test func packetOfExactlyTheMaximumSize() throws {
        let bytes = encodedBytes(.publish(MQTTPublish(topic: "t", payload: ByteBuffer(repeating: 1, count: 95))), .v3_1_1)
        #expect(bytes.count == 100)
        #expect(decodeError(bytes, version: .v3_1_1, maximumPacketSize: 100) == nil)
        expectDecodeError(0x95, bytes, version: .v3_1_1, maximumPacketSize: 99)
    }

    @Test func reservedPacketTypes() {
        expectDecodeError(0x81, [0x00, 0x00], version: .v5, mentioning: "type 0")
        expectDecodeError(0x81, [0x00, 0x00], version: nil)
        expectDecodeError(0x82, [0xF0, 0x00], version: .v3_1_1, mentioning: "AUTH")
        expectDecodeError(0x82, [0xF0, 0x00], version: nil, mentioning: "CONNECT")
    }

    @Test func wrongFlags() {
        expectDecodeError(0x81, [0x60, 0x02, 0x00, 0x01], version: .v5, mentioning: "PUBREL")
        expectDecodeError(0x81, [0x80] + [0x06, 0x00, 0x01] + mqttString("a") + [0x00], version: .v5, mentioning: "SUBSCRIBE")
        expectDecodeError(0x81, [0xA0, 0x05, 0x00, 0x01] + mqttString("a"), version: .v3_1_1, mentioning: "UNSUBSCRIBE")
        expectDecodeError(0x81, [0x42, 0x02, 0x00, 0x01], version: .v5, mentioning: "PUBACK")
        expectDecodeError(0x81, [0xC1, 0x00], version: .v5)
        expectDecodeError(0x81, [0xE8, 0x00], version: .v3_1_1)
        expectDecodeError(0x81, [0x12, 0x00], version: nil, mentioning: "CONNECT")
        expectDecodeError(0x81, [0x21, 0x02, 0x00, 0x00], version: .v3_1_1)
    }

    @Test func publishFlags() {
        expectDecodeError(0x81, [0x36, 0x00], version: .v5, mentioning: "QoS is 3")
        expectDecodeError(0x81, [0x38, 0x03] + mqttString("a"), version: .v3_1_1, mentioning: "DUP")
    }

    @Test func firstPacketMustBeConnect() {
        let publish = encodedBytes(.publish(MQTTPublish(topic: "a", payload: ByteBuffer())), .v5)
        expectDecodeError(0x82, publish, version: nil, mentioning: "first packet must be CONNECT")
        expectDecodeError(0x82, [0xC0, 0x00], version: nil, mentioning: "PINGREQ")
        expectDecodeError(0x82, [0x90, 0x03, 0x00, 0x01, 0x00], version: nil)
    }
}

@Suite("MQTTPacketDecoder: CONNECT errors")
struct MQTTConnectErrorTests {
    static func connect(name: String = "MQTT", level: UInt8 = 4, flags: UInt8 = 0x02, rest: [UInt8] = mqttString("c")) -> [UInt8] {
        packetBytes(0x10, mqttString(name) + [level, flags, 0x00, 0x3C] + rest)
    }

    @Test func protocolVersions() {
        expectDecodeError(0x84, Self.connect(name: "MQIsdp", level: 3), version: nil, mentioning: "MQIsdp")
        expectDecodeError(0x84, Self.connect(level: 3), version: nil, mentioning: "level 3")
        expectDecodeError(0x84, Self.connect(level: 6), version: nil, mentioning: "level 6")
        expectDecodeError(0x81, Self.connect(name: "MQTX"), version: nil, mentioning: "protocol name")
        expectDecodeError(0x81, Self.connect(name: ""), version: nil)
        expectDecodeError(0x81, packetBytes(0x10, [0x00, 0x04, 0x4D]), version: nil, mentioning: "protocol name runs past")
    }

    @Test func connectFlags() {
        expectDecodeError(0x81, Self.connect(flags: 0x03), version: nil, mentioning: "reserved")
        let will = mqttString("w") + mqttString("p")
        expectDecodeError(0x81, Self.connect(flags: 0x1C, rest: mqttString("c") + will), version: nil, mentioning: "will QoS is 3")
        expectDecodeError(0x81, Self.connect(flags: 0x08), version: nil, mentioning: "without the will flag")
        expectDecodeError(0x81, Self.connect(flags: 0x20), version: nil, mentioning: "without the will flag")
        expectDecodeError(0x81, Self.connect(flags: 0x40, rest: mqttString("c") + mqttString("pw")), version: nil, mentioning: "password")
        // MQTT 5 allows a password without a user name.
        #expect(decodeError(Self.connect(level: 5, flags: 0x40, rest: [0x00] + mqttString("c") + mqttString("pw")), version: nil) == nil)
    }

    @Test func clientIdentifier() throws {
        #expect(decodeError(Self.connect(rest: mqttString("")), version: nil) == nil)
        expectDecodeError(0x81, Self.connect(rest: [0x00, 0x05, 0x61]), version: nil, mentioning: "client identifier runs past")
        expectDecodeError(0x81, Self.connect(rest: [0x00, 0x01, 0xC3]), version: nil, mentioning: "UTF-8")
        expectDecodeError(0x81, Self.connect(rest: [0x00, 0x01, 0x00]), version: nil, mentioning: "U+0000")
    }

    @Test func fieldsMissingOrLeftOver() {
        expectDecodeError(0x81, Self.connect(rest: mqttString("c") + [0x00]), version: nil, mentioning: "unexpected byte")
        expectDecodeError(0x81, Self.connect(flags: 0x80), version: nil, mentioning: "user name")
        expectDecodeError(0x81, Self.connect(flags: 0x06), version: nil, mentioning: "will topic")
        expectDecodeError(0x81, Self.connect(flags: 0x06, rest: mqttString("c") + mqttString("w")), version: nil, mentioning: "will payload")
        expectDecodeError(0x81, packetBytes(0x10, mqttString("MQTT") + [0x04, 0x00, 0x00]), version: nil, mentioning: "keep alive")
        expectDecodeError(0x81, Self.connect(level: 5, rest: [0x05, 0x11]), version: nil, mentioning: "past the end")
    }

    @Test func willTopicMustBeATopicName() {
        expectDecodeError(0x82, Self.connect(flags: 0x06, rest: mqttString("c") + mqttString("w/#") + mqttString("")), version: nil)
        expectDecodeError(0x82, Self.connect(flags: 0x06, rest: mqttString("c") + mqttString("") + mqttString("")), version: nil)
    }
}

@Suite("MQTTPacketDecoder: string errors")
struct MQTTStringErrorTests {
    static func publish(topic: [UInt8]) -> [UInt8] {
        packetBytes(0x30, [0x00, UInt8(topic.count)] + topic)
    }

    @Test func invalidUTF8() {
        for bytes: [UInt8] in [[0xFF], [0x61, 0x80], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82]] {
            expectDecodeError(0x81, Self.publish(topic: bytes), version: .v3_1_1, mentioning: "UTF-8")
        }
    }

    @Test func nullCharacter() {
        expectDecodeError(0x81, Self.publish(topic: [0x61, 0x00, 0x62]), version: .v5, mentioning: "U+0000")
    }

    @Test func validMultiByteUTF8() throws {
        let topic = Array("ä/€/😀".utf8)
        #expect(try decodeOne(Self.publish(topic: topic), version: .v3_1_1) == .publish(MQTTPublish(topic: "ä/€/😀", payload: ByteBuffer())))
    }

    @Test func lengthPastTheEnd() {
        expectDecodeError(0x81, packetBytes(0x30, [0x00, 0x09, 0x61]), version: .v3_1_1, mentioning: "topic name runs past the end of the packet")
        expectDecodeError(0x81, packetBytes(0x30, [0x00]), version: .v3_1_1, mentioning: "topic name length")
    }
}

@Suite("MQTTPacketDecoder: PUBLISH, SUBSCRIBE and UNSUBSCRIBE errors")
struct MQTTPublishSubscribeErrorTests {
    @Test func publishTopicRules() {
        expectDecodeError(0x82, packetBytes(0x30, mqttString("")), version: .v3_1_1, mentioning: "empty")
        expectDecodeError(0x82, packetBytes(0x30, mqttString("") + [0x00]), version: .v5, mentioning: "topic alias")
        expectDecodeError(0x82, packetBytes(0x30, mqttString("a/+")), version: .v3_1_1, mentioning: "wildcard")
        expectDecodeError(0x82, packetBytes(0x30, mqttString("#") + [0x00]), version: .v5, mentioning: "wildcard")
        expectDecodeError(0x82, packetBytes(0x30, mqttString("a/b#")), version: .v3_1_1)
    }

    @Test func packetIdentifierZero() {
        expectDecodeError(0x81, packetBytes(0x32, mqttString("a") + [0x00, 0x00]), version: .v3_1_1, mentioning: "packet identifier")
        expectDecodeError(0x82, packetBytes(0x32, mqttString("a") + [0x00, 0x00, 0x00]), version: .v5, mentioning: "packet identifier")
        expectDecodeError(0x81, [0x40, 0x02, 0x00, 0x00], version: .v3_1_1)
        expectDecodeError(0x82, [0x40, 0x02, 0x00, 0x00], version: .v5)
        expectDecodeError(0x82, packetBytes(0x82, [0x00, 0x00, 0x00] + mqttString("a") + [0x00]), version: .v5)
        expectDecodeError(0x81, packetBytes(0xA2, [0x00, 0x00] + mqttString("a")), version: .v3_1_1)
    }

    @Test func publishPacketIdentifierMissing() {
        expectDecodeError(0x81, packetBytes(0x32, mqttString("a") + [0x00]), version: .v3_1_1, mentioning: "packet identifier")
    }

    @Test func subscribeWithoutSubscriptions() {
        expectDecodeError(0x82, [0x82, 0x02, 0x00, 0x01], version: .v3_1_1, mentioning: "at least one")
        expectDecodeError(0x82, [0x82, 0x03, 0x00, 0x01, 0x00], version: .v5, mentioning: "at least one")
    }

    @Test func v311SubscriptionOptions() {
        let subscribe = { (options: UInt8) in packetBytes(0x82, [0x00, 0x01] + mqttString("a") + [options]) }
        expectDecodeError(0x81, subscribe(0x03), version: .v3_1_1, mentioning: "QoS is 3")
        expectDecodeError(0x81, subscribe(0x04), version: .v3_1_1, mentioning: "reserved")
        expectDecodeError(0x81, subscribe(0x80), version: .v3_1_1, mentioning: "reserved")
        expectDecodeError(0x81, packetBytes(0x82, [0x00, 0x01] + mqttString("a")), version: .v3_1_1, mentioning: "subscription options")
    }

    @Test func v5SubscriptionOptions() {
        let subscribe = { (options: UInt8) in packetBytes(0x82, [0x00, 0x01, 0x00] + mqttString("a") + [options]) }
        expectDecodeError(0x81, subscribe(0x40), version: .v5, mentioning: "reserved")
        expectDecodeError(0x81, subscribe(0x80), version: .v5, mentioning: "reserved")
        expectDecodeError(0x82, subscribe(0x03), version: .v5, mentioning: "QoS is 3")
        expectDecodeError(0x82, subscribe(0x30), version: .v5, mentioning: "retain handling is 3")
        #expect(decodeError(subscribe(0x2E), version: .v5) == nil)
    }

    @Test func unsubscribeWithoutFilters() {
        expectDecodeError(0x82, [0xA2, 0x02, 0x00, 0x01], version: .v3_1_1, mentioning: "at least one")
        expectDecodeError(0x82, [0xA2, 0x03, 0x00, 0x01, 0x00], version: .v5, mentioning: "at least one")
    }

    @Test func subAckAndUnsubAckWithoutCodes() {
        expectDecodeError(0x82, [0x90, 0x02, 0x00, 0x01], version: .v3_1_1)
        expectDecodeError(0x82, [0xB0, 0x03, 0x00, 0x01, 0x00], version: .v5)
        expectDecodeError(0x81, [0xB0, 0x03, 0x00, 0x01, 0x00], version: .v3_1_1, mentioning: "unexpected")
    }
}

@Suite("MQTTPacketDecoder: acks, DISCONNECT and PING lengths")
struct MQTTShortPacketErrorTests {
    @Test func v311AcksAreExactlyTwoBytes() {
        expectDecodeError(0x81, [0x40, 0x03, 0x00, 0x01, 0x00], version: .v3_1_1, mentioning: "unexpected")
        expectDecodeError(0x81, [0x62, 0x01, 0x00], version: .v3_1_1, mentioning: "packet identifier runs past")
    }

    @Test func v5AckPropertiesPastTheEnd() {
        expectDecodeError(0x81, [0x40, 0x04, 0x00, 0x01, 0x00, 0x03], version: .v5, mentioning: "properties")
    }

    @Test func disconnect() {
        expectDecodeError(0x81, [0xE0, 0x01, 0x00], version: .v3_1_1, mentioning: "unexpected")
        expectDecodeError(0x81, [0xE0, 0x03, 0x00, 0x00, 0x00], version: .v5, mentioning: "unexpected")
    }

    @Test func pingsHaveNoBody() {
        expectDecodeError(0x81, [0xC0, 0x01, 0x00], version: .v5)
        expectDecodeError(0x81, [0xD0, 0x01, 0x00], version: .v3_1_1)
    }

    @Test func connAckFlags() {
        expectDecodeError(0x81, [0x20, 0x02, 0x02, 0x00], version: .v3_1_1, mentioning: "reserved")
        expectDecodeError(0x81, [0x20, 0x01, 0x00], version: .v3_1_1, mentioning: "reason code")
    }
}
