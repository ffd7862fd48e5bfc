import NIOCore
import Synchronization

/// The retained messages of plain topics (topics that name no record), kept in memory.
///
/// A retained publish replaces its topic's message, an empty one removes it. Messages are kept at QoS 0 or 1
/// (a QoS 2 publish is kept at QoS 1, the highest the broker sends), with the MQTT 5 properties they are
/// forwarded with; one whose message expiry has passed is no longer sent and is removed.
final class MQTTRetainedMessages: Sendable {
    private let messages = Mutex<[String: Message]>([:])

    private struct Message: Sendable {
        var payload: ByteBuffer
        var qos: MQTTQoS
        var properties: MQTTMessageProperties?
    }

    /// Keeps what a retained publish to a plain topic carries (removes the topic's message when it is empty).
    func retain(_ publish: MQTTPublish) {
        messages.withLock { m in
            if publish.payload.readableBytes == 0 {
                m[publish.topic] = nil
            } else {
                m[publish.topic] = Message(
                    payload: publish.payload, qos: publish.qos,
                    properties: MQTTMessageProperties(forwarding: publish.properties, receivedAt: .now()))
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
            defer { for topic in expired { m[topic] = nil } }
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
