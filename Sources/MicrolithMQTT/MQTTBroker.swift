import DequeModule
public import Logging
import MicrolithJSON
import MicrolithQuery
public import MicrolithRealtime
import MicrolithSchema
public import MicrolithStore
public import NIOCore
import OrderedCollections
import Synchronization

/// The MQTT broker: sessions, subscriptions, retained messages, and topics mapped to records.
///
/// Topic `Table/id` is record `id` of the exported table: subscribing delivers the record as a
/// retained message and then every committed change (read from the ``EventHub``, the same
/// stream WebSocket and SSE subscribers read); a retained publish is a PUT (an empty one a
/// DELETE); a publish without retain is a message to the record's subscribers. Other topics are
/// plain publish/subscribe with retained messages kept in memory. Transports (TCP, WebSocket)
/// hand their bytes to ``accept(_:)``'s connection.
public final class MQTTBroker: Sendable {
    public let configuration: MQTTConfiguration
    public let hub: EventHub
    public let store: Store
    public let logger: Logger
    /// Where wills without a connection and store writes complete.
    let eventLoopGroup: any EventLoopGroup
    /// Exported tables by topic name, and topic names by table position.
    private let tablesByName: [String: TableLayout]
    private let topicNames: [Int: String]
    private let registry = Mutex(Registry())
    private let listener = Mutex<UInt64?>(nil)

    private struct Registry: Sendable {
        var sessions: [String: MQTTSession] = [:]
        var tree = MQTTTopicTree<String, MQTTSubscription>()
        var retained: [String: Retained] = [:]
        var connections: [ObjectIdentifier: MQTTConnection] = [:]
        var pendingWills: [String: Scheduled<Void>] = [:]
        /// Subscriptions of every session together.
        var subscriptionCount = 0
    }

    /// What became of one filter of a SUBSCRIBE.
    enum SubscribeOutcome: Sendable, Equatable {
        /// A new subscription.
        case added
        /// It replaced the session's subscription to the same filter.
        case replaced
        /// Over `mqtt.maxSubscriptionsPerClient` or `mqtt.maxSubscriptionsTotal`: not stored.
        case refused
    }

    struct Retained: Sendable {
        var payload: ByteBuffer
        var qos: MQTTQoS
    }

    enum AuthResult { case accepted, badCredentials, credentialsRequired }

    enum PublishOutcome: Sendable {
        case done
        case failed(UInt8, String)
    }

    public init(configuration: MQTTConfiguration, hub: EventHub, eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.hub = hub
        self.store = hub.store
        self.logger = logger
        var byName: [String: TableLayout] = [:]
        var names: [Int: String] = [:]
        for table in hub.store.tables {
            guard let name = table.definition.exportName else { continue }
            byName[name] = table
            names[table.index] = name
        }
        self.tablesByName = byName
        self.topicNames = names
        let key = hub.addListener { [weak self] event in self?.deliver(event) }
        listener.withLock { $0 = key }
    }

    /// A new connection on `transport`; feed it bytes with ``MQTTClientConnection/receive(_:)``.
    public func accept(_ transport: any MQTTTransport) -> MQTTClientConnection {
        let connection = MQTTConnection(transport: transport, broker: self)
        registry.withLock { $0.connections[ObjectIdentifier(connection)] = connection }
        return MQTTClientConnection(connection: connection)
    }

    /// How many clients are connected.
    public var connectionCount: Int { registry.withLock { $0.connections.count } }

    /// Stops following the hub and closes every connection (no wills are published).
    public func shutdown() {
        if let key = listener.withLock({ $0.take() }) { hub.removeListener(key) }
        let connections = registry.withLock { r in
            for (_, will) in r.pendingWills { will.cancel() }
            r.pendingWills = [:]
            return Array(r.connections.values)
        }
        for c in connections {
            c.eventLoop.execute { c.disconnect(reason: 0x8B, message: "the server is shutting down", publishWill: false) }
        }
    }

