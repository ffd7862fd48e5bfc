/// Why a NATS client call failed.
public struct NATSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of failure, for code that reacts to it.
    public enum Kind: Sendable, Equatable {
        /// The arguments cannot be sent (a subject, a header, a payload over the server's limit).
        case invalid
        /// No server of the list could be reached, or the handshake failed.
        case connectionFailed
        /// The server refused (`-ERR`): credentials, permissions.
        case server
        /// A request nobody subscribes to (status 503).
        case noResponders
        /// No answer in time.
        case timeout
        /// The connection was lost before the call completed (the client reconnects on its own).
        case disconnected
        /// While disconnected, more was published than the reconnect buffer holds.
        case bufferFull
        /// A subscription's reader fell too far behind; the subscription was ended.
        case slowConsumer
        /// The client was closed.
        case closed
    }

    public let kind: Kind
    /// What happened, in words.
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
