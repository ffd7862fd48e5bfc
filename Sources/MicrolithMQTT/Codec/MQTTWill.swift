public import NIOCore

/// The will message of a CONNECT: published by the server when the connection ends without a DISCONNECT.
public struct MQTTWill: Sendable, Equatable {
    /// The topic the will is published to; a valid topic name (no wildcards).
    public var topic: String
    /// The will message's payload.
    public var payload: ByteBuffer
    /// The QoS the will is published with.
    public var qos: MQTTQoS
    /// Whether the will is published as a retained message.
    public var retain: Bool
    /// MQTT 5 will properties (payload format, message expiry, content type, response topic,
    /// correlation data, will delay interval, user properties).
    public var properties: MQTTProperties

    /// Creates a will message.
    public init(
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
