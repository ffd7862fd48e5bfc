import NIOCore

/// An UNSUBACK packet: answers an UNSUBSCRIBE.
package struct MQTTUnsubAck: Sendable, Equatable {
    /// The UNSUBSCRIBE's packet identifier.
    package var packetID: UInt16
    /// MQTT 5: one reason code per topic filter. MQTT 3.1.1 encodes none (and decodes as empty).
    package var reasonCodes: [UInt8]
    /// MQTT 5 properties (reason string, user properties).
    package var properties: MQTTProperties

    /// Creates an UNSUBACK packet.
    package init(packetID: UInt16, reasonCodes: [UInt8] = [], properties: MQTTProperties = .init()) {
        self.packetID = packetID
        self.reasonCodes = reasonCodes
        self.properties = properties
    }
}

extension MQTTUnsubAck {
    func write(version: MQTTProtocolVersion, into buffer: inout ByteBuffer) {
        guard version == .v5 else {
            buffer.writeMQTTFixedHeader(.unsuback, remainingLength: 2)
            buffer.writeInteger(packetID)
            return
        }
        let propertiesLength = properties.encodedLength
        let length = 2 + MQTTProperties.sectionSize(propertiesLength) + reasonCodes.count
        buffer.writeMQTTFixedHeader(.unsuback, remainingLength: length)
        buffer.writeInteger(packetID)
        properties.write(encodedLength: propertiesLength, into: &buffer)
        buffer.writeBytes(reasonCodes)
    }

    static func read(from reader: inout MQTTPacketReader, version: MQTTProtocolVersion) throws(MQTTCodecError) -> MQTTUnsubAck {
        let packetID = try reader.readPacketID(version: version)
        guard version == .v5 else {
            try reader.expectEnd()
            return MQTTUnsubAck(packetID: packetID)
        }
        let properties = try MQTTProperties.read(from: &reader, allowedIn: .unsuback)
        let codes = reader.readRest()
        if codes.readableBytes == 0 { throw reader.protocolError("UNSUBACK must contain at least one reason code") }
        return MQTTUnsubAck(packetID: packetID, reasonCodes: Array(codes.readableBytesView), properties: properties)
    }
}