    /// Closes connections silent for longer than their keep-alive and ends expired sessions.
    public func sweep() {
        let now = NIODeadline.now()
        let clock = ContinuousClock.now
        let connections: [MQTTConnection] = registry.withLock { r in
            for (id, session) in r.sessions {
                let expired = session.state.withLock { s -> Bool in
                    guard s.connection == nil, let since = s.disconnectedAt, s.expirySeconds != UInt32.max else { return false }
                    return clock - since >= .seconds(Int64(s.expirySeconds))
                }
                if expired { Self.remove(session: id, from: &r) }
            }
            return Array(r.connections.values)
        }
        for c in connections { c.eventLoop.execute { c.checkKeepAlive(now: now) } }
    }

    // MARK: Connections and sessions

    func authenticate(username: String?, password: ByteBuffer?) -> AuthResult {
        guard !configuration.users.isEmpty else { return .accepted }
        guard let username else { return configuration.allowAnonymous ? .accepted : .credentialsRequired }
        guard let expected = configuration.users[username], let password, String(buffer: password) == expected else { return .badCredentials }
        return .accepted
    }

    func cappedExpiry(_ seconds: UInt32) -> UInt32 {
        min(seconds, UInt32(clamping: configuration.sessionExpirySeconds))
    }

    /// Binds `connection` to the session of `clientID` (taking it over from another connection).
    func attach(
        _ connection: MQTTConnection, clientID: String, cleanStart: Bool, expiry: UInt32, version: MQTTProtocolVersion, maximumInflight: Int,
        then: @escaping @Sendable (MQTTSession, Bool) -> Void
    ) {
        let (session, present, previous): (MQTTSession, Bool, MQTTConnection?) = registry.withLock { r in
            r.pendingWills.removeValue(forKey: clientID)?.cancel()
            // The connection holding the client id now, whatever becomes of its session.
            let holder = r.sessions[clientID]?.state.withLock { $0.connection }
            if cleanStart { Self.remove(session: clientID, from: &r) }
            let existing = r.sessions[clientID]
            let session = existing ?? MQTTSession(clientID: clientID)
            r.sessions[clientID] = session
            let previous = session.state.withLock { s -> MQTTConnection? in
                let previous = s.connection
                s.connection = connection
                s.version = version
                s.expirySeconds = expiry
                s.maximumInflight = max(1, maximumInflight)
                s.disconnectedAt = nil
                s.replaying = existing != nil
                return previous ?? holder
            }
            return (session, existing != nil, previous)
        }
        if let previous, previous !== connection {
            previous.eventLoop.execute {
                previous.disconnect(reason: 0x8E, message: "another connection took over client id \(clientID)", publishWill: true)
            }
        }
        then(session, present)
    }

    /// The connection is gone: the session keeps what it is owed (or ends), and the will is published.
    func detach(_ connection: MQTTConnection, publishWill will: MQTTWill?) {
        let positions = Dictionary(uniqueKeysWithValues: store.databaseNames.map { ($0, hub.position(database: $0)) })
        let (delay, clientID): (UInt32, String) = registry.withLock { r in
            r.connections[ObjectIdentifier(connection)] = nil
            guard let session = connection.session, r.sessions[session.clientID] === session else { return (0, connection.clientID) }
            let ends = session.state.withLock { s -> Bool in
                guard s.connection === connection else { return false }
                s.connection = nil
                s.replaying = false
                s.disconnectedAt = .now
                s.positions = positions
                return s.expirySeconds == 0
            }
            if ends { Self.remove(session: session.clientID, from: &r) }
            let delay = min(will?.properties.willDelayInterval ?? 0, session.state.withLock { $0.expirySeconds })
            return (delay, session.clientID)
        }
        guard let will else { return }
        let publish = MQTTPublish(topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain, properties: will.properties)
        if delay == 0 {
            _ = self.publish(publish, from: nil)
            return
        }
        let task = connection.eventLoop.scheduleTask(in: .seconds(Int64(delay))) { [self] in
            registry.withLock { _ = $0.pendingWills.removeValue(forKey: clientID) }
            _ = self.publish(publish, from: nil)
        }
        registry.withLock { $0.pendingWills[clientID] = task }
    }

    private static func remove(session clientID: String, from r: inout Registry) {
        guard let session = r.sessions.removeValue(forKey: clientID) else { return }
        let filters = session.state.withLock { s in
            defer { s.subscriptions = [:] }
            return Array(s.subscriptions.keys)
        }
        for filter in filters {
            r.tree.remove(filter: filter, key: clientID)
        }
        r.subscriptionCount -= filters.count
    }

