import Foundation
import HTTPTypes
import Hummingbird
public import MicrolithCache
import MicrolithStore
import MicrolithTables
import NIOCore
import NIOHTTP1
public import Synchronization

/// What the fast paths answer without the router: `GET`/`HEAD /{Table}/{id}` of records in the
/// ``RecordCache`` and the responses applications keep in a ``ResponseCache``. One value is
/// shared by every connection.
public final class CachedAnswers: Sendable {
    let endpoint: TableEndpoint
    let serverName: String?
    let responses: [any ResponseCache]
    /// The browser checks: a request to a host not allowed is left to the router, which refuses it.
    let policy: BrowserPolicy
    private let date = Mutex(HTTPDate())
    /// Requests answered here from the record cache, ahead of the router (for metrics).
    public let recordAnswers = Atomic<UInt64>(0)
    /// Requests answered here with a kept response, ahead of the router (for metrics).
    public let keptAnswers = Atomic<UInt64>(0)

    /// Answers for cache hits of `endpoint`'s tables and the responses `responses` keep,
    /// with `Server: serverName`.
    public init(endpoint: TableEndpoint, serverName: String? = nil, responses: [any ResponseCache] = []) {
        self.endpoint = endpoint
        self.serverName = serverName
        self.responses = responses
        self.policy = endpoint.configuration.browserPolicy
    }

    /// Whether a target with a query string may have an answer (applications keep those).
    var answersQueries: Bool { !responses.isEmpty }

    /// The response for a cache hit, or `nil` to leave the request to the router.
    func answer(_ head: HTTPRequest) -> (HTTPResponse, ByteBuffer?)? {
        guard let path = head.path else { return nil }
        for cache in responses {
            if let hit = cache.response(for: path) {
                keptAnswers.wrappingAdd(1, ordering: .relaxed)
                return respond(hit, head)
            }
        }
        guard let record = cachedRecord(path) else { return nil }
        recordAnswers.wrappingAdd(1, ordering: .relaxed)
        var fields: HTTPFields = [
            .eTag: record.etag, .date: date.withLock { $0.current() },
            RequestLogMiddleware<MicrolithRequestContext>.requestID: RequestID().description,
        ]
        if let serverName { fields[.server] = serverName }
        if let tags = head.headerFields[.ifNoneMatch], TableEndpoint.matches(tags, record.etag, weak: true) {
            return (HTTPResponse(status: .notModified, headerFields: fields), nil)
        }
        fields[.contentType] = "application/json"
        fields[.contentLength] = String(record.json.readableBytes)
        return (HTTPResponse(status: .ok, headerFields: fields), head.method == .head ? nil : record.json)
    }

    /// The whole HTTP/1.1 answer for a cache hit as bytes, the same response ``answer(_:)``
    /// gives (plus `connection: close` when `closing`), or `nil` to leave the request to the
    /// router. Written straight into one buffer: no `HTTPFields`, no encoder, and a kept
    /// response's header lines are the ones prepared when it was kept.
    func encodedAnswer(_ head: HTTPRequest, closing: Bool, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard let path = head.path else { return nil }
        for cache in responses {
            guard let hit = cache.response(for: path) else { continue }
            keptAnswers.wrappingAdd(1, ordering: .relaxed)
            let lines = hit.fieldLines ?? CachedResponse.fieldLines(hit.headers)
            var out = allocator.buffer(capacity: 256 + lines.readableBytes + hit.body.readableBytes)
            Self.writeStatusLine(hit.status, into: &out)
            out.writeImmutableBuffer(lines)
            writeServerFields(into: &out)
            writeEnd(contentLength: hit.body.readableBytes, closing: closing, into: &out)
            if head.method != .head { out.writeImmutableBuffer(hit.body) }
            return out
        }
        guard let record = cachedRecord(path) else { return nil }
        recordAnswers.wrappingAdd(1, ordering: .relaxed)
        var out = allocator.buffer(capacity: 320 + record.json.readableBytes)
        if let tags = head.headerFields[.ifNoneMatch], TableEndpoint.matches(tags, record.etag, weak: true) {
            Self.writeStatusLine(304, into: &out)
            out.writeString("ETag: \(record.etag)\r\n")
            writeServerFields(into: &out)
            if closing { out.writeString("connection: close\r\n") }
            out.writeString("\r\n")
            return out
        }
        Self.writeStatusLine(200, into: &out)
        out.writeString("ETag: \(record.etag)\r\n")
        writeServerFields(into: &out)
        out.writeString("Content-Type: application/json\r\n")
        writeEnd(contentLength: record.json.readableBytes, closing: closing, into: &out)
        if head.method != .head { out.writeImmutableBuffer(record.json) }
        return out
    }

