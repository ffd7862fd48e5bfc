import DequeModule
import Metrics
import MicrolithTables
import NIOCore
import OrderedCollections
import Synchronization

/// A client's session: its subscriptions and the QoS 1 and 2 messages owed to it. It outlives the
/// connection when the client asked for a persistent session.
final class MQTTSession: Sendable {
    let clientID: String
    /// The user whose client made the session (`nil`: the anonymous role); only that user resumes it.
    let owner: String?
    let state: Mutex<State>

    /// A message owed to the client.
    struct Outgoing: Sendable {
        var topic: String
        var payload: ByteBuffer
        var qos: MQTTQoS
        var retain: Bool
        /// The database and change-log sequence of a table change (to skip what a replay already sent).
        var change: (database: String, sequence: Int64)? = nil
        /// The MQTT 5 properties the publisher gave the message, forwarded to subscribers.
        var properties: MQTTMessageProperties? = nil
        /// The identifiers of the subscriptions of this session the message matched (MQTT 5).
        var subscriptionIdentifiers: [Int] = []
        /// The id of the message's row in the store (``MQTTPersistence``), for a message kept for a
        /// persistent session; `nil` when it is not stored.
        var stored: Int64? = nil

        /// What the message weighs against `mqtt.bufferBytes` while it is kept.
        var size: Int { topic.utf8.count + payload.readableBytes + (properties?.size ?? 0) }

        /// Whether the message expired (MQTT 5 message expiry) before `now`.
        func isExpired(at now: NIODeadline) -> Bool { properties?.isExpired(at: now) ?? false }
    }

    /// How much may wait in `pending` (and, for the bytes, in flight) when a message is queued;
    /// `nil`: no bound (a caller that paces itself).
    struct Limits: Sendable {
        var messages: Int
        var bytes: Int
        /// Counts the QoS 1 and 2 messages not queued because the session was at its limits.
        var notQueued: Counter?
        /// Counts the QoS 0 messages skipped because the client's connection was not writable.
        var skipped: Counter?
        /// Counts the table changes a returning client's change-log replay left out past the limits.
        var replayCut: Counter?
    }

    struct State: Sendable {
        // What every fan-out reads comes first, so that it shares as few cache lines as it can.
        var connection: MQTTConnection?
        var version: MQTTProtocolVersion = .v3_1_1
        /// While the change-log replay of a returning client runs, live messages wait in `pending`.
        var replaying = false
        /// Who the client signed in as (its latest connection): which tables' changes it may receive.
        var principal = Principal.anonymous
        /// Whether the session has a row in the store (``MQTTPersistence``).
        var persisted = false
        /// The largest packet the client accepts (its MQTT 5 Maximum Packet Size): a PUBLISH larger than
        /// this is not sent, and counts as delivered [MQTT-3.1.2-24, -25].
        var maximumPacketSize = Int.max
        /// Stored QoS 2 messages that went out, or were received (PUBREC), since last written: their
        /// rows record the packet id and the receipt (``MQTTSessions/settle(_:)`` queues the updates).
        var inflightChanges: [(message: Int64, packetID: UInt16, released: Bool)] = []
        /// The stored rows (``Outgoing/stored``) of messages the session is done with (acknowledged,
        /// refused, expired, dropped), for the broker to delete.
        var settled: [Int64] = []
        /// Topic filter → options, as granted.
        var subscriptions: [String: MQTTSubscription] = [:]
        var nextPacketID: UInt16 = 1
        /// QoS 1 and 2 messages sent and not yet acknowledged (PUBACK; PUBCOMP for QoS 2), by packet
        /// id, in send order.
        var inflight: OrderedDictionary<UInt16, Outgoing> = [:]
        /// The QoS 2 messages of `inflight` the client has received (PUBREC): PUBREL was sent, and
        /// they keep their in-flight slot until PUBCOMP [MQTT-4.3.3].
        var released: Set<UInt16> = []
        /// The packet ids of QoS 2 publishes received from the client and handed on whose PUBREL has
        /// not come: a PUBLISH repeating one is acknowledged (PUBREC), not handed on again
        /// [MQTT-4.3.3-10]. Part of the session, so a repeat sent on the client's next connection
        /// counts too; stored with a persistent session's row, so a restart keeps them.
        var receivedQoS2: Set<UInt16> = []
        /// The will of the client's connection while it is connected, or the one waiting for its
        /// delay after the connection went; kept with a persistent session's row, so a crash or a
        /// restart does not lose it (MQTT 5 §4.1: the will is part of the session's state).
        var will: MQTTWill?
        /// When the will waiting for its delay is due, in milliseconds since 1970; `nil` while the
        /// client is connected.
        var willDue: Int64?
        /// Messages waiting for a free in-flight slot, for the client to come back, or for the replay to finish.
        var pending: Deque<Outgoing> = []
        /// The bytes (``Outgoing/size``) of the messages in `inflight` and `pending`.
        var queuedBytes = 0
        var maximumInflight = 100
        /// Seconds the session outlives its connection; `UInt32.max`: never expires.
        var expirySeconds: UInt32 = 0
        var disconnectedAt: ContinuousClock.Instant?
        /// When the connection went, in milliseconds since 1970 (what the store keeps).
        var disconnectedWallClock: Int64?
        /// Change-log positions, per database, when the client went away (the replay starts after them).
        var positions: [String: Int64] = [:]
        /// The session has ended (removed from the broker): nothing writes its row again.
        var removed = false
        /// The change-log positions last written to the store.
        var storedPositions: [String: Int64] = [:]
    }

