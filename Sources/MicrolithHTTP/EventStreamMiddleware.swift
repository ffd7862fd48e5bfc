import Foundation
package import Hummingbird
import MicrolithTables

/// Answers `GET` requests for `text/event-stream` on exported table URLs with an SSE subscription.
package struct EventStreamMiddleware: RouterMiddleware {
    public typealias Context = MicrolithRequestContext
    let subscriptions: SubscriptionEndpoint

    public init(subscriptions: SubscriptionEndpoint) {
        self.subscriptions = subscriptions
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .get, SubscriptionEndpoint.wantsEventStream(request.headers), isTablePath(request.uri.path) else {
            return try await next(request, context)
        }
        return try await subscriptions.eventStream(request, channel: context.channel)
    }

    private func isTablePath(_ path: String) -> Bool {
        subscriptions.tables.directory.table(inPath: path) != nil
    }
}
