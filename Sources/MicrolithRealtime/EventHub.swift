import Dispatch
import GRDB
public import Logging
import MicrolithJSON
import MicrolithQuery
public import MicrolithSchema
public import MicrolithStore
public import NIOCore
import Synchronization

/// The one committed change stream of a process, fanned out to every subscriber.
///
/// The store reports each commit's changes after the commit and before the writers are told;
/// the hub takes them to its own serial queue (so delivery never holds up the next commit),
/// builds each event once and hands it to the subscriptions it concerns and to the listeners
/// (the MQTT broker). Messages published to records travel the same queue, so every
/// subscriber sees one order. WebSocket, SSE, MQTT and Swift subscribers all read from here.
///
/// Delivery runs on a serial `DispatchQueue` rather than in a task: the store hands each commit
/// over synchronously from its writer's queue, in commit order, and must not wait; an
/// `async` hop per commit would neither keep that order for free nor be cheaper. ``stop()``
/// ends delivery (a server's lifecycle calls it once nothing publishes any more).
public final class EventHub: Sendable {
    public let store: Store
    /// The default buffer of a subscription, in events.
    public let bufferEvents: Int
    /// The default buffer of a subscription, in bytes of encoded events (see ``RealtimeSubscription``).
    public let bufferBytes: Int
    /// The most changes a resuming subscription replays; further back it is told to reload.
    public let maximumReplay: Int
    /// Where the hub, and the transports that serve its subscriptions, report failures.
    public let logger: Logger
    private let queue = DispatchQueue(label: "microlith.realtime")
    private let registry = Mutex(Registry())

    private struct Registry {
        var nextKey: UInt64 = 1
        var byRecord: [Int: [RecordID: [UInt64: RealtimeSubscription]]] = [:]
        var byTable: [Int: [UInt64: RealtimeSubscription]] = [:]
        var listeners: [UInt64: @Sendable (RealtimeEvent) -> Void] = [:]
        /// The highest change-log sequence handed out, per database.
        var dispatched: [String: Int64] = [:]
        var subscriptions = 0
        /// Set by ``stop()``: nothing is delivered or registered any more.
        var stopped = false
    }

    private init(store: Store, bufferEvents: Int, bufferBytes: Int, maximumReplay: Int, logger: Logger) {
        self.store = store
        self.bufferEvents = max(1, bufferEvents)
        self.bufferBytes = max(1, bufferBytes)
        self.maximumReplay = maximumReplay
        self.logger = logger
    }

    /// The default of ``bufferBytes``: 8 MiB.
    public static let defaultBufferBytes = 8 << 20

    /// Starts following `store`'s commits.
    ///
    /// - Parameters:
    ///   - bufferEvents: the default ``bufferEvents`` of a subscription.
    ///   - bufferBytes: the default ``bufferBytes`` of a subscription.
    ///   - maximumReplay: the most changes a resuming subscription replays.
    public static func start(
        store: Store, bufferEvents: Int = 1000, bufferBytes: Int = defaultBufferBytes, maximumReplay: Int = 100_000, logger: Logger
    ) async throws -> EventHub {
        let hub = EventHub(store: store, bufferEvents: bufferEvents, bufferBytes: bufferBytes, maximumReplay: maximumReplay, logger: logger)
        store.onCommit { [weak hub] changes in hub?.committed(changes) }
        for database in store.databaseNames {
            let latest = try await store.changeLogBounds(database: database).latest
            await hub.onQueue {
                hub.registry.withLock { r in r.dispatched[database] = max(r.dispatched[database] ?? 0, latest) }
            }
        }
        return hub
    }