    /// A returning client: resend what it did not acknowledge, replay the table changes it
    /// missed from the change log, then what was queued for it.
    func resume(_ session: MQTTSession, connection: MQTTConnection) {
        connection.deliver(session.state.withLock { MQTTSession.resendInflight(&$0) })
        let hub = self.hub
        let databases = store.databaseNames
        Task { [self] in
            let current = await hub.perform { Dictionary(uniqueKeysWithValues: databases.map { ($0, hub.position(database: $0)) }) }
            let (from, filters) = session.state.withLock { ($0.positions, $0.subscriptions) }
            var replay: Deque<MQTTSession.Outgoing> = []
            var replayBytes = 0
            var truncated = false
            do {
                for database in databases {
                    guard var position = from[database], let end = current[database], position < end else { continue }
                    while position < end, !truncated {
                        let entries = try await store.changes(database: database, after: position, limit: 1000)
                        guard let last = entries.last else { break }
                        for entry in entries where entry.sequence <= end {
                            guard let table = store.table(name: entry.table, database: database), let topic = topic(table.index, entry.id),
                                let qos = Self.grantedQoS(filters, topic: topic)
                            else { continue }
                            var payload = ByteBuffer()
                            if entry.operation != .delete, let record = entry.record { payload.writeBytes(JSONWriter.encode(record)) }
                            let message = MQTTSession.Outgoing(
                                topic: topic, payload: payload, qos: qos, retain: false, change: (database, entry.sequence))
                            // Held at once, so bounded like any queue of the session.
                            guard replay.count < configuration.maximumQueuedMessages, replayBytes + message.size <= configuration.bufferBytes else {
                                truncated = true
                                break
                            }
                            replayBytes += message.size
                            replay.append(message)
                        }
                        position = last.sequence
                    }
                }
            } catch {
                logger.error("mqtt: replaying the change log for \(session.clientID) failed: \(error)")
            }
            if truncated {
                logger.warning(
                    "mqtt: \(session.clientID) missed more table changes than mqtt.maxQueuedMessages (\(configuration.maximumQueuedMessages)) or mqtt.bufferBytes (\(configuration.bufferBytes)) hold; it gets the first ones only"
                )
            }
            // Handed to the connection under the session's lock, so that bytes leave in the order the
            // session's state changed (an acknowledgement drains the queue from another thread).
            session.state.withLock { s in
                s.replaying = false
                let live = s.pending.filter { m in
                    guard let change = m.change, let end = current[change.database] else { return true }
                    return change.sequence > end
                }
                replay.append(contentsOf: live)
                MQTTSession.replacePending(with: replay, in: &s)
                s.connection?.deliver(MQTTSession.drain(&s))
            }
        }
    }

    /// The topic of record `id` of the table at `index`, if the table is exported.
    private func topic(_ index: Int, _ id: RecordID) -> String? {
        topicNames[index].map { "\($0)/\(id)" }
    }

    private static func grantedQoS(_ filters: [String: MQTTSubscription], topic: String) -> MQTTQoS? {
        var best: MQTTQoS?
        for (filter, options) in filters where MQTTTopic.matches(filter: filter, topic: topic) {
            best = max(best ?? .atMostOnce, options.qos)
        }
        return best
    }

    /// The client acknowledged a QoS 1 message: free its slot and send what waits.
    func acknowledged(_ session: MQTTSession, packetID: UInt16) {
        // Under the lock: bytes leave in the order the session's state changed.
        session.state.withLock { s in
            guard MQTTSession.acknowledge(packetID, in: &s) else { return }
            s.connection?.deliver(MQTTSession.drain(&s))
        }
    }

    // MARK: Subscriptions

