import DequeModule
import MicrolithJSON
import MicrolithQuery
import MicrolithStore
import Synchronization

/// A live subscription: an `AsyncSequence` of ``RealtimeEvent``s.
///
/// It yields, in order: the replayed changes (when resuming) or a `reload` note, `subscribed`,
/// the current record (record subscriptions that do not resume), then live events in commit
/// order. It ends after an `overflow` event when more than its buffer of events waits unread,
/// or when it is cancelled. Obtained from ``EventHub/subscribe(_:after:bufferEvents:)``.
///
/// ```swift
/// let subscription = try await hub.subscribe(.record(table, .string("game1")))
/// for await event in subscription { print(event.kind, event.value ?? .null) }
/// ```
public final class RealtimeSubscription: AsyncSequence, Sendable {
    public typealias Element = RealtimeEvent

    let key: UInt64
    /// What the subscription follows.
    public let target: SubscriptionTarget
    /// How many live events may wait unread before the subscriber is dropped.
    public let bufferEvents: Int
    private let state: Mutex<State>
    private let onEnd: @Sendable (UInt64) -> Void

    private struct State {
        var started = false
        /// Events before the start: taken through the filter only once the replay has been.
        var early: [RealtimeEvent] = []
        var head: Deque<RealtimeEvent> = []
        var queue: Deque<RealtimeEvent> = []
        var waiter: CheckedContinuation<RealtimeEvent?, Never>?
        var ended = false
        /// The ids currently matching a query subscription.
        var matching: Set<RecordID>?
    }

    init(key: UInt64, target: SubscriptionTarget, bufferEvents: Int, onEnd: @escaping @Sendable (UInt64) -> Void) {
        self.key = key
        self.target = target
        self.bufferEvents = Swift.max(1, bufferEvents)
        self.onEnd = onEnd
        var initial = State()
        if case .query = target { initial.matching = [] }
        self.state = Mutex(initial)
    }

    /// Sets the matching set of a query subscription (the query's result when it started).
    func setMatching(_ ids: Set<RecordID>) {
        state.withLock { $0.matching = ids }
    }

    /// The event as this subscriber sees it, or `nil` when it does not concern it.
    /// Updates a query subscription's matching set.
    private static func admit(_ event: RealtimeEvent, target: SubscriptionTarget, matching: inout Set<RecordID>?) -> RealtimeEvent? {
        guard let id = event.id, event.tableIndex == target.table.index, target.covers(id) else { return nil }
        guard case .query(_, let query) = target, matching != nil else { return event }
        switch event.kind {
        case .message:
            return matching!.contains(id) ? event : nil
        case .delete:
            return matching!.remove(id) != nil ? event : nil
        default:
            let matches: Bool
            if let filter = query.filter, case .object(let record)? = event.value {
                matches = QueryEvaluator.matches(filter, record: record, resolve: QueryEvaluator.defaultResolve)
            } else {
                matches = event.value != nil
            }
            if matches {
                matching!.insert(id)
                return event
            }
            return matching!.remove(id) != nil ? event.leaving() : nil
        }
    }

    /// Runs a replayed change through the filter (before ``start(head:)``): its event, if it concerns the subscriber.
    func replay(_ event: RealtimeEvent) -> RealtimeEvent? {
        state.withLock { s in Self.admit(event, target: target, matching: &s.matching) }
    }

    /// Makes the subscription yield `head` first, then the live events held since registration.
    func start(head: [RealtimeEvent]) {
        let resume: (CheckedContinuation<RealtimeEvent?, Never>, RealtimeEvent)? = state.withLock { s in
            s.started = true
            s.head.append(contentsOf: head)
            for event in s.early {
                if let e = Self.admit(event, target: target, matching: &s.matching) { s.queue.append(e) }
            }
            s.early = []
            return Self.takeWaiter(&s)
        }
        if let (waiter, event) = resume { waiter.resume(returning: event) }
        if state.withLock({ $0.queue.count > bufferEvents }) { overflow() }
    }

    /// Offers a live event (called on the hub's queue, in commit order). Returns `false` once the
    /// subscription has ended, so the hub drops it.
    @discardableResult
    func offer(_ event: RealtimeEvent) -> Bool {
        enum Outcome { case ended, queued, overflow, deliver(CheckedContinuation<RealtimeEvent?, Never>, RealtimeEvent) }
        let outcome: Outcome = state.withLock { s in
            if s.ended { return .ended }
            if !s.started {
                s.early.append(event)
                return s.early.count > bufferEvents * 4 ? .overflow : .queued
            }
            guard let e = Self.admit(event, target: target, matching: &s.matching) else { return .queued }
            if let waiter = s.waiter, s.head.isEmpty, s.queue.isEmpty {
                s.waiter = nil
                return .deliver(waiter, e)
            }
            if s.queue.count >= bufferEvents { return .overflow }
            s.queue.append(e)
            return .queued
        }
        switch outcome {
        case .ended: return false
        case .queued: return true
        case .deliver(let waiter, let e):
            waiter.resume(returning: e)
            return true
        case .overflow:
            overflow()
            return false
        }
    }

    /// Drops what waits, queues the `overflow` note and ends.
    private func overflow() {
        let waiter: CheckedContinuation<RealtimeEvent?, Never>? = state.withLock { s in
            guard !s.ended else { return nil }
            s.ended = true
            s.early = []
            s.queue = [RealtimeEvent.overflow(limit: bufferEvents)]
            s.head = []
            s.started = true
            let w = s.waiter
            s.waiter = nil
            return w
        }
        onEnd(key)
        if let waiter { waiter.resume(returning: state.withLock { $0.queue.popFirst() }) }
    }

    private static func takeWaiter(_ s: inout State) -> (CheckedContinuation<RealtimeEvent?, Never>, RealtimeEvent)? {
        guard let waiter = s.waiter, let next = s.head.popFirst() ?? s.queue.popFirst() else { return nil }
        s.waiter = nil
        return (waiter, next)
    }

    /// The next event, waiting for one; `nil` once the subscription has ended.
    public func next() async -> RealtimeEvent? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<RealtimeEvent?, Never>) in
                let immediate: RealtimeEvent?? = state.withLock { s in
                    if s.started, let e = s.head.popFirst() ?? s.queue.popFirst() { return .some(e) }
                    if s.ended || Task.isCancelled { return .some(nil) }
                    s.waiter = c
                    return .none
                }
                if let immediate { c.resume(returning: immediate) }
            }
        } onCancel: {
            cancel()
        }
    }

    /// Wakes an idle reader with a ``RealtimeEvent/Kind/keepAlive`` event (nothing is queued when
    /// events are waiting anyway).
    public func keepAlive() {
        let waiter: CheckedContinuation<RealtimeEvent?, Never>? = state.withLock { s in
            guard s.started, !s.ended, s.head.isEmpty, s.queue.isEmpty else { return nil }
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.queue.append(.keepAlive)
            return nil
        }
        waiter?.resume(returning: .keepAlive)
    }

    /// How many live events wait unread.
    public var backlog: Int { state.withLock { $0.queue.count + $0.early.count } }

    /// Ends the subscription: no more events, and a waiting ``next()`` returns `nil`.
    public func cancel() {
        let waiter: CheckedContinuation<RealtimeEvent?, Never>? = state.withLock { s in
            s.ended = true
            s.started = true
            s.queue = []
            s.head = []
            s.early = []
            return s.waiter.take()
        }
        onEnd(key)
        waiter?.resume(returning: nil)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let subscription: RealtimeSubscription
        public mutating func next() async -> RealtimeEvent? { await subscription.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(subscription: self) }
}
