/// Bytes from a NATS server that break the protocol: the connection they came on cannot be
/// trusted further and is closed.
public struct NATSProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was wrong, in words.
    public let message: String

    /// An error saying `message`.
    public init(_ message: String) {
        self.message = message
    }

    public var description: String { "NATS protocol error: \(message)" }
}
