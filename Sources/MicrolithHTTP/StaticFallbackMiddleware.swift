import Hummingbird

/// Sends requests that no route matched to a fallback (the static files).
struct StaticFallbackMiddleware<Context: RequestContext>: RouterMiddleware {
    let fallback: @Sendable (Request, Context) async throws -> Response

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            return try await fallback(request, context)
        }
    }
}
