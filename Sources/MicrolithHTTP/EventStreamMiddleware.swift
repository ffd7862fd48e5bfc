import Foundation
package import Hummingbird

/// Answers `GET` requests for `text/event-stream` on exported table URLs with an SSE subscription.
package struct EventStreamMiddleware: RouterMiddleware {
    public typealias Context = BasicRequestContext
    let subscriptions: SubscriptionEndpoint

    public init(subscriptions: SubscriptionEndpoint) {
        self.subscriptions = subscriptions
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .get, SubscriptionEndpoint.wantsEventStream(request.headers), isTablePath(request.uri.path) else {
            return try await next(request, context)
        }
        return try await subscriptions.eventStream(request)
    }

    private func isTablePath(_ path: String) -> Bool {
        let first = path.split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
        return subscriptions.tables.table(first) != nil
    }
}
