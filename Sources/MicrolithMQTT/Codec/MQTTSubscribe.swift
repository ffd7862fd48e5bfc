import NIOCore

/// A SUBSCRIBE packet: one or more topic filters with their options.
package struct MQTTSubscribe: Sendable, Equatable {
    /// The packet identifier, echoed by the SUBACK.
    package var packetID: UInt16
    /// The subscriptions, at least one.
    package var subscriptions: [MQTTSubscription]
    /// MQTT 5 properties (at most one subscription identifier, user properties).
    package var properties: MQTTProperties

    /// Creates a SUBSCRIBE packet.
    package init(packetID: UInt16, subscriptions: [MQTTSubscription], properties: MQTTProperties = .init()) {
        self.packetID = packetID
        self.subscriptions = subscriptions
        self.properties = properties
    }
}

extension MQTTSubscribe {
    func write(version: MQTTProtocolVersion, into buffer: inout ByteBuffer) {
        let propertiesLength = version == .v5 ? properties.encodedLength : 0
        var length = 2
        if version == .v5 { length += MQTTProperties.sectionSize(propertiesLength) }
        for subscription in subscriptions { length += MQTTWire.stringSize(subscription.topicFilter) + 1 }
        buffer.writeMQTTFixedHeader(.subscribe, flags: MQTTPacketType.subscribe.requiredFlags, remainingLength: length)
        buffer.writeInteger(packetID)
        if version == .v5 { properties.write(encodedLength: propertiesLength, into: &buffer) }
        for subscription in subscriptions {
            buffer.writeMQTTString(subscription.topicFilter)
            buffer.writeInteger(subscription.optionsByte(version: version))
        }
    }

    static func read(from reader: inout MQTTPacketReader, version: MQTTProtocolVersion) throws(MQTTCodecError) -> MQTTSubscribe {
        let packetID = try reader.readPacketID(version: version)
        let properties = version == .v5 ? try MQTTProperties.read(from: &reader, allowedIn: .subscribe) : MQTTProperties()
        var subscriptions: [MQTTSubscription] = []
        while !reader.isAtEnd {
            let filter = try reader.readString("topic filter")
            let options = try reader.readByte("subscription options")
            subscriptions.append(try MQTTSubscription.read(topicFilter: filter, options: options, version: version, reader: reader))
        }
        if subscriptions.isEmpty { throw reader.protocolError("SUBSCRIBE must contain at least one topic filter") }
        return MQTTSubscribe(packetID: packetID, subscriptions: subscriptions, properties: properties)
    }
}
