package import NIOCore

/// The will message of a CONNECT: published by the server when the connection ends without a DISCONNECT.
package struct MQTTWill: Sendable, Equatable {
    /// The topic the will is published to; a valid topic name (no wildcards).
    package var topic: String
    /// The will message's payload.
    package var payload: ByteBuffer
    /// The QoS the will is published with.
    package var qos: MQTTQoS
    /// Whether the will is published as a retained message.
    package var retain: Bool
    /// MQTT 5 will properties (payload format, message expiry, content type, response topic,
    /// correlation data, will delay interval, user properties).
    package var properties: MQTTProperties

    /// Creates a will message.
    package init(
        topic: String,
        payload: ByteBuffer,
        qos: MQTTQoS = .atMostOnce,
        retain: Bool = false,
        properties: MQTTProperties = .init()
    ) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.properties = properties
    }
}