    /// Adds the subscriptions in order (a filter given twice replaces its first subscription), within
    /// `mqtt.maxSubscriptionsPerClient` for the session and `mqtt.maxSubscriptionsTotal` for the broker.
    func subscribe(_ session: MQTTSession, _ subscriptions: [MQTTSubscription]) -> [SubscribeOutcome] {
        let perClient = configuration.maximumSubscriptionsPerClient
        let total = configuration.maximumSubscriptionsTotal
        return registry.withLock { r in
            subscriptions.map { s in
                let outcome = session.state.withLock { state -> SubscribeOutcome in
                    if state.subscriptions[s.topicFilter] != nil {
                        state.subscriptions[s.topicFilter] = s
                        return .replaced
                    }
                    guard state.subscriptions.count < perClient, r.subscriptionCount < total else { return .refused }
                    state.subscriptions[s.topicFilter] = s
                    return .added
                }
                if outcome == .added { r.subscriptionCount += 1 }
                if outcome != .refused { r.tree.insert(filter: s.topicFilter, key: session.clientID, value: s) }
                return outcome
            }
        }
    }

    func unsubscribe(_ session: MQTTSession, filter: String) -> Bool {
        registry.withLock { r in
            r.tree.remove(filter: filter, key: session.clientID)
            let removed = session.state.withLock { $0.subscriptions.removeValue(forKey: filter) != nil }
            if removed { r.subscriptionCount -= 1 }
            return removed
        }
    }

    /// Subscriptions held by every session together.
    public var subscriptionCount: Int { registry.withLock { $0.subscriptionCount } }

    /// The plain retained messages (not table records) some filter of `filters` matches, with the
    /// QoS to send each at: the message's, capped by the highest the matching filters grant.
    func retainedMessages(matching filters: MQTTTopicTree<String, MQTTQoS>) -> [MQTTSession.Outgoing] {
        registry.withLock { r in
            var out: [MQTTSession.Outgoing] = []
            for (topic, message) in r.retained {
                var granted: MQTTQoS?
                filters.forEachMatch(topic: topic) { _, qos in granted = max(granted ?? .atMostOnce, qos) }
                guard let granted else { continue }
                out.append(.init(topic: topic, payload: message.payload, qos: min(message.qos, granted), retain: true))
            }
            return out
        }
    }

    /// The exported table a topic filter's first level names, and the rest of the filter after it.
    func table(forFilter filter: String) -> (table: TableLayout, name: String, rest: Substring)? {
        let parts = filter.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let name = parts.first, let table = tablesByName[String(name)] else { return nil }
        return (table, String(name), parts.count > 1 ? parts[1] : "")
    }

    // MARK: Publishing

    /// The table and key a topic names, if it names a record of an exported table.
    private func record(for topic: String) -> (TableLayout, Substring)? {
        guard let slash = topic.firstIndex(of: "/"), let table = tablesByName[String(topic[..<slash])] else { return nil }
        let rest = topic[topic.index(after: slash)...]
        return rest.isEmpty ? nil : (table, rest)
    }

    /// Handles a publish from a client (or a will, `from` nil). Returns a future when the outcome
    /// waits for a store write; `nil` when it is done.
    func publish(_ publish: MQTTPublish, from connection: MQTTConnection?) -> EventLoopFuture<PublishOutcome>? {
        guard let (table, key) = record(for: publish.topic) else {
            if publish.retain {
                registry.withLock { r in
                    if publish.payload.readableBytes == 0 {
                        r.retained[publish.topic] = nil
                    } else {
                        r.retained[publish.topic] = Retained(payload: publish.payload, qos: min(publish.qos, .atLeastOnce))
                    }
                }
            }
            fanOut(topic: publish.topic, payload: publish.payload, qos: publish.qos, retain: publish.retain, change: nil, keepOffline: true)
            return nil
        }
        let loop = connection?.eventLoop ?? eventLoopGroup.next()
        let type = table.definition.primaryKeyAttribute.type
        guard let id = RecordID(text: String(key), type: type) else {
            return loop.makeSucceededFuture(
                .failed(0x90, "'\(key)' is not a valid key of \(publish.topic.prefix(while: { $0 != "/" })): it must be \(RecordID.keyKind(type))"))
        }
        guard publish.retain else {
            hub.publish(table: table, id: id, payload: publish.payload)
            return nil
        }
        let body: JSONObject?
        if publish.payload.readableBytes == 0 {
            body = nil
        } else {
            guard case .object(let object)? = try? JSONParser.parse(publish.payload.readableBytesView) else {
                return loop.makeSucceededFuture(
                    .failed(0x99, "a retained publish to \(publish.topic) writes the record: its payload must be a JSON object"))
            }
            body = object
        }
        let store = self.store
        return loop.makeFutureWithTask {
            do {
                try await store.write(database: table.definition.database) { txn in
                    if let body {
                        _ = try txn.put(table, id: id, body: body)
                    } else {
                        _ = try txn.delete(table, id: id)
                    }
                }
                return .done
            } catch let error as StoreError {
                return .failed(error.code == .invalidRecord || error.code == .invalidID ? 0x99 : 0x80, error.message)
            } catch {
                return .failed(0x80, "\(error)")
            }
        }
    }

