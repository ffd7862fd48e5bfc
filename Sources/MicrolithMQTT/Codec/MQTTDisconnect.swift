import NIOCore

/// A DISCONNECT packet. MQTT 3.1.1's has no body; MQTT 5's carries a reason code and properties.
package struct MQTTDisconnect: Sendable, Equatable {
    /// The MQTT 5 reason code (0 = normal disconnection); not encoded in MQTT 3.1.1.
    package var reasonCode: UInt8
    /// MQTT 5 properties (session expiry interval, reason string, server reference, user properties).
    package var properties: MQTTProperties

    /// Creates a DISCONNECT packet.
    package init(reasonCode: UInt8 = 0, properties: MQTTProperties = .init()) {
        self.reasonCode = reasonCode
        self.properties = properties
    }
}

extension MQTTDisconnect {
    /// MQTT 5 writes no body for reason 0 without properties, the reason code alone without properties, or both.
    func write(version: MQTTProtocolVersion, into buffer: inout ByteBuffer) {
        writeReasonAndProperties(
            type: .disconnect,
            reasonCode: reasonCode,
            properties: properties,
            version: version,
            omitsEmptyProperties: true,
            into: &buffer
        )
    }

    static func read(from reader: inout MQTTPacketReader, version: MQTTProtocolVersion) throws(MQTTCodecError) -> MQTTDisconnect {
        let (reasonCode, properties) = try readReasonAndProperties(from: &reader, allowedIn: .disconnect, version: version)
        return MQTTDisconnect(reasonCode: reasonCode, properties: properties)
    }
}

/// The body shared by DISCONNECT and AUTH: an optional reason code then optional properties.
/// DISCONNECT may leave out an empty property section after a reason code; AUTH writes it.
func writeReasonAndProperties(
    type: MQTTPacketType,
    reasonCode: UInt8,
    properties: MQTTProperties,
    version: MQTTProtocolVersion,
    omitsEmptyProperties: Bool,
    into buffer: inout ByteBuffer
) {
    let propertiesLength = version == .v5 ? properties.encodedLength : 0
    guard version == .v5, reasonCode != 0 || propertiesLength > 0 else {
        buffer.writeMQTTFixedHeader(type, remainingLength: 0)
        return
    }
    if propertiesLength == 0 && omitsEmptyProperties {
        buffer.writeMQTTFixedHeader(type, remainingLength: 1)
        buffer.writeInteger(reasonCode)
        return
    }
    buffer.writeMQTTFixedHeader(type, remainingLength: 1 + MQTTProperties.sectionSize(propertiesLength))
    buffer.writeInteger(reasonCode)
    properties.write(encodedLength: propertiesLength, into: &buffer)
}

/// Reads the body shared by DISCONNECT and AUTH. Remaining length 0 means reason 0; below 2, no properties.
/// MQTT 3.1.1 allows no body at all.
func readReasonAndProperties(
    from reader: inout MQTTPacketReader,
    allowedIn context: MQTTPropertyContext,
    version: MQTTProtocolVersion
) throws(MQTTCodecError) -> (UInt8, MQTTProperties) {
    var reasonCode: UInt8 = 0
    var properties = MQTTProperties()
    if version == .v5 && !reader.isAtEnd {
        reasonCode = try reader.readByte("reason code")
        if !reader.isAtEnd { properties = try MQTTProperties.read(from: &reader, allowedIn: context) }
    }
    try reader.expectEnd()
    return (reasonCode, properties)
}
