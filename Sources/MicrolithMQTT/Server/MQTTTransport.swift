public import NIOCore

/// Where an MQTT connection's bytes go: a TCP channel, or a WebSocket carrying MQTT.
///
/// The connection calls every method on ``eventLoop``, and bounds what it hands over: it counts the
/// bytes it writes until ``flush(written:)`` reports them on the network, drops a client with more than
/// `mqtt.bufferBytes` counted, and pauses reading while a packet waits for a store write.
public protocol MQTTTransport: AnyObject, Sendable {
    /// The event loop the connection's packets are handled on.
    var eventLoop: any EventLoop { get }
    /// Writes `bytes` without flushing; bytes go out in the order of the calls.
    func write(_ bytes: ByteBuffer)
    /// Flushes what ``write(_:)`` wrote; once the network has those bytes (or the connection failed),
    /// calls `written` with their count, on ``eventLoop``.
    func flush(written: @escaping @Sendable (Int) -> Void)
    /// Stops (`false`) or resumes (`true`) reading from the client: while stopped, the transport
    /// feeds the connection no bytes and leaves the rest to the network's flow control.
    func setReading(_ enabled: Bool)
    /// Closes the connection (after what was written).
    func close()
    /// The peer, for logs.
    var peer: String { get }
    /// The peer's IP address without the port, when known: failed sign-ins are limited per address.
    var address: String? { get }
}
