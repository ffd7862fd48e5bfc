import NIOCore

extension MQTTProperties {
    /// Reads a property section: its variable byte integer length, then the properties, each checked to be
    /// known (else Malformed Packet), allowed in `context` (else Malformed Packet, as MQTT 5 section 2.2.2.2
    /// says), present at most once unless repeatable (else Protocol Error) and of a permitted value.
    static func read(
        from reader: inout MQTTPacketReader,
        allowedIn context: MQTTPropertyContext,
        label: String = "properties"
    ) throws(MQTTCodecError) -> MQTTProperties {
        let length = try reader.readVariableByteInteger("\(label) length")
        var properties = MQTTProperties()
        if length == 0 { return properties }
        let bytes = try reader.readSlice(length: length, label)
        var section = MQTTPacketReader(bytes, context: reader.context, section: label)
        var seen: UInt64 = 0
        while !section.isAtEnd {
            let raw = try section.readVariableByteInteger("property identifier")
            guard raw <= 0xFF, let id = MQTTPropertyID(rawValue: UInt8(raw)) else {
                throw section.malformed("unknown property identifier 0x\(String(raw, radix: 16, uppercase: true))")
            }
            guard id.allowedIn.contains(context) else {
                throw section.malformed("\(id.name) (0x\(String(id.rawValue, radix: 16, uppercase: true))) is not allowed here")
            }
            let repeatable = id == .userProperty || (id == .subscriptionIdentifier && context == .publish)
            if !repeatable {
                let bit = UInt64(1) << UInt64(id.rawValue)
                if seen & bit != 0 { throw section.protocolError("\(id.name) appears more than once") }
                seen |= bit
            }
            try properties.readValue(of: id, from: &section)
        }
        return properties
    }

    private mutating func readValue(of id: MQTTPropertyID, from reader: inout MQTTPacketReader) throws(MQTTCodecError) {
        let name = id.name
        switch id {
        case .payloadFormatIndicator: payloadFormatIndicator = try reader.readZeroOrOne(name)
        case .messageExpiryInterval: messageExpiryInterval = try reader.readUInt32(name)
        case .contentType: contentType = try reader.readString(name)
        case .responseTopic: responseTopic = try reader.readString(name)
        case .correlationData: correlationData = try reader.readBinary(name)
        case .subscriptionIdentifier:
            let value = try reader.readVariableByteInteger(name)
            if value == 0 { throw reader.protocolError("\(name) must not be 0") }
            subscriptionIdentifiers.append(value)
        case .sessionExpiryInterval: sessionExpiryInterval = try reader.readUInt32(name)
        case .assignedClientIdentifier: assignedClientIdentifier = try reader.readString(name)
        case .serverKeepAlive: serverKeepAlive = try reader.readUInt16(name)
        case .authenticationMethod: authenticationMethod = try reader.readString(name)
        case .authenticationData: authenticationData = try reader.readBinary(name)
        case .requestProblemInformation: requestProblemInformation = try reader.readZeroOrOne(name)
        case .willDelayInterval: willDelayInterval = try reader.readUInt32(name)
        case .requestResponseInformation: requestResponseInformation = try reader.readZeroOrOne(name)
        case .responseInformation: responseInformation = try reader.readString(name)
        case .serverReference: serverReference = try reader.readString(name)
        case .reasonString: reasonString = try reader.readString(name)
        case .receiveMaximum: receiveMaximum = try reader.readNonZeroUInt16(name)
        case .topicAliasMaximum: topicAliasMaximum = try reader.readUInt16(name)
        case .topicAlias: topicAlias = try reader.readNonZeroUInt16(name)
        case .maximumQoS: maximumQoS = try reader.readZeroOrOne(name)
        case .retainAvailable: retainAvailable = try reader.readZeroOrOne(name)
        case .userProperty:
            let key = try reader.readString("User Property name")
            let value = try reader.readString("User Property value")
            userProperties.append(MQTTUserProperty(name: key, value: value))
        case .maximumPacketSize:
            let value = try reader.readUInt32(name)
            if value == 0 { throw reader.protocolError("\(name) must not be 0") }
            maximumPacketSize = value
        case .wildcardSubscriptionAvailable: wildcardSubscriptionAvailable = try reader.readZeroOrOne(name)
        case .subscriptionIdentifierAvailable: subscriptionIdentifiersAvailable = try reader.readZeroOrOne(name)
        case .sharedSubscriptionAvailable: sharedSubscriptionAvailable = try reader.readZeroOrOne(name)
        }
    }

    /// The bytes of the properties themselves, without the length that precedes them.
    var encodedLength: Int {
        var length = 0
        if payloadFormatIndicator != nil { length += 2 }
        if messageExpiryInterval != nil { length += 5 }
        if let contentType { length += 1 + MQTTWire.stringSize(contentType) }
        if let responseTopic { length += 1 + MQTTWire.stringSize(responseTopic) }
        if let correlationData { length += 3 + correlationData.readableBytes }
        for identifier in subscriptionIdentifiers { length += 1 + MQTTWire.variableByteIntegerSize(identifier) }
        if sessionExpiryInterval != nil { length += 5 }
        if let assignedClientIdentifier { length += 1 + MQTTWire.stringSize(assignedClientIdentifier) }
        if serverKeepAlive != nil { length += 3 }
        if let authenticationMethod { length += 1 + MQTTWire.stringSize(authenticationMethod) }
        if let authenticationData { length += 3 + authenticationData.readableBytes }
        if requestProblemInformation != nil { length += 2 }
        if willDelayInterval != nil { length += 5 }
        if requestResponseInformation != nil { length += 2 }
        if let responseInformation { length += 1 + MQTTWire.stringSize(responseInformation) }
        if let serverReference { length += 1 + MQTTWire.stringSize(serverReference) }
        if let reasonString { length += 1 + MQTTWire.stringSize(reasonString) }
        if receiveMaximum != nil { length += 3 }
        if topicAliasMaximum != nil { length += 3 }
        if topicAlias != nil { length += 3 }
        if maximumQoS != nil { length += 2 }
        if retainAvailable != nil { length += 2 }
        for property in userProperties {
            length += 1 + MQTTWire.stringSize(property.name) + MQTTWire.stringSize(property.value)
        }
        if maximumPacketSize != nil { length += 5 }
        if wildcardSubscriptionAvailable != nil { length += 2 }
        if subscriptionIdentifiersAvailable != nil { length += 2 }
        if sharedSubscriptionAvailable != nil { length += 2 }
        return length
    }

