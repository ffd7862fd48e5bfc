/// The messages of one subscription, in the order the server delivered them.
///
/// Iterating ends when the subscription is taken back (``unsubscribe()``, or the reader stops
/// iterating), when the client closes, and with ``NATSError/Kind/slowConsumer`` when the reader
/// falls more than ``NATSClient/Configuration/maximumPendingMessages`` behind. Across a reconnect
/// the subscription goes on (messages published while no connection was up are not delivered:
/// that is core NATS; JetStream keeps them).
public struct NATSSubscription: AsyncSequence, Sendable {
    public typealias Element = NATSMessage

    /// The subscription's id on the connection.
    public let sid: String
    /// The subject (or wildcard) it listens to.
    public let subject: String
    let messages: AsyncThrowingStream<NATSMessage, any Error>
    let client: NATSClient

    public func makeAsyncIterator() -> AsyncThrowingStream<NATSMessage, any Error>.AsyncIterator {
        messages.makeAsyncIterator()
    }

    /// Stops the subscription: the server is told at once, and iterating ends.
    public func unsubscribe() {
        client.unsubscribe(sid)
    }
}
