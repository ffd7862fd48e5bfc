import HTTPTypes
public import NIOCore
public import NIOHTTPTypes

/// Runs an anonymous `PUT /{Table}/{id}` from the event loop, ahead of the router: the same write,
/// without Hummingbird's request, middleware and response machinery, which cost more than the
/// write itself.
///
/// ``DirectWrites`` decides which requests qualify and runs them. Every other request passes
/// through untouched. A write that fails is handed to the router, head and body, once the
/// attempt has ended: the router runs it again and answers with the error, as for any request.
///
/// Pipelined requests keep their order: a write is taken only while no earlier request on the
/// connection is with the router, and while it runs, the requests after it are held (and the
/// socket is not read) until it is answered or handed over.
public final class DirectWriteHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    private enum State {
        case idle
        /// A qualifying request's head, its record and the body so far.
        case collecting(HTTPRequest, DirectWrites.Target, ByteBuffer)
        /// The write of this request (head and body) is running.
        case writing(HTTPRequest, ByteBuffer)
    }

    private let writes: DirectWrites
    private var state = State.idle
    /// Requests passed to the router whose response has not yet ended.
    private var withRouter = 0
    /// Inbound parts that arrived while a write ran, in order.
    private var held: [HTTPRequestPart] = []
    /// Whether the channel asked to read while a write ran.
    private var readWanted = false
    private var active = true

    /// A handler running the writes `writes` accepts (one `DirectWrites` serves every connection).
    public init(writes: DirectWrites) {
        self.writes = writes
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receive(context, unwrapInboundIn(data))
    }

    public func read(context: ChannelHandlerContext) {
        if case .writing = state {
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

    private func receive(_ context: ChannelHandlerContext, _ part: HTTPRequestPart) {
        switch state {
        case .writing:
            held.append(part)
        case .idle:
            if case .head(let head) = part, withRouter == 0, let target = writes.target(head) {
                state = .collecting(head, target, context.channel.allocator.buffer(capacity: target.length))
            } else {
                forward(context, part)
            }
        case .collecting(let head, let target, var body):
            state = .idle
            switch part {
            case .body(let chunk) where body.readableBytes + chunk.readableBytes <= target.length:
                body.writeImmutableBuffer(chunk)
                state = .collecting(head, target, body)
            case .end(nil) where body.readableBytes == target.length:
                state = .writing(head, body)
                start(context, target, body)
            default:
                // Not the body the head announced (the parser does not let that happen): the router's.
                forward(context, .head(head))
                forward(context, .body(body))
                forward(context, part)
            }
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
            let response = await writes.put(target, body: body)
            loop.execute {
                let (handler, context) = bound.value
                handler.finish(context, response)
            }
        }
    }

    private func finish(_ context: ChannelHandlerContext, _ response: (HTTPResponse, ByteBuffer)?) {
        guard case .writing(let head, let body) = state else { return }
        state = .idle
        guard active else { return }
        if let (head, body) = response {
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(body)), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            forward(context, .head(head))
            forward(context, .body(body))
            forward(context, .end(nil))
        }
        let later = held
        held = []
        for part in later { receive(context, part) }
        // What was passed on outside a read is delivered at the end of one, as the channel would.
        context.fireChannelReadComplete()
        if readWanted, case .idle = state {
            readWanted = false
            context.read()
        }
    }
}
