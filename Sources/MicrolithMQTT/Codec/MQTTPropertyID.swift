/// The packets (and the will) a property may appear in.
struct MQTTPropertyContext: OptionSet, Sendable {
    let rawValue: UInt16

    static let connect = MQTTPropertyContext(rawValue: 1 << 0)
    static let connack = MQTTPropertyContext(rawValue: 1 << 1)
    static let publish = MQTTPropertyContext(rawValue: 1 << 2)
    static let will = MQTTPropertyContext(rawValue: 1 << 3)
    /// PUBACK, PUBREC, PUBREL and PUBCOMP, which allow the same properties.
    static let ack = MQTTPropertyContext(rawValue: 1 << 4)
    static let subscribe = MQTTPropertyContext(rawValue: 1 << 5)
    static let suback = MQTTPropertyContext(rawValue: 1 << 6)
    static let unsubscribe = MQTTPropertyContext(rawValue: 1 << 7)
    static let unsuback = MQTTPropertyContext(rawValue: 1 << 8)
    static let disconnect = MQTTPropertyContext(rawValue: 1 << 9)
    static let auth = MQTTPropertyContext(rawValue: 1 << 10)

    static let all: MQTTPropertyContext = [
        .connect, .connack, .publish, .will, .ack, .subscribe, .suback, .unsubscribe, .unsuback, .disconnect, .auth,
    ]
}

/// The MQTT 5 property identifiers, with where each is allowed.
enum MQTTPropertyID: UInt8, Sendable {
    case payloadFormatIndicator = 0x01
    case messageExpiryInterval = 0x02
    case contentType = 0x03
    case responseTopic = 0x08
    case correlationData = 0x09
    case subscriptionIdentifier = 0x0B
    case sessionExpiryInterval = 0x11
    case assignedClientIdentifier = 0x12
    case serverKeepAlive = 0x13
    case authenticationMethod = 0x15
    case authenticationData = 0x16
    case requestProblemInformation = 0x17
    case willDelayInterval = 0x18
    case requestResponseInformation = 0x19
    case responseInformation = 0x1A
    case serverReference = 0x1C
    case reasonString = 0x1F
    case receiveMaximum = 0x21
    case topicAliasMaximum = 0x22
    case topicAlias = 0x23
    case maximumQoS = 0x24
    case retainAvailable = 0x25
    case userProperty = 0x26
    case maximumPacketSize = 0x27
    case wildcardSubscriptionAvailable = 0x28
    case subscriptionIdentifierAvailable = 0x29
    case sharedSubscriptionAvailable = 0x2A

    /// Where the property may appear (MQTT 5, section 2.2.2.2).
    var allowedIn: MQTTPropertyContext {
        switch self {
        case .payloadFormatIndicator, .messageExpiryInterval, .contentType, .responseTopic, .correlationData:
            [.publish, .will]
        case .subscriptionIdentifier: [.publish, .subscribe]
        case .sessionExpiryInterval: [.connect, .connack, .disconnect]
        case .assignedClientIdentifier, .serverKeepAlive, .responseInformation, .maximumQoS, .retainAvailable,
            .wildcardSubscriptionAvailable, .subscriptionIdentifierAvailable, .sharedSubscriptionAvailable:
            .connack
        case .authenticationMethod, .authenticationData: [.connect, .connack, .auth]
        case .requestProblemInformation, .requestResponseInformation: .connect
        case .willDelayInterval: .will
        case .serverReference: [.connack, .disconnect]
        case .reasonString: [.connack, .ack, .suback, .unsuback, .disconnect, .auth]
        case .receiveMaximum, .topicAliasMaximum, .maximumPacketSize: [.connect, .connack]
        case .topicAlias: .publish
        case .userProperty: .all
        }
    }

    /// The property's name as the specification writes it, for error messages.
    var name: String {
        switch self {
        case .payloadFormatIndicator: "Payload Format Indicator"
        case .messageExpiryInterval: "Message Expiry Interval"
        case .contentType: "Content Type"
        case .responseTopic: "Response Topic"
        case .correlationData: "Correlation Data"
        case .subscriptionIdentifier: "Subscription Identifier"
        case .sessionExpiryInterval: "Session Expiry Interval"
        case .assignedClientIdentifier: "Assigned Client Identifier"
        case .serverKeepAlive: "Server Keep Alive"
        case .authenticationMethod: "Authentication Method"
        case .authenticationData: "Authentication Data"
        case .requestProblemInformation: "Request Problem Information"
        case .willDelayInterval: "Will Delay Interval"
        case .requestResponseInformation: "Request Response Information"
        case .responseInformation: "Response Information"
        case .serverReference: "Server Reference"
        case .reasonString: "Reason String"
        case .receiveMaximum: "Receive Maximum"
        case .topicAliasMaximum: "Topic Alias Maximum"
        case .topicAlias: "Topic Alias"
        case .maximumQoS: "Maximum QoS"
        case .retainAvailable: "Retain Available"
        case .userProperty: "User Property"
        case .maximumPacketSize: "Maximum Packet Size"
        case .wildcardSubscriptionAvailable: "Wildcard Subscription Available"
        case .subscriptionIdentifierAvailable: "Subscription Identifier Available"
        case .sharedSubscriptionAvailable: "Shared Subscription Available"
        }
    }
}
