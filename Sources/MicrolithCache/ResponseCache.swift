import HTTPTypes
public import NIOCore

/// A response kept for a request target, to be sent again as it is.
public struct CachedResponse: Sendable {
    /// The HTTP status.
    public var status: Int
    /// Response headers (`Content-Type` among them), in order.
    public var headers: [(name: String, value: String)]
    /// The body.
    public var body: ByteBuffer
    /// `headers` as HTTP/1.1 field lines (`name: value` and CRLF each), when the cache prepared
    /// them once for every request it answers; `nil` otherwise. Keep it in step with `headers`.
    public var fieldLines: ByteBuffer?

    public init(status: Int = 200, headers: [(name: String, value: String)], body: ByteBuffer, fieldLines: ByteBuffer? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.fieldLines = fieldLines
    }

    /// The header names a server sets on every answer itself (`Date`, `X-Request-Id`, `Server`,
    /// `Content-Length`), which ``fieldLines(_:)`` leaves out.
    public static let serverSetFields: Set<String> = ["date", "x-request-id", "server", "content-length"]

    /// `headers` as HTTP/1.1 field lines (each `name: value` and CRLF), in order, as an HTTP
    /// encoder would write them: a name that is not a valid field name is left out, a value is
    /// made legal as `HTTPField` makes it (no CR or LF gets through), and the ``serverSetFields``
    /// are left out for the server to write.
    public static func fieldLines(_ headers: [(name: String, value: String)]) -> ByteBuffer {
        var out = ByteBuffer()
        out.reserveCapacity(headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 })
        for (name, value) in headers {
            guard let fieldName = HTTPField.Name(name), !serverSetFields.contains(fieldName.canonicalName) else { continue }
            let field = HTTPField(name: fieldName, value: value)
            out.writeString(field.name.rawName)
            out.writeString(": ")
            out.writeString(field.value)
            out.writeString("\r\n")
        }
        return out
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
