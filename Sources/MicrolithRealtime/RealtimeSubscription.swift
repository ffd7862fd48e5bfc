import DequeModule
import MicrolithJSON
import MicrolithQuery
import MicrolithStore
import NIOCore
import Synchronization

/// A live subscription: an `AsyncSequence` of ``RealtimeEvent``s.
///
/// It yields, in order: the replayed changes (when resuming) or a `reload` note, `subscribed`,
/// the current record (record subscriptions that do not resume), then live events in commit
/// order. It ends after an `overflow` event when its reader falls further behind than its buffer
/// allows (``bufferEvents`` events or ``bufferBytes`` bytes), or when it is cancelled. Obtained from
/// ``EventHub/subscribe(_:after:bufferEvents:bufferBytes:)``.
///
/// ```swift
/// let subscription = try await hub.subscribe(.record(table, .string("game1")))
/// for await event in subscription { print(event.kind, event.value ?? .null) }
/// ```
///
/// ## What the byte bound counts
///
/// The encoded JSON (``RealtimeEvent/json``) of every event that waits unread, plus the events the
/// reader has taken but may not have passed on yet: the one it is handling, and the one before it
/// until it asks for the next. A transport that asks for the next event once its connection has
/// accepted the last write thereby keeps the bytes written to its socket but not yet sent counted,
/// up to NIO's write-buffer high-water mark (64 KiB). A reader on an event loop
/// (``attach(_:)``, ``poll()``: how the WebSocket and SSE transports read) writes only while its
/// connection is under that mark, and leaves the rest waiting here.
public final class RealtimeSubscription: AsyncSequence, Sendable {
    public typealias Element = RealtimeEvent

    let key: UInt64
    /// What the subscription follows.
    public let target: SubscriptionTarget
    /// How many live events may wait unread before the subscriber is dropped.
    public let bufferEvents: Int
    /// How many bytes of events may wait unread or in the reader's hands (see the type's
    /// description) before the subscriber is dropped.
    public let bufferBytes: Int
    private let state: Mutex<State>
    private let onEnd: @Sendable (UInt64) -> Void

    private struct State {
        var started = false
        /// Events before the start: taken through the filter only once the replay has been.
        var early: [RealtimeEvent] = []
        var earlyBytes = 0
        var head: Deque<RealtimeEvent> = []
        var queue: Deque<RealtimeEvent> = []
        /// The encoded bytes of `head` and `queue`.
        var queuedBytes = 0
        /// The bytes of the event last handed to the reader: it is handling it.
        var inHand = 0
        /// The bytes of the event before that, until the reader asks for the one after `inHand`.
        var passing = 0
        var waiter: CheckedContinuation<RealtimeEvent?, Never>?
        /// The reader on an event loop, when there is one (see ``RealtimeEventSink``).
        var sink: (any RealtimeEventSink)?
        /// Whether the sink polled the subscription empty since it was last woken: the next event wakes it.
        var sinkArmed = false
        /// Tasks waiting in ``ended()``, by ticket.
        var endWaiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextTicket: UInt64 = 0
        var ended = false
        /// The ids currently matching a query subscription.
        var matching: Set<RecordID>?

        /// Every byte counted against the buffer.
        var heldBytes: Int { queuedBytes + inHand + passing }

        mutating func enqueue(_ event: RealtimeEvent) {
            queue.append(event)
            queuedBytes += event.byteCount
        }

        /// The next event for the reader (head first), now in its hands.
        mutating func handOut() -> RealtimeEvent? {
            guard let event = head.popFirst() ?? queue.popFirst() else { return nil }
            queuedBytes -= event.byteCount
            inHand = event.byteCount
            return event
        }

        /// Hands `event` straight to the reader, past the (empty) queue.
        mutating func handOver(_ event: RealtimeEvent) -> RealtimeEvent {
            inHand = event.byteCount
            return event
        }

        /// The sink to wake now, if it waits for events; it is not woken again until it polls empty.
        mutating func takeSinkWake() -> (any RealtimeEventSink)? {
            guard sinkArmed, let sink else { return nil }
            sinkArmed = false
            return sink
        }

        /// Forgets every waiting event (the subscription ends).
        mutating func drop() {
            early = []
            earlyBytes = 0
            head = []
            queue = []
            queuedBytes = 0
        }

        /// Why the subscriber is too far behind for its buffer of `events` and `bytes`, with `event`
        /// queued too, if it is.
        func overflowReason(adding event: RealtimeEvent?, events: Int, bytes: Int) -> String? {
            if queue.count + (event == nil ? 0 : 1) > events { return "more than \(events) events were waiting for this client" }
            if heldBytes + (event?.byteCount ?? 0) > bytes { return "more than \(bytes) bytes of events were waiting for this client" }
            return nil
        }
    }

