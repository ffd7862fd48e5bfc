import NIOCore

/// An MQTT 5 AUTH packet, for extended (challenge/response) authentication. MQTT 3.1.1 has no AUTH.
package struct MQTTAuth: Sendable, Equatable {
    /// 0x00 success, 0x18 continue authentication, 0x19 re-authenticate.
    package var reasonCode: UInt8
    /// Properties (authentication method and data, reason string, user properties).
    package var properties: MQTTProperties

    /// Creates an AUTH packet.
    package init(reasonCode: UInt8 = 0, properties: MQTTProperties = .init()) {
        self.reasonCode = reasonCode
        self.properties = properties
    }
}

extension MQTTAuth {
    /// Always written in the MQTT 5 layout, since only MQTT 5 has AUTH.
    func write(into buffer: inout ByteBuffer) {
        writeReasonAndProperties(
            type: .auth,
            reasonCode: reasonCode,
            properties: properties,
            version: .v5,
            omitsEmptyProperties: false,
            into: &buffer
        )
    }

    static func read(from reader: inout MQTTPacketReader) throws(MQTTCodecError) -> MQTTAuth {
        let (reasonCode, properties) = try readReasonAndProperties(from: &reader, allowedIn: .auth, version: .v5)
        return MQTTAuth(reasonCode: reasonCode, properties: properties)
    }
}
