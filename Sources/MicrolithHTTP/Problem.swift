public import Hummingbird
public import MicrolithJSON

/// An RFC 9457 problem: the body of every error response (`application/problem+json`).
public struct Problem: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    /// A short summary of the kind of problem (the status's reason phrase by default).
    public var title: String
    /// What went wrong with this request, precisely.
    public var detail: String
    /// Extra members, such as `offset` for a query syntax error or `attribute` for a bad record.
    public var extensions: JSONObject
    /// Extra response headers (such as `Retry-After`).
    public var headers: HTTPFields

    public init(
        _ status: HTTPResponse.Status, _ detail: String, title: String? = nil, extensions: JSONObject = JSONObject(), headers: HTTPFields = [:]
    ) {
        self.status = status
        self.title = title ?? status.reasonPhrase
        self.detail = detail
        self.extensions = extensions
        self.headers = headers
    }

    /// The JSON body.
    public var json: JSONValue {
        var o = JSONObject()
        o["type"] = "about:blank"
        o["title"] = .string(title)
        o["status"] = .int(Int64(status.code))
        o["detail"] = .string(detail)
        for (k, v) in extensions.members { o[k] = v }
        return .object(o)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        makeResponse()
    }

    /// The response carrying this problem.
    public func makeResponse() -> Response {
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: JSONWriter.encode(json))))
    }
}
