import DequeModule
import Logging
import NIOCore
import Synchronization

/// One client connection: decodes its packets and handles them one at a time, in order, on the
/// transport's event loop. Every mutable property is confined to that loop.
final class MQTTConnection: @unchecked Sendable {
    let transport: any MQTTTransport
    unowned let broker: MQTTBroker
    let eventLoop: any EventLoop
    private var decoder: MQTTPacketDecoder
    private var input = ByteBuffer()
    private var packets: Deque<MQTTPacket> = []
    private var busy = false
    private(set) var session: MQTTSession?
    private(set) var version: MQTTProtocolVersion = .v3_1_1
    private(set) var clientID = ""
    private var will: MQTTWill?
    private var keepAlive: UInt16 = 0
    private var lastActivity = NIODeadline.now()
    private(set) var isClosed = false
    /// QoS 2 publishes received and not yet released, by packet id.
    private var unreleased: Set<UInt16> = []

    init(transport: any MQTTTransport, broker: MQTTBroker) {
        self.transport = transport
        self.broker = broker
        self.eventLoop = transport.eventLoop
        self.decoder = MQTTPacketDecoder(maximumPacketSize: broker.configuration.maximumPacketBytes)
    }

    var logger: Logger { broker.logger }

    // MARK: Input

    /// Bytes from the client.
    func receive(_ bytes: ByteBuffer) {
        eventLoop.preconditionInEventLoop()
        guard !isClosed else { return }
        lastActivity = .now()
        var bytes = bytes
        input.writeBuffer(&bytes)
        do {
            while let packet = try decoder.decode(&input) {
                packets.append(packet)
            }
        } catch {
            fail(error.reasonCode, error.message)
            return
        }
        input.discardReadBytes()
        process()
    }

    /// Handles queued packets until one needs to wait (a store write); then continues when it is done.
    private func process() {
        while !busy, !isClosed, let packet = packets.popFirst() {
            if let wait = handle(packet) {
                busy = true
                wait.whenComplete { [self] _ in
                    busy = false
                    process()
                }
            }
        }
    }

    /// The transport is gone.
    func transportClosed() {
        eventLoop.preconditionInEventLoop()
        guard !isClosed else { return }
        isClosed = true
        broker.detach(self, publishWill: will)
        will = nil
    }

    /// Closes the connection: with a DISCONNECT carrying `reason` first (MQTT 5 clients past CONNECT).
    func fail(_ reason: UInt8, _ message: String) {
        guard !isClosed else { return }
        logger.debug("mqtt: closing \(transport.peer) (\(clientID)): \(message)")
        if session != nil, version == .v5 {
            var properties = MQTTProperties()
            properties.reasonString = String(message.prefix(200))
            send(.disconnect(MQTTDisconnect(reasonCode: reason, properties: properties)))
        } else if session == nil, reason == 0x84 {
            send(.connack(MQTTConnAck(sessionPresent: false, reasonCode: 0x01, properties: MQTTProperties())), as: .v3_1_1)
        }
        transport.close()
        transportClosed()
    }

    /// Closed by the server for a reason not of the client's making (takeover, slow consumer, shutdown).
    func disconnect(reason: UInt8, message: String, publishWill: Bool) {
        eventLoop.preconditionInEventLoop()
        guard !isClosed else { return }
        if !publishWill { will = nil }
        fail(reason, message)
    }

    func checkKeepAlive(now: NIODeadline) {
        guard !isClosed, keepAlive > 0 else { return }
        let limit = TimeAmount.milliseconds(Int64(keepAlive) * 1500)
        if now - lastActivity > limit {
            fail(0x8D, "keep-alive timeout: nothing received for \(Double(keepAlive) * 1.5) s")
        }
    }

    func send(_ packet: MQTTPacket, as version: MQTTProtocolVersion? = nil) {
        var out = ByteBuffer()
        packet.encode(version: version ?? self.version, into: &out)
        deliver(out)
    }

    /// Writes `bytes` (any thread); a client that cannot take them is dropped as a slow consumer.
    func deliver(_ bytes: ByteBuffer?) {
        if let bytes, !transport.send(bytes) { slowConsumer() }
    }

