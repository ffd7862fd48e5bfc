public import NIOCore

/// A message pulled from a JetStream consumer, with where it stands in the stream, and the
/// acknowledgements the consumer waits for.
///
/// The position comes from the reply subject the server gives each delivery:
/// `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`
/// (servers with domains add two tokens after `$JS.ACK` and one at the end).
public struct NATSJetStreamMessage: Sendable {
    /// The message as published: subject, headers, payload.
    public let message: NATSMessage
    public let stream: String
    public let consumer: String
    /// Its sequence in the stream: the same on every delivery and for every consumer.
    public let streamSequence: UInt64
    /// Its place in this consumer's deliveries.
    public let consumerSequence: UInt64
    /// How many times it was delivered (1 the first time).
    public let deliveries: Int
    /// When the stream stored it, in nanoseconds since 1970.
    public let storedAtNanoseconds: Int64
    /// Messages of the consumer still to be delivered after this one.
    public let pending: UInt64
    let client: NATSClient

    /// Reads a delivery, or `nil` when its reply subject is not a JetStream acknowledgement subject.
    init?(_ message: NATSMessage, client: NATSClient) {
        guard let reply = message.replyTo else { return nil }
        var tokens = reply.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard tokens.count >= 9, tokens[0] == "$JS", tokens[1] == "ACK" else { return nil }
        if tokens.count >= 11 {
            // $JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<time>.<pending>[.<token>]
            tokens = Array(tokens[0..<2]) + Array(tokens[4..<11])
        }
        guard tokens.count == 9, let deliveries = Int(tokens[4]), let streamSequence = UInt64(tokens[5]),
            let consumerSequence = UInt64(tokens[6]), let stored = Int64(tokens[7]), let pending = UInt64(tokens[8])
        else { return nil }
        self.message = message
        self.stream = tokens[2]
        self.consumer = tokens[3]
        self.deliveries = deliveries
        self.streamSequence = streamSequence
        self.consumerSequence = consumerSequence
        self.storedAtNanoseconds = stored
        self.pending = pending
        self.client = client
    }

    /// The payload, as published.
    public var payload: ByteBuffer { message.payload }

    /// Acknowledges it and waits until the server has recorded that: it will not be delivered
    /// again, to this consumer, even after a restart.
    public func ack() async throws {
        guard let reply = message.replyTo else { return }
        _ = try await client.request(reply, payload: ByteBuffer(staticString: "+ACK"))
    }

    /// Acknowledges it without waiting (a lost acknowledgement means one more delivery).
    public func ackNoWait() throws {
        try send("+ACK")
    }

    /// Asks for it again: at once, or after `delay`.
    public func nak(delay: Duration? = nil) throws {
        if let delay {
            try send("-NAK {\"delay\":\(delay.nanoseconds)}")
        } else {
            try send("-NAK")
        }
    }

    /// Gives up on it: it is never delivered to this consumer again.
    public func term() throws {
        try send("+TERM")
    }

    /// Says it is still being worked on: the acknowledgement wait starts over.
    public func inProgress() throws {
        try send("+WPI")
    }

    private func send(_ text: String) throws {
        guard let reply = message.replyTo else { return }
        try client.publish(reply, payload: ByteBuffer(string: text))
    }
}
