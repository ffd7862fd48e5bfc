import Synchronization

/// Wakes a waiting loop early: the loop's ``Waiter/wait(upTo:)`` returns when ``signal()`` is
/// called or the time is up. A signal given while nobody waits is kept for the next wait (several
/// count as one).
final class WakeSignal: Sendable {
    private let state = Mutex<State>(State())

    private struct State {
        /// A signal nobody has waited for yet.
        var pending = false
        /// The loop waiting now.
        var waiter: CheckedContinuation<Void, Never>?
    }

    init() {}

    func signal() {
        let waiter = state.withLock { s in
            guard let waiter = s.waiter.take() else {
                s.pending = true
                return nil as CheckedContinuation<Void, Never>?
            }
            return waiter
        }
        waiter?.resume()
    }

    /// The one loop that waits on this signal.
    func makeWaiter() -> Waiter {
        Waiter(signal: self)
    }

    struct Waiter {
        let signal: WakeSignal

        /// Returns at the next signal, or after `timeout`, or when the task is cancelled. The timer
        /// is a child task: nothing outlives the call.
        mutating func wait(upTo timeout: Duration) async {
            let signal = self.signal
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await signal.next() }
                group.addTask { try? await Task.sleep(for: timeout) }
                await group.next()
                group.cancelAll()
            }
        }
    }

    /// Returns at the next signal (at once for a pending one) or when the task is cancelled.
    private func next() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s -> Bool in
                    if s.pending {
                        s.pending = false
                        return true
                    }
                    // Checked under the lock the cancellation handler takes: either it sees this
                    // waiter or this sees the cancellation.
                    if Task.isCancelled { return true }
                    s.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiter.take() }?.resume()
        }
    }
}