    init(key: UInt64, target: SubscriptionTarget, bufferEvents: Int, bufferBytes: Int, onEnd: @escaping @Sendable (UInt64) -> Void) {
        self.key = key
        self.target = target
        self.bufferEvents = Swift.max(1, bufferEvents)
        self.bufferBytes = Swift.max(1, bufferBytes)
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
        let (resume, sink, reason): ((CheckedContinuation<RealtimeEvent?, Never>, RealtimeEvent)?, (any RealtimeEventSink)?, String?) = state.withLock
        { s in
            s.started = true
            s.head.append(contentsOf: head)
            s.queuedBytes += head.reduce(0) { $0 + $1.byteCount }
            for event in s.early {
                if let e = Self.admit(event, target: target, matching: &s.matching) { s.enqueue(e) }
            }
            s.early = []
            s.earlyBytes = 0
            return (Self.takeWaiter(&s), s.takeSinkWake(), s.overflowReason(adding: nil, events: bufferEvents, bytes: bufferBytes))
        }
        if let (waiter, event) = resume { waiter.resume(returning: event) }
        if let sink { Self.wake(sink) }
        if let reason { overflow(reason) }
    }

    /// Offers a live event (called on the hub's queue, in commit order); a sink it wakes is added
    /// to `wakes`. Returns `false` once the subscription has ended, so the hub drops it.
    @discardableResult
    func offer(_ event: RealtimeEvent, wakes: inout SinkWakes) -> Bool {
        enum Outcome {
            case ended, queued, overflow(String), deliver(CheckedContinuation<RealtimeEvent?, Never>, RealtimeEvent), wake(any RealtimeEventSink)
        }
        let outcome: Outcome = state.withLock { s in
            if s.ended { return .ended }
            if !s.started {
                s.early.append(event)
                s.earlyBytes += event.byteCount
                // Unfiltered events of the whole table wait here while the replay runs: a looser bound.
                if s.early.count > bufferEvents * 4 {
                    return .overflow("more than \(bufferEvents * 4) events arrived while this client was starting")
                }
                if s.earlyBytes > bufferBytes * 4 {
                    return .overflow("more than \(bufferBytes * 4) bytes of events arrived while this client was starting")
                }
                return .queued
            }
            guard let e = Self.admit(event, target: target, matching: &s.matching) else { return .queued }
            if let waiter = s.waiter, s.head.isEmpty, s.queue.isEmpty {
                s.waiter = nil
                return .deliver(waiter, s.handOver(e))
            }
            if let reason = s.overflowReason(adding: e, events: bufferEvents, bytes: bufferBytes) { return .overflow(reason) }
            s.enqueue(e)
            return s.takeSinkWake().map { .wake($0) } ?? .queued
        }
        switch outcome {
        case .ended: return false
        case .queued: return true
        case .wake(let sink):
            wakes.add(sink)
            return true
        case .deliver(let waiter, let e):
            waiter.resume(returning: e)
            return true
        case .overflow(let reason):
            overflow(reason)
            return false
        }
    }

    /// Drops what waits, queues the `overflow` note and ends.
    private func overflow(_ reason: String) {
        let (waiter, note, sink, endWaiters):
            (CheckedContinuation<RealtimeEvent?, Never>?, RealtimeEvent?, (any RealtimeEventSink)?, [CheckedContinuation<Void, Never>]) =
                state.withLock { s in
                    guard !s.ended else { return (nil, nil, nil, []) }
                    s.ended = true
                    s.started = true
                    s.drop()
                    s.enqueue(RealtimeEvent.overflow(reason: reason + "; it is disconnected"))
                    let w = s.waiter
                    s.waiter = nil
                    return (w, w == nil ? nil : s.handOut(), s.takeSinkWake(), Self.takeEndWaiters(&s))
                }
        onEnd(key)
        if let waiter { waiter.resume(returning: note) }
        if let sink { Self.wake(sink) }
        for w in endWaiters { w.resume() }
    }

    /// Wakes `sink` on its loop, on its own (the hub gathers the wakes of live events instead).
    private static func wake(_ sink: any RealtimeEventSink) {
        sink.eventLoop.execute { sink.eventsReady() }
    }

    private static func takeWaiter(_ s: inout State) -> (CheckedContinuation<RealtimeEvent?, Never>, RealtimeEvent)? {
        guard let waiter = s.waiter, let next = s.handOut() else { return nil }
        s.waiter = nil
        return (waiter, next)
    }