    /// The whole property section: the length's bytes plus `encodedLength`.
    static func sectionSize(_ encodedLength: Int) -> Int {
        MQTTWire.variableByteIntegerSize(encodedLength) + encodedLength
    }

    /// Writes the property section: `encodedLength` (from ``encodedLength``) and the properties in identifier order.
    func write(encodedLength: Int, into buffer: inout ByteBuffer) {
        buffer.writeMQTTVariableByteInteger(encodedLength)
        if encodedLength == 0 { return }
        if let payloadFormatIndicator { buffer.writeProperty(.payloadFormatIndicator, payloadFormatIndicator) }
        if let messageExpiryInterval { buffer.writeProperty(.messageExpiryInterval, messageExpiryInterval) }
        if let contentType { buffer.writeProperty(.contentType, contentType) }
        if let responseTopic { buffer.writeProperty(.responseTopic, responseTopic) }
        if let correlationData { buffer.writeProperty(.correlationData, correlationData) }
        for identifier in subscriptionIdentifiers {
            precondition(
                identifier >= 0 && identifier <= MQTTWire.maximumVariableByteInteger,
                "MQTT subscription identifiers are 1...268,435,455; got \(identifier)"
            )
            buffer.writeInteger(MQTTPropertyID.subscriptionIdentifier.rawValue)
            buffer.writeMQTTVariableByteInteger(identifier)
        }
        if let sessionExpiryInterval { buffer.writeProperty(.sessionExpiryInterval, sessionExpiryInterval) }
        if let assignedClientIdentifier { buffer.writeProperty(.assignedClientIdentifier, assignedClientIdentifier) }
        if let serverKeepAlive { buffer.writeProperty(.serverKeepAlive, serverKeepAlive) }
        if let authenticationMethod { buffer.writeProperty(.authenticationMethod, authenticationMethod) }
        if let authenticationData { buffer.writeProperty(.authenticationData, authenticationData) }
        if let requestProblemInformation { buffer.writeProperty(.requestProblemInformation, requestProblemInformation) }
        if let willDelayInterval { buffer.writeProperty(.willDelayInterval, willDelayInterval) }
        if let requestResponseInformation { buffer.writeProperty(.requestResponseInformation, requestResponseInformation) }
        if let responseInformation { buffer.writeProperty(.responseInformation, responseInformation) }
        if let serverReference { buffer.writeProperty(.serverReference, serverReference) }
        if let reasonString { buffer.writeProperty(.reasonString, reasonString) }
        if let receiveMaximum { buffer.writeProperty(.receiveMaximum, receiveMaximum) }
        if let topicAliasMaximum { buffer.writeProperty(.topicAliasMaximum, topicAliasMaximum) }
        if let topicAlias { buffer.writeProperty(.topicAlias, topicAlias) }
        if let maximumQoS { buffer.writeProperty(.maximumQoS, maximumQoS) }
        if let retainAvailable { buffer.writeProperty(.retainAvailable, retainAvailable) }
        for property in userProperties {
            buffer.writeInteger(MQTTPropertyID.userProperty.rawValue)
            buffer.writeMQTTString(property.name)
            buffer.writeMQTTString(property.value)
        }
        if let maximumPacketSize { buffer.writeProperty(.maximumPacketSize, maximumPacketSize) }
        if let wildcardSubscriptionAvailable { buffer.writeProperty(.wildcardSubscriptionAvailable, wildcardSubscriptionAvailable) }
        if let subscriptionIdentifiersAvailable { buffer.writeProperty(.subscriptionIdentifierAvailable, subscriptionIdentifiersAvailable) }
        if let sharedSubscriptionAvailable { buffer.writeProperty(.sharedSubscriptionAvailable, sharedSubscriptionAvailable) }
    }
}

extension MQTTPacketReader {
    /// Reads a byte property whose only permitted values are 0 and 1 (others are a Protocol Error).
    fileprivate mutating func readZeroOrOne(_ name: String) throws(MQTTCodecError) -> UInt8 {
        let value = try readByte(name)
        if value > 1 { throw protocolError("\(name) must be 0 or 1, not \(value)") }
        return value
    }

    /// Reads a two-byte property for which 0 is a Protocol Error.
    fileprivate mutating func readNonZeroUInt16(_ name: String) throws(MQTTCodecError) -> UInt16 {
        let value = try readUInt16(name)
        if value == 0 { throw protocolError("\(name) must not be 0") }
        return value
    }
}

extension ByteBuffer {
    fileprivate mutating func writeProperty<Value: FixedWidthInteger>(_ id: MQTTPropertyID, _ value: Value) {
        writeInteger(id.rawValue)
        writeInteger(value)
    }

    fileprivate mutating func writeProperty(_ id: MQTTPropertyID, _ value: String) {
        writeInteger(id.rawValue)
        writeMQTTString(value)
    }

    fileprivate mutating func writeProperty(_ id: MQTTPropertyID, _ value: ByteBuffer) {
        writeInteger(id.rawValue)
        writeMQTTBinary(value)
    }
}
