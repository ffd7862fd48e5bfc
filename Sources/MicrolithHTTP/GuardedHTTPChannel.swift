public import HummingbirdCore
public import Logging
public import MicrolithNetwork
public import MicrolithTLS
public import NIOCore

/// Wraps an HTTP server child channel (HTTP/1 with WebSocket upgrade) so that every connection
/// is guarded from accept: an ``HTTPConnectionGuard`` first in the pipeline, an
/// ``HTTPRequestInspector`` right after HTTP decoding.
///
/// With `tls`, a TLS handler comes first of all: the guard and everything after it see plain
/// bytes, and the guard's answers (`408`, `503`) are encrypted like any other. The guard's
/// clock starts at accept, so a handshake that never finishes is closed by the head timeout.
///
/// With `answers`, a connection starts with only the guard and a ``CachedReadFastPath``: the
/// wrapped channel's pipeline (decoder, upgrade handler, router task) is set up the first time
/// a request needs it, so a connection whose requests are all cache hits never costs one.
public struct GuardedHTTPChannel<Base: ServerChildChannel>: ServerChildChannel {
    /// The wrapped channel's value once its pipeline is set up, or `nil` for a connection that
    /// closed without needing it.
    public struct Value: ServerChildChannelValue {
        public let channel: any Channel
        let base: EventLoopFuture<Base.Value?>
    }

    let base: Base
    let limiter: ConnectionLimiter
    let limits: HTTPConnectionGuard.Limits
    let maximumBodyBytes: Int
    let policy: BrowserPolicy
    let answers: CachedAnswers?
    let tls: TLSContextSource?

    /// `base`, guarded by `limiter` and `limits`, refusing declared bodies over `maximumBodyBytes`
    /// and what `policy` refuses; with `answers`, cache hits are answered before `base` is set up;
    /// with `tls`, over TLS only.
    public init(
        _ base: Base, limiter: ConnectionLimiter, limits: HTTPConnectionGuard.Limits, maximumBodyBytes: Int,
        policy: BrowserPolicy = BrowserPolicy(), answers: CachedAnswers? = nil, tls: TLSContextSource? = nil
    ) {
        self.base = base
        self.limiter = limiter
        self.limits = limits
        self.maximumBodyBytes = maximumBodyBytes
        self.policy = policy
        self.answers = answers
        self.tls = tls
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.assertInEventLoop()
        let connection = HTTPConnectionGuard(limiter: limiter, limits: limits)
        let promise = channel.eventLoop.makePromise(of: Base.Value?.self)
        do {
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(connection, position: .first)
            if let tls { try pipeline.addHandler(tls.makeServerHandler(), position: .first) }
            if let answers {
                let settled = SettledOnce(promise)
                let fastPath = CachedReadFastPath(answers: answers, connection: connection) { _ in
                    installBase(channel: channel, logger: logger, connection: connection, into: settled)
                }
                try pipeline.addHandler(fastPath, position: .after(connection))
                // A connection that closes before needing the full pipeline ends its value with nil.
                channel.closeFuture.assumeIsolated().whenComplete { _ in settled.succeed(nil) }
            } else {
                let value = Value(channel: channel, base: promise.futureResult)
                return installBase(channel: channel, logger: logger, connection: connection, into: SettledOnce(promise)).map { value }
            }
        } catch {
            promise.succeed(nil)
            return channel.eventLoop.makeFailedFuture(error)
        }
        return channel.eventLoop.makeSucceededFuture(Value(channel: channel, base: promise.futureResult))
    }

    public func handle(value: Value, logger: Logger) async {
        guard let base = try? await value.base.get() else { return }
        await self.base.handle(value: base, logger: logger)
    }

    /// Sets `base` up on `channel` (its handlers go last), then the inspector after it.
    private func installBase(
        channel: any Channel, logger: Logger, connection: HTTPConnectionGuard, into settled: SettledOnce<Base.Value?>
    ) -> EventLoopFuture<Void> {
        let maximumBodyBytes = self.maximumBodyBytes
        let policy = self.policy
        // Set up on the channel's event loop; the inspector goes last, right after HTTP decoding
        // (and the upgrade handler, which hands it every request that is not an upgrade).
        return base.setup(channel: channel, logger: logger).assumeIsolated().flatMapThrowing { value in
            try channel.pipeline.syncOperations.addHandler(
                HTTPRequestInspector(connection: connection, maximumBodyBytes: maximumBodyBytes, policy: policy))
            settled.succeed(value)
        }.flatMapErrorThrowing { error in
            settled.succeed(nil)
            throw error
        }.nonisolated()
    }
}

/// A promise completed by the first of several possible completions (all on its event loop).
final class SettledOnce<T: Sendable> {
    private let promise: EventLoopPromise<T>
    private var settled = false

    init(_ promise: EventLoopPromise<T>) {
        self.promise = promise
    }

    func succeed(_ value: T) {
        guard !settled else { return }
        settled = true
        promise.succeed(value)
    }
}
