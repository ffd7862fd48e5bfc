public import HummingbirdCore
public import Logging
public import MicrolithNetwork
public import NIOCore

/// Wraps an HTTP server child channel (HTTP/1 with WebSocket upgrade) so that every connection
/// is guarded from accept: an ``HTTPConnectionGuard`` first in the pipeline, an
/// ``HTTPRequestInspector`` right after HTTP decoding.
public struct GuardedHTTPChannel<Base: ServerChildChannel>: ServerChildChannel {
    public typealias Value = Base.Value

    let base: Base
    let limiter: ConnectionLimiter
    let limits: HTTPConnectionGuard.Limits
    let maximumBodyBytes: Int

    /// `base`, guarded by `limiter` and `limits`, refusing declared bodies over `maximumBodyBytes`.
    public init(_ base: Base, limiter: ConnectionLimiter, limits: HTTPConnectionGuard.Limits, maximumBodyBytes: Int) {
        self.base = base
        self.limiter = limiter
        self.limits = limits
        self.maximumBodyBytes = maximumBodyBytes
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let connection: HTTPConnectionGuard
        do {
            connection = HTTPConnectionGuard(limiter: limiter, limits: limits)
            try channel.pipeline.syncOperations.addHandler(connection, position: .first)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        let maximumBodyBytes = self.maximumBodyBytes
        // Set up on the channel's event loop; the inspector goes last, right after HTTP decoding
        // (and the upgrade handler, which hands it every request that is not an upgrade).
        return base.setup(channel: channel, logger: logger).assumeIsolated().flatMapThrowing { value in
            try channel.pipeline.syncOperations.addHandler(HTTPRequestInspector(connection: connection, maximumBodyBytes: maximumBodyBytes))
            return value
        }.nonisolated()
    }

    public func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
