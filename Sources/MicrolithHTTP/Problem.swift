public import Hummingbird
public import MicrolithJSON

/// An RFC 9457 problem: the body of every error response (`application/problem+json`).
///
/// Besides the standard members, the body carries `code`, a stable machine-readable name of the
/// failure (`invalidRecord`, `notFound`, `storeBusy`, `internal`, …; see the Errors article of the DocC catalogue), and
/// `requestId`, the request's `X-Request-Id`, so a client's report can be found in the server log.
public struct Problem: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    /// A short summary of the kind of problem (the status's reason phrase by default).
    public var title: String
    /// What went wrong with this request, precisely.
    public var detail: String
    /// A stable, machine-readable name of the failure (derived from the status when not given).
    public var code: String
    /// The id of the request that failed (`X-Request-Id`), when known.
    public var requestID: String?
    /// Extra members, such as `offset` for a query syntax error or `attribute` for a bad record.
    public var extensions: JSONObject
    /// Extra response headers (such as `Retry-After`).
    public var headers: HTTPFields

    /// A problem with `status` and `detail`; `code` defaults to a `code` string among
    /// `extensions`, else to ``defaultCode(for:)``.
    public init(
        _ status: HTTPResponse.Status, _ detail: String, code: String? = nil, title: String? = nil, extensions: JSONObject = JSONObject(),
        headers: HTTPFields = [:]
    ) {
        var extensions = extensions
        var named = code
        if case .string(let given)? = extensions["code"] {
            named = named ?? given
            extensions["code"] = nil
        }
        self.status = status
        self.title = title ?? status.reasonPhrase
        self.detail = detail
        self.code = named ?? Self.defaultCode(for: status)
        self.extensions = extensions
        self.headers = headers
    }

    /// `Retry-After` of a 503 for a store that is busy, closed or not ready: one second.
    static let retryAfterSeconds = "1"

    /// The code of a problem that names none: a lower-camel-case name of the status
    /// (`badRequest`, `notFound`, `contentTooLarge`, …; `internal` for 500).
    public static func defaultCode(for status: HTTPResponse.Status) -> String {
        switch status.code {
        case 500: return "internal"
        case 503: return "unavailable"
        default:
            let words = status.reasonPhrase.split(whereSeparator: { !$0.isLetter && !$0.isNumber })
            guard let first = words.first else { return "http\(status.code)" }
            return first.lowercased() + words.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst().lowercased() }.joined()
        }
    }

    /// The JSON body.
    public var json: JSONValue {
        var o = JSONObject()
        o["type"] = "about:blank"
        o["title"] = .string(title)
        o["status"] = .int(Int64(status.code))
        o["detail"] = .string(detail)
        o["code"] = .string(code)
        if let requestID { o["requestId"] = .string(requestID) }
        for (k, v) in extensions.members where o[k] == nil { o[k] = v }
        return .object(o)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var problem = self
        if problem.requestID == nil { problem.requestID = context.id }
        return problem.makeResponse()
    }

    /// The response carrying this problem.
    public func makeResponse() -> Response {
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: JSONWriter.encode(json))))
    }
}
