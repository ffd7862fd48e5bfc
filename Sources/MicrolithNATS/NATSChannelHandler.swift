import NIOCore

/// The end of a client connection's pipeline: answers the server's `PING` itself, completes the
/// handshake (the first `INFO`, then the `PONG` that follows `CONNECT`, or the `-ERR` that
/// refuses it) and hands everything else to the client.
final class NATSChannelHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = NATSServerOperation
    typealias OutboundOut = ByteBuffer

    /// What the server said first.
    let firstInfo: EventLoopPromise<NATSServerInfo>
    /// The answer to the handshake's `PING`: the server took `CONNECT`.
    let ready: EventLoopPromise<Void>
    /// Where operations go once the handshake is done, and news of the connection's end.
    let deliver: @Sendable (NATSServerOperation) -> Void
    let closed: @Sendable (any Channel, String) -> Void
    private let state: NIOLoopBoundBox<(sawInfo: Bool, isReady: Bool, lastError: String?)>

    init(
        eventLoop: any EventLoop, deliver: @escaping @Sendable (NATSServerOperation) -> Void,
        closed: @escaping @Sendable (any Channel, String) -> Void
    ) {
        firstInfo = eventLoop.makePromise()
        ready = eventLoop.makePromise()
        self.deliver = deliver
        self.closed = closed
        state = NIOLoopBoundBox((false, false, nil), eventLoop: eventLoop)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let op = unwrapInboundIn(data)
        switch op {
        case .ping:
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(staticString: "PONG\r\n")), promise: nil)
        case .info(let info) where !state.value.sawInfo:
            state.value.sawInfo = true
            firstInfo.succeed(info)
        case .pong where !state.value.isReady:
            state.value.isReady = true
            ready.succeed(())
        case .error(let text) where !state.value.isReady && !text.lowercased().hasPrefix("permissions violation"):
            // A permission refused for one subscription leaves the connection up; anything
            // else before the handshake's PONG ends it.
            state.value.lastError = text
            ready.fail(NATSError(.server, "the server refused the connection: \(text)"))
        case .error(let text):
            state.value.lastError = text
            deliver(op)
        default:
            deliver(op)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let reason = (error as? NATSProtocolError)?.description ?? "\(error)"
        state.value.lastError = reason
        firstInfo.fail(NATSError(.connectionFailed, reason))
        ready.fail(NATSError(.connectionFailed, reason))
        context.close(promise: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // A connection that never became active (refused, timed out) must not leave them pending.
        firstInfo.fail(NATSError(.connectionFailed, "the connection closed"))
        ready.fail(NATSError(.connectionFailed, "the connection closed"))
    }

    func channelInactive(context: ChannelHandlerContext) {
        let reason = state.value.lastError.map { "the connection closed after: \($0)" } ?? "the connection closed"
        firstInfo.fail(NATSError(.connectionFailed, reason))
        ready.fail(NATSError(.connectionFailed, reason))
        if state.value.isReady { closed(context.channel, reason) }
        context.fireChannelInactive()
    }
}
