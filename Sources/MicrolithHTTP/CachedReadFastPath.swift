import HTTPTypes
public import NIOCore

/// The first HTTP handler of a connection, right after ``HTTPConnectionGuard``: it answers the
/// requests ``CachedAnswers`` has answers for straight from the bytes read, before any HTTP
/// decoder, router, task or timer exists for the connection, and installs the full HTTP
/// pipeline (decoder, WebSocket upgrade, router) only when a request needs it.
///
/// It answers only what it reads whole and plainly: `GET`/`HEAD` of an origin-form target,
/// `HTTP/1.1`, header fields of visible ASCII, no body, no `Content-Length`,
/// `Transfer-Encoding`, `Upgrade` or `Expect`, a `Connection` of `close` and `keep-alive` only.
/// Anything else, a head cut across reads, or a cache miss hands the connection over: the bytes
/// not answered go, in order, to the full pipeline, which is installed after this handler, and
/// this handler leaves. Answers are those of ``CachedReadHandler`` (and the router), plus
/// `Connection: close` for a request that asked to close, after which the connection closes.
/// Pipelined requests are answered in order within a read.
public final class CachedReadFastPath: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State {
        /// Answering requests here.
        case serving
        /// The full pipeline is being installed; what arrives meanwhile waits.
        case installing(pending: [ByteBuffer], events: [Any])
        /// The full pipeline has it: everything passes through (until this handler is removed).
        case passing
        /// An answer that ends the connection was written: input is dropped.
        case closing
    }

    private let answers: CachedAnswers
    private let connection: HTTPConnectionGuard
    private let install: (ChannelHandlerContext) -> EventLoopFuture<Void>
    private var state = State.serving
    private var needsFlush = false

    /// A fast path answering what `answers` can, reporting requests to `connection`; `install`
    /// adds the full HTTP pipeline after this handler (on the channel's event loop) when a
    /// request needs it.
    public init(
        answers: CachedAnswers, connection: HTTPConnectionGuard, install: @escaping (ChannelHandlerContext) -> EventLoopFuture<Void>
    ) {
        self.answers = answers
        self.connection = connection
        self.install = install
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch state {
        case .serving:
            serve(context, unwrapInboundIn(data))
        case .installing(var pending, let events):
            pending.append(unwrapInboundIn(data))
            state = .installing(pending: pending, events: events)
        case .passing:
            context.fireChannelRead(data)
        case .closing:
            return
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch state {
        case .serving:
            // A graceful shutdown closes a connection served here between requests; the full
            // pipeline, once there, decides for itself.
            if event is ChannelShouldQuiesceEvent {
                state = .closing
                context.close(promise: nil)
                return
            }
            // The peer has closed its side (the server's channels allow half-closure, so nothing
            // else closes ours): every request it sent was answered here, so the connection ends
            // once those answers are out. Left open it would hold its descriptor, its limiter slot
            // and its server task until the idle timeout.
            if let event = event as? ChannelEvent, event == .inputClosed {
                state = .closing
                needsFlush = false
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).whenComplete { _ in
                    channel.close(promise: nil)
                }
                return
            }
        case .installing(let pending, var events):
            // Events wait with the bytes for the full pipeline, after them.
            events.append(event)
            state = .installing(pending: pending, events: events)
            return
        case .passing, .closing:
            break
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Private

    private func serve(_ context: ChannelHandlerContext, _ input: ByteBuffer) {
        var buffer = input
        while buffer.readableBytes > 0 {
            guard let request = buffer.withUnsafeReadableBytes({ RequestHeadScanner.scan($0) }),
                CachedReadHandler.isCandidate(request.head, queries: answers.answersQueries),
                answers.policy.answersInPlace(authority: request.head.authority, origin: request.head.headerFields[.origin]),
                !SubscriptionEndpoint.wantsEventStream(request.head.headerFields),
                let bytes = answers.encodedAnswer(request.head, closing: request.closing, allocator: context.channel.allocator)
            else {
                return handOver(context, buffer)
            }
            buffer.moveReaderIndex(forwardBy: request.length)
            connection.answeredInPlace(closing: request.closing)
            if request.closing {
                state = .closing
                needsFlush = false
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(bytes)).whenComplete { _ in channel.close(promise: nil) }
                return
            }
            context.write(wrapOutboundOut(bytes), promise: nil)
            needsFlush = true
        }
    }

    /// Installs the full pipeline and passes it `buffer` (and whatever arrives meanwhile).
    private func handOver(_ context: ChannelHandlerContext, _ buffer: ByteBuffer) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        connection.furtherRequestBegun()
        state = .installing(pending: [buffer], events: [])
        install(context).assumeIsolated().whenComplete { [self] result in
            guard case .installing(let pending, let events) = state else { return }
            switch result {
            case .success:
                state = .passing
                for part in pending { context.fireChannelRead(wrapInboundOut(part)) }
                for event in events { context.fireUserInboundEventTriggered(event) }
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            case .failure:
                state = .closing
                context.close(promise: nil)
            }
        }
    }
}

