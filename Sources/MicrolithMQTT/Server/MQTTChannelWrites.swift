public import NIOCore

/// An MQTT connection's writes to a channel, on the channel's event loop: each buffer written as
/// `frame` wraps it (the bytes themselves over TCP, a binary frame over WebSocket), and each flush's
/// bytes reported once the network has them.
///
/// A handler that writes its own connection's bytes gives its context (``writeThrough(_:)``): the
/// writes then start at that handler, without entering the pipeline at its tail. Every method is
/// called on the channel's loop.
public final class MQTTChannelWrites: @unchecked Sendable {
    private let channel: any Channel
    private let frame: @Sendable (ByteBuffer) -> NIOAny
    /// The handler context writes go through; `nil`: the pipeline's tail. Loop-confined.
    private var context: ChannelHandlerContext?
    /// The last write since the last flush, held back so that the flush can watch it with one promise
    /// (writes complete in order). Loop-confined, like `heldBytes`: the bytes of every held-back write.
    private var held: ByteBuffer?
    private var heldBytes = 0

    /// Writes to `channel`, each buffer wrapped by `frame` for the handler before the writer.
    public init(channel: any Channel, frame: @escaping @Sendable (ByteBuffer) -> NIOAny) {
        self.channel = channel
        self.frame = frame
    }

    /// Writes go through `context` (the writing handler's, from `handlerAdded`), or through the whole
    /// pipeline again with `nil` (from `handlerRemoved`).
    public func writeThrough(_ context: ChannelHandlerContext?) {
        self.context = context
    }

    /// Writes `bytes` without flushing.
    public func write(_ bytes: ByteBuffer) {
        if let previous = held.take() { send(previous, flush: false, promise: nil) }
        held = bytes
        heldBytes += bytes.readableBytes
    }

    /// Flushes what ``write(_:)`` wrote; calls `written` with its byte count once the network has
    /// the bytes (or the channel failed), on the loop.
    public func flush(written: @escaping @Sendable (Int) -> Void) {
        guard let last = held.take() else { return }
        let count = heldBytes
        heldBytes = 0
        let promise = channel.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenComplete { _ in written(count) }
        send(last, flush: true, promise: promise)
    }

    private func send(_ bytes: ByteBuffer, flush: Bool, promise: EventLoopPromise<Void>?) {
        let data = frame(bytes)
        if let context {
            if flush { context.writeAndFlush(data, promise: promise) } else { context.write(data, promise: promise) }
        } else {
            let pipeline = channel.pipeline.syncOperations
            if flush { pipeline.writeAndFlush(data, promise: promise) } else { pipeline.write(data, promise: promise) }
        }
    }
}