    init(clientID: String, owner: String? = nil) {
        self.clientID = clientID
        self.owner = owner
        self.state = Mutex(State())
    }

    /// Queues or sends `message`; returns what to write now, if anything.
    /// Messages for an absent client are kept only at QoS 1 and only if `keepOffline`; a message that
    /// would take `pending` past `limits` is dropped (at least one is always kept).
    /// `qos0`, when given, supplies the encoded QoS 0 PUBLISH for a protocol version (a fan-out
    /// encodes it once for every subscriber).
    static func enqueue(
        _ message: Outgoing, into s: inout State, keepOffline: Bool, limits: Limits?, qos0: ((MQTTProtocolVersion) -> ByteBuffer)? = nil
    ) -> (MQTTConnection, ByteBuffer)? {
        guard let connection = s.connection, !s.replaying else {
            if s.connection != nil || (keepOffline && message.qos != .atMostOnce) { keep(message, in: &s, limits: limits) }
            return nil
        }
        if message.qos == .atMostOnce {
            // At most once: a client that does not keep up loses QoS 0 messages, not the connection.
            guard connection.isWritable else {
                limits?.skipped?.increment()
                return nil
            }
            if let qos0 {
                let bytes = qos0(s.version)
                return bytes.readableBytes <= s.maximumPacketSize ? (connection, bytes) : nil
            }
            var out = ByteBuffer()
            message.encode(version: s.version, into: &out)
            return out.readableBytes <= s.maximumPacketSize ? (connection, out) : nil
        }
        guard s.inflight.count < s.maximumInflight, s.pending.isEmpty else {
            keep(message, in: &s, limits: limits)
            return nil
        }
        var out = ByteBuffer()
        s.queuedBytes += message.size
        send(message, in: &s, into: &out)
        return out.readableBytes > 0 ? (connection, out) : nil
    }

    /// Appends `message` to `pending` if it fits `limits`.
    static func keep(_ message: Outgoing, in s: inout State, limits: Limits?) {
        if let limits {
            guard s.pending.count < limits.messages, s.queuedBytes == 0 || s.queuedBytes + message.size <= limits.bytes else {
                if let stored = message.stored { s.settled.append(stored) }
                limits.notQueued?.increment()
                return
            }
        }
        s.queuedBytes += message.size
        s.pending.append(message)
    }

    /// Encodes `message`, taking an in-flight slot and a packet id for QoS 1 and 2 (its bytes stay
    /// counted in `queuedBytes` until acknowledged; a QoS 0 message's are released).
    /// A PUBLISH larger than the client's maximum packet size is not written; a QoS 1 or 2 one is then
    /// done with, as if acknowledged [MQTT-3.1.2-25].
    private static func send(_ message: Outgoing, in s: inout State, into out: inout ByteBuffer) {
        let start = out.writerIndex
        guard message.qos != .atMostOnce else {
            s.queuedBytes -= message.size
            message.encode(version: s.version, into: &out)
            if out.writerIndex - start > s.maximumPacketSize { out.moveWriterIndex(to: start) }
            return
        }
        var id = s.nextPacketID
        while s.inflight[id] != nil { id = id == UInt16.max ? 1 : id + 1 }
        s.nextPacketID = id == UInt16.max ? 1 : id + 1
        message.encode(version: s.version, packetID: id, into: &out)
        guard out.writerIndex - start <= s.maximumPacketSize else {
            out.moveWriterIndex(to: start)
            s.queuedBytes -= message.size
            if let stored = message.stored { s.settled.append(stored) }
            return
        }
        s.inflight[id] = message
        if message.qos == .exactlyOnce, let stored = message.stored { s.inflightChanges.append((stored, id, false)) }
    }

    /// The client acknowledged (PUBACK) the QoS 1 message `packetID`; returns whether it was in flight.
    static func acknowledge(_ packetID: UInt16, in s: inout State) -> Bool {
        guard s.inflight[packetID]?.qos == .atLeastOnce else { return false }
        return complete(packetID, in: &s)
    }

    /// What the client's PUBREC of `packetID` calls for.
    enum Receipt: Equatable {
        /// Send PUBREL (again, for a repeated PUBREC).
        case release
        /// The client refused the message (a reason code of 0x80 or more): it is done with, no PUBREL.
        case refused
        /// No QoS 2 message is in flight with that id: PUBREL with 0x92 (Packet Identifier not found).
        case unknown
    }