/// Reads one plain request head from the start of a buffer, for ``CachedReadFastPath``; `nil` for
/// anything it does not read whole and plainly (the full HTTP decoder then reads it).
struct RequestHeadScanner {
    /// A request head read whole: the request as the HTTP codec would give it (the first `Host`
    /// as its authority, `Connection` left out), the bytes it took, and whether it asks to close.
    struct Request {
        var head: HTTPRequest
        var length: Int
        var closing: Bool
    }

    static let maximumHeadBytes = 16 * 1024
    static let maximumFields = 64

    static func scan(_ bytes: UnsafeRawBufferPointer) -> Request? {
        let end = min(bytes.count, maximumHeadBytes)
        var i = 0
        func at(_ offset: Int) -> UInt8? { offset < end ? bytes[offset] : nil }
        func expect(_ text: StaticString) -> Bool {
            let count = text.utf8CodeUnitCount
            guard i + count <= end else { return false }
            for k in 0..<count where bytes[i + k] != text.utf8Start[k] { return false }
            i += count
            return true
        }

        let method: HTTPRequest.Method
        if expect("GET ") {
            method = .get
        } else if expect("HEAD ") {
            method = .head
        } else {
            return nil
        }
        let targetStart = i
        while let b = at(i), b != UInt8(ascii: " ") {
            guard b > 0x20, b < 0x7F else { return nil }
            i += 1
        }
        guard i > targetStart, bytes[targetStart] == UInt8(ascii: "/") else { return nil }
        let target = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[targetStart..<i]), as: UTF8.self)
        guard expect(" HTTP/1.1\r\n") else { return nil }

        var authority: String?
        var closing = false
        var fields = HTTPFields()
        var count = 0
        while !expect("\r\n") {
            count += 1
            guard count <= maximumFields else { return nil }
            let nameStart = i
            while let b = at(i), isTokenByte(b) { i += 1 }
            guard i > nameStart, at(i) == UInt8(ascii: ":") else { return nil }
            let nameEnd = i
            i += 1
            while let b = at(i), b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") { i += 1 }
            let valueStart = i
            var valueEnd = i
            while let b = at(i), b != UInt8(ascii: "\r") {
                guard b == UInt8(ascii: "\t") || (b >= 0x20 && b < 0x7F) else { return nil }
                i += 1
                if b != UInt8(ascii: " "), b != UInt8(ascii: "\t") { valueEnd = i }
            }
            guard expect("\r\n") else { return nil }
            let name = UnsafeRawBufferPointer(rebasing: bytes[nameStart..<nameEnd])
            let value = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[valueStart..<valueEnd]), as: UTF8.self)
            if ASCIIBytes.equals(name, lowercase: "host") {
                guard authority == nil else { return nil }
                authority = value
            } else if ASCIIBytes.equals(name, lowercase: "connection") {
                for token in value.split(separator: ",") {
                    switch token.trimmingSpaces.lowercased() {
                    case "close": closing = true
                    case "keep-alive": break
                    default: return nil
                    }
                }
            } else if ASCIIBytes.equals(name, lowercase: "content-length") || ASCIIBytes.equals(name, lowercase: "transfer-encoding")
                || ASCIIBytes.equals(name, lowercase: "upgrade") || ASCIIBytes.equals(name, lowercase: "expect")
            {
                return nil
            } else {
                guard let fieldName = HTTPField.Name(String(decoding: name, as: UTF8.self)) else { return nil }
                fields.append(HTTPField(name: fieldName, value: value))
            }
        }
        let head = HTTPRequest(method: method, scheme: "http", authority: authority, path: target, headerFields: fields)
        return Request(head: head, length: i, closing: closing)
    }

    /// A `tchar` of RFC 9110 (a header field name's byte).
    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(b)
        }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return s
    }
}
