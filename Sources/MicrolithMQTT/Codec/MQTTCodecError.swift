/// A violation of the MQTT wire format found while decoding, with the MQTT 5 reason code a server
/// sends in its DISCONNECT (or CONNACK) before closing the connection.
package struct MQTTCodecError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The MQTT 5 reason code: ``malformedPacketCode`` (0x81), ``protocolErrorCode`` (0x82),
    /// ``unsupportedProtocolVersionCode`` (0x84) or ``packetTooLargeCode`` (0x95).
    package var reasonCode: UInt8
    /// A human-readable description naming the packet and the problem.
    package var message: String

    /// Creates an error with a reason code and a message.
    package init(reasonCode: UInt8, message: String) {
        self.reasonCode = reasonCode
        self.message = message
    }

    /// Reason code 0x81, Malformed Packet.
    package static let malformedPacketCode: UInt8 = 0x81
    /// Reason code 0x82, Protocol Error.
    package static let protocolErrorCode: UInt8 = 0x82
    /// Reason code 0x84, Unsupported Protocol Version.
    package static let unsupportedProtocolVersionCode: UInt8 = 0x84
    /// Reason code 0x95, Packet Too Large.
    package static let packetTooLargeCode: UInt8 = 0x95

    /// A Malformed Packet (0x81) error.
    package static func malformedPacket(_ message: String) -> MQTTCodecError {
        MQTTCodecError(reasonCode: malformedPacketCode, message: message)
    }

    /// A Protocol Error (0x82) error.
    package static func protocolError(_ message: String) -> MQTTCodecError {
        MQTTCodecError(reasonCode: protocolErrorCode, message: message)
    }

    /// An Unsupported Protocol Version (0x84) error.
    package static func unsupportedProtocolVersion(_ message: String) -> MQTTCodecError {
        MQTTCodecError(reasonCode: unsupportedProtocolVersionCode, message: message)
    }

    /// A Packet Too Large (0x95) error.
    package static func packetTooLarge(_ message: String) -> MQTTCodecError {
        MQTTCodecError(reasonCode: packetTooLargeCode, message: message)
    }

    /// For example `MQTT malformed packet (0x81): PUBLISH: topic name runs past the end of the packet`.
    package var description: String {
        let kind: String
        switch reasonCode {
        case Self.malformedPacketCode: kind = "malformed packet"
        case Self.protocolErrorCode: kind = "protocol error"
        case Self.unsupportedProtocolVersionCode: kind = "unsupported protocol version"
        case Self.packetTooLargeCode: kind = "packet too large"
        default: kind = "error"
        }
        let hex = String(reasonCode, radix: 16, uppercase: true)
        return "MQTT \(kind) (0x\(hex.count < 2 ? "0" + hex : hex)): \(message)"
    }
}
