/// Wakes a waiting loop early: the loop's ``Waiter/wait(upTo:)`` returns when ``signal()`` is
/// called or the time is up. A signal given while nobody waits is kept for the next wait.
final class WakeSignal: Sendable {
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init() {
        (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func signal() {
        continuation.yield()
    }

    /// The one loop that waits on this signal.
    func makeWaiter() -> Waiter {
        Waiter(iterator: stream.makeAsyncIterator(), continuation: continuation)
    }

    struct Waiter {
        var iterator: AsyncStream<Void>.AsyncIterator
        let continuation: AsyncStream<Void>.Continuation

        /// Returns at the next signal, or after `timeout`.
        mutating func wait(upTo timeout: Duration) async {
            let continuation = self.continuation
            let timer = Task {
                try? await Task.sleep(for: timeout)
                if !Task.isCancelled { continuation.yield() }
            }
            _ = await iterator.next()
            timer.cancel()
        }
    }
}
