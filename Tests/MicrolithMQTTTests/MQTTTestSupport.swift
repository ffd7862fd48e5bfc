import MicrolithMQTT
import NIOCore
import Testing

/// A length-prefixed UTF-8 string as MQTT writes it.
func mqttString(_ string: String) -> [UInt8] {
    let bytes = Array(string.utf8)
    return [UInt8(bytes.count >> 8), UInt8(bytes.count & 0xFF)] + bytes
}

/// A variable byte integer.
func variableByteInteger(_ value: Int) -> [UInt8] {
    var rest = value
    var bytes: [UInt8] = []
    repeat {
        var byte = UInt8(rest & 0x7F)
        rest >>= 7
        if rest > 0 { byte |= 0x80 }
        bytes.append(byte)
    } while rest > 0
    return bytes
}

/// A whole packet: the first byte, the remaining length, the body.
func packetBytes(_ first: UInt8, _ body: [UInt8]) -> [UInt8] {
    [first] + variableByteInteger(body.count) + body
}

/// A property section: its length, then the properties' bytes.
func propertySection(_ properties: [UInt8]) -> [UInt8] {
    variableByteInteger(properties.count) + properties
}

func byteBuffer(_ string: String) -> ByteBuffer {
    ByteBuffer(string: string)
}

func encodedBytes(_ packet: MQTTPacket, _ version: MQTTProtocolVersion) -> [UInt8] {
    Array(packet.encoded(version: version).readableBytesView)
}

/// Decodes exactly one packet that must fill `bytes`.
func decodeOne(
    _ bytes: [UInt8],
    version: MQTTProtocolVersion?,
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> MQTTPacket? {
    var decoder = MQTTPacketDecoder(version: version)
    var buffer = ByteBuffer(bytes: bytes)
    let packet = try decoder.decode(&buffer)
    #expect(buffer.readableBytes == 0, "bytes left after the packet", sourceLocation: sourceLocation)
    return packet
}

/// The error decoding `bytes` throws, or nil if every packet in it decodes.
func decodeError(_ bytes: [UInt8], version: MQTTProtocolVersion?, maximumPacketSize: Int = 1 << 20) -> MQTTCodecError? {
    var decoder = MQTTPacketDecoder(maximumPacketSize: maximumPacketSize, version: version)
    var buffer = ByteBuffer(bytes: bytes)
    do {
        while try decoder.decode(&buffer) != nil {}
        return nil
    } catch {
        return error
    }
}

/// Expects decoding `bytes` to fail with `reasonCode`, and the message to mention `mentioning` if given.
func expectDecodeError(
    _ reasonCode: UInt8,
    _ bytes: [UInt8],
    version: MQTTProtocolVersion?,
    mentioning: String? = nil,
    maximumPacketSize: Int = 1 << 20,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    guard let error = decodeError(bytes, version: version, maximumPacketSize: maximumPacketSize) else {
        Issue.record("expected error 0x\(String(reasonCode, radix: 16)), but it decoded", sourceLocation: sourceLocation)
        return
    }
    #expect(error.reasonCode == reasonCode, "\(error)", sourceLocation: sourceLocation)
    if let mentioning {
        #expect(error.message.contains(mentioning), "\(error)", sourceLocation: sourceLocation)
    }
}