    /// A committed change or a message from the hub: to the MQTT subscribers of its topic.
    private func deliver(_ event: RealtimeEvent) {
        guard let index = event.tableIndex, let name = topicNames[index], let id = event.id else { return }
        switch event.kind {
        case .put, .patch, .delete:
            let database = store.tables[index].definition.database
            fanOut(
                topic: "\(name)/\(id)", payload: event.payload, qos: .atLeastOnce, retain: true,
                change: (database, event.sequence ?? 0), keepOffline: false)
        case .message:
            fanOut(topic: "\(name)/\(id)", payload: event.payload, qos: .atLeastOnce, retain: false, change: nil, keepOffline: true)
        default:
            break
        }
    }

    /// Delivers a message to every session subscribed to `topic`, once per session at the highest
    /// QoS its matching subscriptions grant. Live deliveries carry retain only for MQTT 5
    /// subscriptions with retain-as-published.
    private func fanOut(topic: String, payload: ByteBuffer, qos: MQTTQoS, retain: Bool, change: (String, Int64)?, keepOffline: Bool) {
        var targets: [String: (MQTTQoS, Bool)] = [:]
        let sessions: [(MQTTSession, MQTTQoS, Bool)] = registry.withLock { r in
            r.tree.forEachMatch(topic: topic) { clientID, s in
                let previous = targets[clientID]
                targets[clientID] = (max(previous?.0 ?? .atMostOnce, s.qos), (previous?.1 ?? false) || s.retainAsPublished)
            }
            return targets.compactMap { clientID, t in r.sessions[clientID].map { ($0, t.0, t.1) } }
        }
        let limits = MQTTSession.Limits(messages: configuration.maximumQueuedMessages, bytes: configuration.bufferBytes)
        // QoS 0 copies are the same bytes for every subscriber of a protocol version and retain flag.
        var encoded: [Int: ByteBuffer] = [:]
        // Writes are handed to each event loop in one task, in order.
        var writes: [ObjectIdentifier: (any EventLoop, [(MQTTConnection, ByteBuffer)])] = [:]
        for (session, granted, retainAsPublished) in sessions {
            let message = MQTTSession.Outgoing(
                topic: topic, payload: payload, qos: min(qos, granted), retain: retain && retainAsPublished, change: change)
            let out = session.state.withLock { s in
                MQTTSession.enqueue(message, into: &s, keepOffline: keepOffline, limits: limits) { version in
                    let key = Int(version.rawValue) << 1 | (message.retain ? 1 : 0)
                    if let bytes = encoded[key] { return bytes }
                    var bytes = ByteBuffer()
                    MQTTPacket.publish(MQTTPublish(topic: topic, payload: payload, qos: .atMostOnce, retain: message.retain))
                        .encode(version: version, into: &bytes)
                    encoded[key] = bytes
                    return bytes
                }
            }
            guard let (connection, bytes) = out else { continue }
            guard message.qos == .atMostOnce || connection.isWritable else {
                connection.slowConsumer()
                continue
            }
            connection.handOff(bytes.readableBytes)
            let loop = connection.eventLoop
            writes[ObjectIdentifier(loop), default: (loop, [])].1.append((connection, bytes))
        }
        for (_, (loop, batch)) in writes {
            loop.execute {
                for (connection, bytes) in batch { connection.write(bytes) }
                for (connection, _) in batch { connection.flush() }
            }
        }
    }
}

/// A client connection as transports see it: bytes in, and word that the connection is gone.
public struct MQTTClientConnection: Sendable {
    let connection: MQTTConnection

    /// Bytes received from the client (any split); call on the transport's event loop.
    public func receive(_ bytes: ByteBuffer) { connection.receive(bytes) }

    /// The transport closed; call on the transport's event loop.
    public func closed() { connection.transportClosed() }
}
