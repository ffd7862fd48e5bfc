/// One thing a NATS server sends a client.
public enum NATSServerOperation: Sendable, Equatable {
    /// `INFO`: the server describes itself.
    case info(NATSServerInfo)
    /// `MSG` or `HMSG`: a message for one of the client's subscriptions.
    case message(NATSMessage)
    /// `PING`: the client must answer `PONG`.
    case ping
    /// `PONG`: the answer to the client's `PING`.
    case pong
    /// `+OK` (verbose mode only).
    case ok
    /// `-ERR`: what the server objects to (it closes the connection after most of them).
    case error(String)
}
