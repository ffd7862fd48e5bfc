public import Logging
import Metrics
public import MicrolithAuth
public import MicrolithNetwork
public import MicrolithRealtime
public import MicrolithStore
public import MicrolithTables
public import NIOCore
import Synchronization

/// The MQTT broker: sessions, subscriptions, retained messages, and topics mapped to records.
///
/// Topic `Table/id` is record `id` of the exported table: subscribing delivers the record as a
/// retained message and then every committed change (read from the ``EventHub``, the same
/// stream WebSocket and SSE subscribers read); a retained publish is a PUT (an empty one a
/// DELETE); a publish without retain is a message to the record's subscribers. Other topics are
/// plain publish/subscribe with retained messages. Transports (TCP, WebSocket)
/// hand their bytes to ``accept(_:)``'s connection.
///
/// When the store declares ``MicrolithStore/SystemTables/mqtt`` (the runtime's does), sessions that
/// outlive their connection, the QoS 1 and 2 messages owed to them and the retained messages of plain
/// topics are kept in it (``MQTTPersistence``): ``restore()`` reads them back when the broker starts, so
/// a restart, graceful or a SIGKILL, loses none of what was acknowledged to a publisher.
///
/// The broker coordinates its parts: ``MQTTSessions`` (sessions, subscriptions, wills),
/// ``MQTTTableBridge`` (records as topics, the change-log replay), ``MQTTRetainedMessages`` (plain
/// retained messages) and ``MQTTFanOut`` (delivery to subscribers).
///
/// Work that outlives a packet (sending what a new subscription matches, replaying what a returning
/// session missed) runs as child tasks of ``run()``, which whoever serves the broker runs for as long
/// as it serves: ``shutdown()`` ends it, and cancelling it cancels that work.
public final class MQTTBroker: Sendable {
    public let configuration: MQTTConfiguration
    public let hub: EventHub
    public let store: Store
    public let logger: Logger
    /// Where wills without a connection and store writes complete.
    let eventLoopGroup: any EventLoopGroup
    let sessions: MQTTSessions
    let tables: MQTTTableBridge
    let retained: MQTTRetainedMessages
    let fanOut: MQTTFanOut
    /// The MQTT connections' own budget (`mqtt.maxConnections`, `mqtt.maxConnectionsPerAddress`),
    /// TCP and WebSocket alike.
    let connectionLimiter: ConnectionLimiter
    /// Where sessions and retained messages are kept across restarts; `nil`: in memory only (the store
    /// does not declare ``MicrolithStore/SystemTables/mqtt``).
    let persistence: MQTTPersistence?
    private let restored = Mutex(false)
    /// PUBLISH packets taken from clients, and wills (swift-metrics: `GET /metrics` under `serve`).
    let received = Counter(label: "microlith_mqtt_messages_received_total")
    /// Checks the user name and password of a CONNECT against the app's users; `nil`: there are none to
    /// sign in as, and a CONNECT with a user name is refused. Its ``Authenticator/sessions`` end
    /// connections whose user changes.
    public let authenticator: Authenticator?
    private let listener = Mutex<UInt64?>(nil)
    private let work: AsyncStream<@Sendable () async -> Void>
    private let workContinuation: AsyncStream<@Sendable () async -> Void>.Continuation

    enum PublishOutcome: Sendable {
        case done
        case failed(UInt8, String)
    }

    /// What a publish's acknowledgement waits for.
    struct PublishWait {
        let outcome: EventLoopFuture<PublishOutcome>
        /// Whether the connection's next packets may be handled meanwhile: a plain message already
        /// handed to its subscribers waits only for its rows to be stored, while a publish to a
        /// record is a write that the next packet's must follow.
        let overlaps: Bool
    }

