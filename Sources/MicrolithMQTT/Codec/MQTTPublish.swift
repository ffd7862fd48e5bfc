package import NIOCore

/// A PUBLISH packet, in either direction.
package struct MQTTPublish: Sendable, Equatable {
    /// The topic name. In MQTT 5 it may be empty when ``MQTTProperties/topicAlias`` is set.
    package var topic: String
    /// The application message.
    package var payload: ByteBuffer
    /// The QoS of this delivery.
    package var qos: MQTTQoS
    /// The retain flag.
    package var retain: Bool
    /// The DUP flag: this is a redelivery (QoS 1 and 2 only).
    package var dup: Bool
    /// The packet identifier; present exactly when `qos` is above 0 (nil is encoded as 0).
    package var packetID: UInt16?
    /// MQTT 5 PUBLISH properties.
    package var properties: MQTTProperties

    /// Creates a PUBLISH packet.
    package init(
        topic: String,
        payload: ByteBuffer,
        qos: MQTTQoS = .atMostOnce,
        retain: Bool = false,
        dup: Bool = false,
        packetID: UInt16? = nil,
        properties: MQTTProperties = .init()
    ) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.dup = dup
        self.packetID = packetID
        self.properties = properties
    }
}

extension MQTTPublish {
    func write(version: MQTTProtocolVersion, into buffer: inout ByteBuffer) {
        let isV5 = version == .v5
        let propertiesLength = isV5 ? properties.encodedLength : 0
        var length = MQTTWire.stringSize(topic) + payload.readableBytes
        if qos != .atMostOnce { length += 2 }
        if isV5 { length += MQTTProperties.sectionSize(propertiesLength) }
        var flags = qos.rawValue << 1
        if dup { flags |= 0x08 }
        if retain { flags |= 0x01 }
        buffer.writeMQTTFixedHeader(.publish, flags: flags, remainingLength: length)
        buffer.writeMQTTString(topic)
        if qos != .atMostOnce { buffer.writeInteger(packetID ?? 0) }
        if isV5 { properties.write(encodedLength: propertiesLength, into: &buffer) }
        buffer.writeImmutableBuffer(payload)
    }

    /// Reads a PUBLISH body; `flags` were checked with the fixed header (QoS is not 3, no DUP at QoS 0).
    static func read(
        from reader: inout MQTTPacketReader,
        flags: UInt8,
        version: MQTTProtocolVersion
    ) throws(MQTTCodecError) -> MQTTPublish {
        let qos = MQTTQoS(rawValue: (flags >> 1) & 0x03) ?? .atMostOnce
        var topicHasWildcard = false
        let topic = try reader.readString("topic name", containsWildcard: &topicHasWildcard)
        let packetID = qos == .atMostOnce ? nil : try reader.readPacketID(version: version)
        let properties = version == .v5 ? try MQTTProperties.read(from: &reader, allowedIn: .publish) : MQTTProperties()
        if topic.isEmpty {
            if properties.topicAlias == nil {
                throw reader.protocolError("topic name is empty" + (version == .v5 ? " and there is no topic alias" : ""))
            }
        } else if topicHasWildcard {
            throw reader.protocolError("topic name \(MQTTPacketReader.quoted(topic)) contains a wildcard character")
        }
        return MQTTPublish(
            topic: topic,
            payload: reader.readRest(),
            qos: qos,
            retain: flags & 0x01 != 0,
            dup: flags & 0x08 != 0,
            packetID: packetID,
            properties: properties
        )
    }
}
