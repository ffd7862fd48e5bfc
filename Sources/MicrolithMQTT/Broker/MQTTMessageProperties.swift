import NIOCore

/// The properties of an application message that travel with it from its publisher to its
/// subscribers (MQTT 5.0 §3.3.2.3): payload format indicator, message expiry, content type,
/// response topic, correlation data and user properties, unaltered and in order
/// [MQTT-3.3.2-4, -15 to -18, -20]. Topic aliases and subscription identifiers belong to one
/// connection and are not forwarded.
///
/// The expiry is kept as a deadline: a copy that waited past it is not sent [MQTT-3.3.2-5], and one
/// that is sent carries the interval minus the time it waited [MQTT-3.3.2-6]. MQTT 3.1.1 clients
/// receive the payload without properties.
struct MQTTMessageProperties: Sendable, Equatable {
    /// The forwarded properties, the message expiry interval left out (it is computed per copy).
    private(set) var properties: MQTTProperties
    /// When the message expires; `nil`: never.
    private(set) var expiresAt: NIODeadline?
    /// What the properties weigh against `mqtt.bufferBytes`, roughly their encoded length (read on
    /// every queue change, so computed once).
    let size: Int

    /// What `received` (a PUBLISH's or a will's properties, received at `now`) forwards; `nil` when
    /// it forwards nothing.
    init?(forwarding received: MQTTProperties, receivedAt now: NIODeadline) {
        var properties = MQTTProperties()
        properties.payloadFormatIndicator = received.payloadFormatIndicator
        properties.contentType = received.contentType
        properties.responseTopic = received.responseTopic
        properties.correlationData = received.correlationData
        properties.userProperties = received.userProperties
        let expiresAt = received.messageExpiryInterval.map { now + .seconds(Int64($0)) }
        guard expiresAt != nil || !properties.isEmpty else { return nil }
        self.properties = properties
        self.expiresAt = expiresAt
        self.size = properties.encodedLength + (expiresAt == nil ? 0 : 5)
    }

    /// Whether the message has expired at `now`.
    func isExpired(at now: NIODeadline) -> Bool {
        guard let expiresAt else { return false }
        return now >= expiresAt
    }

    /// The properties of a PUBLISH sent at `now`: the forwarded ones and, for a message that
    /// expires, the whole seconds it has left (at least 1 while it has not expired).
    func outgoing(at now: NIODeadline) -> MQTTProperties {
        var out = properties
        if let expiresAt {
            let left = (expiresAt - now).nanoseconds
            let seconds = max(1, (left + 999_999_999) / 1_000_000_000)
            out.messageExpiryInterval = UInt32(clamping: seconds)
        }
        return out
    }
}

extension MQTTMessageProperties {
    /// Properties read back from the store: the forwarded ones, and the expiry as milliseconds since 1970
    /// (`wallNow` is the same clock's reading at `now`). `nil` when there is nothing to forward.
    init?(stored: ByteBuffer?, expiresAt wallExpiry: Int64?, wallNow: Int64, now: NIODeadline) {
        var properties = MQTTProperties()
        if let stored {
            var reader = MQTTPacketReader(stored, context: "stored message")
            guard let read = try? MQTTProperties.read(from: &reader, allowedIn: .publish) else { return nil }
            properties = read
        }
        let expiresAt = wallExpiry.map { now + .milliseconds($0 - wallNow) }
        guard expiresAt != nil || !properties.isEmpty else { return nil }
        self.properties = properties
        self.expiresAt = expiresAt
        self.size = properties.encodedLength + (expiresAt == nil ? 0 : 5)
    }

    /// The forwarded properties as a property section, for the store (`nil`: none).
    var storedProperties: ByteBuffer? {
        guard !properties.isEmpty else { return nil }
        var out = ByteBuffer()
        properties.write(encodedLength: properties.encodedLength, into: &out)
        return out
    }

    /// The expiry in milliseconds since 1970, given the wall clock's reading `wallNow` at `now`.
    func storedExpiry(wallNow: Int64, now: NIODeadline) -> Int64? {
        expiresAt.map { wallNow + ($0 - now).nanoseconds / 1_000_000 }
    }
}
