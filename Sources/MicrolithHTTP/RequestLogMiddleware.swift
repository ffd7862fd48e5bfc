public import HTTPTypes
public import Hummingbird
import Logging

/// Gives every response an `X-Request-Id` (the id in the request's log metadata,
/// `hb.request.id`) and logs one structured line per request: method, path, status and
/// duration at `debug`, server errors at `error` (by ``ProblemMiddleware``).
public struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        var response = try await next(request, context)
        response.headers[Self.requestID] = context.id
        if context.logger.logLevel <= .debug {
            let d = ContinuousClock.now - started
            let ms = Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
            context.logger.debug(
                "request",
                metadata: [
                    "method": "\(request.method.rawValue)", "path": "\(request.uri.path)", "status": "\(response.status.code)",
                    "durationMs": "\((ms * 1000).rounded() / 1000)",
                ])
        }
        return response
    }

    /// `X-Request-Id`.
    public static var requestID: HTTPField.Name { HTTPField.Name("X-Request-Id")! }
}
