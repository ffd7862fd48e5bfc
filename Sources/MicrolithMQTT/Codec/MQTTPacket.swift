package import NIOCore

/// Any MQTT control packet, of either protocol version.
package enum MQTTPacket: Sendable, Equatable {
    /// CONNECT, client to server.
    case connect(MQTTConnect)
    /// CONNACK, server to client.
    case connack(MQTTConnAck)
    /// PUBLISH, both directions.
    case publish(MQTTPublish)
    /// PUBACK, PUBREC, PUBREL or PUBCOMP, both directions.
    case ack(MQTTAck)
    /// SUBSCRIBE, client to server.
    case subscribe(MQTTSubscribe)
    /// SUBACK, server to client.
    case suback(MQTTSubAck)
    /// UNSUBSCRIBE, client to server.
    case unsubscribe(MQTTUnsubscribe)
    /// UNSUBACK, server to client.
    case unsuback(MQTTUnsubAck)
    /// PINGREQ, client to server.
    case pingreq
    /// PINGRESP, server to client.
    case pingresp
    /// DISCONNECT, client to server (and, in MQTT 5, server to client).
    case disconnect(MQTTDisconnect)
    /// AUTH, both directions; MQTT 5 only.
    case auth(MQTTAuth)

    /// Appends the packet's bytes for `version`. MQTT 3.1.1 omits properties and reason codes where that version
    /// has none. Two packets ignore `version`: a CONNECT is written in its own ``MQTTConnect/version`` (it is what
    /// fixes the version), and AUTH, which exists only in MQTT 5, always in the MQTT 5 layout.
    ///
    /// Strings and binary data must fit their two-byte length (65,535 bytes) and the packet the largest remaining
    /// length (268,435,455 bytes); exceeding either is a programming error that stops the process.
    package func encode(version: MQTTProtocolVersion, into buffer: inout ByteBuffer) {
        switch self {
        case .connect(let connect): connect.write(into: &buffer)
        case .connack(let connack): connack.write(version: version, into: &buffer)
        case .publish(let publish): publish.write(version: version, into: &buffer)
        case .ack(let ack): ack.write(version: version, into: &buffer)
        case .subscribe(let subscribe): subscribe.write(version: version, into: &buffer)
        case .suback(let suback): suback.write(version: version, into: &buffer)
        case .unsubscribe(let unsubscribe): unsubscribe.write(version: version, into: &buffer)
        case .unsuback(let unsuback): unsuback.write(version: version, into: &buffer)
        case .pingreq: buffer.writeMQTTFixedHeader(.pingreq, remainingLength: 0)
        case .pingresp: buffer.writeMQTTFixedHeader(.pingresp, remainingLength: 0)
        case .disconnect(let disconnect): disconnect.write(version: version, into: &buffer)
        case .auth(let auth): auth.write(into: &buffer)
        }
    }

    /// The packet's bytes for `version` in a new buffer; see ``encode(version:into:)``.
    package func encoded(version: MQTTProtocolVersion) -> ByteBuffer {
        var buffer = ByteBuffer()
        encode(version: version, into: &buffer)
        return buffer
    }
}
