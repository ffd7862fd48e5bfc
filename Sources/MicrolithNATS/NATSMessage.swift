public import NIOCore

/// A message delivered by the server (`MSG` or `HMSG`).
public struct NATSMessage: Sendable, Equatable {
    /// The subject it was published to.
    public var subject: String
    /// The id of the subscription it was delivered for.
    public var sid: String
    /// Where the publisher waits for an answer, if anywhere.
    public var replyTo: String?
    /// Its headers (`HMSG`), or `nil` (`MSG`).
    public var headers: NATSHeaders?
    /// Its payload, exactly as published.
    public var payload: ByteBuffer

    public init(subject: String, sid: String, replyTo: String? = nil, headers: NATSHeaders? = nil, payload: ByteBuffer) {
        self.subject = subject
        self.sid = sid
        self.replyTo = replyTo
        self.headers = headers
        self.payload = payload
    }

    /// The status of its headers (503 no responders, 404/408 no messages for a pull, 100 a
    /// heartbeat), if it has one.
    public var status: Int? { headers?.status }

    /// The payload's bytes.
    public var bytes: [UInt8] { Array(payload.readableBytesView) }
}