    private static func takeEndWaiters(_ s: inout State) -> [CheckedContinuation<Void, Never>] {
        let waiters = Array(s.endWaiters.values)
        s.endWaiters = [:]
        return waiters
    }

    /// The next event, waiting for one; `nil` once the subscription has ended.
    ///
    /// Asking for the next event tells the subscription that the reader has passed on the one
    /// before the last (see the type's description).
    public func next() async -> RealtimeEvent? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<RealtimeEvent?, Never>) in
                let immediate: RealtimeEvent?? = state.withLock { s in
                    s.passing = s.inHand
                    s.inHand = 0
                    if s.started, let e = s.handOut() { return .some(e) }
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
        let (waiter, sink): (CheckedContinuation<RealtimeEvent?, Never>?, (any RealtimeEventSink)?) = state.withLock { s in
            guard s.started, !s.ended, s.head.isEmpty, s.queue.isEmpty else { return (nil, nil) }
            if let w = s.waiter {
                s.waiter = nil
                _ = s.handOver(.keepAlive)
                return (w, nil)
            }
            s.enqueue(.keepAlive)
            return (nil, s.takeSinkWake())
        }
        waiter?.resume(returning: .keepAlive)
        if let sink { Self.wake(sink) }
    }

    // MARK: Reading on an event loop

    /// What ``poll()`` found.
    public enum Polled: Sendable {
        /// The next event, now in the reader's hands (see the type's description).
        case event(RealtimeEvent)
        /// Nothing waits now: the sink is woken when something does.
        case empty
        /// The subscription has ended and everything it queued has been taken.
        case ended
    }

    /// Makes `sink` the subscription's reader: from now on it is woken (see ``RealtimeEventSink``)
    /// rather than a task waiting in ``next()``; the two are not to be mixed. Call it on the sink's
    /// loop, then poll until ``Polled/empty`` or ``Polled/ended``: events may already wait.
    public func attach(_ sink: any RealtimeEventSink) {
        state.withLock { s in
            s.sink = sink
            s.sinkArmed = false
        }
    }

    /// The next event without waiting, for a reader on an event loop (see ``attach(_:)``).
    ///
    /// Asking for the next event tells the subscription that the reader has passed on the one
    /// before the last, as ``next()`` does; ``Polled/empty`` arms the sink's wake.
    public func poll() -> Polled {
        state.withLock { s in
            s.passing = s.inHand
            s.inHand = 0
            if s.started, let e = s.handOut() { return .event(e) }
            if s.ended { return .ended }
            s.sinkArmed = true
            return .empty
        }
    }

    /// Forgets the sink (its connection is gone), so the subscription no longer holds it.
    public func detach() {
        state.withLock { s in
            s.sink = nil
            s.sinkArmed = false
        }
    }

    /// How many live events wait unread.
    public var backlog: Int { state.withLock { $0.queue.count + $0.early.count } }

    /// The bytes counted against ``bufferBytes`` now: events waiting unread and the ones in the
    /// reader's hands (see the type's description).
    public var bufferedBytes: Int { state.withLock { $0.heldBytes + $0.earlyBytes } }

    /// Waits until the subscription has ended (overflow or ``cancel()``), or until the calling
    /// task is cancelled. A transport uses it to bound how long it spends on a reader that is gone
    /// or stuck: see `SubscriptionEndpoint`.
    public func ended() async {
        let ticket = state.withLock { s in
            s.nextTicket += 1
            return s.nextTicket
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s in
                    if s.ended || Task.isCancelled { return true }
                    s.endWaiters[ticket] = c
                    return false
                }
                if now { c.resume() }
            }
        } onCancel: {
            state.withLock { $0.endWaiters.removeValue(forKey: ticket) }?.resume()
        }
    }

    /// Ends the subscription: no more events, and a waiting ``next()`` returns `nil`.
    public func cancel() {
        let (waiter, sink, endWaiters): (CheckedContinuation<RealtimeEvent?, Never>?, (any RealtimeEventSink)?, [CheckedContinuation<Void, Never>]) =
            state.withLock { s in
                s.ended = true
                s.started = true
                s.drop()
                return (s.waiter.take(), s.takeSinkWake(), Self.takeEndWaiters(&s))
            }
        onEnd(key)
        waiter?.resume(returning: nil)
        if let sink { Self.wake(sink) }
        for w in endWaiters { w.resume() }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let subscription: RealtimeSubscription
        public mutating func next() async -> RealtimeEvent? { await subscription.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(subscription: self) }
}
