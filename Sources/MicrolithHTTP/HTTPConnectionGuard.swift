import Hummingbird
import MicrolithJSON
public import MicrolithNetwork
public import NIOCore

/// The first handler of every HTTP connection, ahead of HTTP decoding: it sees the connection
/// from accept to close, whatever arrives.
///
/// - It counts the connection in the process's ``ConnectionLimiter`` from accept (refused ones
///   get `503` and are closed) and marks it idle between requests, so the limiter can close the
///   oldest idle keep-alive connection to make room for a new one.
/// - A request head must arrive whole within ``Limits/headerTimeout`` of the connection's accept
///   (for the first request) or of its first byte (for later ones), else `408` and close: a
///   silent or trickling (slowloris) connection is not held.
/// - A request body must keep arriving at ``Limits/minimumBodyBytesPerSecond`` on average once
///   ``Limits/headerTimeout`` has passed since its head, else `408` and close.
/// - It writes the answers that must bypass HTTP encoding (these, and the `400` for a request
///   that cannot be parsed, through ``reject(_:code:_:)``) and drops whatever arrives after.
///
/// - With ``Limits/idleTimeout``, a keep-alive connection silent that long between requests is
///   closed.
///
/// ``HTTPRequestInspector`` (after the decoder) or ``CachedReadFastPath`` tells it where each
/// request begins and ends. It keeps at most one timer per connection, scheduled at accept: a
/// request that arrives whole in one read moves no timer (a timer that fires early is re-armed
/// for the deadline then in force).
public final class HTTPConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer

    /// The time limits of one connection.
    public struct Limits: Sendable {
        /// How long a request head may take to arrive.
        public var headerTimeout: TimeAmount
        /// The slowest average rate a request body may arrive at, after `headerTimeout`.
        public var minimumBodyBytesPerSecond: Int
        /// How long a keep-alive connection may stay silent between requests; `nil` for ever.
        public var idleTimeout: TimeAmount?

        public init(headerTimeout: TimeAmount = .seconds(10), minimumBodyBytesPerSecond: Int = 1024, idleTimeout: TimeAmount? = nil) {
            self.headerTimeout = headerTimeout
            self.minimumBodyBytesPerSecond = minimumBodyBytesPerSecond
            self.idleTimeout = idleTimeout
        }
    }

    private enum State {
        /// Waiting for a request head; `since` is when its clock started.
        case awaitingHead(since: NIODeadline)
        /// A keep-alive connection between requests since `since` (the idle timeout applies, not the head deadline).
        case idle(since: NIODeadline)
        /// A request head has arrived; its response has not ended.
        case inRequest
        /// The connection is a WebSocket now: none of the HTTP limits apply.
        case upgraded
        /// An answer that ends the connection has been written: input is dropped.
        case closing
    }

    private let limiter: ConnectionLimiter
    private let limits: Limits
    private var ticket: ConnectionTicket?
    private var state = State.awaitingHead(since: .uptimeNanoseconds(0))
    private var timer: Scheduled<Void>?
    /// When `timer` fires.
    private var timerDeadline = NIODeadline.uptimeNanoseconds(0)
    /// Whether a request body is still arriving, with when it started and how much has come.
    private var body: (since: NIODeadline, bytes: Int)?
    private var context: ChannelHandlerContext?

    /// A guard counting connections in `limiter`, with `limits`.
    public init(limiter: ConnectionLimiter, limits: Limits) {
        self.limiter = limiter
        self.limits = limits
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { activate(context) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        finish()
        self.context = nil
    }

    public func channelActive(context: ChannelHandlerContext) {
        activate(context)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch state {
        case .closing:
            return
        case .idle:
            // The first byte of the next request starts its head's clock (its timer, if the head
            // does not arrive whole in this read, is set at read-complete).
            state = .awaitingHead(since: context.eventLoop.now)
            ticket?.setIdle(false)
        case .inRequest:
            if let b = body { body = (b.since, b.bytes + unwrapInboundIn(data).readableBytes) }
        case .awaitingHead, .upgraded:
            break
        }
        context.fireChannelRead(data)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        // Timers only for requests that did not arrive whole in one read: the common case costs none.
        switch state {
        case .awaitingHead(let since):
            arm(context, at: since + limits.headerTimeout)
        case .inRequest where body != nil:
            arm(context, at: body!.since + limits.headerTimeout)
        default:
            break
        }
        context.fireChannelReadComplete()
    }

    // MARK: Signals from the HTTP side

    /// A request head has arrived whole; `hasBody` when a body follows it.
    func headReceived(hasBody: Bool) {
        switch state {
        case .awaitingHead: break
        // A pipelined request that arrived in the same read as the previous one's answer.
        case .idle: ticket?.setIdle(false)
        case .inRequest, .upgraded, .closing: return
        }
        state = .inRequest
        // A pending timer stays: when it fires it finds no deadline in force and lapses.
        body = hasBody ? (context?.eventLoop.now ?? .now(), 0) : nil
    }

    /// The current request's body has ended.
    func bodyEnded() {
        body = nil
    }

    /// The last outstanding response has ended on a connection that stays open.
    func responseEnded() {
        guard case .inRequest = state, let context else { return }
        let now = context.eventLoop.now
        state = .idle(since: now)
        body = nil
        ticket?.setIdle(true)
        if let idle = limits.idleTimeout { arm(context, at: now + idle) }
    }

    /// A request answered whole where it was read (``CachedReadFastPath``): `closing` when the
    /// connection ends with the answer, so nothing read after it is passed on.
    func answeredInPlace(closing: Bool) {
        headReceived(hasBody: false)
        if closing {
            state = .closing
        } else {
            responseEnded()
        }
    }

    /// Bytes of a further request arrived in the read whose earlier requests were answered in
    /// place: the connection is no longer idle, and that request's head is on the clock.
    func furtherRequestBegun() {
        guard case .idle = state, let context else { return }
        state = .awaitingHead(since: context.eventLoop.now)
        ticket?.setIdle(false)
    }

    /// The connection became a WebSocket.
    func upgraded() {
        state = .upgraded
        body = nil
    }

    /// Whether a request has begun that the HTTP handlers answer (an error now is theirs to report).
    var isInRequest: Bool {
        if case .inRequest = state { return true }
        return false
    }

    /// Answers `status` with a problem+json body (stable `code`, `detail`) written straight to the
    /// socket, then ends its output and drops the input that still arrives; the connection is
    /// closed when the client closes it, and at most ``closeGrace`` after the answer whatever
    /// happened to it: a TLS connection whose handshake never finished holds writes back for ever,
    /// and so would a client that does not read.
    func reject(_ status: HTTPResponse.Status, code: String, _ detail: String, headers: [(String, String)] = []) {
        guard let context else { return }
        if case .closing = state { return }
        state = .closing
        cancelTimer()
        let requestID = RequestID().description
        let body = JSONWriter.encode([
            "type": "about:blank", "title": .string(status.reasonPhrase), "status": .int(Int64(status.code)), "detail": .string(detail),
            "code": .string(code), "requestId": .string(requestID),
        ])
        var head = "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\ncontent-type: application/problem+json\r\n"
        head += "content-length: \(body.count)\r\nconnection: close\r\nx-request-id: \(requestID)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        var buffer = context.channel.allocator.buffer(capacity: head.utf8.count + body.count)
        buffer.writeString(head)
        buffer.writeBytes(body)
        let channel = context.channel
        // A lingering close: the answer, then the end of output; what the client is still sending
        // (a body past the limit, say) is read and dropped until it closes too or the grace ends,
        // so it reads the answer instead of a reset.
        context.writeAndFlush(wrapInboundOut(buffer)).whenComplete { _ in
            channel.close(mode: .output).whenFailure { _ in channel.close(promise: nil) }
        }
        context.eventLoop.scheduleTask(in: Self.closeGrace) { channel.close(promise: nil) }
    }

    /// How long a rejected connection's answer may take to be written before the connection is closed anyway.
    static let closeGrace = TimeAmount.seconds(1)

    // MARK: Private

    private func activate(_ context: ChannelHandlerContext) {
        guard ticket == nil, case .awaitingHead = state else { return }
        switch limiter.admit(context.channel) {
        case .success(let t):
            ticket = t
            let now = context.eventLoop.now
            state = .awaitingHead(since: now)
            arm(context, at: now + limits.headerTimeout)
        case .failure(let refusal):
            reject(.serviceUnavailable, code: "connectionLimit", refusal.description, headers: [("retry-after", "1")])
        }
    }

    /// Makes sure a timer fires at `deadline` or before (one that fires early is re-armed then).
    private func arm(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        if timer != nil, timerDeadline <= deadline { return }
        cancelTimer()
        timerDeadline = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            expired()
        }
    }

    private func expired() {
        guard let context else { return }
        let now = context.eventLoop.now
        switch state {
        case .awaitingHead(let since):
            guard now >= since + limits.headerTimeout else { return arm(context, at: since + limits.headerTimeout) }
            reject(
                .requestTimeout, code: "headerTimeout",
                "the request head did not arrive within \(limits.headerTimeout.nanoseconds / 1_000_000_000) seconds")
        case .idle(let since):
            guard let idle = limits.idleTimeout else { return }
            guard now >= since + idle else { return arm(context, at: since + idle) }
            state = .closing
            context.close(promise: nil)
        case .inRequest:
            guard let b = body else { return }
            guard now >= b.since + limits.headerTimeout else { return arm(context, at: b.since + limits.headerTimeout) }
            let elapsed = Double((now - b.since).nanoseconds) / 1e9
            let floor = Double(limits.minimumBodyBytesPerSecond)
            if Double(b.bytes) < floor * elapsed {
                reject(
                    .requestTimeout, code: "bodyTooSlow",
                    "the request body arrived at \(Int(Double(b.bytes) / max(elapsed, 0.001))) bytes/s, below the server's floor of "
                        + "\(limits.minimumBodyBytesPerSecond) bytes/s")
            } else {
                arm(context, at: now + .seconds(1))
            }
        default:
            break
        }
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
    }

    private func finish() {
        cancelTimer()
        ticket?.release()
        ticket = nil
    }
}

extension HTTPConnectionGuard {
    /// Tells the guard of `channel` (if it has one) that the connection is becoming a WebSocket,
    /// and removes the HTTP inspection that must not see WebSocket frames. Call on the channel's
    /// event loop, from the upgrade decision.
    public static func upgrading(_ channel: any Channel) {
        let pipeline = channel.pipeline.syncOperations
        if let inspector = try? pipeline.handler(type: HTTPRequestInspector.self) {
            pipeline.removeHandler(inspector, promise: nil)
        }
        (try? pipeline.handler(type: HTTPConnectionGuard.self))?.upgraded()
    }
}