    /// A broker for `hub`'s store, reaching its tables through `access` (the application's table
    /// hooks and roles hold for what MQTT clients write, subscribe to and are sent). Clients that send
    /// a user name sign in through `authenticator` and act with that user's roles; the others act as
    /// the `anonymous` role, if ``MQTTConfiguration/allowAnonymous`` lets them connect at all.
    public init(
        configuration: MQTTConfiguration, hub: EventHub, access: TableAccess, authenticator: Authenticator?, eventLoopGroup: any EventLoopGroup,
        logger: Logger
    ) {
        self.configuration = configuration
        self.authenticator = authenticator
        self.eventLoopGroup = eventLoopGroup
        self.hub = hub
        self.store = hub.store
        self.logger = logger
        let store = hub.store
        let persistence =
            store.configuration.systemTables.contains(.mqtt) && !store.configuration.readOnly
            ? store.databaseNames.first.map { MQTTPersistence(store: store, database: $0, logger: logger) } : nil
        self.persistence = persistence
        self.connectionLimiter = ConnectionLimiter(
            maximum: configuration.maximumConnections, maximumPerAddress: configuration.maximumConnectionsPerAddress)
        self.sessions = MQTTSessions(configuration: configuration, persistence: persistence)
        self.retained = MQTTRetainedMessages(persistence: persistence)
        self.tables = MQTTTableBridge(hub: hub, access: access, logger: logger)
        self.fanOut = MQTTFanOut(sessions: sessions)
        (work, workContinuation) = AsyncStream.makeStream(of: (@Sendable () async -> Void).self)
        let key = hub.addListener { [weak self] event in self?.deliver(event) }
        listener.withLock { $0 = key }
    }

    /// A new connection on `transport`; feed it bytes with ``MQTTClientConnection/receive(_:)``.
    /// It counts in `mqtt.maxConnections` and `mqtt.maxConnectionsPerAddress`; past them, or with
    /// `refusal` (the process's connection budget was spent when it was accepted), its CONNECT is
    /// answered with a refusal and it is closed.
    public func accept(_ transport: any MQTTTransport, refusal: ConnectionLimiter.Refusal? = nil) -> MQTTClientConnection {
        let connection = MQTTConnection(transport: transport, broker: self, refusal: refusal)
        sessions.add(connection)
        return MQTTClientConnection(connection: connection)
    }

    /// How many clients are connected.
    public var connectionCount: Int { sessions.connectionCount }

    /// Subscriptions held by every session together.
    public var subscriptionCount: Int { sessions.subscriptionCount }

