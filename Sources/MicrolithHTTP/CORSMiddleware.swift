import HTTPTypes
public import Hummingbird

/// Cross-origin resource sharing for the origins ``BrowserPolicy/allowedOrigins`` names, and for
/// no other (closed by default): a preflight (`OPTIONS` with `Access-Control-Request-Method`)
/// from such an origin is answered `204` with the methods and headers it may use; every other
/// response to it, errors included, carries `Access-Control-Allow-Origin` with that origin (never
/// credentials) and exposes `ETag`, `Location` and `X-Request-Id`. Requests from other origins
/// get no CORS headers, so a browser keeps their pages from reading the answers.
public struct CORSMiddleware<Context: RequestContext>: RouterMiddleware {
    let policy: BrowserPolicy

    /// The methods and request headers a preflight is told it may use.
    static var allowedMethods: String { "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS" }
    static var allowedHeaders: String { "Content-Type, Accept, If-Match, If-None-Match, Authorization, Last-Event-ID" }

    /// CORS for the origins `policy` allows.
    public init(policy: BrowserPolicy) {
        self.policy = policy
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin], policy.allowsCrossOrigin(origin) else {
            return try await next(request, context)
        }
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            var headers: HTTPFields = [
                .accessControlAllowOrigin: origin, .accessControlAllowMethods: Self.allowedMethods,
                .accessControlAllowHeaders: Self.allowedHeaders, .accessControlMaxAge: "600", .vary: "Origin",
            ]
            headers[.contentLength] = "0"
            return Response(status: .noContent, headers: headers)
        }
        // Outside ProblemMiddleware: errors arrive here as problem responses, and get the headers too.
        var response = try await next(request, context)
        response.headers[.accessControlAllowOrigin] = origin
        response.headers[.accessControlExposeHeaders] = "ETag, Location, X-Request-Id"
        response.headers[.vary] = "Origin"
        return response
    }
}
