import MicrolithMQTT
import NIOCore
import Testing

@Suite("CONNECT and CONNACK: byte-exact vectors")
struct MQTTConnectTests {
    // Flags: user name 0x80, password 0x40, will retain 0x20, will QoS 1 (0x08), will 0x04, clean start 0x02.
    static let v311Bytes: [UInt8] =
        [0x10, 31] + mqttString("MQTT") + [0x04, 0xEE, 0x00, 0x3C] + mqttString("c1")
        + mqttString("w/t") + mqttString("bye") + mqttString("u") + mqttString("pw")

    static let v311Packet = MQTTPacket.connect(
        MQTTConnect(
            version: .v3_1_1,
            clientID: "c1",
            cleanStart: true,
            keepAlive: 60,
            username: "u",
            password: byteBuffer("pw"),
            will: MQTTWill(topic: "w/t", payload: byteBuffer("bye"), qos: .atLeastOnce, retain: true)
        )
    )

    static let v5Bytes: [UInt8] =
        [0x10, 50] + mqttString("MQTT") + [0x05, 0xEE, 0x00, 0x3C]
        // Properties: session expiry interval 120, receive maximum 10.
        + [0x08, 0x11, 0x00, 0x00, 0x00, 0x78, 0x21, 0x00, 0x0A]
        + mqttString("c1")
        // Will properties: content type "t", will delay interval 5.
        + [0x09, 0x03, 0x00, 0x01, 0x74, 0x18, 0x00, 0x00, 0x00, 0x05]
        + mqttString("w/t") + mqttString("bye") + mqttString("u") + mqttString("pw")

    static var v5Packet: MQTTPacket {
        var properties = MQTTProperties()
        properties.sessionExpiryInterval = 120
        properties.receiveMaximum = 10
        var willProperties = MQTTProperties()
        willProperties.contentType = "t"
        willProperties.willDelayInterval = 5
        return .connect(
            MQTTConnect(
                version: .v5,
                clientID: "c1",
                cleanStart: true,
                keepAlive: 60,
                username: "u",
                password: byteBuffer("pw"),
                will: MQTTWill(topic: "w/t", payload: byteBuffer("bye"), qos: .atLeastOnce, retain: true, properties: willProperties),
                properties: properties
            )
        )
    }

    @Test func encodesV311Connect() {
        #expect(encodedBytes(Self.v311Packet, .v3_1_1) == Self.v311Bytes)
    }

    @Test func decodesV311ConnectAndLearnsTheVersion() throws {
        var decoder = MQTTPacketDecoder()
        var bytes = ByteBuffer(bytes: Self.v311Bytes)
        #expect(decoder.version == nil)
        #expect(try decoder.decode(&bytes) == Self.v311Packet)
        #expect(decoder.version == .v3_1_1)
        #expect(bytes.readableBytes == 0)
    }

    @Test func encodesV5Connect() {
        #expect(encodedBytes(Self.v5Packet, .v5) == Self.v5Bytes)
    }

    @Test func decodesV5ConnectAndLearnsTheVersion() throws {
        var decoder = MQTTPacketDecoder()
        var bytes = ByteBuffer(bytes: Self.v5Bytes)
        #expect(try decoder.decode(&bytes) == Self.v5Packet)
        #expect(decoder.version == .v5)
    }

    @Test func connectIsWrittenInItsOwnVersion() {
        #expect(encodedBytes(Self.v311Packet, .v5) == Self.v311Bytes)
        #expect(encodedBytes(Self.v5Packet, .v3_1_1) == Self.v5Bytes)
    }

    @Test func minimalConnectWithEmptyClientID() throws {
        let bytes = [0x10, 12] + mqttString("MQTT") + [0x04, 0x00, 0x00, 0x00] + mqttString("")
        let connect = MQTTConnect(version: .v3_1_1, clientID: "", cleanStart: false, keepAlive: 0)
        #expect(encodedBytes(.connect(connect), .v3_1_1) == bytes)
        #expect(try decodeOne(bytes, version: nil) == .connect(connect))
    }

    @Test func v5PasswordWithoutUserName() throws {
        let connect = MQTTConnect(version: .v5, clientID: "x", password: byteBuffer("secret"))
        let bytes = encodedBytes(.connect(connect), .v5)
        #expect(bytes[9] == 0x42)  // password flag and clean start, no user name flag
        #expect(try decodeOne(bytes, version: nil) == .connect(connect))
    }

    @Test func v311ConnAck() throws {
        let bytes: [UInt8] = [0x20, 0x02, 0x01, 0x00]
        let connack = MQTTPacket.connack(MQTTConnAck(sessionPresent: true, reasonCode: 0))
        #expect(encodedBytes(connack, .v3_1_1) == bytes)
        #expect(try decodeOne(bytes, version: .v3_1_1) == connack)
        let refused = MQTTPacket.connack(MQTTConnAck(reasonCode: 5))
        #expect(encodedBytes(refused, .v3_1_1) == [0x20, 0x02, 0x00, 0x05])
    }

    @Test func v5ConnAckWithProperties() throws {
        // Assigned client identifier "id" (0x12), maximum QoS 1 (0x24).
        let bytes: [UInt8] = [0x20, 0x0A, 0x00, 0x00, 0x07, 0x12, 0x00, 0x02, 0x69, 0x64, 0x24, 0x01]
        var properties = MQTTProperties()
        properties.assignedClientIdentifier = "id"
        properties.maximumQoS = 1
        let connack = MQTTPacket.connack(MQTTConnAck(properties: properties))
        #expect(encodedBytes(connack, .v5) == bytes)
        #expect(try decodeOne(bytes, version: .v5) == connack)
        #expect(encodedBytes(.connack(MQTTConnAck(reasonCode: 0x87)), .v5) == [0x20, 0x03, 0x00, 0x87, 0x00])
    }

    @Test func connAckWithoutAKnownVersionIsInferredFromItsLength() throws {
        #expect(try decodeOne([0x20, 0x02, 0x01, 0x00], version: nil) == .connack(MQTTConnAck(sessionPresent: true)))
        #expect(try decodeOne([0x20, 0x03, 0x00, 0x00, 0x00], version: nil) == .connack(MQTTConnAck()))
        var properties = MQTTProperties()
        properties.maximumQoS = 1
        #expect(
            try decodeOne([0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x01], version: nil)
                == .connack(MQTTConnAck(properties: properties))
        )
    }
}
