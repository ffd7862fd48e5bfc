import MicrolithMQTT
import NIOCore
import Testing

@Suite("DISCONNECT, AUTH, PINGREQ, PINGRESP: byte-exact vectors")
struct MQTTDisconnectTests {
    @Test func v311Disconnect() throws {
        #expect(encodedBytes(.disconnect(MQTTDisconnect()), .v3_1_1) == [0xE0, 0x00])
        #expect(encodedBytes(.disconnect(MQTTDisconnect(reasonCode: 0x8E)), .v3_1_1) == [0xE0, 0x00])
        #expect(try decodeOne([0xE0, 0x00], version: .v3_1_1) == .disconnect(MQTTDisconnect()))
    }

    @Test func v5NormalDisconnectIsEmpty() throws {
        #expect(encodedBytes(.disconnect(MQTTDisconnect()), .v5) == [0xE0, 0x00])
        #expect(try decodeOne([0xE0, 0x00], version: .v5) == .disconnect(MQTTDisconnect()))
    }

    @Test func v5DisconnectWithReasonOnly() throws {
        #expect(encodedBytes(.disconnect(MQTTDisconnect(reasonCode: 0x04)), .v5) == [0xE0, 0x01, 0x04])
        #expect(try decodeOne([0xE0, 0x01, 0x04], version: .v5) == .disconnect(MQTTDisconnect(reasonCode: 0x04)))
        #expect(try decodeOne([0xE0, 0x02, 0x04, 0x00], version: .v5) == .disconnect(MQTTDisconnect(reasonCode: 0x04)))
    }

    @Test func v5DisconnectWithProperties() throws {
        let bytes: [UInt8] = [0xE0, 0x07, 0x8E, 0x05, 0x11, 0x00, 0x00, 0x00, 0x00]
        var properties = MQTTProperties()
        properties.sessionExpiryInterval = 0
        let disconnect = MQTTPacket.disconnect(MQTTDisconnect(reasonCode: 0x8E, properties: properties))
        #expect(encodedBytes(disconnect, .v5) == bytes)
        #expect(try decodeOne(bytes, version: .v5) == disconnect)
    }

    @Test func auth() throws {
        #expect(encodedBytes(.auth(MQTTAuth()), .v5) == [0xF0, 0x00])
        #expect(try decodeOne([0xF0, 0x00], version: .v5) == .auth(MQTTAuth()))
        let bytes: [UInt8] = [0xF0, 0x06, 0x18, 0x04, 0x15, 0x00, 0x01, 0x6D]
        var properties = MQTTProperties()
        properties.authenticationMethod = "m"
        let auth = MQTTPacket.auth(MQTTAuth(reasonCode: 0x18, properties: properties))
        #expect(encodedBytes(auth, .v5) == bytes)
        #expect(try decodeOne(bytes, version: .v5) == auth)
        // AUTH exists only in MQTT 5, so it is always written in that layout.
        #expect(encodedBytes(auth, .v3_1_1) == bytes)
        #expect(encodedBytes(.auth(MQTTAuth(reasonCode: 0x19)), .v5) == [0xF0, 0x02, 0x19, 0x00])
    }

    @Test func pings() throws {
        for version in [MQTTProtocolVersion.v3_1_1, .v5] {
            #expect(encodedBytes(.pingreq, version) == [0xC0, 0x00])
            #expect(encodedBytes(.pingresp, version) == [0xD0, 0x00])
            #expect(try decodeOne([0xC0, 0x00], version: version) == .pingreq)
            #expect(try decodeOne([0xD0, 0x00], version: version) == .pingresp)
        }
    }
}
