import Synchronization

/// What the store last learned about the writes of one database: how many are under way, and
/// whether the latest one to finish (or the latest readiness probe) failed because the database
/// would not take it (its write lock was held elsewhere, or the file could not be written).
final class WriteHealth: Sendable {
    private struct State {
        var inFlight = 0
        var failure: StoreError?
    }

    private let state = Mutex(State())

    /// A write was handed to the writer.
    func begin() {
        state.withLock { $0.inFlight += 1 }
    }

    /// A write finished: committed (`failure` nil), failed for a reason of the database
    /// (`failure` set), or failed for a reason of its own (`recordsOutcome` false: nothing learned).
    func finish(failure: StoreError?, recordsOutcome: Bool = true) {
        state.withLock { s in
            s.inFlight -= 1
            if recordsOutcome { s.failure = failure }
        }
    }

    /// Records what a readiness probe found.
    func probed(failure: StoreError?) {
        state.withLock { $0.failure = failure }
    }

    /// The writes under way and the latest database failure (nil once a write or probe succeeded).
    var snapshot: (inFlight: Int, failure: StoreError?) {
        state.withLock { ($0.inFlight, $0.failure) }
    }
}
