public import NIOCore
import Synchronization

/// An MQTT connection's writes to a channel, on the channel's event loop: each buffer written as
/// `frame` makes it (the bytes themselves over TCP, a binary frame over WebSocket), and the bytes
/// not yet written to the network counted for ``bufferedBytes``.
///
/// Every method but ``bufferedBytes`` is called on the channel's loop.
public final class MQTTChannelWrites<Frame: Sendable>: @unchecked Sendable {
    private let channel: any Channel
    private let frame: @Sendable (ByteBuffer) -> Frame
    private let buffered = Atomic<Int>(0)
    /// The last write since the last flush, held back so that the flush can watch it with one promise
    /// (writes complete in order). Loop-confined, like `heldBytes`: the bytes of every held-back write.
    private var held: ByteBuffer?
    private var heldBytes = 0

    /// Writes to `channel`, each buffer as `frame` makes it.
    public init(channel: any Channel, frame: @escaping @Sendable (ByteBuffer) -> Frame) {
        self.channel = channel
        self.frame = frame
    }

    /// Writes `bytes` without flushing.
    public func write(_ bytes: ByteBuffer) {
        buffered.add(bytes.readableBytes, ordering: .relaxed)
        if let previous = held.take() { channel.write(frame(previous), promise: nil) }
        held = bytes
        heldBytes += bytes.readableBytes
    }

    /// Flushes what ``write(_:)`` wrote; its bytes stop counting once the network has them.
    public func flush() {
        guard let last = held.take() else { return }
        let count = heldBytes
        heldBytes = 0
        let promise = channel.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenComplete { [self] _ in buffered.subtract(count, ordering: .relaxed) }
        channel.writeAndFlush(frame(last), promise: promise)
    }

    /// Bytes given to ``write(_:)`` and not yet written to the network; may be read from any thread.
    public var bufferedBytes: Int { buffered.load(ordering: .relaxed) }
}
