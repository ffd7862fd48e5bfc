import MicrolithMQTT
import NIOCore

/// Packets of every type, with every property each type allows, for round trips and fuzzing.
enum MQTTPacketSamples {
    static let text = "héllo ✓ 😀"

    static var userProperties: [MQTTUserProperty] {
        [MQTTUserProperty(name: "k", value: "1"), MQTTUserProperty(name: "k", value: text), MQTTUserProperty(name: "", value: "")]
    }

    static var connectProperties: MQTTProperties {
        var properties = MQTTProperties()
        properties.sessionExpiryInterval = 0xFFFF_FFFF
        properties.authenticationMethod = "SCRAM-SHA-1"
        properties.authenticationData = byteBuffer("client-first")
        properties.requestProblemInformation = 0
        properties.requestResponseInformation = 1
        properties.receiveMaximum = 20
        properties.topicAliasMaximum = 10
        properties.userProperties = userProperties
        properties.maximumPacketSize = 1 << 20
        return properties
    }

    static var willProperties: MQTTProperties {
        var properties = MQTTProperties()
        properties.payloadFormatIndicator = 1
        properties.messageExpiryInterval = 3600
        properties.contentType = "application/json"
        properties.responseTopic = "replies/\(text)"
        properties.correlationData = ByteBuffer(bytes: [0, 1, 2, 0xFF])
        properties.willDelayInterval = 30
        properties.userProperties = userProperties
        return properties
    }

    static var connackProperties: MQTTProperties {
        var properties = MQTTProperties()
        properties.sessionExpiryInterval = 60
        properties.assignedClientIdentifier = "auto-123"
        properties.serverKeepAlive = 30
        properties.authenticationMethod = "SCRAM-SHA-1"
        properties.authenticationData = byteBuffer("server-first")
        properties.responseInformation = "resp/"
        properties.serverReference = "other.example:1883"
        properties.reasonString = text
        properties.receiveMaximum = 100
        properties.topicAliasMaximum = 0
        properties.maximumQoS = 1
        properties.retainAvailable = 0
        properties.userProperties = userProperties
        properties.maximumPacketSize = 65_536
        properties.wildcardSubscriptionAvailable = 1
        properties.subscriptionIdentifiersAvailable = 0
        properties.sharedSubscriptionAvailable = 1
        return properties
    }

    static var publishProperties: MQTTProperties {
        var properties = MQTTProperties()
        properties.payloadFormatIndicator = 0
        properties.messageExpiryInterval = 1
        properties.contentType = "text/plain"
        properties.responseTopic = "r"
        properties.correlationData = ByteBuffer()
        properties.subscriptionIdentifiers = [1, 127, 128, 16_384, 268_435_455]
        properties.topicAlias = 65_535
        properties.userProperties = userProperties
        return properties
    }

    static var reasonProperties: MQTTProperties {
        var properties = MQTTProperties()
        properties.reasonString = text
        properties.userProperties = userProperties
        return properties
    }

