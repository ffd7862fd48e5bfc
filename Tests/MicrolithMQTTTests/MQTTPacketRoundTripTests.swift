import MicrolithMQTT
import NIOCore
import Testing

@Suite("Encode then decode gives back the packet")
struct MQTTPacketRoundTripTests {
    @Test(arguments: [MQTTProtocolVersion.v3_1_1, .v5])
    func everyPacketType(version: MQTTProtocolVersion) throws {
        for packet in MQTTPacketSamples.all(version) {
            var decoder = MQTTPacketDecoder(version: version)
            var bytes = packet.encoded(version: version)
            let decoded = try decoder.decode(&bytes)
            #expect(decoded == packet)
            #expect(bytes.readableBytes == 0)
        }
    }

    @Test(arguments: [MQTTProtocolVersion.v3_1_1, .v5])
    func everyPacketTypeCovered(version: MQTTProtocolVersion) {
        var kinds = Set<String>()
        for packet in MQTTPacketSamples.all(version) {
            switch packet {
            case .connect: kinds.insert("connect")
            case .connack: kinds.insert("connack")
            case .publish: kinds.insert("publish")
            case .ack(let ack): kinds.insert("\(ack.kind)")
            case .subscribe: kinds.insert("subscribe")
            case .suback: kinds.insert("suback")
            case .unsubscribe: kinds.insert("unsubscribe")
            case .unsuback: kinds.insert("unsuback")
            case .pingreq: kinds.insert("pingreq")
            case .pingresp: kinds.insert("pingresp")
            case .disconnect: kinds.insert("disconnect")
            case .auth: kinds.insert("auth")
            }
        }
        #expect(kinds.count == (version == .v5 ? 15 : 14))
    }

    @Test func connectSetsTheDecodersVersion() throws {
        for version in [MQTTProtocolVersion.v3_1_1, .v5] {
            var decoder = MQTTPacketDecoder()
            var bytes = ByteBuffer()
            for packet in MQTTPacketSamples.all(version) where packet != .connack(MQTTConnAck()) {
                packet.encode(version: version, into: &bytes)
            }
            var decoded: [MQTTPacket] = []
            while let packet = try decoder.decode(&bytes) { decoded.append(packet) }
            #expect(decoder.version == version)
            #expect(decoded == MQTTPacketSamples.all(version).filter { $0 != .connack(MQTTConnAck()) })
        }
    }

    @Test func v311EncodingDropsWhatV311CannotCarry() throws {
        for packet in MQTTPacketSamples.v5 {
            if case .auth = packet { continue }
            var decoder = MQTTPacketDecoder(version: .v3_1_1)
            var bytes = packet.encoded(version: .v3_1_1)
            if case .connect = packet {
                // A CONNECT is always written in its own version.
                decoder.version = .v5
            }
            guard let decoded = try decoder.decode(&bytes) else {
                Issue.record("\(packet) did not decode")
                continue
            }
            #expect(bytes.readableBytes == 0)
            switch (packet, decoded) {
            case (.connack(let sent), .connack(let received)):
                #expect(received.properties.isEmpty && received.reasonCode == sent.reasonCode)
            case (.publish(var sent), .publish(let received)):
                sent.properties = MQTTProperties()
                #expect(received == sent)
            case (.ack(let sent), .ack(let received)):
                #expect(received == MQTTAck(kind: sent.kind, packetID: sent.packetID))
            case (.unsuback(let sent), .unsuback(let received)):
                #expect(received == MQTTUnsubAck(packetID: sent.packetID))
            case (.disconnect, .disconnect(let received)):
                #expect(received == MQTTDisconnect())
            case (.subscribe(let sent), .subscribe(let received)):
                #expect(received.subscriptions.map(\.qos) == sent.subscriptions.map(\.qos))
                #expect(received.properties.isEmpty)
            default:
                break
            }
        }
    }

    @Test func propertiesIsEmpty() {
        #expect(MQTTProperties().isEmpty)
        #expect(!MQTTPacketSamples.connackProperties.isEmpty)
        var properties = MQTTProperties()
        properties.subscriptionIdentifiers = [1]
        #expect(!properties.isEmpty)
    }
}
