import NIOCore
import Synchronization

/// The retained messages of plain topics (topics that name no record), kept in memory and, with a
/// ``MQTTPersistence``, in the store, so a restart keeps them.
///
/// A retained publish replaces its topic's message, an empty one removes it. Messages are kept at QoS 0 or 1
/// (a QoS 2 publish is kept at QoS 1, the highest the broker sends), with the MQTT 5 properties they are
/// forwarded with; one whose message expiry has passed is no longer sent and is removed.
final class MQTTRetainedMessages: Sendable {
    private let messages = Mutex<[String: Message]>([:])
    let persistence: MQTTPersistence?

    init(persistence: MQTTPersistence? = nil) {
        self.persistence = persistence
    }

    private struct Message: Sendable {
        var payload: ByteBuffer
        var qos: MQTTQoS
        var properties: MQTTMessageProperties?
    }

    /// Keeps what a retained publish to a plain topic carries (removes the topic's message when it is
    /// empty). Returns the store mark to wait for before acknowledging it (0: not stored).
    @discardableResult
    func retain(_ publish: MQTTPublish) -> UInt64 {
        let now = NIODeadline.now()
        return messages.withLock { m -> UInt64 in
            var row: MQTTPersistence.MessageRow?
            if publish.payload.readableBytes == 0 {
                m[publish.topic] = nil
            } else {
                let message = Message(
                    payload: publish.payload, qos: publish.qos, properties: MQTTMessageProperties(forwarding: publish.properties, receivedAt: now))
                m[publish.topic] = message
                if let persistence {
                    let wallNow = persistence.wallClock()
                    row = MQTTPersistence.MessageRow(
                        id: 0, topic: publish.topic, payload: message.payload, qos: message.qos, retain: true, properties: message.properties,
                        wallNow: wallNow, now: now)
                }
            }
            // Under the lock: the store sees a topic's retained messages in the order they replaced each other.
            return persistence?.enqueue(.retain(topic: publish.topic, row)) ?? 0
        }
    }

    /// Takes the retained messages the store kept (`wallNow`: the wall clock now, in milliseconds
    /// since 1970); expired ones are removed.
    func restore(_ rows: [MQTTPersistence.MessageRow], wallNow: Int64) {
        let now = NIODeadline.now()
        messages.withLock { m in
            for row in rows {
                let properties = MQTTMessageProperties(stored: row.properties, expiresAt: row.expiresAt, wallNow: wallNow, now: now)
                if let properties, properties.isExpired(at: now) {
                    persistence?.enqueue(.retain(topic: row.topic, nil))
                    continue
                }
                m[row.topic] = Message(payload: row.payload, qos: row.qos, properties: properties)
            }
        }
    }

    /// The messages some filter of `filters` matches, with the QoS to send each at (the message's, capped by
    /// the highest the matching filters grant) and the matching filters' subscription identifiers.
    func matching(_ filters: MQTTTopicTree<String, MQTTSubscription>) -> [MQTTSession.Outgoing] {
        let now = NIODeadline.now()
        return messages.withLock { m in
            var out: [MQTTSession.Outgoing] = []
            var expired: [String] = []
            defer {
                for topic in expired {
                    m[topic] = nil
                    persistence?.enqueue(.retain(topic: topic, nil))
                }
            }
            for (topic, message) in m {
                if message.properties?.isExpired(at: now) == true {
                    expired.append(topic)
                    continue
                }
                guard let target = MQTTFanOut.Target.of(topic, in: filters) else { continue }
                out.append(
                    .init(
                        topic: topic, payload: message.payload, qos: min(message.qos, target.qos), retain: true, properties: message.properties,
                        subscriptionIdentifiers: target.identifiers))
            }
            return out
        }
    }
}
