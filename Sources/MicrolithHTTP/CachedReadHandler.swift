import Foundation
import HTTPTypes
import Hummingbird
public import MicrolithCache
import MicrolithStore
public import NIOCore
public import NIOHTTPTypes
import Synchronization

/// Answers `GET`/`HEAD /{Table}/{id}` for records in the ``RecordCache`` inside the event loop,
/// ahead of the router: no task, no thread hop, no JSON encoding.
///
/// Every other request (a cache miss, a query string, a body, `Connection` headers, any other
/// method or path) passes through untouched and the router answers it. Responses are identical
/// to the router's (`Content-Type`, `ETag`, `X-Request-Id`, `304` on a matching `If-None-Match`);
/// they are not logged. Ordering of
/// pipelined requests is kept: the fast path only answers while no earlier request on the same
/// connection is still with the router.
public final class CachedReadHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    private let answers: CachedAnswers
    /// A candidate request head held back until its `.end` arrives.
    private var held: HTTPRequest?
    /// Requests passed to the router whose response has not yet ended.
    private var withRouter = 0
    /// Whether the last inbound part answered here needs a flush at read-complete.
    private var needsFlush = false

    /// A handler answering cache hits of `endpoint`'s tables, and the responses `responses` keep.
    public convenience init(endpoint: TableEndpoint, serverName: String? = nil, responses: [any ResponseCache] = []) {
        self.init(answers: CachedAnswers(endpoint: endpoint, serverName: serverName, responses: responses))
    }

    /// A handler answering what `answers` can (one `CachedAnswers` serves every connection).
    public init(answers: CachedAnswers) {
        self.answers = answers
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch part {
        case .head(let head):
            if withRouter == 0, held == nil, Self.isCandidate(head, queries: answers.answersQueries),
                answers.policy.answersInPlace(authority: head.authority, origin: head.headerFields[.origin]),
                !SubscriptionEndpoint.wantsEventStream(head.headerFields)
            {
                held = head
                return
            }
            forward(context, part)
        case .body:
            releaseHeld(context)
            forward(context, part)
        case .end:
            guard let head = held else { return forward(context, part) }
            held = nil
            if let response = answers.answer(head) {
                write(context, response)
            } else {
                forward(context, .head(head))
                forward(context, part)
            }
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { withRouter = max(0, withRouter - 1) }
        context.write(data, promise: promise)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        held = nil
        context.fireChannelInactive()
    }

    // MARK: Private

    private func forward(_ context: ChannelHandlerContext, _ part: HTTPRequestPart) {
        if case .head = part { withRouter += 1 }
        context.fireChannelRead(wrapInboundOut(part))
    }

    private func releaseHeld(_ context: ChannelHandlerContext) {
        if let head = held {
            held = nil
            forward(context, .head(head))
        }
    }

    /// A request the fast path might answer, judged on the head alone.
    static func isCandidate(_ head: HTTPRequest, queries: Bool = false) -> Bool {
        // A request with credentials is the router's: they are checked, and may grant other than the anonymous role.
        guard head.method == .get || head.method == .head, head.headerFields[.connection] == nil, head.headerFields[.authorization] == nil,
            head.headerFields[.contentLength] == nil, head.headerFields[.transferEncoding] == nil,
            let path = head.path, path.utf8.first == UInt8(ascii: "/")
        else { return false }
        return queries || (path.utf8.count > 3 && !path.utf8.contains(UInt8(ascii: "?")))
    }

    private func write(_ context: ChannelHandlerContext, _ response: (HTTPResponse, ByteBuffer?)) {
        context.write(wrapOutboundOut(.head(response.0)), promise: nil)
        if let body = response.1 { context.write(wrapOutboundOut(.body(body)), promise: nil) }
        context.write(wrapOutboundOut(.end(nil)), promise: nil)
        needsFlush = true
    }
}
