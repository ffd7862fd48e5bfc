public import NIOCore

/// Where an MQTT connection's bytes go: a TCP channel, or a WebSocket carrying MQTT.
///
/// ``send(_:)`` may be called from any thread; bytes go out in the order of the calls.
public protocol MQTTTransport: AnyObject, Sendable {
    /// The event loop the connection's packets are handled on.
    var eventLoop: any EventLoop { get }
    /// Writes and flushes `bytes`. Returns `false` when the client is too far behind (its
    /// unwritten bytes exceed the limit): the caller drops it.
    @discardableResult
    func send(_ bytes: ByteBuffer) -> Bool
    /// Writes `bytes` without flushing; called on ``eventLoop`` (fan-out batches, then ``flush()``).
    func write(_ bytes: ByteBuffer)
    /// Flushes what ``write(_:)`` wrote; called on ``eventLoop``.
    func flush()
    /// Whether the client keeps up: `false` while more than the limit waits unwritten (QoS 0
    /// messages are then dropped for it; anything else that cannot be written drops the client).
    var isWritable: Bool { get }
    /// Closes the connection (after what was sent).
    func close()
    /// The peer, for logs.
    var peer: String { get }
}
