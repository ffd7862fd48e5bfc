/// One topic filter of a SUBSCRIBE, with its subscription options.
package struct MQTTSubscription: Sendable, Equatable {
    /// The topic filter. The decoder does not validate it, so that a server can answer an invalid one
    /// with SUBACK reason 0x8F (MQTT 5) or 0x80 (MQTT 3.1.1): check it with ``MQTTTopic/isValidFilter(_:)``.
    package var topicFilter: String
    /// The maximum QoS the client accepts for this subscription.
    package var qos: MQTTQoS
    /// MQTT 5 No Local: do not forward the client's own publications back to it.
    package var noLocal: Bool
    /// MQTT 5 Retain As Published: keep the retain flag on forwarded messages.
    package var retainAsPublished: Bool
    /// MQTT 5 Retain Handling: 0 send retained messages on subscribe, 1 only if the subscription is new, 2 never.
    package var retainHandling: UInt8
    /// MQTT 5 Subscription Identifier: from the SUBSCRIBE's properties (not the options byte), sent back with
    /// every message the subscription matches.
    package var identifier: Int?

    /// Creates a subscription.
    package init(
        topicFilter: String,
        qos: MQTTQoS = .atMostOnce,
        noLocal: Bool = false,
        retainAsPublished: Bool = false,
        retainHandling: UInt8 = 0,
        identifier: Int? = nil
    ) {
        self.topicFilter = topicFilter
        self.qos = qos
        self.noLocal = noLocal
        self.retainAsPublished = retainAsPublished
        self.retainHandling = retainHandling
        self.identifier = identifier
    }
}

extension MQTTSubscription {
    /// The options byte: QoS only in MQTT 3.1.1; QoS, No Local, Retain As Published and Retain Handling in MQTT 5.
    func optionsByte(version: MQTTProtocolVersion) -> UInt8 {
        guard version == .v5 else { return qos.rawValue }
        var options = qos.rawValue | (retainHandling & 0x03) << 4
        if noLocal { options |= 0x04 }
        if retainAsPublished { options |= 0x08 }
        return options
    }

    /// Interprets an options byte. Reserved bits are a Malformed Packet in both versions; QoS 3 is a Malformed Packet
    /// in MQTT 3.1.1 ([MQTT-3.8.3-4]) and, like Retain Handling 3, a Protocol Error in MQTT 5 (section 3.8.3.1).
    static func read(
        topicFilter: String,
        options: UInt8,
        version: MQTTProtocolVersion,
        reader: MQTTPacketReader
    ) throws(MQTTCodecError) -> MQTTSubscription {
        guard version == .v5 else {
            if options & 0xFC != 0 { throw reader.malformed("reserved subscription option bits are set for \(MQTTPacketReader.quoted(topicFilter))") }
            guard let qos = MQTTQoS(rawValue: options) else {
                throw reader.malformed("requested QoS is 3 for \(MQTTPacketReader.quoted(topicFilter))")
            }
            return MQTTSubscription(topicFilter: topicFilter, qos: qos)
        }
        if options & 0xC0 != 0 { throw reader.malformed("reserved subscription option bits 6-7 are set for \(MQTTPacketReader.quoted(topicFilter))") }
        guard let qos = MQTTQoS(rawValue: options & 0x03) else {
            throw reader.protocolError("maximum QoS is 3 for \(MQTTPacketReader.quoted(topicFilter))")
        }
        let retainHandling = (options >> 4) & 0x03
        if retainHandling == 3 { throw reader.protocolError("retain handling is 3 for \(MQTTPacketReader.quoted(topicFilter))") }
        return MQTTSubscription(
            topicFilter: topicFilter,
            qos: qos,
            noLocal: options & 0x04 != 0,
            retainAsPublished: options & 0x08 != 0,
            retainHandling: retainHandling
        )
    }
}
