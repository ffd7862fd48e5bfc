import MicrolithMQTT
import NIOCore
import Testing

@Suite("PUBACK, PUBREC, PUBREL, PUBCOMP: byte-exact vectors")
struct MQTTAckTests {
    static let kinds: [(MQTTAck.Kind, UInt8)] = [(.puback, 0x40), (.pubrec, 0x50), (.pubrel, 0x62), (.pubcomp, 0x70)]

    @Test func v311AcksAreTheIdentifierOnly() throws {
        for (kind, first) in Self.kinds {
            let bytes: [UInt8] = [first, 0x02, 0x00, 0x0A]
            let ack = MQTTPacket.ack(MQTTAck(kind: kind, packetID: 10))
            #expect(encodedBytes(ack, .v3_1_1) == bytes)
            #expect(try decodeOne(bytes, version: .v3_1_1) == ack)
            // Reason codes and properties do not exist in MQTT 3.1.1.
            var properties = MQTTProperties()
            properties.reasonString = "no"
            #expect(encodedBytes(.ack(MQTTAck(kind: kind, packetID: 10, reasonCode: 0x80, properties: properties)), .v3_1_1) == bytes)
        }
    }

    @Test func v5SuccessUsesTheShortForm() throws {
        for (kind, first) in Self.kinds {
            let ack = MQTTPacket.ack(MQTTAck(kind: kind, packetID: 10))
            #expect(encodedBytes(ack, .v5) == [first, 0x02, 0x00, 0x0A])
            #expect(try decodeOne([first, 0x02, 0x00, 0x0A], version: .v5) == ack)
            // The long forms of the same ack decode to the same value.
            #expect(try decodeOne([first, 0x03, 0x00, 0x0A, 0x00], version: .v5) == ack)
            #expect(try decodeOne([first, 0x04, 0x00, 0x0A, 0x00, 0x00], version: .v5) == ack)
        }
    }

    @Test func v5ReasonCodeWithoutProperties() throws {
        let bytes: [UInt8] = [0x50, 0x03, 0x00, 0x0A, 0x10]
        let ack = MQTTPacket.ack(MQTTAck(kind: .pubrec, packetID: 10, reasonCode: 0x10))
        #expect(encodedBytes(ack, .v5) == bytes)
        #expect(try decodeOne(bytes, version: .v5) == ack)
    }

    @Test func v5ReasonCodeAndReasonString() throws {
        let bytes: [UInt8] = [0x70, 0x08, 0x00, 0x0A, 0x92, 0x04, 0x1F, 0x00, 0x01, 0x78]
        var properties = MQTTProperties()
        properties.reasonString = "x"
        let ack = MQTTPacket.ack(MQTTAck(kind: .pubcomp, packetID: 10, reasonCode: 0x92, properties: properties))
        #expect(encodedBytes(ack, .v5) == bytes)
        #expect(try decodeOne(bytes, version: .v5) == ack)
    }

    @Test func v5SuccessWithPropertiesUsesTheLongForm() throws {
        var properties = MQTTProperties()
        properties.userProperties = [MQTTUserProperty(name: "a", value: "")]
        let ack = MQTTPacket.ack(MQTTAck(kind: .puback, packetID: 1, properties: properties))
        let bytes: [UInt8] = [0x40, 0x0A, 0x00, 0x01, 0x00, 0x06, 0x26] + mqttString("a") + mqttString("")
        #expect(encodedBytes(ack, .v5) == bytes)
        #expect(try decodeOne(bytes, version: .v5) == ack)
    }
}
