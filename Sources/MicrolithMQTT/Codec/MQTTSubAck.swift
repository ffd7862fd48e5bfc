import NIOCore

/// A SUBACK packet: one reason code per subscription of the SUBSCRIBE it answers.
package struct MQTTSubAck: Sendable, Equatable {
    /// The SUBSCRIBE's packet identifier.
    package var packetID: UInt16
    /// The granted QoS (0, 1, 2) or a failure code (0x80 and up), in subscription order.
    /// MQTT 3.1.1 allows only 0, 1, 2 and 0x80.
    package var reasonCodes: [UInt8]
    /// MQTT 5 properties (reason string, user properties).
    package var properties: MQTTProperties

    /// Creates a SUBACK packet.
    package init(packetID: UInt16, reasonCodes: [UInt8], properties: MQTTProperties = .init()) {
        self.packetID = packetID
        self.reasonCodes = reasonCodes
        self.properties = properties
    }
}

extension MQTTSubAck {
    func write(version: MQTTProtocolVersion, into buffer: inout ByteBuffer) {
        let propertiesLength = version == .v5 ? properties.encodedLength : 0
        var length = 2 + reasonCodes.count
        if version == .v5 { length += MQTTProperties.sectionSize(propertiesLength) }
        buffer.writeMQTTFixedHeader(.suback, remainingLength: length)
        buffer.writeInteger(packetID)
        if version == .v5 { properties.write(encodedLength: propertiesLength, into: &buffer) }
        buffer.writeBytes(reasonCodes)
    }

    static func read(from reader: inout MQTTPacketReader, version: MQTTProtocolVersion) throws(MQTTCodecError) -> MQTTSubAck {
        let packetID = try reader.readPacketID(version: version)
        let properties = version == .v5 ? try MQTTProperties.read(from: &reader, allowedIn: .suback) : MQTTProperties()
        let codes = reader.readRest()
        if codes.readableBytes == 0 { throw reader.protocolError("SUBACK must contain at least one reason code") }
        return MQTTSubAck(packetID: packetID, reasonCodes: Array(codes.readableBytesView), properties: properties)
    }
}