    /// The record a `/{Table}/{id}` path names, when the record cache holds it present; read by
    /// the table directory, as the router reads it (a path it refuses is left to the router).
    private func cachedRecord(_ path: String) -> CachedRecord? {
        // Most paths that are no table (static files) end at the first segment, before any message is built.
        guard path.utf8.count > 3, !path.utf8.contains(UInt8(ascii: "?")), endpoint.directory.table(inPath: path) != nil,
            let target = try? endpoint.directory.target(path: path), case .record(let id) = target.selection,
            endpoint.servesCachedReads(target.table), case .present(let record) = endpoint.store.cachedGet(target.table, id)
        else { return nil }
        return record
    }

    /// `HTTP/1.1 {code} {reason}` and CRLF, as NIO's encoder writes it for the router.
    private static func writeStatusLine(_ code: Int, into out: inout ByteBuffer) {
        switch code {
        case 200: out.writeStaticString("HTTP/1.1 200 OK\r\n")
        case 304: out.writeStaticString("HTTP/1.1 304 Not Modified\r\n")
        default:
            let status = HTTPResponseStatus(statusCode: code, reasonPhrase: HTTPResponse.Status(code: code).reasonPhrase)
            out.writeString("HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n")
        }
    }

    /// `Date`, `X-Request-Id` and `Server`, as every response carries them.
    private func writeServerFields(into out: inout ByteBuffer) {
        out.writeStaticString("Date: ")
        out.writeString(date.withLock { $0.current() })
        out.writeStaticString("\r\nX-Request-Id: ")
        RequestIDText.write(into: &out)
        out.writeStaticString("\r\n")
        if let serverName {
            out.writeStaticString("Server: ")
            out.writeString(serverName)
            out.writeStaticString("\r\n")
        }
    }

    /// `Content-Length`, `connection: close` when `closing`, and the empty line ending the head.
    private func writeEnd(contentLength: Int, closing: Bool, into out: inout ByteBuffer) {
        out.writeStaticString("Content-Length: ")
        out.writeString(String(contentLength))
        out.writeStaticString(closing ? "\r\nconnection: close\r\n\r\n" : "\r\n\r\n")
    }

    /// A kept application response, with the headers every response carries.
    private func respond(_ hit: CachedResponse, _ head: HTTPRequest) -> (HTTPResponse, ByteBuffer?) {
        var fields = HTTPFields()
        for (name, value) in hit.headers {
            if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) }
        }
        fields[.date] = date.withLock { $0.current() }
        fields[RequestLogMiddleware<MicrolithRequestContext>.requestID] = RequestID().description
        if let serverName { fields[.server] = serverName }
        fields[.contentLength] = String(hit.body.readableBytes)
        return (HTTPResponse(status: HTTPResponse.Status(code: hit.status), headerFields: fields), head.method == .head ? nil : hit.body)
    }

}

/// The `Date` header value (RFC 9110 IMF-fixdate), formatted at most once a second.
struct HTTPDate {
    private var second = 0
    private var text = ""

    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    mutating func current() -> String {
        var now = time(nil)
        if now != second || text.isEmpty {
            second = now
            var parts = tm()
            gmtime_r(&now, &parts)
            text = Self.format(parts)
        }
        return text
    }

    static func format(_ t: tm) -> String {
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(days[Int(t.tm_wday)]), \(two(t.tm_mday)) \(months[Int(t.tm_mon)]) \(1900 + t.tm_year) "
            + "\(two(t.tm_hour)):\(two(t.tm_min)):\(two(t.tm_sec)) GMT"
    }
}
