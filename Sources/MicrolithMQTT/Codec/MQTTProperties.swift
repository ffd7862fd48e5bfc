public import NIOCore

/// The MQTT 5 properties of a packet. Every field is absent (nil or empty) by default; each packet
/// type allows only some of them, and MQTT 3.1.1 has none (they are not encoded in that version).
public struct MQTTProperties: Sendable, Equatable {
    /// 0x01, PUBLISH and will: 0 = unspecified bytes, 1 = UTF-8 text.
    public var payloadFormatIndicator: UInt8?
    /// 0x02, PUBLISH and will: lifetime of the message in seconds.
    public var messageExpiryInterval: UInt32?
    /// 0x03, PUBLISH and will: the payload's content type.
    public var contentType: String?
    /// 0x08, PUBLISH and will: the topic a response should go to.
    public var responseTopic: String?
    /// 0x09, PUBLISH and will: data correlating a response with its request.
    public var correlationData: ByteBuffer?
    /// 0x0B, PUBLISH (any number, from server to client) and SUBSCRIBE (at most one).
    public var subscriptionIdentifiers: [Int]
    /// 0x11, CONNECT, CONNACK and DISCONNECT: session lifetime in seconds after the connection closes.
    public var sessionExpiryInterval: UInt32?
    /// 0x12, CONNACK: the client identifier the server assigned.
    public var assignedClientIdentifier: String?
    /// 0x13, CONNACK: the keep alive the server requires, in seconds.
    public var serverKeepAlive: UInt16?
    /// 0x15, CONNECT, CONNACK and AUTH: the extended authentication method.
    public var authenticationMethod: String?
    /// 0x16, CONNECT, CONNACK and AUTH: extended authentication data.
    public var authenticationData: ByteBuffer?
    /// 0x17, CONNECT: 0 or 1, whether reason strings and user properties may be sent on failures.
    public var requestProblemInformation: UInt8?
    /// 0x18, will: seconds to wait before publishing the will.
    public var willDelayInterval: UInt32?
    /// 0x19, CONNECT: 0 or 1, whether the client asks for response information.
    public var requestResponseInformation: UInt8?
    /// 0x1A, CONNACK: the basis for creating response topics.
    public var responseInformation: String?
    /// 0x1C, CONNACK and DISCONNECT: another server to use.
    public var serverReference: String?
    /// 0x1F, CONNACK, acks, SUBACK, UNSUBACK, DISCONNECT and AUTH: a human-readable reason.
    public var reasonString: String?
    /// 0x21, CONNECT and CONNACK: how many QoS 1 and 2 publications may be in flight (not 0).
    public var receiveMaximum: UInt16?
    /// 0x22, CONNECT and CONNACK: the highest topic alias accepted.
    public var topicAliasMaximum: UInt16?
    /// 0x23, PUBLISH: a topic alias (not 0).
    public var topicAlias: UInt16?
    /// 0x24, CONNACK: 0 or 1, the highest QoS the server supports.
    public var maximumQoS: UInt8?
    /// 0x25, CONNACK: 0 or 1, whether retained messages are supported.
    public var retainAvailable: UInt8?
    /// 0x26, every packet type and the will: name/value pairs, in order, names may repeat.
    public var userProperties: [MQTTUserProperty]
    /// 0x27, CONNECT and CONNACK: the largest packet accepted, in bytes (not 0).
    public var maximumPacketSize: UInt32?
    /// 0x28, CONNACK: 0 or 1, whether wildcard subscriptions are supported.
    public var wildcardSubscriptionAvailable: UInt8?
    /// 0x29, CONNACK: 0 or 1, whether subscription identifiers are supported.
    public var subscriptionIdentifiersAvailable: UInt8?
    /// 0x2A, CONNACK: 0 or 1, whether shared subscriptions are supported.
    public var sharedSubscriptionAvailable: UInt8?

    /// Creates an empty property set.
    public init() {
        subscriptionIdentifiers = []
        userProperties = []
    }

    /// Whether no property is present.
    public var isEmpty: Bool {
        payloadFormatIndicator == nil && messageExpiryInterval == nil && contentType == nil && responseTopic == nil
            && correlationData == nil && subscriptionIdentifiers.isEmpty && sessionExpiryInterval == nil
            && assignedClientIdentifier == nil && serverKeepAlive == nil && authenticationMethod == nil
            && authenticationData == nil && requestProblemInformation == nil && willDelayInterval == nil
            && requestResponseInformation == nil && responseInformation == nil && serverReference == nil
            && reasonString == nil && receiveMaximum == nil && topicAliasMaximum == nil && topicAlias == nil
            && maximumQoS == nil && retainAvailable == nil && userProperties.isEmpty && maximumPacketSize == nil
            && wildcardSubscriptionAvailable == nil && subscriptionIdentifiersAvailable == nil
            && sharedSubscriptionAvailable == nil
    }
}
