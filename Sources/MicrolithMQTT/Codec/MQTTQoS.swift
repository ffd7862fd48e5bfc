/// The quality of service of a message or a subscription; ordered by its raw value.
package enum MQTTQoS: UInt8, Sendable, Comparable {
    /// QoS 0: delivered at most once, never acknowledged.
    case atMostOnce = 0
    /// QoS 1: delivered at least once, acknowledged with PUBACK.
    case atLeastOnce = 1
    /// QoS 2: delivered exactly once, with the PUBREC / PUBREL / PUBCOMP exchange.
    case exactlyOnce = 2

    /// Orders by raw value, so `min(a, b)` is the lower of two QoS levels.
    package static func < (lhs: MQTTQoS, rhs: MQTTQoS) -> Bool {
        lhs.rawValue < rhs.rawValue
    }
}
