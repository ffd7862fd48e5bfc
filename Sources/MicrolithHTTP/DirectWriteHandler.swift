import HTTPTypes
public import NIOCore
public import NIOHTTPTypes

/// Runs an anonymous `PUT /{Table}/{id}` or `POST /{Table}/` from the event loop, ahead of the
/// router: the same write and the same answer, without Hummingbird's request, middleware and
/// response machinery, which cost more than the write itself.
///
/// ``DirectWrites`` decides which requests qualify, runs them and makes their responses, a
/// refusal included. Every other request passes through untouched.
///
/// Pipelined requests keep their order: a write is taken only while no earlier request on the
/// connection is with the router, and while it runs, what arrives after it (request parts, errors
/// and events such as the peer's half-close or the server's shutdown) is held, and the socket is
/// not read, until it is answered. An error or event that arrives while a qualifying request's
/// body is still coming hands that request to the router first.
public final class DirectWriteHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    private enum Inbound {
        case part(HTTPRequestPart)
        case event(Any)
        case error(any Error)
    }

    private enum State {
        case idle
        /// A qualifying request's head, its record and the body so far.
        case collecting(HTTPRequest, DirectWrites.Target, ByteBuffer)
        /// A taken request's write is running.
        case writing
    }

    private let writes: DirectWrites
    private var state = State.idle
    /// Requests passed to the router whose response has not yet ended.
    private var withRouter = 0
    /// What arrived while a write ran, in order.
    private var held: [Inbound] = []
    /// Whether the channel asked to read while a write ran.
    private var readWanted = false
    private var active = true

    /// A handler running the writes `writes` accepts (one `DirectWrites` serves every connection).
    public init(writes: DirectWrites) {
        self.writes = writes
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receive(context, .part(unwrapInboundIn(data)))
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        receive(context, .event(event))
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        receive(context, .error(error))
    }

    public func read(context: ChannelHandlerContext) {
        if isWriting {
            readWanted = true
        } else {
            context.read()
        }
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { withRouter = max(0, withRouter - 1) }
        context.write(data, promise: promise)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        active = false
        held = []
        context.fireChannelInactive()
    }

    // MARK: Private

    private var isWriting: Bool {
        if case .writing = state { return true }
        return false
    }

    private func receive(_ context: ChannelHandlerContext, _ inbound: Inbound) {
        switch state {
        case .writing:
            held.append(inbound)
        case .idle:
            if case .part(.head(let head)) = inbound, withRouter == 0, let target = writes.target(head) {
                // The body grows as it comes: a declared length alone reserves little.
                state = .collecting(head, target, context.channel.allocator.buffer(capacity: min(target.length, 4096)))
            } else {
                pass(context, inbound)
            }
        case .collecting(let head, let target, var body):
            state = .idle
            switch inbound {
            case .part(.body(let chunk)) where body.readableBytes + chunk.readableBytes <= target.length:
                body.writeImmutableBuffer(chunk)
                state = .collecting(head, target, body)
            case .part(.end(nil)) where body.readableBytes == target.length:
                state = .writing
                start(context, target, body)
            default:
                // Not the body the head announced (the parser does not let that happen), or an
                // error or event before its end: the router's, with what came of it so far.
                forward(context, .head(head))
                if body.readableBytes > 0 { forward(context, .body(body)) }
                pass(context, inbound)
            }
        }
    }

    private func pass(_ context: ChannelHandlerContext, _ inbound: Inbound) {
        switch inbound {
        case .part(let part): forward(context, part)
        case .event(let event): context.fireUserInboundEventTriggered(event)
        case .error(let error): context.fireErrorCaught(error)
        }
    }

    private func forward(_ context: ChannelHandlerContext, _ part: HTTPRequestPart) {
        if case .head = part { withRouter += 1 }
        context.fireChannelRead(wrapInboundOut(part))
    }

    private func start(_ context: ChannelHandlerContext, _ target: DirectWrites.Target, _ body: ByteBuffer) {
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let writes = self.writes
        Task {
            let response = await writes.write(target, body: body)
            loop.execute {
                let (handler, context) = bound.value
                handler.finish(context, response)
            }
        }
    }

    private func finish(_ context: ChannelHandlerContext, _ response: (HTTPResponse, ByteBuffer)) {
        guard isWriting else { return }
        state = .idle
        guard active else { return }
        context.write(wrapOutboundOut(.head(response.0)), promise: nil)
        context.write(wrapOutboundOut(.body(response.1)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        let later = held
        held = []
        for inbound in later { receive(context, inbound) }
        // What was passed on outside a read is delivered at the end of one, as the channel would.
        if !later.isEmpty { context.fireChannelReadComplete() }
        // Also while the next request's body is still coming: the rest of it is unread.
        if readWanted, !isWriting {
            readWanted = false
            context.read()
        }
    }
}
