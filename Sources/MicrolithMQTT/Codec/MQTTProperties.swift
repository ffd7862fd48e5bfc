package import NIOCore

/// The MQTT 5 properties of a packet. Every field is absent (nil or empty) by default; each packet
/// type allows only some of them, and MQTT 3.1.1 has none (they are not encoded in that version).
package struct MQTTProperties: Sendable, Equatable {
    /// 0x01, PUBLISH and will: 0 = unspecified bytes, 1 = UTF-8 text.
    package var payloadFormatIndicator: UInt8?
    /// 0x02, PUBLISH and will: lifetime of the message in seconds.
    package var messageExpiryInterval: UInt32?
    /// 0x03, PUBLISH and will: the payload's content type.
    package var contentType: String?
    /// 0x08, PUBLISH and will: the topic a response should go to.
    package var responseTopic: String?
    /// 0x09, PUBLISH and will: data correlating a response with its request.
    package var correlationData: ByteBuffer?
    /// 0x0B, PUBLISH (any number, from server to client) and SUBSCRIBE (at most one).
    package var subscriptionIdentifiers: [Int]
    /// 0x11, CONNECT, CONNACK and DISCONNECT: session lifetime in seconds after the connection closes.
    package var sessionExpiryInterval: UInt32?
    /// 0x12, CONNACK: the client identifier the server assigned.
    package var assignedClientIdentifier: String?
    /// 0x13, CONNACK: the keep alive the server requires, in seconds.
    package var serverKeepAlive: UInt16?
    /// 0x15, CONNECT, CONNACK and AUTH: the extended authentication method.
    package var authenticationMethod: String?
    /// 0x16, CONNECT, CONNACK and AUTH: extended authentication data.
    package var authenticationData: ByteBuffer?
    /// 0x17, CONNECT: 0 or 1, whether reason strings and user properties may be sent on failures.
    package var requestProblemInformation: UInt8?
    /// 0x18, will: seconds to wait before publishing the will.
    package var willDelayInterval: UInt32?
    /// 0x19, CONNECT: 0 or 1, whether the client asks for response information.
    package var requestResponseInformation: UInt8?
    /// 0x1A, CONNACK: the basis for creating response topics.
    package var responseInformation: String?
    /// 0x1C, CONNACK and DISCONNECT: another server to use.
    package var serverReference: String?
    /// 0x1F, CONNACK, acks, SUBACK, UNSUBACK, DISCONNECT and AUTH: a human-readable reason.
    package var reasonString: String?
    /// 0x21, CONNECT and CONNACK: how many QoS 1 and 2 publications may be in flight (not 0).
    package var receiveMaximum: UInt16?
    /// 0x22, CONNECT and CONNACK: the highest topic alias accepted.
    package var topicAliasMaximum: UInt16?
    /// 0x23, PUBLISH: a topic alias (not 0).
    package var topicAlias: UInt16?
    /// 0x24, CONNACK: 0 or 1, the highest QoS the server supports.
    package var maximumQoS: UInt8?
    /// 0x25, CONNACK: 0 or 1, whether retained messages are supported.
    package var retainAvailable: UInt8?
    /// 0x26, every packet type and the will: name/value pairs, in order, names may repeat.
    package var userProperties: [MQTTUserProperty]
    /// 0x27, CONNECT and CONNACK: the largest packet accepted, in bytes (not 0).
    package var maximumPacketSize: UInt32?
    /// 0x28, CONNACK: 0 or 1, whether wildcard subscriptions are supported.
    package var wildcardSubscriptionAvailable: UInt8?
    /// 0x29, CONNACK: 0 or 1, whether subscription identifiers are supported.
    package var subscriptionIdentifiersAvailable: UInt8?
    /// 0x2A, CONNACK: 0 or 1, whether shared subscriptions are supported.
    package var sharedSubscriptionAvailable: UInt8?

    /// Creates an empty property set.
    package init() {
        subscriptionIdentifiers = []
        userProperties = []
    }

    /// Whether no property is present.
    package var isEmpty: Bool {
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
