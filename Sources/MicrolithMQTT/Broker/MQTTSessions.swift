import DequeModule
import Metrics
import MicrolithTables
import NIOCore
import OrderedCollections
import Synchronization

/// Every client's session, its subscriptions, the open connections and the wills waiting for their delay.
///
/// A session is bound to one connection at a time (a new connection with the same client id takes it
/// over). When the connection goes, a session that asked to outlive it keeps its subscriptions and the QoS 1
/// messages owed to it for its expiry interval (``expire()`` ends it after that); one that did not ends at
/// once. Subscriptions are bounded by `mqtt.maxSubscriptionsPerClient` per session and
/// `mqtt.maxSubscriptionsTotal` in all; the topic trie of every session's subscriptions is what
/// ``subscribers(of:)`` matches a message's topic against.
final class MQTTSessions: Sendable {
    let configuration: MQTTConfiguration
    /// Where sessions that outlive their connection, and the messages owed to them, are kept across
    /// restarts; `nil`: in memory only.
    let persistence: MQTTPersistence?
    private let registry = Mutex(Registry())

    private struct Registry: Sendable {
        // Any change to a session or a subscription empties `matches`.
        var sessions: [String: MQTTSession] = [:] { didSet { matches.removeAll() } }
        var tree = MQTTTopicTree<String, MQTTSubscription>() { didSet { matches.removeAll() } }
        /// The subscribers of recently published topics, shared subscriptions aside.
        var matches = MQTTMatchCache()
        var connections: [ObjectIdentifier: MQTTConnection] = [:]
        var pendingWills: [String: Scheduled<Void>] = [:]
        /// Subscriptions of every session together.
        var subscriptionCount = 0
        /// Shared subscriptions (`$share/{name}/{filter}`, MQTT 5 §4.8.2), by group key: the members'
        /// subscriptions in subscription order, and where the next delivery starts looking.
        var groups: [String: SharedGroup] = [:]
        /// Each group's filter, keyed and valued by its group key.
        var sharedTree = MQTTTopicTree<String, String>()
    }

    private struct SharedGroup: Sendable {
        var members: OrderedDictionary<String, MQTTSubscription> = [:]
        var next = 0
    }

    /// The group key of a shared subscription's filter, `nil` for other filters.
    private static func group(of filter: String) -> (key: String, filter: String)? {
        guard case .valid(let name, let topicFilter) = MQTTTopic.sharedSubscription(filter) else { return nil }
        return (name + "\u{0}" + topicFilter, topicFilter)
    }

    /// Subscribes `clientID` with `s`: to its group when shared, else in the trie.
    private static func insert(_ s: MQTTSubscription, clientID: String, into r: inout Registry) {
        guard let (key, topicFilter) = group(of: s.topicFilter) else {
            r.tree.insert(filter: s.topicFilter, key: clientID, value: s)
            return
        }
        if r.groups[key] == nil { r.sharedTree.insert(filter: topicFilter, key: key, value: key) }
        r.groups[key, default: SharedGroup()].members[clientID] = s
    }

