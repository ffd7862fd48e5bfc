import HTTPTypes
import MicrolithJSON
package import NIOCore
package import NIOHTTP1

/// Sees every HTTP/1 request part right after decoding and every response part before encoding,
/// and keeps the connection's ``HTTPConnectionGuard`` informed.
///
/// - A request whose declared `Content-Length` is past ``maximumBodyBytes`` is answered `413` at
///   once, before any of its body is read.
/// - A request that cannot be parsed (bad request line or header, conflicting lengths, an
///   unknown method, HTTP/0.9, a TLS handshake, headers too large or too many) is answered `400`
///   (`431` for header limits) and the connection closed, whether it is the first request or a
///   later one; an error inside a request already handed on is left to the HTTP handlers.
/// - A request ``BrowserPolicy`` refuses (a `Host` not allowed, a cross-origin write) is
///   answered `403` and the connection closed.
/// - An HTTP/1.0 request without `keep-alive` is marked `Connection: close`, so its connection
///   ends with its response; the response to a request that closes its connection says so
///   (`Connection: close`), so the client does not send another one on it.
package final class HTTPRequestInspector: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias InboundOut = HTTPServerRequestPart
    public typealias OutboundIn = HTTPServerResponsePart
    public typealias OutboundOut = HTTPServerResponsePart

    private let connection: HTTPConnectionGuard
    private let maximumBodyBytes: Int
    private let policy: BrowserPolicy
    /// Requests handed on whose response has not ended.
    private var outstanding = 0
    /// Whether the latest request has arrived whole (its `.end` was read).
    private var requestComplete = true
    /// Whether the current request was answered here; its remaining parts are dropped.
    private var refused = false
    /// Whether a request read asked to close the connection after its response.
    private var closeAfter = false
    /// Whether that request has been read whole: what follows it is dropped, unparsed.
    private var closedForInput = false

    /// An inspector reporting to `connection`, refusing declared bodies over `maximumBodyBytes`
    /// and what `policy` refuses.
    public init(connection: HTTPConnectionGuard, maximumBodyBytes: Int, policy: BrowserPolicy = BrowserPolicy()) {
        self.connection = connection
        self.maximumBodyBytes = maximumBodyBytes
        self.policy = policy
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused, !closedForInput else { return }
        switch unwrapInboundIn(data) {
        case .head(var head):
            let length = head.headers.first(name: "content-length").flatMap { Int($0) }
            let chunked = head.headers.contains(name: "transfer-encoding")
            connection.headReceived(hasBody: chunked || (length ?? 0) > 0)
            if let length, length > maximumBodyBytes {
                refused = true
                connection.reject(
                    .contentTooLarge, code: "bodyTooLarge",
                    "the request body of \(length) bytes is larger than the server's limit of \(maximumBodyBytes) bytes")
                return
            }
            if let refusal = policy.refusal(
                method: head.method.rawValue, authority: head.headers.first(name: "host"), origin: head.headers.first(name: "origin"),
                fetchSite: head.headers.first(name: "sec-fetch-site"))
            {
                refused = true
                connection.reject(HTTPResponse.Status(code: refusal.status), code: refusal.code, refusal.detail)
                return
            }
            if !head.isKeepAlive, !head.headers.contains(name: "connection") || head.version.minor == 0 {
                head.headers.replaceOrAdd(name: "connection", value: "close")
            }
            if !head.isKeepAlive { closeAfter = true }
            outstanding += 1
            requestComplete = false
            context.fireChannelRead(wrapInboundOut(.head(head)))
        case .body:
            context.fireChannelRead(data)
        case .end:
            requestComplete = true
            if closeAfter { closedForInput = true }
            connection.bodyEnded()
            context.fireChannelRead(data)
            if outstanding == 0 { connection.responseEnded() }
        }
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let part = unwrapOutboundIn(data)
        if closeAfter, outstanding == 1, case .head(var head) = part, head.status.code >= 200, !head.headers.contains(name: "connection") {
            // The response of the request that closes the connection.
            head.headers.add(name: "connection", value: "close")
            context.write(wrapOutboundOut(.head(head)), promise: promise)
            return
        }
        context.write(data, promise: promise)
        if case .end = part {
            outstanding = max(0, outstanding - 1)
            if outstanding == 0, requestComplete { connection.responseEnded() }
        }
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parse = error as? HTTPParserError else { return context.fireErrorCaught(error) }
        // Bytes after a request that closes the connection are not a request to answer.
        guard !closedForInput else { return }
        guard outstanding == 0, !connection.isInRequest || requestComplete else { return context.fireErrorCaught(error) }
        refused = true
        switch parse {
        case .headerOverflow:
            connection.reject(
                .requestHeaderFieldsTooLarge, code: "headersTooLarge", "the request line or headers are larger than the server accepts")
        default:
            connection.reject(.badRequest, code: "malformedRequest", "the request cannot be parsed as HTTP/1.1: \(Self.describe(parse))")
        }
    }

    static func describe(_ error: HTTPParserError) -> String {
        switch error {
        case .invalidMethod: return "unknown or malformed method"
        case .invalidVersion: return "unsupported or malformed HTTP version"
        case .invalidURL: return "malformed request target"
        case .invalidHeaderToken, .invalidCharactersUsed: return "invalid character in the request line or a header"
        case .invalidContentLength: return "invalid or repeated Content-Length"
        case .unexpectedContentLength: return "Content-Length together with Transfer-Encoding"
        case .invalidChunkSize: return "invalid chunk size"
        case .lfExpected, .invalidConstant: return "malformed line ending or request line"
        default: return "malformed request"
        }
    }
}
