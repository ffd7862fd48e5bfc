package import NIOCore

/// A CONNECT packet: the first packet a client sends, which also fixes the protocol version.
package struct MQTTConnect: Sendable, Equatable {
    /// The protocol version the client speaks; a CONNECT is always encoded in its own version.
    package var version: MQTTProtocolVersion
    /// The client identifier; any UTF-8 string, possibly empty (the server then assigns one or refuses).
    package var clientID: String
    /// MQTT 5 Clean Start; MQTT 3.1.1 Clean Session.
    package var cleanStart: Bool
    /// The keep alive interval in seconds; 0 turns keep alive off.
    package var keepAlive: UInt16
    /// The user name, if any.
    package var username: String?
    /// The password (binary data), if any. MQTT 3.1.1 allows it only together with a user name.
    package var password: ByteBuffer?
    /// The will message, if any.
    package var will: MQTTWill?
    /// MQTT 5 CONNECT properties.
    package var properties: MQTTProperties

    /// Creates a CONNECT packet.
    package init(
        version: MQTTProtocolVersion = .v5,
        clientID: String,
        cleanStart: Bool = true,
        keepAlive: UInt16 = 60,
        username: String? = nil,
        password: ByteBuffer? = nil,
        will: MQTTWill? = nil,
        properties: MQTTProperties = .init()
    ) {
        self.version = version
        self.clientID = clientID
        self.cleanStart = cleanStart
        self.keepAlive = keepAlive
        self.username = username
        self.password = password
        self.will = will
        self.properties = properties
    }
}

extension MQTTConnect {
    private static let protocolName = Array("MQTT".utf8)
    private static let mqtt31ProtocolName = Array("MQIsdp".utf8)

    /// Writes the whole packet in `version`'s layout.
    func write(into buffer: inout ByteBuffer) {
        let isV5 = version == .v5
        let propertiesLength = isV5 ? properties.encodedLength : 0
        let willPropertiesLength = isV5 ? (will?.properties.encodedLength ?? 0) : 0
        // Protocol name, level, flags, keep alive.
        var length = 2 + Self.protocolName.count + 1 + 1 + 2
        if isV5 { length += MQTTProperties.sectionSize(propertiesLength) }
        length += MQTTWire.stringSize(clientID)
        if let will {
            if isV5 { length += MQTTProperties.sectionSize(willPropertiesLength) }
            length += MQTTWire.stringSize(will.topic) + 2 + will.payload.readableBytes
        }
        if let username { length += MQTTWire.stringSize(username) }
        if let password { length += 2 + password.readableBytes }

        var flags: UInt8 = 0
        if cleanStart { flags |= 0x02 }
        if let will {
            flags |= 0x04 | will.qos.rawValue << 3
            if will.retain { flags |= 0x20 }
        }
        if password != nil { flags |= 0x40 }
        if username != nil { flags |= 0x80 }

        buffer.writeMQTTFixedHeader(.connect, remainingLength: length)
        buffer.writeInteger(UInt16(Self.protocolName.count))
        buffer.writeBytes(Self.protocolName)
        buffer.writeInteger(version.rawValue)
        buffer.writeInteger(flags)
        buffer.writeInteger(keepAlive)
        if isV5 { properties.write(encodedLength: propertiesLength, into: &buffer) }
        buffer.writeMQTTString(clientID)
        if let will {
            if isV5 { will.properties.write(encodedLength: willPropertiesLength, into: &buffer) }
            buffer.writeMQTTString(will.topic)
            buffer.writeMQTTBinary(will.payload)
        }
        if let username { buffer.writeMQTTString(username) }
        if let password { buffer.writeMQTTBinary(password) }
    }

    /// Reads a CONNECT body; its protocol level decides the layout.
    static func read(from reader: inout MQTTPacketReader) throws(MQTTCodecError) -> MQTTConnect {
        let nameLength = Int(try reader.readUInt16("protocol name length"))
        let name = try reader.readSlice(length: nameLength, "protocol name")
        let version: MQTTProtocolVersion
        if name.readableBytesView.elementsEqual(protocolName) {
            let level = try reader.readByte("protocol level")
            switch level {
            case 4: version = .v3_1_1
            case 5: version = .v5
            default:
                throw .unsupportedProtocolVersion(
                    "CONNECT: protocol level \(level) is not supported (4 = MQTT 3.1.1 and 5 = MQTT 5 are)"
                )
            }
        } else if name.readableBytesView.elementsEqual(mqtt31ProtocolName) {
            throw .unsupportedProtocolVersion("CONNECT: MQTT 3.1 (protocol name \"MQIsdp\") is not supported; use MQTT 3.1.1 or 5")
        } else {
            throw reader.malformed(
                "protocol name must be \"MQTT\", not \(MQTTPacketReader.quoted(String(decoding: name.readableBytesView.prefix(64), as: UTF8.self)))")
        }
        let isV5 = version == .v5

        let flags = try reader.readByte("connect flags")
        if flags & 0x01 != 0 { throw reader.malformed("the reserved connect flag (bit 0) is set") }
        let hasWill = flags & 0x04 != 0
        let willQoSBits = (flags >> 3) & 0x03
        let willRetain = flags & 0x20 != 0
        let hasPassword = flags & 0x40 != 0
        let hasUsername = flags & 0x80 != 0
        guard let willQoS = MQTTQoS(rawValue: willQoSBits) else { throw reader.malformed("will QoS is 3") }
        if !hasWill && (willQoSBits != 0 || willRetain) {
            throw reader.malformed("will QoS or will retain is set without the will flag")
        }
        if !isV5 && hasPassword && !hasUsername {
            throw reader.malformed("the password flag is set without the user name flag")
        }
        let keepAlive = try reader.readUInt16("keep alive")
        let properties = isV5 ? try MQTTProperties.read(from: &reader, allowedIn: .connect) : MQTTProperties()
        let clientID = try reader.readString("client identifier")

        var will: MQTTWill?
        if hasWill {
            let willProperties =
                isV5 ? try MQTTProperties.read(from: &reader, allowedIn: .will, label: "will properties") : MQTTProperties()
            let topic = try reader.readString("will topic")
            if !MQTTTopic.isValidTopicName(topic) {
                throw reader.protocolError("will topic \(MQTTPacketReader.quoted(topic)) is not a valid topic name")
            }
            let payload = try reader.readBinary("will payload")
            will = MQTTWill(topic: topic, payload: payload, qos: willQoS, retain: willRetain, properties: willProperties)
        }
        let username = hasUsername ? try reader.readString("user name") : nil
        let password = hasPassword ? try reader.readBinary("password") : nil
        try reader.expectEnd()
        return MQTTConnect(
            version: version,
            clientID: clientID,
            cleanStart: flags & 0x02 != 0,
            keepAlive: keepAlive,
            username: username,
            password: password,
            will: will,
            properties: properties
        )
    }
}