    /// Runs `work` on the hub's queue, between two deliveries, and returns its result.
    public func perform<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await onQueue(work)
    }

    private func onQueue<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { c in queue.async { c.resume(returning: work()) } }
    }

    private func committed(_ changes: [Change]) {
        queue.async { [self] in
            guard !registry.withLock({ $0.stopped }) else { return }
            var wakes = SinkWakes()
            for change in changes {
                deliver(RealtimeEvent(change: change), wakes: &wakes)
                // After the delivery: a position read elsewhere (an MQTT session going away) never
                // covers an event its owner has not been handed yet.
                let database = store.tables[change.table].definition.database
                registry.withLock { r in r.dispatched[database] = max(r.dispatched[database] ?? 0, change.sequence) }
            }
            // One task per event loop for the whole commit, whatever the number of subscribers on it.
            wakes.wake()
        }
    }

    /// Hands `event` to the subscriptions it may concern and to every listener (on the queue);
    /// the sinks it wakes are gathered in `wakes`.
    private func deliver(_ event: RealtimeEvent, wakes: inout SinkWakes) {
        guard let table = event.tableIndex else { return }
        let (subscribers, listeners): ([RealtimeSubscription], [@Sendable (RealtimeEvent) -> Void]) = registry.withLock { r in
            var subs: [RealtimeSubscription] = []
            if let id = event.id, let forRecord = r.byRecord[table]?[id] { subs.append(contentsOf: forRecord.values) }
            if let forTable = r.byTable[table] { subs.append(contentsOf: forTable.values) }
            return (subs, r.listeners.isEmpty ? [] : Array(r.listeners.values))
        }
        // Listeners (the MQTT broker) first: they hand bytes to event loops, while a subscription
        // read by a task wakes that task (one read on an event loop is woken with the others of its loop).
        for listener in listeners { listener(event) }
        for subscription in subscribers { subscription.offer(event, wakes: &wakes) }
    }

    // MARK: Messages

    /// Publishes a message to the record `id` of `table`: every subscriber of the record (WebSocket,
    /// SSE, MQTT topic `Table/id`, Swift) receives it after the events already on their way. Not stored.
    public func publish(table: TableLayout, id: RecordID, payload: ByteBuffer) {
        let event = RealtimeEvent.message(table: table.name, tableIndex: table.index, id: id, payload: payload)
        queue.async { [self] in
            guard !registry.withLock({ $0.stopped }) else { return }
            var wakes = SinkWakes()
            deliver(event, wakes: &wakes)
            wakes.wake()
        }
    }

    // MARK: Stopping

    /// Ends delivery: every live subscription ends (a reader's next call returns `nil`), the
    /// listeners are removed, and later commits, messages and subscriptions go nowhere. Returns
    /// once what was queued before the call has been delivered. Calling it again does nothing.
    public func stop() async {
        let ending = await onQueue { [self] in
            registry.withLock { r -> [RealtimeSubscription] in
                guard !r.stopped else { return [] }
                r.stopped = true
                r.listeners = [:]
                return r.byRecord.values.flatMap { $0.values.flatMap(\.values) } + r.byTable.values.flatMap(\.values)
            }
        }
        for subscription in ending { subscription.cancel() }
        await onQueue {}
    }

    /// Whether ``stop()`` has been called.
    public var isStopped: Bool { registry.withLock { $0.stopped } }

    // MARK: Listeners

    /// Registers a function called on the hub's queue with every event, in order; returns its key
    /// for ``removeListener(_:)``.
    public func addListener(_ listener: @escaping @Sendable (RealtimeEvent) -> Void) -> UInt64 {
        registry.withLock { r in
            let key = r.nextKey
            r.nextKey += 1
            r.listeners[key] = listener
            return key
        }
    }

    public func removeListener(_ key: UInt64) {
        _ = registry.withLock { r in r.listeners.removeValue(forKey: key) }
    }

    /// The highest change-log sequence of `database` delivered so far.
    public func position(database: String) -> Int64 {
        registry.withLock { $0.dispatched[database] ?? 0 }
    }

    /// Waits until everything queued before this call has been delivered; returns the position
    /// of `database` then.
    public func settled(database: String = Schema.defaultDatabase) async -> Int64 {
        await onQueue { [self] in position(database: database) }
    }

    /// How many subscriptions are live.
    public var subscriptionCount: Int { registry.withLock { $0.subscriptions } }

    // MARK: Subscriptions

    /// Subscribes to `target`.
    ///
    /// - Parameters:
    ///   - position: resume after this change-log position: every matching change after it is
    ///     replayed before `subscribed`. A position the log no longer holds, more than
    ///     ``maximumReplay`` changes back, or whose matching changes take more than half of
    ///     `bufferBytes`, yields a `reload` event instead.
    ///   - bufferEvents: live events that may wait unread before the subscriber is dropped
    ///     (default: the hub's).
    ///   - bufferBytes: bytes of events that may wait unread or in the reader's hands before the
    ///     subscriber is dropped (default: the hub's).
    public func subscribe(
        _ target: SubscriptionTarget, after position: Int64? = nil, bufferEvents: Int? = nil, bufferBytes: Int? = nil
    ) async throws
        -> RealtimeSubscription
    {
        let table = target.table
        let database = table.definition.database
        var queryStart: Int64?
        let subscription = registry.withLock { r in
            let key = r.nextKey
            r.nextKey += 1
            return RealtimeSubscription(
                key: key, target: target, bufferEvents: bufferEvents ?? self.bufferEvents, bufferBytes: bufferBytes ?? self.bufferBytes
            ) { [weak self] key in
                self?.unregister(key, target: target)
            }
        }
        if case .query(_, let query) = target {
            let store = self.store
            let (ids, latest) = try await store.read(database: database) { db in
                let executor = QueryExecutor(store: store, maximumResults: Int.max - 1)
                let filter = Query(filter: query.filter)
                let rows = try executor.run(filter, plan: executor.plan(filter, table: table), table: table, db: db)
                return (Set(rows.rows.map(\.id)), try Store.changeLogBounds(db).latest)
            }
            subscription.setMatching(ids)
            queryStart = latest
        }
        // From here on, live events reach the subscription (held until it starts).
        let registered = await onQueue { [self] in
            registry.withLock { r -> Int64? in
                guard !r.stopped else { return nil }
                switch target {
                case .record(let t, let id): r.byRecord[t.index, default: [:]][id, default: [:]][subscription.key] = subscription
                default: r.byTable[table.index, default: [:]][subscription.key] = subscription
                }
                r.subscriptions += 1
                return r.dispatched[database] ?? 0
            }
        }
        guard let registered else {
            // The hub has stopped: a subscription that has already ended.
            subscription.cancel()
            return subscription
        }
        do {
            var head: [RealtimeEvent] = []
            if position == nil, let queryStart, queryStart < registered {
                // Changes between the query's snapshot and the registration: they only update the matching set.
                _ = try await replay(table: table, after: queryStart, through: registered, into: subscription, byteLimit: 0)
            }
            if let position {
                let bounds = try await store.changeLogBounds(database: database)
                if !bounds.canReplay(after: position) || registered - position > Int64(maximumReplay) {
                    head.append(.reload(position: position, bounds: bounds))
                } else if position < registered {
                    // The replay waits in the subscription's buffer: at most half of it, so live events fit beside it.
                    let limit = subscription.bufferBytes / 2
                    if let events = try await replay(table: table, after: position, through: registered, into: subscription, byteLimit: limit) {
                        head += events
                    } else {
                        let reason =
                            "the changes after position \(position) take more than \(limit) bytes, half this client's buffer; re-read the data"
                        head.append(.reload(position: position, bounds: bounds, reason: reason))
                    }
                }
            }
            head.append(.subscribed(position: registered))
            if case .record(let t, let id) = target, position == nil {
                head.append(.current(table: t, id: id, record: try await store.get(t, id)))
            }
            subscription.start(head: head)
        } catch {
            subscription.cancel()
            throw error
        }
        return subscription
    }

    /// The changes to `table` with a sequence in `(after, through]`, through the subscription's filter;
    /// `nil` when their encoded bytes pass `byteLimit` (every change still goes through the filter,
    /// so a query subscription's matching set ends up right).
    private func replay(
        table: TableLayout, after: Int64, through: Int64, into subscription: RealtimeSubscription, byteLimit: Int
    ) async throws
        -> [RealtimeEvent]?
    {
        var events: [RealtimeEvent]? = []
        var bytes = 0
        var position = after
        while position < through {
            let changes = try await store.changes(database: table.definition.database, after: position, limit: 1000, tables: [table])
            guard let last = changes.last else { break }
            for change in changes where change.sequence <= through {
                guard let event = subscription.replay(RealtimeEvent(change: change)) else { continue }
                bytes += event.byteCount
                if bytes > byteLimit { events = nil } else { events?.append(event) }
            }
            position = last.sequence
        }
        return events
    }

    private func unregister(_ key: UInt64, target: SubscriptionTarget) {
        queue.async { [self] in
            registry.withLock { r in
                let removed: RealtimeSubscription?
                switch target {
                case .record(let t, let id):
                    removed = r.byRecord[t.index]?[id]?.removeValue(forKey: key)
                    if r.byRecord[t.index]?[id]?.isEmpty == true { r.byRecord[t.index]?[id] = nil }
                default:
                    removed = r.byTable[target.table.index]?.removeValue(forKey: key)
                }
                if removed != nil { r.subscriptions -= 1 }
            }
        }
    }
}
