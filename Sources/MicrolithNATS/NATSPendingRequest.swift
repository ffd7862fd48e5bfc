public import NIOCore

/// A request sent and not yet answered (``NATSClient/send(request:payload:headers:timeout:)``).
public struct NATSPendingRequest: Sendable {
    let token: UInt64
    /// The answer: the first message to the request's reply subject, or the failure (no
    /// responders, timeout, closed).
    public let answer: EventLoopFuture<NATSMessage>

    /// Waits for the answer.
    public func value() async throws -> NATSMessage {
        try await answer.get()
    }
}
