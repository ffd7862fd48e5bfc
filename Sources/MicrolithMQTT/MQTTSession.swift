import DequeModule
import NIOCore
import Synchronization

/// A client's session: its subscriptions and the QoS 1 messages owed to it. It outlives the
/// connection when the client asked for a persistent session.
final class MQTTSession: Sendable {
    let clientID: String
    let state: Mutex<State>

    /// A message owed to the client.
    struct Outgoing: Sendable {
        var topic: String
        var payload: ByteBuffer
        var qos: MQTTQoS
        var retain: Bool
        /// The database and change-log sequence of a table change (to skip what a replay already sent).
        var change: (database: String, sequence: Int64)? = nil
    }

    struct State: Sendable {
        var connection: MQTTConnection?
        var version: MQTTProtocolVersion = .v3_1_1
        /// Topic filter → options, as granted.
        var subscriptions: [String: MQTTSubscription] = [:]
        var nextPacketID: UInt16 = 1
        /// QoS 1 messages sent and not yet acknowledged, by packet id, in send order.
        var inflight: [UInt16: Outgoing] = [:]
        var inflightOrder: Deque<UInt16> = []
        /// Messages waiting for a free in-flight slot, for the client to come back, or for the replay to finish.
        var pending: Deque<Outgoing> = []
        var maximumInflight = 100
        /// Seconds the session outlives its connection; `UInt32.max`: never expires.
        var expirySeconds: UInt32 = 0
        var disconnectedAt: ContinuousClock.Instant?
        /// Change-log positions, per database, when the client went away (the replay starts after them).
        var positions: [String: Int64] = [:]
        /// While the change-log replay of a returning client runs, live messages wait in `pending`.
        var replaying = false
        var dropped = 0
    }

    init(clientID: String) {
        self.clientID = clientID
        self.state = Mutex(State())
    }

    /// Queues or sends `message`; returns what to write now, if anything.
    /// Messages for an absent client are kept only at QoS 1 and only if `keepOffline`.
    /// `qos0`, when given, supplies the encoded QoS 0 PUBLISH for a protocol version (a fan-out
    /// encodes it once for every subscriber).
    static func enqueue(
        _ message: Outgoing, into s: inout State, keepOffline: Bool, maximumQueued: Int, qos0: ((MQTTProtocolVersion) -> ByteBuffer)? = nil
    ) -> (MQTTConnection, ByteBuffer)? {
        guard let connection = s.connection, !s.replaying else {
            if message.qos == .atMostOnce && s.connection == nil { return nil }
            if s.connection == nil && !keepOffline { return nil }
            if s.pending.count >= maximumQueued {
                s.dropped += 1
                return nil
            }
            s.pending.append(message)
            return nil
        }
        if message.qos == .atMostOnce {
            // At most once: a client that does not keep up loses QoS 0 messages, not the connection.
            guard connection.transport.isWritable else {
                s.dropped += 1
                return nil
            }
            if let qos0 { return (connection, qos0(s.version)) }
            var out = ByteBuffer()
            MQTTPacket.publish(MQTTPublish(topic: message.topic, payload: message.payload, qos: .atMostOnce, retain: message.retain))
                .encode(version: s.version, into: &out)
            return (connection, out)
        }
        guard s.inflight.count < s.maximumInflight, s.pending.isEmpty else {
            if s.pending.count >= maximumQueued {
                s.dropped += 1
                return nil
            }
            s.pending.append(message)
            return nil
        }
        let id = nextID(&s)
        s.inflight[id] = message
        s.inflightOrder.append(id)
        var out = ByteBuffer()
        MQTTPacket.publish(MQTTPublish(topic: message.topic, payload: message.payload, qos: .atLeastOnce, retain: message.retain, packetID: id))
            .encode(version: s.version, into: &out)
        return (connection, out)
    }

    static func nextID(_ s: inout State) -> UInt16 {
        while true {
            let id = s.nextPacketID
            s.nextPacketID = s.nextPacketID == UInt16.max ? 1 : s.nextPacketID + 1
            if s.inflight[id] == nil { return id }
        }
    }

    /// The bytes of every message that can go out now: pending ones while in-flight slots are free.
    static func drain(_ s: inout State, maximumQueued: Int) -> ByteBuffer? {
        guard s.connection != nil, !s.replaying else { return nil }
        var out = ByteBuffer()
        while let next = s.pending.first, next.qos == .atMostOnce || s.inflight.count < s.maximumInflight {
            s.pending.removeFirst()
            if next.qos == .atMostOnce {
                MQTTPacket.publish(MQTTPublish(topic: next.topic, payload: next.payload, qos: .atMostOnce, retain: next.retain))
                    .encode(version: s.version, into: &out)
            } else {
                let id = nextID(&s)
                s.inflight[id] = next
                s.inflightOrder.append(id)
                MQTTPacket.publish(MQTTPublish(topic: next.topic, payload: next.payload, qos: .atLeastOnce, retain: next.retain, packetID: id))
                    .encode(version: s.version, into: &out)
            }
        }
        return out.readableBytes > 0 ? out : nil
    }

    /// The unacknowledged messages again, with DUP set (a returning client).
    static func resendInflight(_ s: inout State) -> ByteBuffer? {
        var out = ByteBuffer()
        s.inflightOrder = Deque(s.inflightOrder.filter { s.inflight[$0] != nil })
        for id in s.inflightOrder {
            guard let m = s.inflight[id] else { continue }
            MQTTPacket.publish(MQTTPublish(topic: m.topic, payload: m.payload, qos: .atLeastOnce, retain: m.retain, dup: true, packetID: id))
                .encode(version: s.version, into: &out)
        }
        return out.readableBytes > 0 ? out : nil
    }
}
