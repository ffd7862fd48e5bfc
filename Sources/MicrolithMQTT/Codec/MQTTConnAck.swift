import NIOCore

/// A CONNACK packet: the server's answer to CONNECT.
package struct MQTTConnAck: Sendable, Equatable {
    /// Whether the server resumed a stored session.
    package var sessionPresent: Bool
    /// The MQTT 5 reason code (0 = success); in MQTT 3.1.1 the connect return code 0...5.
    package var reasonCode: UInt8
    /// MQTT 5 CONNACK properties.
    package var properties: MQTTProperties

    /// Creates a CONNACK packet.
    package init(sessionPresent: Bool = false, reasonCode: UInt8 = 0, properties: MQTTProperties = .init()) {
        self.sessionPresent = sessionPresent
        self.reasonCode = reasonCode
        self.properties = properties
    }
}

extension MQTTConnAck {
    func write(version: MQTTProtocolVersion, into buffer: inout ByteBuffer) {
        let propertiesLength = version == .v5 ? properties.encodedLength : 0
        let length = 2 + (version == .v5 ? MQTTProperties.sectionSize(propertiesLength) : 0)
        buffer.writeMQTTFixedHeader(.connack, remainingLength: length)
        buffer.writeInteger(UInt8(sessionPresent ? 1 : 0))
        buffer.writeInteger(reasonCode)
        if version == .v5 { properties.write(encodedLength: propertiesLength, into: &buffer) }
    }

    static func read(from reader: inout MQTTPacketReader, version: MQTTProtocolVersion) throws(MQTTCodecError) -> MQTTConnAck {
        let flags = try reader.readByte("acknowledge flags")
        if flags & 0xFE != 0 { throw reader.malformed("reserved acknowledge flags (bits 1-7) are set") }
        let reasonCode = try reader.readByte("reason code")
        let properties = version == .v5 ? try MQTTProperties.read(from: &reader, allowedIn: .connack) : MQTTProperties()
        try reader.expectEnd()
        return MQTTConnAck(sessionPresent: flags & 0x01 != 0, reasonCode: reasonCode, properties: properties)
    }
}