    func slowConsumer() {
        eventLoop.execute { [self] in
            disconnect(
                reason: 0x97, message: "the client reads too slowly: more than \(broker.configuration.bufferBytes) bytes wait unwritten",
                publishWill: true)
        }
    }

    // MARK: Packets

    /// Handles one packet; returns a future when the next must wait for it.
    private func handle(_ packet: MQTTPacket) -> EventLoopFuture<Void>? {
        if session == nil {
            guard case .connect(let connect) = packet else {
                fail(0x82, "the first packet must be CONNECT")
                return nil
            }
            return handleConnect(connect)
        }
        switch packet {
        case .connect:
            fail(0x82, "a second CONNECT on one connection")
        case .publish(let publish):
            return handlePublish(publish)
        case .ack(let ack):
            handleAck(ack)
        case .subscribe(let subscribe):
            return handleSubscribe(subscribe)
        case .unsubscribe(let unsubscribe):
            let codes = unsubscribe.topicFilters.map { broker.unsubscribe(session!, filter: $0) ? UInt8(0x00) : 0x11 }
            send(.unsuback(MQTTUnsubAck(packetID: unsubscribe.packetID, reasonCodes: codes, properties: MQTTProperties())))
        case .pingreq:
            send(.pingresp)
        case .disconnect(let disconnect):
            if disconnect.reasonCode != 0x04 { will = nil }
            if let expiry = disconnect.properties.sessionExpiryInterval, let session {
                session.state.withLock { $0.expirySeconds = broker.cappedExpiry(expiry) }
            }
            transport.close()
            transportClosed()
        case .auth:
            fail(0x8C, "enhanced authentication (AUTH) is not supported")
        case .connack, .suback, .unsuback, .pingresp:
            fail(0x82, "a client does not send \(packet.kindName)")
        }
        return nil
    }

    private func handleConnect(_ connect: MQTTConnect) -> EventLoopFuture<Void>? {
        version = connect.version
        let refuse: (UInt8, UInt8, String) -> Void = { [self] v3, v5, message in
            logger.info("mqtt: refused \(transport.peer): \(message)")
            var properties = MQTTProperties()
            if version == .v5 { properties.reasonString = message }
            send(.connack(MQTTConnAck(sessionPresent: false, reasonCode: version == .v5 ? v5 : v3, properties: properties)))
            isClosed = true
            transport.close()
        }
        if connect.properties.authenticationMethod != nil {
            refuse(0x05, 0x8C, "enhanced authentication is not supported")
            return nil
        }
        switch broker.authenticate(username: connect.username, password: connect.password) {
        case .accepted: break
        case .badCredentials:
            refuse(0x04, 0x86, "bad user name or password")
            return nil
        case .credentialsRequired:
            refuse(0x05, 0x87, "this broker requires a user name and password")
            return nil
        }
        var properties = MQTTProperties()
        var id = connect.clientID
        if id.isEmpty {
            if version == .v3_1_1 && !connect.cleanStart {
                refuse(0x02, 0x85, "an empty client id needs clean session")
                return nil
            }
            id = "microlith-\(UInt64.random(in: 0...UInt64.max))"
            properties.assignedClientIdentifier = id
        }
        clientID = id
        will = connect.will
        keepAlive = connect.keepAlive
        let expiry: UInt32
        if version == .v5 {
            expiry = broker.cappedExpiry(connect.properties.sessionExpiryInterval ?? 0)
        } else {
            expiry = connect.cleanStart ? 0 : broker.cappedExpiry(UInt32.max)
        }
        let maximumInflight = min(Int(connect.properties.receiveMaximum ?? UInt16.max), broker.configuration.maximumInflight)
        properties.maximumPacketSize = UInt32(broker.configuration.maximumPacketBytes)
        properties.retainAvailable = 1
        properties.wildcardSubscriptionAvailable = 1
        properties.subscriptionIdentifiersAvailable = 0
        properties.sharedSubscriptionAvailable = 0
        let connack = MQTTConnAck(sessionPresent: false, reasonCode: 0, properties: version == .v5 ? properties : MQTTProperties())
        let promise = eventLoop.makePromise(of: Void.self)
        broker.attach(self, clientID: id, cleanStart: connect.cleanStart, expiry: expiry, version: version, maximumInflight: maximumInflight) {
            [self] session, present in
            eventLoop.execute { [self] in
                guard !isClosed else {
                    broker.detach(self, publishWill: nil)
                    return promise.succeed()
                }
                self.session = session
                var ack = connack
                ack.sessionPresent = present
                send(.connack(ack))
                promise.succeed()
                if present { broker.resume(session, connection: self) }
            }
        }
        return promise.futureResult
    }