    /// The client received (PUBREC, with `reasonCode`) the QoS 2 message `packetID`.
    static func receive(_ packetID: UInt16, reasonCode: UInt8, in s: inout State) -> Receipt {
        guard s.inflight[packetID]?.qos == .exactlyOnce else { return .unknown }
        if reasonCode >= 0x80, !s.released.contains(packetID) {
            _ = complete(packetID, in: &s)
            return .refused
        }
        if s.released.insert(packetID).inserted, let stored = s.inflight[packetID]?.stored {
            s.inflightChanges.append((stored, packetID, true))
        }
        return .release
    }

    /// The client completed (PUBCOMP) the QoS 2 message `packetID`; returns whether it was released.
    static func completeRelease(_ packetID: UInt16, in s: inout State) -> Bool {
        guard s.released.contains(packetID) else { return false }
        return complete(packetID, in: &s)
    }

    /// Frees the in-flight slot of `packetID`.
    private static func complete(_ packetID: UInt16, in s: inout State) -> Bool {
        s.released.remove(packetID)
        guard let message = s.inflight.removeValue(forKey: packetID) else { return false }
        s.queuedBytes -= message.size
        if let stored = message.stored { s.settled.append(stored) }
        return true
    }

    /// Replaces what waits with `messages` (a returning client's replay, then what came meanwhile;
    /// every stored message of `pending` must be among them).
    static func replacePending(with messages: Deque<Outgoing>, in s: inout State) {
        s.pending = messages
        s.queuedBytes = s.inflight.values.reduce(0) { $0 + $1.size } + messages.reduce(0) { $0 + $1.size }
    }

    /// The bytes of every message that can go out now: pending ones while in-flight slots are free.
    /// A message whose expiry passed while it waited is dropped [MQTT-3.3.2-5].
    static func drain(_ s: inout State) -> ByteBuffer? {
        guard s.connection != nil, !s.replaying else { return nil }
        var out = ByteBuffer()
        let now = NIODeadline.now()
        while let next = s.pending.first, next.qos == .atMostOnce || s.inflight.count < s.maximumInflight {
            s.pending.removeFirst()
            if next.isExpired(at: now) {
                s.queuedBytes -= next.size
                if let stored = next.stored { s.settled.append(stored) }
                continue
            }
            send(next, in: &s, into: &out)
        }
        return out.readableBytes > 0 ? out : nil
    }

    /// The PUBREL of the QoS 2 message `packetID` (`reasonCode` 0x92: no such message in flight).
    static func encodePubrel(_ packetID: UInt16, reasonCode: UInt8 = 0, version: MQTTProtocolVersion, into out: inout ByteBuffer) {
        MQTTPacket.ack(MQTTAck(kind: .pubrel, packetID: packetID, reasonCode: reasonCode)).encode(version: version, into: &out)
    }

    /// What a returning client is owed again, in the original order [MQTT-4.4.0-1]: the PUBLISH of
    /// each unacknowledged message with DUP set, the PUBREL of each QoS 2 message it had received.
    static func resendInflight(_ s: inout State) -> ByteBuffer? {
        var out = ByteBuffer()
        for (id, m) in s.inflight {
            if s.released.contains(id) {
                encodePubrel(id, version: s.version, into: &out)
            } else {
                m.encode(version: s.version, packetID: id, dup: true, into: &out)
            }
        }
        return out.readableBytes > 0 ? out : nil
    }

    /// The change-log positions from which a replay misses nothing of what the session is owed:
    /// `base`, lowered before every table change still in flight or waiting.
    static func safePositions(_ base: [String: Int64], _ s: State) -> [String: Int64] {
        var positions = base
        for case let (database, sequence)? in s.inflight.values.lazy.map(\.change) + s.pending.lazy.map(\.change) {
            positions[database] = min(positions[database] ?? sequence - 1, sequence - 1)
        }
        return positions
    }
}

extension MQTTSession.Outgoing {
    /// The message as the store keeps it (its ``stored`` id, which must be set), given the wall
    /// clock's reading `wallNow` at `now`.
    func row(wallNow: Int64, now: NIODeadline) -> MQTTPersistence.MessageRow {
        MQTTPersistence.MessageRow(
            id: stored ?? 0, topic: topic, payload: payload, qos: qos, retain: retain, properties: properties, identifiers: subscriptionIdentifiers,
            wallNow: wallNow, now: now)
    }

    /// The PUBLISH carrying this message (its QoS, 1 or 2, when a packet id is given; else QoS 0).
    func encode(version: MQTTProtocolVersion, packetID: UInt16? = nil, dup: Bool = false, into out: inout ByteBuffer) {
        MQTTPacket.publish(
            MQTTPublish(
                topic: topic, payload: payload, qos: packetID == nil ? .atMostOnce : max(qos, .atLeastOnce), retain: retain, dup: dup,
                packetID: packetID,
                properties: publishProperties)
        ).encode(version: version, into: &out)
    }

    /// The PUBLISH properties: the forwarded ones, the expiry left, the subscription identifiers.
    private var publishProperties: MQTTProperties {
        var out = properties?.outgoing(at: .now()) ?? MQTTProperties()
        out.subscriptionIdentifiers = subscriptionIdentifiers
        return out
    }
}
