package import HTTPTypes
package import Hummingbird
import Logging
import MicrolithJSON

/// Gives every response an `X-Request-Id` (the id in the request's log metadata,
/// `hb.request.id`, and the `requestId` of a problem body) and logs one structured line per
/// request: method, path, status and duration at `debug`, server errors at `error` (by
/// ``ProblemMiddleware``, which also turns an error that reaches this far into a problem).
package struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            let problem = ProblemMiddleware<Context>.problem(for: error, requestID: context.id)
            ProblemMiddleware<Context>.log(error, as: problem, request: request, logger: context.logger)
            response = problem.makeResponse()
        }
        response.headers[Self.requestID] = context.id
        if context.logger.logLevel <= .debug {
            let ms = (ContinuousClock.now - started).milliseconds
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
