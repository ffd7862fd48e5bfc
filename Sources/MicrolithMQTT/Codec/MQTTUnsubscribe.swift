import NIOCore

/// An UNSUBSCRIBE packet: one or more topic filters to remove.
package struct MQTTUnsubscribe: Sendable, Equatable {
    /// The packet identifier, echoed by the UNSUBACK.
    package var packetID: UInt16
    /// The topic filters, at least one (not validated by the decoder).
    package var topicFilters: [String]
    /// MQTT 5 properties (user properties).
    package var properties: MQTTProperties

    /// Creates an UNSUBSCRIBE packet.
    package init(packetID: UInt16, topicFilters: [String], properties: MQTTProperties = .init()) {
        self.packetID = packetID
        self.topicFilters = topicFilters
        self.properties = properties
    }
}

extension MQTTUnsubscribe {
    func write(version: MQTTProtocolVersion, into buffer: inout ByteBuffer) {
        let propertiesLength = version == .v5 ? properties.encodedLength : 0
        var length = 2
        if version == .v5 { length += MQTTProperties.sectionSize(propertiesLength) }
        for filter in topicFilters { length += MQTTWire.stringSize(filter) }
        buffer.writeMQTTFixedHeader(.unsubscribe, flags: MQTTPacketType.unsubscribe.requiredFlags, remainingLength: length)
        buffer.writeInteger(packetID)
        if version == .v5 { properties.write(encodedLength: propertiesLength, into: &buffer) }
        for filter in topicFilters { buffer.writeMQTTString(filter) }
    }

    static func read(from reader: inout MQTTPacketReader, version: MQTTProtocolVersion) throws(MQTTCodecError) -> MQTTUnsubscribe {
        let packetID = try reader.readPacketID(version: version)
        let properties = version == .v5 ? try MQTTProperties.read(from: &reader, allowedIn: .unsubscribe) : MQTTProperties()
        var filters: [String] = []
        while !reader.isAtEnd { filters.append(try reader.readString("topic filter")) }
        if filters.isEmpty { throw reader.protocolError("UNSUBSCRIBE must contain at least one topic filter") }
        return MQTTUnsubscribe(packetID: packetID, topicFilters: filters, properties: properties)
    }
}
