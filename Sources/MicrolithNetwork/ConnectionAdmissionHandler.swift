public import NIOCore

/// Counts a connection in a ``ConnectionLimiter`` from accept to close, for protocols with no
/// way to answer before the peer speaks (MQTT): a refused connection is closed at once, and
/// the refusal is handed to `onRefused` (for the log) first.
///
/// Put it first in the pipeline. HTTP uses its own guard, which answers `503` instead.
public final class ConnectionAdmissionHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer

    private let limiter: ConnectionLimiter
    private let onRefused: @Sendable (ConnectionLimiter.Refusal, SocketAddress?) -> Void
    private var ticket: ConnectionTicket?
    private var refused = false

    /// A handler counting in `limiter`, telling `onRefused` about connections it closes.
    public init(limiter: ConnectionLimiter, onRefused: @escaping @Sendable (ConnectionLimiter.Refusal, SocketAddress?) -> Void = { _, _ in }) {
        self.limiter = limiter
        self.onRefused = onRefused
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { admit(context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        admit(context)
        guard !refused else { return }
        context.fireChannelActive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        context.fireChannelRead(data)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        release()
        guard !refused else { return }
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        release()
    }

    private func admit(_ context: ChannelHandlerContext) {
        guard ticket == nil, !refused else { return }
        switch limiter.admit(context.channel) {
        case .success(let t):
            ticket = t
        case .failure(let refusal):
            refused = true
            onRefused(refusal, context.channel.remoteAddress)
            context.close(promise: nil)
        }
    }

    private func release() {
        ticket?.release()
        ticket = nil
    }
}
