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
        for filter in session.state.withLock({ Array($0.subscriptions.keys) }) {
            r.tree.remove(filter: filter, key: clientID)
        }
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
            var replay: [MQTTSession.Outgoing] = []
            do {
                for database in databases {
                    guard var position = from[database], let end = current[database], position < end else { continue }
                    while position < end {
                        let entries = try await store.changes(database: database, after: position, limit: 1000)
                        guard let last = entries.last else { break }
                        for entry in entries where entry.sequence <= end {
                            guard let table = store.table(name: entry.table, database: database), let topic = topic(table.index, entry.id),
                                let qos = Self.grantedQoS(filters, topic: topic)
                            else { continue }
                            var payload = ByteBuffer()
                            if entry.operation != "delete", let record = entry.record { payload.writeBytes(JSONWriter.encode(record)) }
                            replay.append(.init(topic: topic, payload: payload, qos: qos, retain: false, change: (database, entry.sequence)))
                        }
                        position = last.sequence
                    }
                }
            } catch {
                logger.error("mqtt: replaying the change log for \(session.clientID) failed: \(error)")
            }
            let out: (MQTTConnection, ByteBuffer)? = session.state.withLock { s in
                s.replaying = false
                let live = s.pending.filter { m in
                    guard let change = m.change, let end = current[change.database] else { return true }
                    return change.sequence > end
                }
                s.pending = Deque(replay)
                s.pending.append(contentsOf: live)
                guard let connection = s.connection, let bytes = MQTTSession.drain(&s) else { return nil }
                return (connection, bytes)
            }
            out.map { connection, bytes in connection.deliver(bytes) }
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
        let out: (MQTTConnection, ByteBuffer)? = session.state.withLock { s in
            guard s.inflight.removeValue(forKey: packetID) != nil, let connection = s.connection, let bytes = MQTTSession.drain(&s) else {
                return nil
            }
            return (connection, bytes)
        }
        out.map { connection, bytes in connection.deliver(bytes) }
    }

    // MARK: Subscriptions

    /// Adds the subscriptions; returns, for each, whether it is new (not replacing one).
    func subscribe(_ session: MQTTSession, _ subscriptions: [MQTTSubscription]) -> [Bool] {
        registry.withLock { r in
            subscriptions.map { s in
                r.tree.insert(filter: s.topicFilter, key: session.clientID, value: s)
                return session.state.withLock { $0.subscriptions.updateValue(s, forKey: s.topicFilter) == nil }
            }
        }
    }

    func unsubscribe(_ session: MQTTSession, filter: String) -> Bool {
        registry.withLock { r in
            r.tree.remove(filter: filter, key: session.clientID)
            return session.state.withLock { $0.subscriptions.removeValue(forKey: filter) != nil }
        }
    }

    /// Sends the retained messages the new subscriptions match: records of tables named by the
    /// filter's first level, and plain retained messages.
    func sendRetained(for subscriptions: [(MQTTSubscription, Bool)], to connection: MQTTConnection) -> EventLoopFuture<Void>? {
        guard let session = connection.session else { return nil }
        let wanted = subscriptions.filter { s, isNew in s.retainHandling == 0 || (s.retainHandling == 1 && isNew) }.map(\.0)
        guard !wanted.isEmpty else { return nil }
        let plain: [MQTTSession.Outgoing] = registry.withLock { r in
            var out: [MQTTSession.Outgoing] = []
            for (topic, message) in r.retained {
                for s in wanted where MQTTTopic.matches(filter: s.topicFilter, topic: topic) {
                    out.append(.init(topic: topic, payload: message.payload, qos: min(message.qos, s.qos), retain: true))
                    break
                }
            }
            return out
        }
        send(plain, to: session)
        let tableFilters = wanted.compactMap { s -> (TableLayout, MQTTSubscription, String)? in
            let parts = s.topicFilter.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard let table = tablesByName[String(parts[0])] else { return nil }
            return (table, s, parts.count > 1 ? String(parts[1]) : "")
        }
        guard !tableFilters.isEmpty else { return nil }
        let store = self.store
        return connection.eventLoop.makeFutureWithTask { [self] in
            for (table, subscription, rest) in tableFilters {
                var records: [(RecordID, ByteBuffer)] = []
                do {
                    if !rest.isEmpty, !rest.contains("+"), !rest.contains("#") {
                        if let id = RecordID(text: rest, type: table.definition.primaryKeyAttribute.type), let record = try await store.get(table, id)
                        {
                            records.append((id, record.json))
                        }
                    } else if rest.contains("+") || rest.contains("#") {
                        let result = try await QueryExecutor(store: store, maximumResults: 100_000).execute(Query(), table: table)
                        for row in result.rows {
                            guard let topic = topic(table.index, row.id), MQTTTopic.matches(filter: subscription.topicFilter, topic: topic) else {
                                continue
                            }
                            records.append(
                                (row.id, row.json.map { ByteBuffer(string: $0) } ?? ByteBuffer(bytes: JSONWriter.encode(.object(row.record)))))
                        }
                    }
                } catch {
                    logger.error("mqtt: reading retained records for \(subscription.topicFilter) failed: \(error)")
                }
                let name = topicNames[table.index] ?? table.name
                send(records.map { .init(topic: "\(name)/\($0.0)", payload: $0.1, qos: subscription.qos, retain: true) }, to: session)
            }
        }
    }

    private func send(_ messages: [MQTTSession.Outgoing], to session: MQTTSession) {
        guard !messages.isEmpty else { return }
        let maximumQueued = configuration.maximumQueuedMessages
        session.state.withLock { s in
            for m in messages {
                if let (connection, bytes) = MQTTSession.enqueue(m, into: &s, keepOffline: false, maximumQueued: maximumQueued) {
                    connection.deliver(bytes)
                }
            }
        }
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
        let maximumQueued = configuration.maximumQueuedMessages
        // QoS 0 copies are the same bytes for every subscriber of a protocol version and retain flag.
        var encoded: [Int: ByteBuffer] = [:]
        // Writes are handed to each event loop in one task, in order.
        var writes: [ObjectIdentifier: (any EventLoop, [(MQTTConnection, ByteBuffer)])] = [:]
        for (session, granted, retainAsPublished) in sessions {
            let message = MQTTSession.Outgoing(
                topic: topic, payload: payload, qos: min(qos, granted), retain: retain && retainAsPublished, change: change)
            let out = session.state.withLock { s in
                MQTTSession.enqueue(message, into: &s, keepOffline: keepOffline, maximumQueued: maximumQueued) { version in
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
            guard message.qos == .atMostOnce || connection.transport.isWritable else {
                connection.slowConsumer()
                continue
            }
            let loop = connection.eventLoop
            writes[ObjectIdentifier(loop), default: (loop, [])].1.append((connection, bytes))
        }
        for (_, (loop, batch)) in writes {
            loop.execute {
                for (connection, bytes) in batch { connection.transport.write(bytes) }
                for (connection, _) in batch { connection.transport.flush() }
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
