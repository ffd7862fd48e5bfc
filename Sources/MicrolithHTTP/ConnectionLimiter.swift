import HTTPTypes
import MicrolithJSON
public import NIOCore
import NIOHTTPTypes
import Synchronization

/// Caps the connections open at once. A connection past the cap is answered `503 Service
/// Unavailable` (problem+json, `Retry-After: 1`) on its first request and closed; the others
/// are not slowed.
public final class ConnectionLimiter: Sendable {
    /// The most connections served at once.
    public let maximum: Int
    private let open = Atomic<Int>(0)

    public init(maximum: Int) {
        self.maximum = max(1, maximum)
    }

    /// The connections open now.
    public var openConnections: Int { open.load(ordering: .relaxed) }

    /// A handler for one new connection's pipeline (after HTTP decoding).
    public func makeHandler() -> any RemovableChannelHandler {
        Handler(limiter: self)
    }

    fileprivate func opened() -> Bool {
        open.wrappingAdd(1, ordering: .relaxed).newValue <= maximum
    }

    fileprivate func closed() {
        open.wrappingSubtract(1, ordering: .relaxed)
    }

    private final class Handler: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPRequestPart
        typealias InboundOut = HTTPRequestPart
        typealias OutboundIn = HTTPResponsePart
        typealias OutboundOut = HTTPResponsePart

        let limiter: ConnectionLimiter
        var counted = false
        var rejecting = false
        var answered = false

        init(limiter: ConnectionLimiter) { self.limiter = limiter }

        func handlerAdded(context: ChannelHandlerContext) {
            if context.channel.isActive { activate() }
        }

        func channelActive(context: ChannelHandlerContext) {
            activate()
            context.fireChannelActive()
        }

        private func activate() {
            guard !counted else { return }
            counted = true
            rejecting = !limiter.opened()
        }

        func channelInactive(context: ChannelHandlerContext) {
            release()
            context.fireChannelInactive()
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            release()
        }

        private func release() {
            if counted {
                counted = false
                limiter.closed()
            }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard rejecting else {
                context.fireChannelRead(data)
                return
            }
            guard !answered, case .head = unwrapInboundIn(data) else { return }
            answered = true
            let body = JSONWriter.encode([
                "type": "about:blank", "title": "Service Unavailable", "status": 503,
                "detail": .string("too many connections: the server's limit is \(limiter.maximum) open connections; retry shortly"),
            ])
            var response = HTTPResponse(status: .serviceUnavailable)
            response.headerFields[.contentType] = "application/problem+json"
            response.headerFields[.contentLength] = String(body.count)
            response.headerFields[.connection] = "close"
            response.headerFields[.retryAfter] = "1"
            context.write(wrapOutboundOut(.head(response)), promise: nil)
            context.write(wrapOutboundOut(.body(ByteBuffer(bytes: body))), promise: nil)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
