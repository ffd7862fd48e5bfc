public import NIOCore

/// A response kept for a request target, to be sent again as it is.
public struct CachedResponse: Sendable {
    /// The HTTP status.
    public var status: Int
    /// Response headers (`Content-Type` among them), in order.
    public var headers: [(name: String, value: String)]
    /// The body.
    public var body: ByteBuffer

    public init(status: Int = 200, headers: [(name: String, value: String)], body: ByteBuffer) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Responses the server may send for a `GET`/`HEAD` of the same request target (path and
/// query, as sent) without running any handler: the lookup happens in the event loop, ahead of
/// the router, like cached record reads.
///
/// The runtime's own ``KeptResponses`` is one; it keeps itself correct by following what each
/// response read. Another implementation must drop a response as soon as what it shows changes
/// (in a `Store.onCommit` listener, which runs before the commit is acknowledged).
public protocol ResponseCache: Sendable {
    /// The response for `target` (`/p/42?x=1`), or `nil` to let the router answer.
    func response(for target: String) -> CachedResponse?
}