    static var v5: [MQTTPacket] {
        var subscribeProperties = MQTTProperties()
        subscribeProperties.subscriptionIdentifiers = [268_435_455]
        subscribeProperties.userProperties = userProperties
        var userOnly = MQTTProperties()
        userOnly.userProperties = userProperties
        var disconnectProperties = reasonProperties
        disconnectProperties.sessionExpiryInterval = 10
        disconnectProperties.serverReference = "elsewhere"
        var authProperties = reasonProperties
        authProperties.authenticationMethod = "SCRAM-SHA-1"
        authProperties.authenticationData = byteBuffer("client-final")
        let will = MQTTWill(topic: "status/\(text)", payload: byteBuffer("offline"), qos: .exactlyOnce, retain: true, properties: willProperties)
        return [
            .connect(MQTTConnect(version: .v5, clientID: "")),
            .connect(
                MQTTConnect(
                    version: .v5,
                    clientID: text,
                    cleanStart: false,
                    keepAlive: 0xFFFF,
                    username: "user",
                    password: ByteBuffer(bytes: [0, 0xFF]),
                    will: will,
                    properties: connectProperties
                )
            ),
            .connack(MQTTConnAck()),
            .connack(MQTTConnAck(sessionPresent: true, reasonCode: 0x86, properties: connackProperties)),
            .publish(MQTTPublish(topic: "a", payload: ByteBuffer())),
            .publish(MQTTPublish(topic: "a/b/\(text)", payload: byteBuffer(text), qos: .atLeastOnce, retain: true, packetID: 1)),
            .publish(
                MQTTPublish(
                    topic: "x//y/",
                    payload: ByteBuffer(repeating: 7, count: 300),
                    qos: .exactlyOnce,
                    dup: true,
                    packetID: 65_535,
                    properties: publishProperties
                )
            ),
            .ack(MQTTAck(kind: .puback, packetID: 1)),
            .ack(MQTTAck(kind: .pubrec, packetID: 2, reasonCode: 0x10)),
            .ack(MQTTAck(kind: .pubrel, packetID: 3, reasonCode: 0x92, properties: reasonProperties)),
            .ack(MQTTAck(kind: .pubcomp, packetID: 4, properties: reasonProperties)),
            .subscribe(
                MQTTSubscribe(
                    packetID: 5,
                    subscriptions: [
                        MQTTSubscription(topicFilter: "a/+/c", qos: .atLeastOnce),
                        MQTTSubscription(topicFilter: "#", qos: .exactlyOnce, noLocal: true, retainAsPublished: true, retainHandling: 2),
                        MQTTSubscription(topicFilter: "$share/g/x", retainHandling: 1),
                    ],
                    properties: subscribeProperties
                )
            ),
            .suback(MQTTSubAck(packetID: 5, reasonCodes: [1, 2, 0x8F], properties: reasonProperties)),
            .unsubscribe(MQTTUnsubscribe(packetID: 6, topicFilters: ["a/+/c", text], properties: userOnly)),
            .unsuback(MQTTUnsubAck(packetID: 6, reasonCodes: [0, 0x11], properties: reasonProperties)),
            .pingreq,
            .pingresp,
            .disconnect(MQTTDisconnect()),
            .disconnect(MQTTDisconnect(reasonCode: 0x8B)),
            .disconnect(MQTTDisconnect(reasonCode: 0x04, properties: disconnectProperties)),
            .auth(MQTTAuth()),
            .auth(MQTTAuth(reasonCode: 0x18, properties: authProperties)),
        ]
    }

    static var v311: [MQTTPacket] {
        [
            .connect(MQTTConnect(version: .v3_1_1, clientID: "")),
            .connect(
                MQTTConnect(
                    version: .v3_1_1,
                    clientID: text,
                    cleanStart: false,
                    keepAlive: 5,
                    username: "",
                    password: ByteBuffer(bytes: [1, 2, 3]),
                    will: MQTTWill(topic: "w", payload: ByteBuffer(), qos: .atLeastOnce)
                )
            ),
            .connect(MQTTConnect(version: .v3_1_1, clientID: "c", username: "only-user")),
            .connack(MQTTConnAck()),
            .connack(MQTTConnAck(sessionPresent: true, reasonCode: 4)),
            .publish(MQTTPublish(topic: "a", payload: ByteBuffer())),
            .publish(MQTTPublish(topic: "/\(text)/", payload: byteBuffer(text), qos: .atLeastOnce, retain: true, packetID: 1)),
            .publish(MQTTPublish(topic: "q", payload: ByteBuffer(repeating: 1, count: 200), qos: .exactlyOnce, dup: true, packetID: 9)),
            .ack(MQTTAck(kind: .puback, packetID: 1)),
            .ack(MQTTAck(kind: .pubrec, packetID: 2)),
            .ack(MQTTAck(kind: .pubrel, packetID: 3)),
            .ack(MQTTAck(kind: .pubcomp, packetID: 65_535)),
            .subscribe(
                MQTTSubscribe(
                    packetID: 5,
                    subscriptions: [MQTTSubscription(topicFilter: "a/+", qos: .exactlyOnce), MQTTSubscription(topicFilter: "#")]
                )
            ),
            .suback(MQTTSubAck(packetID: 5, reasonCodes: [2, 0x80, 0, 1])),
            .unsubscribe(MQTTUnsubscribe(packetID: 6, topicFilters: ["a/+", "#"])),
            .unsuback(MQTTUnsubAck(packetID: 6)),
            .pingreq,
            .pingresp,
            .disconnect(MQTTDisconnect()),
        ]
    }

    static func all(_ version: MQTTProtocolVersion) -> [MQTTPacket] {
        version == .v5 ? v5 : v311
    }
}
