import MicrolithTables
import NIOCore
import Synchronization

/// Delivers a message to every session subscribed to its topic: once per session, at the highest QoS its
/// matching subscriptions grant (never above the message's own).
///
/// Live deliveries carry retain only for subscriptions with retain-as-published (MQTT 5). A connected client
/// gets the message now (a QoS 1 one past its in-flight window waits in its session), an offline session keeps
/// it when asked to (QoS 1 only), both within `mqtt.maxQueuedMessages` and `mqtt.bufferBytes`. A client
/// further behind than `mqtt.bufferBytes` loses QoS 0 messages, and is dropped as a slow consumer for a QoS 1 one.
struct MQTTFanOut: Sendable {
    let sessions: MQTTSessions

    /// Past how many subscribers on one loop a message's copies are flushed at once.
    static var flushAtOnce: Int { 8 }

    /// What one session's subscriptions matching a topic grant together.
    struct Target: Sendable, Equatable {
        /// The highest QoS among them.
        var qos: MQTTQoS
        /// Whether one of them asks for retain as published.
        var retainAsPublished: Bool
        /// Their subscription identifiers (MQTT 5): the one copy sent carries them all [MQTT-3.3.4-4].
        var identifiers: [Int] = []

        init(qos: MQTTQoS, retainAsPublished: Bool, identifiers: [Int] = []) {
            self.qos = qos
            self.retainAsPublished = retainAsPublished
            self.identifiers = identifiers
        }

        /// `target` (what other matching subscriptions grant, if any) with `s` added.
        init(adding s: MQTTSubscription, to target: Target?) {
            self.qos = max(target?.qos ?? .atMostOnce, s.qos)
            self.retainAsPublished = (target?.retainAsPublished ?? false) || s.retainAsPublished
            self.identifiers = (target?.identifiers ?? []) + (s.identifier.map { [$0] } ?? [])
        }

        /// What the subscriptions of `tree` matching `topic` grant together; `nil` when none matches.
        static func of(_ topic: String, in tree: MQTTTopicTree<String, MQTTSubscription>) -> Target? {
            var target: Target?
            tree.forEachMatch(topic: topic) { _, s in target = Target(adding: s, to: target) }
            return target
        }
    }

    /// The client ids with a subscription in `tree` matching `topic`, each once, with what its matching
    /// subscriptions grant together. Subscriptions with no-local set do not count for `publisher`, the
    /// client id of the connection that published [MQTT-3.8.3-3].
    static func targets(of topic: String, in tree: MQTTTopicTree<String, MQTTSubscription>, publisher: String? = nil) -> [String: Target] {
        var targets: [String: Target] = [:]
        tree.forEachMatch(topic: topic) { clientID, s in
            if s.noLocal, clientID == publisher { return }
            targets[clientID] = Target(adding: s, to: targets[clientID])
        }
        return targets
    }

    /// Delivers `message` (its QoS the most any subscriber gets, its retain flag the one retain-as-published
    /// subscribers see) to every subscriber of its topic; offline sessions keep it only if `keepOffline`.
    /// `publisher` is the client id of the connection that published it (for no-local subscriptions).
    /// With `admits`, only sessions whose principal it admits get the message (a table's changes go
    /// to those who may subscribe to the table, whatever filter matched); a shared subscription's
    /// group gives it to the next member in turn that it admits.
    ///
    /// Returns the store mark (``MQTTPersistence/barrier(_:on:)``) of the copies stored for sessions
    /// that outlive their connection; 0 when none was stored.
    @discardableResult
    func deliver(
        _ message: MQTTSession.Outgoing, keepOffline: Bool, publisher: String? = nil, admits: ((Principal) -> Bool)? = nil
    ) -> UInt64 {
        let subscribers = sessions.subscribers(of: message.topic, publisher: publisher, admits: admits)
        var mark: UInt64 = 0
        let topic = message.topic
        let payload = message.payload
        let properties = message.properties?.outgoing(at: .now()) ?? MQTTProperties()
        // QoS 0 copies are the same bytes for every subscriber of a protocol version and retain flag:
        // encoded once each, when first needed.
        var encoded: [Int: ByteBuffer] = [:]
        func sharedQoS0(retain: Bool) -> (MQTTProtocolVersion) -> ByteBuffer {
            { version in
                let key = Int(version.rawValue) << 1 | (retain ? 1 : 0)
                if let bytes = encoded[key] { return bytes }
                var bytes = ByteBuffer()
                MQTTPacket.publish(MQTTPublish(topic: topic, payload: payload, qos: .atMostOnce, retain: retain, properties: properties))
                    .encode(version: version, into: &bytes)
                encoded[key] = bytes
                return bytes
            }
        }
        let qos0 = (plain: sharedQoS0(retain: false), retained: sharedQoS0(retain: true))
        // Writes are handed to each event loop in one task, in order (most subscribers share the last one's loop).
        var writes: [(loop: any EventLoop, batch: [(MQTTConnection, ByteBuffer)])] = []
        var last: (loop: ObjectIdentifier, index: Int)?
        // Most subscribers act as the same principal (the anonymous role, a device account): asked once in a row.
        var lastAdmission: (principal: Principal, admitted: Bool)?
        func admitted(_ principal: Principal, by admits: (Principal) -> Bool) -> Bool {
            if let lastAdmission, lastAdmission.principal == principal { return lastAdmission.admitted }
            let admitted = admits(principal)
            lastAdmission = (principal, admitted)
            return admitted
        }
        for (session, target) in subscribers {
            let copy = MQTTSession.Outgoing(
                topic: topic, payload: payload, qos: min(message.qos, target.qos), retain: message.retain && target.retainAsPublished,
                change: message.change, properties: message.properties, subscriptionIdentifiers: target.identifiers)
            // Copies with subscription identifiers differ per session; the others share their bytes.
            let shared = copy.subscriptionIdentifiers.isEmpty ? (copy.retain ? qos0.retained : qos0.plain) : nil
            let out = session.state.withLock { s -> (MQTTConnection, ByteBuffer)? in
                if let admits, !admitted(s.principal, by: admits) { return nil }
                let (write, stored) = sessions.enqueue(copy, for: session, into: &s, keepOffline: keepOffline, qos0: shared)
                mark = max(mark, stored)
                return write
            }
            guard let (connection, bytes) = out else { continue }
            guard copy.qos == .atMostOnce || connection.isWritable else {
                connection.slowConsumer()
                continue
            }
            connection.handOff(bytes.readableBytes)
            let loop = connection.eventLoop
            let id = ObjectIdentifier(loop)
            if let last, last.loop == id {
                writes[last.index].batch.append((connection, bytes))
            } else if let index = writes.firstIndex(where: { ObjectIdentifier($0.loop) == id }) {
                writes[index].batch.append((connection, bytes))
                last = (id, index)
            } else {
                writes.append((loop, [(connection, bytes)]))
                last = (id, writes.count - 1)
            }
        }
        for (loop, batch) in writes {
            loop.execute {
                for (connection, bytes) in batch { connection.write(bytes) }
                if batch.count > Self.flushAtOnce {
                    // A message to many subscribers: one system call each whenever it is flushed,
                    // so at once, ahead of whatever else the loop has queued.
                    for (connection, _) in batch { connection.flush() }
                } else {
                    // To a few: flushed once the loop's queued tasks have run, so that the messages
                    // of the other publishes handled meanwhile reach them in the same system call.
                    for (connection, _) in batch { connection.flushSoon() }
                }
            }
        }
        return mark
    }
}
