/// The MQTT protocol level carried in a CONNECT packet.
package enum MQTTProtocolVersion: UInt8, Sendable {
    /// MQTT 3.1.1 (protocol level 4).
    case v3_1_1 = 4
    /// MQTT 5.0 (protocol level 5).
    case v5 = 5
}
