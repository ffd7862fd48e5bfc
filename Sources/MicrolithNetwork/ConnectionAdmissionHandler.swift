public import NIOCore

/// Counts a connection in a ``ConnectionLimiter`` from accept to close, for protocols that do
/// not speak HTTP (MQTT). The refusal of a connection is handed to `onRefused` (for the log);
/// then the connection is closed at once, or, with `answersRefusals`, passed on like an admitted
/// one, with ``refusal`` set, for the protocol to answer in its own terms (a CONNACK) and close.
///
/// Put it first in the pipeline. HTTP uses its own guard, which answers `503` instead.
public final class ConnectionAdmissionHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer

    private let limiter: ConnectionLimiter
    private let onRefused: @Sendable (ConnectionLimiter.Refusal, SocketAddress?) -> Void
    private let answersRefusals: Bool
    private var ticket: ConnectionTicket?
    /// Why the connection was not admitted (with `answersRefusals`: it is passed on all the same).
    public private(set) var refusal: ConnectionLimiter.Refusal?
    /// Refused and closed: nothing is passed on.
    private var refused: Bool { refusal != nil && !answersRefusals }

    /// A handler counting in `limiter`, telling `onRefused` about connections it refuses, which it
    /// closes unless `answersRefusals`.
    public init(
        limiter: ConnectionLimiter, answersRefusals: Bool = false,
        onRefused: @escaping @Sendable (ConnectionLimiter.Refusal, SocketAddress?) -> Void = { _, _ in }
    ) {
        self.limiter = limiter
        self.answersRefusals = answersRefusals
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
        guard ticket == nil, refusal == nil else { return }
        switch limiter.admit(context.channel) {
        case .success(let t):
            ticket = t
        case .failure(let refusal):
            self.refusal = refusal
            onRefused(refusal, context.channel.remoteAddress)
            if refused { context.close(promise: nil) }
        }
    }

    private func release() {
        ticket?.release()
        ticket = nil
    }
}