    private func handlePublish(_ publish: MQTTPublish) -> EventLoopFuture<Void>? {
        if publish.properties.topicAlias != nil {
            fail(0x94, "topic aliases are not supported (topic alias maximum is 0)")
            return nil
        }
        if publish.qos == .exactlyOnce, let id = publish.packetID, unreleased.contains(id) {
            send(.ack(MQTTAck(kind: .pubrec, packetID: id)))
            return nil
        }
        let future = broker.publish(publish, from: self)
        let finish: @Sendable (MQTTBroker.PublishOutcome) -> Void = { [self] outcome in
            guard !isClosed else { return }
            if case .failed(let code, let message) = outcome {
                logger.info("mqtt: publish to \(publish.topic) from \(clientID) failed: \(message)")
                if version == .v3_1_1 && publish.qos != .atMostOnce {
                    fail(0x80, message)
                    return
                }
                guard let id = publish.packetID, version == .v5 else { return }
                var properties = MQTTProperties()
                properties.reasonString = String(message.prefix(500))
                send(.ack(MQTTAck(kind: publish.qos == .exactlyOnce ? .pubrec : .puback, packetID: id, reasonCode: code, properties: properties)))
                return
            }
            guard let id = publish.packetID else { return }
            if publish.qos == .exactlyOnce {
                unreleased.insert(id)
                send(.ack(MQTTAck(kind: .pubrec, packetID: id)))
            } else {
                send(.ack(MQTTAck(kind: .puback, packetID: id)))
            }
        }
        guard let future else {
            finish(.done)
            return nil
        }
        return future.map(finish)
    }

    private func handleAck(_ ack: MQTTAck) {
        switch ack.kind {
        case .puback:
            broker.acknowledged(session!, packetID: ack.packetID)
        case .pubrel:
            unreleased.remove(ack.packetID)
            send(.ack(MQTTAck(kind: .pubcomp, packetID: ack.packetID)))
        case .pubrec:
            // Subscriptions are granted QoS 1 at most, so the server never sends QoS 2.
            send(.ack(MQTTAck(kind: .pubrel, packetID: ack.packetID, reasonCode: version == .v5 ? 0x92 : 0)))
        case .pubcomp:
            break
        }
    }

    private func handleSubscribe(_ subscribe: MQTTSubscribe) -> EventLoopFuture<Void>? {
        var codes: [UInt8] = []
        var granted: [MQTTSubscription] = []
        for var s in subscribe.subscriptions {
            if s.topicFilter.hasPrefix("$share/") {
                codes.append(version == .v5 ? 0x9E : 0x80)
                continue
            }
            guard MQTTTopic.isValidFilter(s.topicFilter) else {
                codes.append(version == .v5 ? 0x8F : 0x80)
                continue
            }
            s.qos = min(s.qos, .atLeastOnce)
            codes.append(s.qos.rawValue)
            granted.append(s)
        }
        let isNew = broker.subscribe(session!, granted)
        send(.suback(MQTTSubAck(packetID: subscribe.packetID, reasonCodes: codes, properties: MQTTProperties())))
        return broker.sendRetained(for: zip(granted, isNew).map { $0 }, to: self)
    }
}

extension MQTTPacket {
    var kindName: String {
        switch self {
        case .connect: return "CONNECT"
        case .connack: return "CONNACK"
        case .publish: return "PUBLISH"
        case .ack(let a): return "\(a.kind)".uppercased()
        case .subscribe: return "SUBSCRIBE"
        case .suback: return "SUBACK"
        case .unsubscribe: return "UNSUBSCRIBE"
        case .unsuback: return "UNSUBACK"
        case .pingreq: return "PINGREQ"
        case .pingresp: return "PINGRESP"
        case .disconnect: return "DISCONNECT"
        case .auth: return "AUTH"
        }
    }
}
