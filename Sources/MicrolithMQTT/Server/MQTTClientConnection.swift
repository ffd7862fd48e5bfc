public import NIOCore

/// A client connection as transports see it: bytes in, and word that the connection is gone.
public struct MQTTClientConnection: Sendable {
    let connection: MQTTConnection

    /// Bytes received from the client (any split); call on the transport's event loop.
    public func receive(_ bytes: ByteBuffer) { connection.receive(bytes) }

    /// The transport closed; call on the transport's event loop.
    public func closed() { connection.transportClosed() }
}