    /// Reads back what the store kept (sessions, their subscriptions and queued messages, retained
    /// messages); before the first connection. ``MQTTServer/start(broker:group:limiter:tls:)`` calls
    /// it; a second call does nothing.
    public func restore() async throws {
        guard let persistence else { return }
        let first = restored.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return }
        let loaded: MQTTPersistence.Loaded
        do {
            loaded = try await persistence.load()
        } catch {
            restored.withLock { $0 = false }
            throw error
        }
        let wallNow = store.configuration.wallClock()
        for owed in sessions.restore(loaded, wallNow: wallNow) {
            schedule(owed.will, of: owed.clientID, as: owed.principal, in: owed.delay, on: eventLoopGroup.next())
        }
        retained.restore(loaded.retained, wallNow: wallNow)
        if !loaded.sessions.isEmpty || !loaded.retained.isEmpty {
            logger.info(
                "mqtt: restored \(sessions.sessionCount) sessions, \(loaded.messages.values.reduce(0) { $0 + $1.count }) queued messages and \(loaded.retained.count) retained messages"
            )
        }
    }

    /// Runs the broker's background work (see the type's discussion) until ``shutdown()``, each
    /// piece as a child task; returns once the pieces running then have finished, and what was
    /// queued for the store is written. Cancelling the calling task cancels them.
    public func run() async {
        await withDiscardingTaskGroup { group in
            if let persistence { group.addTask { [sessions] in await persistence.run(lost: { sessions.storeAll() }) } }
            for await job in work {
                group.addTask { await job() }
            }
        }
    }

    /// Hands `job` to ``run()``; `false` (and the job dropped) after ``shutdown()``.
    @discardableResult
    func spawn(_ job: @escaping @Sendable () async -> Void) -> Bool {
        if case .terminated = workContinuation.yield(job) { return false }
        return true
    }

    /// Stops following the hub, closes every connection (no wills are published) and ends ``run()``
    /// once the sessions' last state is queued for the store.
    public func shutdown() {
        workContinuation.finish()
        if let key = listener.withLock({ $0.take() }) { hub.removeListener(key) }
        let closed = sessions.cancelWills().map { c in
            c.eventLoop.submit { c.disconnect(reason: 0x8B, message: "the server is shutting down", publishWill: false) }
        }
        guard let persistence else { return }
        EventLoopFuture.andAllComplete(closed, on: eventLoopGroup.any()).whenComplete { _ in persistence.finish() }
    }

    /// Closes connections silent for longer than their keep-alive and ends expired sessions.
    public func sweep() {
        let now = NIODeadline.now()
        sessions.expire()
        sessions.storePositions(tables.positions())
        for c in sessions.connections { c.eventLoop.execute { c.checkKeepAlive(now: now) } }
    }

    // MARK: Connections

    /// Who a CONNECT's credentials stand for, from `address`: `.success(nil)` for none (the anonymous
    /// role), else a principal and when it was checked, or a refusal with MQTT's reason codes for 3.1.1 and 5.
    func signIn(username: String?, password: ByteBuffer?, address: String?) async -> Result<Authenticator.Verified?, SignInRefusal> {
        guard let username else {
            if password != nil { return .failure(SignInRefusal(v3: 0x04, v5: 0x86, message: "a password without a user name")) }
            return configuration.allowAnonymous
                ? .success(nil) : .failure(SignInRefusal(v3: 0x05, v5: 0x87, message: "this broker requires a user name and password"))
        }
        guard let authenticator else {
            return .failure(SignInRefusal(v3: 0x04, v5: 0x86, message: "bad user name or password"))
        }
        guard let password, let text = password.getString(at: password.readerIndex, length: password.readableBytes),
            text.utf8.count == password.readableBytes
        else { return .failure(SignInRefusal(v3: 0x04, v5: 0x86, message: "bad user name or password")) }
        switch await authenticator.signIn(username, password: text, address: address) {
        case .success(let verified):
            // Remembered credentials of a user changed since (by another process) are refused now,
            // not let in and ended at the next audit.
            if let reason = try? await authenticator.sessions.outdated(verified.principal, since: verified.checked) {
                return .failure(SignInRefusal(v3: 0x04, v5: 0x86, message: reason))
            }
            return .success(verified)
        case .failure(let refusal) where refusal.status == 429:
            return .failure(SignInRefusal(v3: 0x05, v5: 0x9F, message: refusal.message))
        case .failure:
            return .failure(SignInRefusal(v3: 0x04, v5: 0x86, message: "bad user name or password"))
        }
    }

    /// A CONNECT refused: the CONNACK reason code for MQTT 3.1.1 and for 5, and why.
    struct SignInRefusal: Error {
        var v3: UInt8
        var v5: UInt8
        var message: String
    }

    /// The connection is gone: the session keeps what it is owed (or ends), and the will is published.
    func detach(_ connection: MQTTConnection, publishWill will: MQTTWill?) {
        let (clientID, delay) = sessions.detach(connection, will: will, positions: tables.positions())
        // Published now, or after its delay (a session that outlives its connection keeps a will
        // waiting for its delay in the store, so a restart publishes it when it is due).
        guard let will else { return }
        // A will is published with the rights of the client that left it.
        if delay == 0 {
            _ = publish(will.publish, from: nil, as: connection.principal)
            return
        }
        schedule(will, of: clientID, as: connection.principal, in: .seconds(Int64(delay)), on: connection.eventLoop)
    }

    /// Publishes `will` as `principal` after `delay`, unless its client comes back first.
    private func schedule(_ will: MQTTWill, of clientID: String, as principal: Principal, in delay: TimeAmount, on loop: any EventLoop) {
        let message = will.publish
        sessions.schedule(will: { [self] in _ = publish(message, from: nil, as: principal) }, of: clientID, in: delay, on: loop)
    }

    /// A returning client: resend what it did not acknowledge, replay the table changes it
    /// missed from the change log, then what was queued for it.
    func resume(_ session: MQTTSession, connection: MQTTConnection) {
        connection.deliver(sessions.resendInflight(session))
        spawn { [self] in
            let current = await tables.currentPositions()
            let (from, filters, principal) = session.state.withLock { ($0.positions, $0.subscriptions, $0.principal) }
            let (replay, _) = await tables.replay(
                from: from, to: current, filters: filters, limits: sessions.limits, clientID: session.clientID, principal: principal)
            sessions.replayed(session, replay, upTo: current)
        }
    }

    // MARK: Retained messages and records

    /// The plain retained messages (not table records) some filter of `filters` matches, with the
    /// QoS to send each at: the message's, capped by the highest the matching filters grant.
    func retainedMessages(matching filters: MQTTTopicTree<String, MQTTSubscription>) -> [MQTTSession.Outgoing] {
        retained.matching(filters)
    }

    /// The exported table a topic filter's first level names, and the rest of the filter after it.
    func table(forFilter filter: String) -> (table: TableLayout, name: String, rest: Substring)? {
        tables.table(forFilter: filter)
    }

    // MARK: Publishing

    /// Handles a publish from a client (or a will, `from` nil) acting as `principal`. Returns what the
    /// outcome waits for when it waits for a store write; `nil` when it is done.
    func publish(_ publish: MQTTPublish, from connection: MQTTConnection?, as principal: Principal) -> PublishWait? {
        received.increment()
        let loop: any EventLoop
        switch tables.resolve(publish.topic) {
        case .plain:
            var mark = publish.retain ? retained.retain(publish) : 0
            let properties = MQTTMessageProperties(forwarding: publish.properties, receivedAt: .now())
            mark = max(
                mark,
                fanOut.deliver(
                    MQTTSession.Outgoing(
                        topic: publish.topic, payload: publish.payload, qos: publish.qos, retain: publish.retain, properties: properties),
                    keepOffline: true, publisher: connection?.clientID))
            // A QoS 1 or 2 message is acknowledged once it is stored for every persistent session it was queued for.
            guard let persistence, mark > 0, publish.qos != .atMostOnce else { return nil }
            let stored = persistence.barrier(mark, on: connection?.eventLoop ?? eventLoopGroup.next()).map { stored -> PublishOutcome in
                stored ? .done : .failed(0x80, "the message could not be stored for the sessions it is queued for")
            }
            return PublishWait(outcome: stored, overlaps: true)
        case .invalidKey(let message):
            loop = connection?.eventLoop ?? eventLoopGroup.next()
            return PublishWait(outcome: loop.makeSucceededFuture(.failed(0x90, message)), overlaps: false)
        case .record(let table, let id):
            loop = connection?.eventLoop ?? eventLoopGroup.next()
            let written = tables.publish(publish, to: table, id: id, clientID: connection?.clientID, principal: principal, on: loop, spawn: spawn)
            return written.map { PublishWait(outcome: $0, overlaps: false) }
        }
    }

    /// A committed change or a message from the hub: to the MQTT subscribers of its topic.
    private func deliver(_ event: RealtimeEvent) {
        guard let (message, keepOffline) = tables.message(for: event) else { return }
        // A filter such as `#` matches a table's topics without naming the table: whoever it
        // matches gets the change only with the right to subscribe to the table.
        let table = event.tableIndex.map { store.tables[$0] }
        fanOut.deliver(message, keepOffline: keepOffline, admits: table.map { table in { [tables] in tables.admits($0, table) } })
    }
}

extension MQTTWill {
    /// The PUBLISH the will becomes when it is published.
    var publish: MQTTPublish { MQTTPublish(topic: topic, payload: payload, qos: qos, retain: retain, properties: properties) }
}
