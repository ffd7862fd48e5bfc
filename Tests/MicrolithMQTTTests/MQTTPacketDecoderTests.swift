import MicrolithMQTT
import NIOCore
import Testing

@Suite("MQTTPacketDecoder: incremental decoding")
struct MQTTPacketDecoderTests {
    @Test(arguments: [MQTTProtocolVersion.v3_1_1, .v5])
    func oneByteAtATime(version: MQTTProtocolVersion) throws {
        for packet in MQTTPacketSamples.all(version) {
            let bytes = encodedBytes(packet, version)
            var decoder = MQTTPacketDecoder(version: version)
            var input = ByteBuffer()
            var decoded: MQTTPacket?
            for (index, byte) in bytes.enumerated() {
                input.writeInteger(byte)
                let before = input
                decoded = try decoder.decode(&input)
                if index < bytes.count - 1 {
                    #expect(decoded == nil, "decoded \(packet) from \(index + 1) of \(bytes.count) bytes")
                    #expect(input == before && input.readerIndex == before.readerIndex, "an incomplete packet moved the buffer")
                }
            }
            #expect(decoded == packet)
            #expect(input.readableBytes == 0)
        }
    }

    @Test func twoPacketsInOneBuffer() throws {
        let first = MQTTPacket.publish(MQTTPublish(topic: "a", payload: byteBuffer("1"), qos: .atLeastOnce, packetID: 1))
        let second = MQTTPacket.ack(MQTTAck(kind: .puback, packetID: 7))
        var input = ByteBuffer()
        first.encode(version: .v5, into: &input)
        second.encode(version: .v5, into: &input)
        input.writeBytes([0x30])  // the start of a third
        var decoder = MQTTPacketDecoder(version: .v5)
        #expect(try decoder.decode(&input) == first)
        #expect(try decoder.decode(&input) == second)
        #expect(try decoder.decode(&input) == nil)
        #expect(input.readableBytes == 1)
        input.writeBytes([0x04] + mqttString("b") + [0x00])
        #expect(try decoder.decode(&input) == .publish(MQTTPublish(topic: "b", payload: ByteBuffer())))
    }

    @Test func aBufferThatDoesNotStartAtZero() throws {
        var input = ByteBuffer(bytes: [9, 9, 9])
        input.moveReaderIndex(forwardBy: 3)
        MQTTPacket.pingreq.encode(version: .v5, into: &input)
        var decoder = MQTTPacketDecoder(version: .v5)
        #expect(try decoder.decode(&input) == .pingreq)
        #expect(input.readableBytes == 0)
    }

    @Test func emptyBufferNeedsMore() throws {
        var decoder = MQTTPacketDecoder()
        var input = ByteBuffer()
        #expect(try decoder.decode(&input) == nil)
    }

    @Test func anErrorLeavesTheBufferUntouched() {
        var decoder = MQTTPacketDecoder(version: .v5)
        var input = ByteBuffer(bytes: [0x36, 0x00])
        #expect(throws: MQTTCodecError.self) { try decoder.decode(&input) }
        #expect(input.readerIndex == 0 && input.readableBytes == 2)
    }

    @Test func publishPayloadIsTheRestOfThePacket() throws {
        let bytes: [UInt8] = [0x30, 0x06] + mqttString("t") + [0x00, 0x00, 0x00]
        let decoded = try decodeOne(bytes, version: .v3_1_1)
        #expect(decoded == .publish(MQTTPublish(topic: "t", payload: ByteBuffer(bytes: [0, 0, 0]))))
    }

    @Test func errorDescriptionNamesCodeAndProblem() {
        let error = MQTTCodecError.malformedPacket("PUBLISH: topic name runs past the end of the packet")
        #expect(error.description == "MQTT malformed packet (0x81): PUBLISH: topic name runs past the end of the packet")
        #expect(MQTTCodecError.packetTooLarge("x").description == "MQTT packet too large (0x95): x")
        #expect(MQTTCodecError(reasonCode: 5, message: "y").description == "MQTT error (0x05): y")
    }
}