    /// Removes the subscription of `clientID` to `filter`, from its group when shared.
    private static func removeSubscription(_ filter: String, clientID: String, from r: inout Registry) {
        guard let (key, topicFilter) = group(of: filter) else {
            r.tree.remove(filter: filter, key: clientID)
            return
        }
        r.groups[key]?.members[clientID] = nil
        if r.groups[key]?.members.isEmpty == true {
            r.groups[key] = nil
            r.sharedTree.remove(filter: topicFilter, key: key)
        }
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

    /// How much may wait for one session: `mqtt.maxQueuedMessages` messages and `mqtt.bufferBytes`
    /// bytes, with the counters of what is dropped past them (swift-metrics: `GET /metrics` under
    /// `serve`). Made once: every message queued for a session passes it.
    let limits: MQTTSession.Limits

    init(configuration: MQTTConfiguration, persistence: MQTTPersistence? = nil) {
        self.configuration = configuration
        self.persistence = persistence
        self.limits = MQTTSession.Limits(
            messages: configuration.maximumQueuedMessages, bytes: configuration.bufferBytes,
            notQueued: Counter(label: "microlith_mqtt_messages_dropped_total", dimensions: [("reason", "queue_full")]),
            skipped: Counter(label: "microlith_mqtt_messages_dropped_total", dimensions: [("reason", "not_writable")]),
            replayCut: Counter(label: "microlith_mqtt_messages_dropped_total", dimensions: [("reason", "replay_limit")]))
    }

    // MARK: The store

    /// Writes the session's row when it outlives its connection (with `positions`, when given, as
    /// where a replay of the change log would start), or removes the row when it no longer does;
    /// under the session's lock, so rows are written in the order the session changed.
    private func store(_ session: MQTTSession, _ s: inout MQTTSession.State, positions: [String: Int64]? = nil) {
        guard let persistence, !s.removed else { return }
        guard s.expirySeconds > 0 else {
            if s.persisted { persistence.enqueue(.removeSession(session.clientID)) }
            s.persisted = false
            return
        }
        if let positions { s.storedPositions = positions }
        s.persisted = true
        persistence.enqueue(
            .saveSession(
                MQTTPersistence.SessionRow(
                    clientID: session.clientID, owner: session.owner, roles: s.principal.roles, version: s.version, expiry: s.expirySeconds,
                    disconnectedAt: s.connection == nil ? s.disconnectedWallClock : nil,
                    subscriptions: s.subscriptions.values.sorted { $0.topicFilter < $1.topicFilter }, positions: s.storedPositions,
                    received: s.receivedQoS2.sorted(), will: s.will, willDue: s.willDue)))
    }

    /// Deletes the stored rows of the messages the session is done with; under the session's lock.
    func settle(_ s: inout MQTTSession.State) {
        if !s.inflightChanges.isEmpty {
            for change in s.inflightChanges {
                persistence?.enqueue(.inflight(messageID: change.message, packetID: change.packetID, released: change.released))
            }
            s.inflightChanges = []
        }
        guard !s.settled.isEmpty else { return }
        persistence?.enqueue(.deleteMessages(s.settled))
        s.settled = []
    }

    /// Queues `message` for the session (``MQTTSession/enqueue(_:into:keepOffline:limits:qos0:)``),
    /// storing it first when the session outlives its connection and the message is a QoS 1 or 2 one
    /// that is not a table change (those are replayed from the change log). Returns what to write now,
    /// and the store mark to wait for (0: nothing stored).
    func enqueue(
        _ message: MQTTSession.Outgoing, for session: MQTTSession, into s: inout MQTTSession.State, keepOffline: Bool,
        qos0: ((MQTTProtocolVersion) -> ByteBuffer)? = nil
    ) -> (write: (MQTTConnection, ByteBuffer)?, mark: UInt64) {
        var message = message
        var mark: UInt64 = 0
        if let persistence, s.persisted, message.qos != .atMostOnce, message.change == nil, s.connection != nil || keepOffline {
            message.stored = persistence.newMessageID()
            let wallNow = persistence.wallClock()
            mark = persistence.enqueue(.insertMessage(clientID: session.clientID, message.row(wallNow: wallNow, now: .now())))
        }
        let write = MQTTSession.enqueue(message, into: &s, keepOffline: keepOffline, limits: limits, qos0: qos0)
        settle(&s)
        return (write, mark)
    }

    /// Writes every stored session's row again (after a failed write, which may have lost some).
    func storeAll() {
        let sessions = registry.withLock { Array($0.sessions.values) }
        for session in sessions {
            session.state.withLock { s in
                if s.persisted { store(session, &s) }
            }
        }
    }

    /// Writes the change-log positions of the connected sessions that outlive their connection, where
    /// they moved since last written: `current` (the hub's), lowered before every table change not yet
    /// acknowledged. A restart after a crash replays from there.
    func storePositions(_ current: [String: Int64]) {
        guard persistence != nil else { return }
        let sessions = registry.withLock { Array($0.sessions.values) }
        for session in sessions {
            session.state.withLock { s in
                // A session without subscriptions is owed no table changes: its row need not move.
                guard s.persisted, s.connection != nil, !s.replaying, !s.subscriptions.isEmpty else { return }
                let positions = MQTTSession.safePositions(current, s)
                if positions != s.storedPositions { store(session, &s, positions: positions) }
            }
        }
    }

    /// A will the store kept, owed once its delay has passed.
    struct OwedWill: Sendable {
        var clientID: String
        var will: MQTTWill
        /// Who left it: it is published with that principal's rights.
        var principal: Principal
        /// How long from now it is due (zero: now).
        var delay: TimeAmount
    }

    /// Takes the sessions, their subscriptions and queued messages, as the store kept them (`wallNow`:
    /// the wall clock now, in milliseconds since 1970). Sessions whose expiry passed while the broker
    /// was down are removed, and so are expired messages. Returns the wills owed: those waiting for
    /// their delay when the broker stopped (due when they were), and those of the clients connected
    /// at a crash (due their delay, capped by the session's expiry, from now), for the broker to
    /// schedule (``schedule(will:of:in:on:)``).
    @discardableResult
    func restore(_ loaded: MQTTPersistence.Loaded, wallNow: Int64) -> [OwedWill] {
        guard let persistence else { return [] }
        var owed: [OwedWill] = []
        let now = NIODeadline.now()
        let clock = ContinuousClock.now
        var kept = Set<String>()
        registry.withLock { r in
            for row in loaded.sessions {
                let principal = Principal(user: row.owner, roles: row.roles)
                let away = max(0, wallNow - (row.disconnectedAt ?? wallNow))
                if row.expiry != UInt32.max, away >= Int64(row.expiry) * 1000 {
                    persistence.enqueue(.removeSession(row.clientID))
                    // Its will was due by the end of the session at the latest (MQTT 5 §3.1.3.2.2).
                    if let will = row.will {
                        owed.append(OwedWill(clientID: row.clientID, will: will, principal: principal, delay: .zero))
                    }
                    continue
                }
                let session = MQTTSession(clientID: row.clientID, owner: row.owner)
                var expired: [Int64] = []
                session.state.withLock { s in
                    s.version = row.version
                    s.expirySeconds = row.expiry
                    s.disconnectedAt = clock - .milliseconds(away)
                    s.disconnectedWallClock = wallNow - away
                    s.positions = row.positions
                    s.storedPositions = row.positions
                    s.principal = principal
                    s.persisted = true
                    s.receivedQoS2 = Set(row.received)
                    if let will = row.will {
                        let due = row.willDue ?? wallNow + Int64(min(will.properties.willDelayInterval ?? 0, row.expiry)) * 1000
                        s.will = will
                        s.willDue = due
                        owed.append(OwedWill(clientID: row.clientID, will: will, principal: principal, delay: .milliseconds(max(0, due - wallNow))))
                    }
                    for subscription in row.subscriptions { s.subscriptions[subscription.topicFilter] = subscription }
                    // Connected when the broker stopped (a crash): away from now on, and so written, or
                    // its expiry would start again at every restart.
                    if row.disconnectedAt == nil { store(session, &s) }
                    for m in loaded.messages[row.clientID] ?? [] {
                        let properties = MQTTMessageProperties(stored: m.properties, expiresAt: m.expiresAt, wallNow: wallNow, now: now)
                        if let properties, properties.isExpired(at: now) {
                            expired.append(m.id)
                            continue
                        }
                        let message = MQTTSession.Outgoing(
                            topic: m.topic, payload: m.payload, qos: m.qos, retain: m.retain, properties: properties,
                            subscriptionIdentifiers: m.identifiers, stored: m.id)
                        s.queuedBytes += message.size
                        // A QoS 2 message in flight keeps its packet id: resent with DUP, or its PUBREL [MQTT-4.4.0-1].
                        if m.qos == .exactlyOnce, let packetID = m.packetID, s.inflight[packetID] == nil {
                            s.inflight[packetID] = message
                            if m.released { s.released.insert(packetID) }
                        } else {
                            s.pending.append(message)
                        }
                    }
                }
                if !expired.isEmpty { persistence.enqueue(.deleteMessages(expired)) }
                r.sessions[row.clientID] = session
                kept.insert(row.clientID)
                for subscription in row.subscriptions {
                    Self.insert(subscription, clientID: row.clientID, into: &r)
                    r.subscriptionCount += 1
                }
            }
        }
        // Messages of sessions that are gone.
        let orphans = loaded.messages.filter { !kept.contains($0.key) }.flatMap { $0.value.map(\.id) }
        if !orphans.isEmpty { persistence.enqueue(.deleteMessages(orphans)) }
        return owed
    }

    /// The session of `clientID`, if the broker holds one.
    func session(_ clientID: String) -> MQTTSession? {
        registry.withLock { $0.sessions[clientID] }
    }

    /// Whether a new session may be opened for `clientID`: one exists for it already, or fewer than
    /// `mqtt.maxSessions` exist.
    func admitsSession(clientID: String) -> Bool {
        registry.withLock { r in r.sessions[clientID] != nil || r.sessions.count < configuration.maximumSessions }
    }

    /// How many sessions exist (connected or kept for their client).
    var sessionCount: Int { registry.withLock { $0.sessions.count } }

    // MARK: Connections

    /// Counts a new connection (until ``detach(_:will:positions:)``).
    func add(_ connection: MQTTConnection) {
        registry.withLock { $0.connections[ObjectIdentifier(connection)] = connection }
    }

    /// How many connections are open.
    var connectionCount: Int { registry.withLock { $0.connections.count } }

    /// Every open connection.
    var connections: [MQTTConnection] { registry.withLock { Array($0.connections.values) } }

    /// Cancels the wills waiting for their delay (they are not published) and returns every open connection.
    func cancelWills() -> [MQTTConnection] {
        registry.withLock { r in
            for (_, will) in r.pendingWills { will.cancel() }
            r.pendingWills = [:]
            return Array(r.connections.values)
        }
    }

    // MARK: Sessions

    /// `seconds` of session expiry as a client asks, capped by `mqtt.sessionExpirySeconds`.
    func cappedExpiry(_ seconds: UInt32) -> UInt32 {
        min(seconds, UInt32(clamping: configuration.sessionExpirySeconds))
    }

    /// Whether a session with `clientID` exists that another signed-in user made. (A session an
    /// anonymous client made may be taken over, and is then started afresh: anyone may connect
    /// anonymously, so such an id cannot be held against its user.)
    func isOwnedByAnother(clientID: String, user: String?) -> Bool {
        registry.withLock { r in r.sessions[clientID].map { $0.owner != nil && $0.owner != user } ?? false }
    }

    /// Binds `connection` to the session of `clientID` (taking it over from another connection) and calls
    /// `then` with the session and whether it existed before. A will waiting for the client is cancelled.
    func attach(
        _ connection: MQTTConnection, clientID: String, principal: Principal, cleanStart: Bool, expiry: UInt32, version: MQTTProtocolVersion,
        maximumInflight: Int,
        maximumPacketSize: Int = .max, positions: [String: Int64] = [:], will: MQTTWill? = nil,
        then: @escaping @Sendable (MQTTSession, Bool) -> Void
    ) {
        let (session, present, previous): (MQTTSession, Bool, MQTTConnection?) = registry.withLock { r in
            r.pendingWills.removeValue(forKey: clientID)?.cancel()
            // The connection holding the client id now, whatever becomes of its session.
            let holder = r.sessions[clientID]?.state.withLock { $0.connection }
            // A session is resumed only by the user who made it: another user (or the anonymous role)
            // reusing the client id starts afresh, and never receives what was kept for the first.
            if cleanStart || r.sessions[clientID].map({ $0.owner != principal.user }) == true { remove(session: clientID, from: &r) }
            let existing = r.sessions[clientID]
            let session = existing ?? MQTTSession(clientID: clientID, owner: principal.user)
            r.sessions[clientID] = session
            let previous = session.state.withLock { s -> MQTTConnection? in
                let previous = s.connection
                s.connection = connection
                s.version = version
                s.expirySeconds = expiry
                s.maximumInflight = max(1, maximumInflight)
                s.maximumPacketSize = maximumPacketSize
                s.disconnectedAt = nil
                s.replaying = existing != nil
                s.principal = principal
                s.will = will
                s.willDue = nil
                // A new session's replay would start at the hub's position now; a returning one's where it left.
                if existing == nil { s.positions = positions }
                store(session, &s, positions: existing == nil ? positions : nil)
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

    /// The connection is gone: its session keeps what it is owed from the change-log `positions` on (or ends,
    /// if it does not outlive the connection). Returns the session's client id and how many seconds its will
    /// waits: the will's delay, capped by the session's expiry interval.
    func detach(_ connection: MQTTConnection, will: MQTTWill?, positions: [String: Int64]) -> (clientID: String, willDelay: UInt32) {
        registry.withLock { r in
            r.connections[ObjectIdentifier(connection)] = nil
            guard let session = connection.session, r.sessions[session.clientID] === session else { return (connection.clientID, 0) }
            let (ends, delay) = session.state.withLock { s -> (Bool, UInt32) in
                let delay = min(will?.properties.willDelayInterval ?? 0, s.expirySeconds)
                guard s.connection === connection else { return (false, delay) }
                s.connection = nil
                s.replaying = false
                s.disconnectedAt = .now
                s.disconnectedWallClock = persistence?.wallClock()
                s.positions = positions
                // A will published now is done with; one waiting for its delay stays the session's.
                s.will = delay > 0 ? will : nil
                s.willDue = delay > 0 ? s.disconnectedWallClock.map { $0 + Int64(delay) * 1000 } : nil
                if s.expirySeconds > 0 { store(session, &s, positions: MQTTSession.safePositions(positions, s)) }
                return (s.expirySeconds == 0, delay)
            }
            if ends { remove(session: session.clientID, from: &r) }
            return (session.clientID, delay)
        }
    }

    /// Runs `publish` in `delay` seconds on `loop`, unless the client comes back first (``attach(_:clientID:principal:cleanStart:expiry:version:maximumInflight:maximumPacketSize:then:)``)
    /// or the broker shuts down (``cancelWills()``).
    /// Once published, the session (if the client is still away) is done with the will, and its
    /// row says so.
    func schedule(will publish: @escaping @Sendable () -> Void, of clientID: String, in delay: TimeAmount, on loop: any EventLoop) {
        let task = loop.scheduleTask(in: delay) { [self] in
            let session = registry.withLock { r -> MQTTSession? in
                r.pendingWills.removeValue(forKey: clientID)
                return r.sessions[clientID]
            }
            publish()
            session?.state.withLock { s in
                guard s.connection == nil, s.will != nil else { return }
                s.will = nil
                s.willDue = nil
                if s.persisted { store(session!, &s) }
            }
        }
        registry.withLock { $0.pendingWills[clientID] = task }
    }

    /// Ends the sessions whose connection has been gone for longer than their expiry interval.
    func expire() {
        let clock = ContinuousClock.now
        registry.withLock { r in
            for (id, session) in r.sessions {
                let expired = session.state.withLock { s -> Bool in
                    guard s.connection == nil, let since = s.disconnectedAt, s.expirySeconds != UInt32.max else { return false }
                    return clock - since >= .seconds(Int64(s.expirySeconds))
                }
                if expired { remove(session: id, from: &r) }
            }
        }
    }

    private func remove(session clientID: String, from r: inout Registry) {
        guard let session = r.sessions.removeValue(forKey: clientID) else { return }
        let filters = session.state.withLock { s in
            defer { s.subscriptions = [:] }
            if s.persisted { persistence?.enqueue(.removeSession(clientID)) }
            s.persisted = false
            s.removed = true
            s.settled = []
            return Array(s.subscriptions.keys)
        }
        for filter in filters {
            Self.removeSubscription(filter, clientID: clientID, from: &r)
        }
        r.subscriptionCount -= filters.count
    }

    // MARK: Queued messages

    /// The unacknowledged QoS 1 messages of a returning client again, with DUP set.
    func resendInflight(_ session: MQTTSession) -> ByteBuffer? {
        session.state.withLock { MQTTSession.resendInflight(&$0) }
    }

    /// The replay of a returning client's missed table changes is done: `replay` goes out first, then the
    /// messages that waited meanwhile, except the table changes up to `end` (the replay carried them).
    func replayed(_ session: MQTTSession, _ replay: Deque<MQTTSession.Outgoing>, upTo end: [String: Int64]) {
        // Handed to the connection under the session's lock, so that bytes leave in the order the
        // session's state changed (an acknowledgement drains the queue from another thread).
        session.state.withLock { s in
            s.replaying = false
            var replay = replay
            let live = s.pending.filter { m in
                guard let change = m.change, let end = end[change.database] else { return true }
                return change.sequence > end
            }
            replay.append(contentsOf: live)
            MQTTSession.replacePending(with: replay, in: &s)
            s.connection?.deliver(MQTTSession.drain(&s))
            settle(&s)
        }
    }

    /// The client acknowledged a QoS 1 message: free its slot and send what waits.
    func acknowledged(_ session: MQTTSession, packetID: UInt16) {
        // Under the lock: bytes leave in the order the session's state changed.
        session.state.withLock { s in
            guard MQTTSession.acknowledge(packetID, in: &s) else { return }
            s.connection?.deliver(MQTTSession.drain(&s))
            settle(&s)
        }
    }

    /// The client received a QoS 2 message (PUBREC with `reasonCode`): PUBREL goes out (0x92 for an
    /// id not in flight), or, for a refusal, its slot is freed and what waits is sent.
    func received(_ session: MQTTSession, packetID: UInt16, reasonCode: UInt8) {
        session.state.withLock { s in
            var out = ByteBuffer()
            switch MQTTSession.receive(packetID, reasonCode: reasonCode, in: &s) {
            case .release:
                MQTTSession.encodePubrel(packetID, version: s.version, into: &out)
                settle(&s)
            case .unknown:
                MQTTSession.encodePubrel(packetID, reasonCode: s.version == .v5 ? 0x92 : 0, version: s.version, into: &out)
            case .refused:
                s.connection?.deliver(MQTTSession.drain(&s))
                settle(&s)
                return
            }
            s.connection?.deliver(out)
        }
    }

    /// Whether the client sent a QoS 2 publish with `packetID` that was handed on and not released
    /// (PUBREL) since: a repeat of it is acknowledged, not handed on again [MQTT-4.3.3-10].
    func isReceived(_ session: MQTTSession, packetID: UInt16) -> Bool {
        session.state.withLock { $0.receivedQoS2.contains(packetID) }
    }

    /// Records that the client's QoS 2 publish with `packetID` was handed on (`true`), or that the
    /// exchange ended (`false`: released by PUBREL, or refused). Returns the store mark its PUBREC
    /// or PUBCOMP waits for when the session outlives its connection (0: nothing stored), so that a
    /// restart neither hands a repeat on again nor takes a reused id for a repeat.
    @discardableResult
    func setReceived(_ session: MQTTSession, packetID: UInt16, _ received: Bool) -> UInt64 {
        session.state.withLock { s in
            let changed = received ? s.receivedQoS2.insert(packetID).inserted : s.receivedQoS2.remove(packetID) != nil
            guard changed, let persistence, s.persisted else { return 0 }
            return persistence.enqueue(.received(clientID: session.clientID, packetIDs: s.receivedQoS2.sorted()))
        }
    }

    /// The client completed a QoS 2 message (PUBCOMP): free its slot and send what waits.
    func completed(_ session: MQTTSession, packetID: UInt16) {
        session.state.withLock { s in
            guard MQTTSession.completeRelease(packetID, in: &s) else { return }
            s.connection?.deliver(MQTTSession.drain(&s))
            settle(&s)
        }
    }

    // MARK: Subscriptions

    /// Adds the subscriptions in order (a filter given twice replaces its first subscription), within
    /// `mqtt.maxSubscriptionsPerClient` for the session and `mqtt.maxSubscriptionsTotal` for the broker.
    func subscribe(_ session: MQTTSession, _ subscriptions: [MQTTSubscription]) -> [SubscribeOutcome] {
        let perClient = configuration.maximumSubscriptionsPerClient
        let total = configuration.maximumSubscriptionsTotal
        let outcomes = registry.withLock { r in
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
                if outcome != .refused { Self.insert(s, clientID: session.clientID, into: &r) }
                return outcome
            }
        }
        if outcomes.contains(where: { $0 != .refused }) { session.state.withLock { store(session, &$0) } }
        return outcomes
    }

    /// Removes the session's subscription to `filter`; returns whether it had one.
    func unsubscribe(_ session: MQTTSession, filter: String) -> Bool {
        registry.withLock { r in
            Self.removeSubscription(filter, clientID: session.clientID, from: &r)
            let removed = session.state.withLock { s in
                guard s.subscriptions.removeValue(forKey: filter) != nil else { return false }
                store(session, &s)
                return true
            }
            if removed { r.subscriptionCount -= 1 }
            return removed
        }
    }

    /// Subscriptions held by every session together.
    var subscriptionCount: Int { registry.withLock { $0.subscriptionCount } }

    /// The topics whose subscribers are kept (``MQTTMatchCache``).
    var keptTopics: Int { registry.withLock { $0.matches.count } }

    /// The sessions some subscription of which matches `topic`, each once, with what its matching
    /// subscriptions grant together (``MQTTFanOut/targets(of:in:publisher:)``). Each shared subscription
    /// group whose filter matches adds one of its members, in turn, a connected one first when there is one
    /// (MQTT 5 §4.8.2); with `admits`, only a member whose principal it admits (none: the group gets nothing).
    /// The other subscribers of a topic are kept (``MQTTMatchCache``) until a subscription or a session changes.
    func subscribers(
        of topic: String, publisher: String? = nil, admits: ((Principal) -> Bool)? = nil
    ) -> [(session: MQTTSession, target: MQTTFanOut.Target)] {
        registry.withLock { r in
            var subscribers: [(session: MQTTSession, target: MQTTFanOut.Target)]
            let entry: MQTTMatchCache.Entry
            if let kept = r.matches[topic] {
                entry = kept
            } else {
                entry = Self.matching(topic, in: r)
                r.matches.keep(entry, for: topic)
            }
            if let publisher, entry.noLocal.contains(publisher) {
                // The publisher's own no-local subscriptions leave it out [MQTT-3.8.3-3].
                subscribers = Self.matching(topic, in: r, publisher: publisher).subscribers
            } else {
                subscribers = entry.subscribers
            }
            guard !r.groups.isEmpty else { return subscribers }
            var matched: [String] = []
            r.sharedTree.forEachMatch(topic: topic) { key, _ in matched.append(key) }
            var picks: [(clientID: String, subscription: MQTTSubscription)] = []
            for key in matched {
                guard var group = r.groups[key], !group.members.isEmpty else { continue }
                // The next member in turn that may receive the message, connected ones first; a
                // member without the right is passed over (not picked, and the message lost).
                let count = group.members.count
                var connectedMember: Int?
                var offlineMember: Int?
                for step in 0..<count {
                    let index = (group.next + step) % count
                    guard
                        let (connected, admitted) = r.sessions[group.members.keys[index]]?.state.withLock({ s in
                            (s.connection != nil, admits?(s.principal) ?? true)
                        }), admitted
                    else { continue }
                    if connected {
                        connectedMember = index
                        break
                    }
                    if offlineMember == nil { offlineMember = index }
                }
                guard let chosen = connectedMember ?? offlineMember else { continue }
                group.next = chosen + 1
                r.groups[key] = group
                picks.append((group.members.keys[chosen], group.members.values[chosen]))
            }
            guard !picks.isEmpty else { return subscribers }
            // A picked member may also hold other matching subscriptions: still one copy, granting both.
            var position = Dictionary(subscribers.enumerated().map { ($1.session.clientID, $0) }, uniquingKeysWith: { a, _ in a })
            for (clientID, subscription) in picks {
                if let i = position[clientID] {
                    subscribers[i].target = MQTTFanOut.Target(adding: subscription, to: subscribers[i].target)
                } else if let session = r.sessions[clientID] {
                    position[clientID] = subscribers.count
                    subscribers.append((session, MQTTFanOut.Target(adding: subscription, to: nil)))
                }
            }
            return subscribers
        }
    }

    /// What ``MQTTMatchCache`` keeps for `topic`: the sessions of `r` whose subscriptions in the topic
    /// tree match it, and which of them hold a matching no-local one. With `publisher`, that client's
    /// no-local subscriptions do not count (such an entry is not kept).
    private static func matching(_ topic: String, in r: Registry, publisher: String? = nil) -> MQTTMatchCache.Entry {
        var noLocal = Set<String>()
        r.tree.forEachMatch(topic: topic) { clientID, s in
            if s.noLocal { noLocal.insert(clientID) }
        }
        let subscribers = MQTTFanOut.targets(of: topic, in: r.tree, publisher: publisher).compactMap { clientID, target in
            r.sessions[clientID].map { (session: $0, target: target) }
        }
        return MQTTMatchCache.Entry(subscribers: subscribers, noLocal: noLocal)
    }
}
