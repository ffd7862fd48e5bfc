import NIOCore

/// A PUBACK, PUBREC, PUBREL or PUBCOMP packet: the steps of QoS 1 and QoS 2 delivery.
package struct MQTTAck: Sendable, Equatable {
    /// Which of the four acknowledgements this is.
    package enum Kind: Sendable {
        /// PUBACK: answers a QoS 1 PUBLISH.
        case puback
        /// PUBREC: answers a QoS 2 PUBLISH.
        case pubrec
        /// PUBREL: answers PUBREC.
        case pubrel
        /// PUBCOMP: answers PUBREL.
        case pubcomp
    }

    /// Which acknowledgement this is.
    package var kind: Kind
    /// The packet identifier of the exchange.
    package var packetID: UInt16
    /// The MQTT 5 reason code (0 = success); not encoded in MQTT 3.1.1.
    package var reasonCode: UInt8
    /// MQTT 5 properties (reason string, user properties).
    package var properties: MQTTProperties

    /// Creates an acknowledgement.
    package init(kind: Kind, packetID: UInt16, reasonCode: UInt8 = 0, properties: MQTTProperties = .init()) {
        self.kind = kind
        self.packetID = packetID
        self.reasonCode = reasonCode
        self.properties = properties
    }
}

extension MQTTAck.Kind {
    var packetType: MQTTPacketType {
        switch self {
        case .puback: .puback
        case .pubrec: .pubrec
        case .pubrel: .pubrel
        case .pubcomp: .pubcomp
        }
    }
}

extension MQTTAck {
    /// MQTT 3.1.1 writes only the packet identifier. MQTT 5 writes the short form (identifier only) for reason 0 without
    /// properties, identifier and reason code for another reason without properties, and everything otherwise.
    func write(version: MQTTProtocolVersion, into buffer: inout ByteBuffer) {
        let type = kind.packetType
        let flags = type.requiredFlags
        guard version == .v5, reasonCode != 0 || !properties.isEmpty else {
            buffer.writeMQTTFixedHeader(type, flags: flags, remainingLength: 2)
            buffer.writeInteger(packetID)
            return
        }
        let propertiesLength = properties.encodedLength
        let length = propertiesLength == 0 ? 3 : 3 + MQTTProperties.sectionSize(propertiesLength)
        buffer.writeMQTTFixedHeader(type, flags: flags, remainingLength: length)
        buffer.writeInteger(packetID)
        buffer.writeInteger(reasonCode)
        if propertiesLength > 0 { properties.write(encodedLength: propertiesLength, into: &buffer) }
    }

    /// Reads an acknowledgement. In MQTT 5 the reason code (remaining length 2) and the properties
    /// (remaining length below 4) may be left out; MQTT 3.1.1 has only the identifier.
    static func read(from reader: inout MQTTPacketReader, kind: Kind, version: MQTTProtocolVersion) throws(MQTTCodecError) -> MQTTAck {
        let packetID = try reader.readPacketID(version: version)
        var reasonCode: UInt8 = 0
        var properties = MQTTProperties()
        if version == .v5 && !reader.isAtEnd {
            reasonCode = try reader.readByte("reason code")
            if !reader.isAtEnd { properties = try MQTTProperties.read(from: &reader, allowedIn: .ack) }
        }
        try reader.expectEnd()
        return MQTTAck(kind: kind, packetID: packetID, reasonCode: reasonCode, properties: properties)
    }
}
