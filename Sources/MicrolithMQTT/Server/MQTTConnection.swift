import Logging
import MicrolithAuth
import MicrolithNetwork
import MicrolithTables
import NIOCore
import OrderedCollections
import Synchronization

/// One client connection: decodes its packets and handles them one at a time, in order, on the
/// transport's event loop. Every mutable property is confined to that loop.
///
/// What a client can make it hold is bounded: a complete CONNECT must arrive within
/// `mqtt.connectTimeoutSeconds` of the connection and every later packet within
/// `mqtt.packetTimeoutSeconds` of its first byte; while a packet waits for a store write, the
/// transport stops reading once a packet's worth of bytes waits; and output the client has not
/// read beyond `mqtt.bufferBytes` gets it dropped.
final class MQTTConnection: @unchecked Sendable {
    let transport: any MQTTTransport
    /// Strong: tasks on the loop (a store write's completion, a shutdown's disconnect) may run after the
    /// broker's owner let it go; the broker drops its reference to the connection when it closes.
    let broker: MQTTBroker
    let eventLoop: any EventLoop
    private var decoder: MQTTPacketDecoder
    private var input = ByteBuffer()
    private var busy = false
    private var readingPaused = false
    /// The last acknowledgement of a plain QoS 1 or 2 publish still waiting for its message to be
    /// stored, while the next packets are handled; `nil` when none waits.
    private var pendingAcknowledgements: EventLoopFuture<Void>?
    /// The payload bytes of the publishes whose acknowledgements wait so (at most `mqtt.bufferBytes`).
    private var waitingBytes = 0
    /// Whether a flush is queued on the loop (``flushSoon()``).
    private var flushScheduled = false
    private var waitingAcknowledgements = 0
    /// How many such acknowledgements may wait before the next packet waits too (or fewer: their
    /// payloads may take at most `mqtt.bufferBytes`).
    static let overlappingPublishes = 256
    private(set) var session: MQTTSession?
    private(set) var version: MQTTProtocolVersion = .v3_1_1
    private(set) var clientID = ""
    /// Who the client signed in as at CONNECT (the anonymous role without a user name): what it may
    /// publish, subscribe to and write is checked against this principal's roles.
    private(set) var principal = Principal.anonymous
    /// The registration that ends this connection when its user changes (signed-in clients only).
    private var liveSession: LiveSessions.Ticket?
    private var will: MQTTWill?
    private var keepAlive: UInt16 = 0
    private var lastActivity = NIODeadline.now()
    private(set) var isClosed = false
    /// `isClosed`, readable from any thread.
    private let closedFlag = Atomic<Bool>(false)
    /// Bytes handed to the event loop for the transport and not yet on the network (counted until a
    /// flush reports them written): in the connection itself, so that a fan-out reading it on another
    /// thread touches no other object.
    private let inTransit = Atomic<Int>(0)
    private var connectReceived = false
    private var connectTimer: Scheduled<Void>?
    /// Runs while a started packet is incomplete.
    private var packetTimer: Scheduled<Void>?
    /// The client's topic aliases (MQTT 5), by alias; they last as long as the connection.
    private var topicAliases: [UInt16: String] = [:]
    /// The connection's place in the broker's MQTT connection budget; `nil` when refused.
    private var ticket: ConnectionTicket?
    /// Why the connection may not stay, when a connection budget was spent: its CONNECT is answered
    /// with these CONNACK reason codes (3.1.1, 5) and it is closed.
    private var refusal: (v3: UInt8, v5: UInt8, message: String)?

    /// The highest topic alias a client may use, said in CONNACK (MQTT 5 §3.3.2.3.4).
    static let topicAliasMaximum: UInt16 = 64
    /// Retained messages and table records owed to new subscriptions.
    private(set) lazy var retained = MQTTRetainedSender(connection: self)

    init(transport: any MQTTTransport, broker: MQTTBroker, refusal: ConnectionLimiter.Refusal? = nil) {
        self.transport = transport
        self.broker = broker
        self.eventLoop = transport.eventLoop
        self.decoder = MQTTPacketDecoder(maximumPacketSize: broker.configuration.maximumPacketBytes)
        if let refusal {
            self.refusal = Self.answer(refusal, budget: "the server's")
        } else {
            switch broker.connectionLimiter.admit(address: transport.address) {
            case .success(let ticket): self.ticket = ticket
            case .failure(let refusal): self.refusal = Self.answer(refusal, budget: "MQTT")
            }
        }
        // A refused connection gets a short while to say which protocol version to refuse it in.
        let seconds = self.refusal == nil ? broker.configuration.connectTimeoutSeconds : min(2, broker.configuration.connectTimeoutSeconds)
        connectTimer = eventLoop.scheduleTask(in: .seconds(Int64(seconds))) { [self] in
            guard !connectReceived else { return }
            fail(0x87, "no complete CONNECT within \(seconds) s of connecting")
        }
    }

    var logger: Logger { broker.logger }

    /// The CONNACK reason codes (3.1.1, 5) and message refusing a connection past a budget: 0x89
    /// Server busy for the total, 0x97 Quota exceeded for one address's share (3.1.1: 0x03 Server unavailable).
    private static func answer(_ refusal: ConnectionLimiter.Refusal, budget: String) -> (v3: UInt8, v5: UInt8, message: String) {
        switch refusal {
        case .total(let n): (0x03, 0x89, "\(budget) connection limit (\(n) open connections) is reached; retry shortly")
        case .perAddress(let n): (0x03, 0x97, "\(budget) limit of \(n) open connections per address is reached for your address")
        }
    }

    /// Whether the connection is gone; any thread.
    var closed: Bool { closedFlag.load(ordering: .relaxed) }

    // MARK: Input

    /// Bytes from the client.
    func receive(_ bytes: ByteBuffer) {
        eventLoop.preconditionInEventLoop()
        guard !isClosed else { return }
        var bytes = bytes
        input.writeBuffer(&bytes)
        process()
    }

    /// Decodes and handles packets until one needs to wait (a store write); it continues when that
    /// is done. Meanwhile bytes wait undecoded, and past a packet's worth the transport stops reading.
    private func process() {
        while !busy, !isClosed {
            let packet: MQTTPacket?
            do {
                packet = try decoder.decode(&input)
            } catch {
                fail(error.reasonCode, error.message)
                return
            }
            guard let packet else { break }
            // Keep-alive counts whole packets only ([MQTT-3.1.2-24], MQTT 5 [MQTT-3.1.2-22]).
            lastActivity = .now()
            packetTimer?.cancel()
            packetTimer = nil
            if let wait = handle(packet) {
                busy = true
                wait.whenComplete { [self] _ in
                    busy = false
                    process()
                }
            }
        }
        guard !isClosed else { return }
        if input.readerIndex > 0 { input.discardReadBytes() }
        if busy {
            packetTimer?.cancel()
            packetTimer = nil
            if !readingPaused, input.readableBytes >= broker.configuration.maximumPacketBytes {
                readingPaused = true
                transport.setReading(false)
            }
            return
        }
        if readingPaused {
            readingPaused = false
            transport.setReading(true)
        }
        if input.readableBytes > 0, connectReceived, packetTimer == nil {
            let seconds = broker.configuration.packetTimeoutSeconds
            packetTimer = eventLoop.scheduleTask(in: .seconds(Int64(seconds))) { [self] in
                packetTimer = nil
                fail(0x8D, "a packet took longer than \(seconds) s to arrive")
            }
        }
    }

    /// The transport is gone.
    func transportClosed() {
        eventLoop.preconditionInEventLoop()
        guard !isClosed else { return }
        isClosed = true
        closedFlag.store(true, ordering: .relaxed)
        connectTimer?.cancel()
        packetTimer?.cancel()
        packetTimer = nil
        ticket?.release()
        ticket = nil
        broker.detach(self, publishWill: will)
        will = nil
        broker.authenticator?.sessions.unregister(liveSession)
        liveSession = nil
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
            fail(0x8D, "keep-alive timeout: no packet received for \(Double(keepAlive) * 1.5) s")
        }
    }

    // MARK: Output

    /// Bytes written or on their way to the transport and not yet sent to the network; any thread.
    var outstandingBytes: Int { inTransit.load(ordering: .relaxed) }

    /// Whether the client keeps up: no more than `mqtt.bufferBytes` wait unwritten. Past that,
    /// QoS 0 messages are dropped for it, and anything else that must go out drops the client.
    var isWritable: Bool { outstandingBytes <= broker.configuration.bufferBytes }

    func send(_ packet: MQTTPacket, as version: MQTTProtocolVersion? = nil) {
        var out = ByteBuffer()
        packet.encode(version: version ?? self.version, into: &out)
        deliver(out)
    }

    /// Writes `bytes` (any thread), in order with every other write; a client already further behind
    /// than `mqtt.bufferBytes` is dropped as a slow consumer instead.
    func deliver(_ bytes: ByteBuffer?) {
        guard let bytes else { return }
        guard isWritable else { return slowConsumer() }
        handOff(bytes.readableBytes)
        eventLoop.execute { [self] in
            write(bytes)
            flushSoon()
        }
    }

    /// Flushes once the tasks queued on the loop before this call have run, so that the packets
    /// several of them write (the acknowledgements of a batch of publishes stored together, say)
    /// go out in one system call; on the event loop.
    func flushSoon() {
        guard !flushScheduled else { return }
        flushScheduled = true
        eventLoop.execute { [self] in
            flushScheduled = false
            flush()
        }
    }

    /// Counts `count` bytes that a task queued on the event loop will ``write(_:)``.
    func handOff(_ count: Int) {
        inTransit.add(count, ordering: .relaxed)
    }

    /// Writes bytes counted by ``handOff(_:)``; on the event loop.
    /// (After the connection closed too: the transport's close follows what was handed off before it.)
    func write(_ bytes: ByteBuffer) {
        transport.write(bytes)
    }

    /// Flushes what ``write(_:)`` wrote (its bytes stop counting once the network has them); on the event loop.
    func flush() {
        transport.flush { [self] count in inTransit.subtract(count, ordering: .relaxed) }
    }

    /// Drops the client (MQTT 5: DISCONNECT 0x97 Quota exceeded), its will published.
    func slowConsumer(_ message: String? = nil) {
        let message = message ?? "the client reads too slowly: more than \(broker.configuration.bufferBytes) bytes wait unwritten"
        eventLoop.execute { [self] in
            disconnect(reason: 0x97, message: message, publishWill: true)
        }
    }

    // MARK: Packets

    /// Handles one packet; returns a future when the next must wait for it.
    private func handle(_ packet: MQTTPacket) -> EventLoopFuture<Void>? {
        if session == nil {
            guard case .connect(let connect) = packet, !connectReceived else {
                fail(0x82, connectReceived ? "a packet before CONNACK" : "the first packet must be CONNECT")
                return nil
            }
            connectReceived = true
            connectTimer?.cancel()
            connectTimer = nil
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
            let codes = unsubscribe.topicFilters.map { broker.sessions.unsubscribe(session!, filter: $0) ? UInt8(0x00) : 0x11 }
            send(.unsuback(MQTTUnsubAck(packetID: unsubscribe.packetID, reasonCodes: codes, properties: MQTTProperties())))
        case .pingreq:
            send(.pingresp)
        case .disconnect(let disconnect):
            if disconnect.reasonCode != 0x04 { will = nil }
            if let expiry = disconnect.properties.sessionExpiryInterval, let session {
                session.state.withLock { $0.expirySeconds = broker.sessions.cappedExpiry(expiry) }
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
        if let refusal {
            refuseConnect(refusal.v3, refusal.v5, refusal.message)
            return nil
        }
        if connect.properties.authenticationMethod != nil {
            refuseConnect(0x05, 0x8C, "enhanced authentication is not supported")
            return nil
        }
        // No credentials: decided here and now.
        if connect.username == nil, connect.password == nil {
            guard broker.configuration.allowAnonymous else {
                refuseConnect(0x05, 0x87, "this broker requires a user name and password")
                return nil
            }
            return accept(connect)
        }
        // Credentials are checked off the event loop (the password hash is slow by design); packets
        // after CONNECT wait for the outcome.
        let address = transport.address
        let promise = eventLoop.makePromise(of: Result<Authenticator.Verified?, MQTTBroker.SignInRefusal>.self)
        promise.completeWithTask { [broker] in
            await broker.signIn(username: connect.username, password: connect.password, address: address)
        }
        return promise.futureResult.flatMap { [self] outcome in
            guard !isClosed else { return eventLoop.makeSucceededVoidFuture() }
            switch outcome {
            case .failure(let refusal):
                refuseConnect(refusal.v3, refusal.v5, refusal.message)
                return eventLoop.makeSucceededVoidFuture()
            case .success(let signedIn):
                principal = signedIn?.principal ?? .anonymous
                // A change to the user since the credentials were checked ends the connection.
                if let signedIn, let sessions = broker.authenticator?.sessions {
                    let loop = eventLoop
                    liveSession = sessions.register(signedIn.principal, since: signedIn.checked) { [weak self] reason in
                        guard let connection = self else { return }
                        loop.execute { connection.disconnect(reason: 0x87, message: reason, publishWill: false) }
                    }
                }
                return accept(connect) ?? eventLoop.makeSucceededVoidFuture()
            }
        }
    }

    /// Answers a CONNECT with a refusal (reason code `v3` for MQTT 3.1.1, `v5` for 5) and closes.
    private func refuseConnect(_ v3: UInt8, _ v5: UInt8, _ message: String) {
        logger.info("mqtt: refused \(transport.peer): \(message)")
        var properties = MQTTProperties()
        if version == .v5 { properties.reasonString = message }
        send(.connack(MQTTConnAck(sessionPresent: false, reasonCode: version == .v5 ? v5 : v3, properties: properties)))
        transport.close()
        transportClosed()
    }

    /// Opens or resumes the session of a CONNECT whose credentials were accepted, and answers CONNACK.
    private func accept(_ connect: MQTTConnect) -> EventLoopFuture<Void>? {
        var properties = MQTTProperties()
        var id = connect.clientID
        if id.isEmpty {
            if version == .v3_1_1 && !connect.cleanStart {
                refuseConnect(0x02, 0x85, "an empty client id needs clean session")
                return nil
            }
            id = "microlith-\(UInt64.random(in: 0...UInt64.max))"
            properties.assignedClientIdentifier = id
        }
        // A client id whose session another user made is that user's: taking it over would drop their
        // connection and what was kept for them.
        if broker.sessions.isOwnedByAnother(clientID: id, user: principal.user) {
            refuseConnect(0x02, 0x85, "client id \(id) belongs to another user's session")
            return nil
        }
        guard broker.sessions.admitsSession(clientID: id) else {
            refuseConnect(0x03, 0x97, "the broker holds mqtt.maxSessions (\(broker.configuration.maximumSessions)) sessions already")
            return nil
        }
        clientID = id
        will = connect.will
        // A client asking for no keep-alive, or a longer one, is held to mqtt.maxKeepAliveSeconds;
        // MQTT 5 clients learn it from the Server Keep Alive [MQTT-3.2.2-21].
        let maximumKeepAlive = UInt16(clamping: broker.configuration.maximumKeepAliveSeconds)
        keepAlive = connect.keepAlive == 0 ? maximumKeepAlive : min(connect.keepAlive, maximumKeepAlive)
        let expiry: UInt32
        if version == .v5 {
            expiry = broker.sessions.cappedExpiry(connect.properties.sessionExpiryInterval ?? 0)
        } else {
            expiry = connect.cleanStart ? 0 : broker.sessions.cappedExpiry(UInt32.max)
        }
        let maximumInflight = min(Int(connect.properties.receiveMaximum ?? UInt16.max), broker.configuration.maximumInflight)
        properties.maximumPacketSize = UInt32(broker.configuration.maximumPacketBytes)
        properties.topicAliasMaximum = Self.topicAliasMaximum
        if keepAlive != connect.keepAlive { properties.serverKeepAlive = keepAlive }
        properties.retainAvailable = 1
        properties.wildcardSubscriptionAvailable = 1
        let connack = MQTTConnAck(sessionPresent: false, reasonCode: 0, properties: version == .v5 ? properties : MQTTProperties())
        let promise = eventLoop.makePromise(of: Void.self)
        // MQTT 5: the client's Maximum Packet Size (3.1.1 has none).
        let maximumPacketSize = version == .v5 ? connect.properties.maximumPacketSize.map { Int($0) } ?? .max : .max
        broker.sessions.attach(
            self, clientID: id, principal: principal, cleanStart: connect.cleanStart, expiry: expiry, version: version,
            maximumInflight: maximumInflight,
            maximumPacketSize: maximumPacketSize, positions: broker.tables.positions(), will: connect.will
        ) {
            [self] session, present in
            eventLoop.execute { [self] in
                guard !isClosed else {
                    // Closed while the session was being bound: the session lets go of it now
                    // (the close's own detach found no session yet), or it would hold a dead connection for ever.
                    self.session = session
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

    private func handlePublish(_ received: MQTTPublish) -> EventLoopFuture<Void>? {
        var aliased = received
        if let alias = aliased.properties.topicAlias {
            // A topic and an alias set the alias; an empty topic uses it. Neither travels on.
            guard alias <= Self.topicAliasMaximum else {
                fail(0x94, "topic alias \(alias) is above the topic alias maximum \(Self.topicAliasMaximum)")
                return nil
            }
            if aliased.topic.isEmpty {
                guard let topic = topicAliases[alias] else {
                    fail(0x82, "topic alias \(alias) was never given a topic on this connection")
                    return nil
                }
                aliased.topic = topic
            } else {
                topicAliases[alias] = aliased.topic
            }
            aliased.properties.topicAlias = nil
        }
        let publish = aliased
        let (topic, qos, packetID) = (publish.topic, publish.qos, publish.packetID)
        guard let session else {
            fail(0x82, "a PUBLISH before the session began")
            return nil
        }
        if qos == .exactlyOnce, let id = packetID, broker.sessions.isReceived(session, packetID: id) {
            // A QoS 2 message already handed on, on this connection or an earlier one of the session
            // (its PUBREC may still wait): not again [MQTT-4.3.3-10], and its PUBREC goes after
            // those waiting [MQTT-4.6.0-3].
            return acknowledgeInOrder { [self] in send(.ack(MQTTAck(kind: .pubrec, packetID: id))) }
        }
        var wait = broker.publish(publish, from: self, as: principal)
        if qos == .exactlyOnce, let id = packetID {
            // Recorded after the message's stored copies were queued, and its PUBREC waits for both.
            let mark = broker.sessions.setReceived(session, packetID: id, true)
            if mark > 0, let persistence = broker.persistence {
                let recorded = persistence.barrier(mark, on: eventLoop)
                let outcome = wait?.outcome ?? eventLoop.makeSucceededFuture(.done)
                wait = MQTTBroker.PublishWait(
                    outcome: outcome.and(recorded).map { outcome, stored -> MQTTBroker.PublishOutcome in
                        if case .failed = outcome { return outcome }
                        return stored ? outcome : .failed(0x80, "the message's receipt could not be stored for the session")
                    },
                    overlaps: wait?.overlaps ?? true)
            }
        }
        let finish: @Sendable (MQTTBroker.PublishOutcome) -> Void = { [self] outcome in
            if case .failed = outcome, qos == .exactlyOnce, let id = packetID {
                // A refused QoS 2 publish ends its exchange: the id is free for a new message.
                broker.sessions.setReceived(session, packetID: id, false)
            }
            guard !isClosed else { return }
            if case .failed(let code, let message) = outcome {
                logger.info("mqtt: publish to \(topic) from \(clientID) failed: \(message)")
                if version == .v3_1_1 && qos != .atMostOnce {
                    fail(0x80, message)
                    return
                }
                guard let id = packetID, version == .v5 else { return }
                var properties = MQTTProperties()
                properties.reasonString = String(message.prefix(500))
                send(.ack(MQTTAck(kind: qos == .exactlyOnce ? .pubrec : .puback, packetID: id, reasonCode: code, properties: properties)))
                return
            }
            guard let id = packetID else { return }
            if qos == .exactlyOnce {
                send(.ack(MQTTAck(kind: .pubrec, packetID: id)))
            } else {
                send(.ack(MQTTAck(kind: .puback, packetID: id)))
            }
        }
        guard let wait else {
            // Nothing to wait for: acknowledged now, or after those waiting (QoS 0 has none to send).
            if qos == .atMostOnce { return nil }
            return acknowledgeInOrder { finish(.done) }
        }
        // Acknowledgements go in the order of the publishes [MQTT-4.6.0-2]: after those still waiting.
        let acknowledged = (pendingAcknowledgements.map { earlier in earlier.flatMap { wait.outcome } } ?? wait.outcome).map(finish)
        let bytes = publish.payload.readableBytes
        guard wait.overlaps, waitingAcknowledgements < Self.overlappingPublishes,
            waitingBytes + bytes <= broker.configuration.bufferBytes
        else {
            // The next packet waits for this one (and so for every acknowledgement before it).
            return acknowledged
        }
        waitingBytes += bytes
        acknowledged.whenComplete { [self] _ in waitingBytes -= bytes }
        track(acknowledged)
        return nil
    }

    /// Runs `acknowledge` after the acknowledgements still waiting, or now when none waits; returns
    /// what the next packet waits for when the most that may wait already do.
    private func acknowledgeInOrder(_ acknowledge: @escaping @Sendable () -> Void) -> EventLoopFuture<Void>? {
        guard let pending = pendingAcknowledgements else {
            acknowledge()
            return nil
        }
        let acknowledged = pending.map(acknowledge)
        guard waitingAcknowledgements < Self.overlappingPublishes else { return acknowledged }
        track(acknowledged)
        return nil
    }

    /// Makes `acknowledged` the last acknowledgement waiting, which the next ones follow.
    private func track(_ acknowledged: EventLoopFuture<Void>) {
        waitingAcknowledgements += 1
        let tail = acknowledged.recover { _ in }
        pendingAcknowledgements = tail
        tail.whenComplete { [self] _ in
            waitingAcknowledgements -= 1
            if waitingAcknowledgements == 0 { pendingAcknowledgements = nil }
        }
    }

    private func handleAck(_ ack: MQTTAck) {
        switch ack.kind {
        case .puback:
            broker.sessions.acknowledged(session!, packetID: ack.packetID)
        case .pubrel:
            let id = ack.packetID
            guard broker.sessions.isReceived(session!, packetID: id) else {
                // Released before, or never received [MQTT-4.3.3-11]: PUBCOMP all the same (MQTT 5
                // says why: packet identifier not found).
                send(.ack(MQTTAck(kind: .pubcomp, packetID: id, reasonCode: version == .v5 ? 0x92 : 0)))
                return
            }
            let mark = broker.sessions.setReceived(session!, packetID: id, false)
            guard mark > 0, let persistence = broker.persistence else {
                send(.ack(MQTTAck(kind: .pubcomp, packetID: id)))
                return
            }
            // The id leaves the stored session before the client may reuse it (after PUBCOMP).
            persistence.barrier(mark, on: eventLoop).whenSuccess { [self] stored in
                guard !isClosed else { return }
                guard stored else {
                    fail(0x80, "the release of packet \(id) could not be stored for the session")
                    return
                }
                send(.ack(MQTTAck(kind: .pubcomp, packetID: id)))
            }
        case .pubrec:
            broker.sessions.received(session!, packetID: ack.packetID, reasonCode: ack.reasonCode)
        case .pubcomp:
            broker.sessions.completed(session!, packetID: ack.packetID)
        }
    }

    /// Grants, refuses and stores the filters, answers with SUBACK, then has the retained messages and
    /// table records they match sent: once per packet for each topic whatever the duplicates and overlaps,
    /// at the highest QoS the packet's matching filters grant.
    ///
    /// A SUBSCRIBE with several filters is handled as a sequence of SUBSCRIBEs with one SUBACK
    /// ([MQTT-3.8.4-4], MQTT 5 [MQTT-3.8.4-5]) carrying one code per filter ([MQTT-3.8.4-5], MQTT 5
    /// [MQTT-3.8.4-6]): a repeated filter replaces the subscription ([MQTT-3.8.4-3]). Filters past
    /// `mqtt.maxTopicFiltersPerPacket`, or that would take the session past `mqtt.maxSubscriptionsPerClient`
    /// or the broker past `mqtt.maxSubscriptionsTotal`, are refused: 0x97 Quota exceeded (MQTT 5), 0x80 Failure (3.1.1).
    /// A filter over an exported table's topics without the `subscribe` permission, or a wildcard there
    /// the table's `search` hook refuses, gets 0x87 Not authorized (MQTT 5), 0x80 Failure (3.1.1).
    private func handleSubscribe(_ subscribe: MQTTSubscribe) -> EventLoopFuture<Void>? {
        let quota: UInt8 = version == .v5 ? 0x97 : 0x80
        let perPacket = broker.configuration.maximumTopicFiltersPerPacket
        var codes: [UInt8] = []
        var requested: [(index: Int, subscription: MQTTSubscription, shared: Bool)] = []
        for (index, var s) in subscribe.subscriptions.enumerated() {
            if index >= perPacket {
                codes.append(quota)
                continue
            }
            let shared = MQTTTopic.sharedSubscription(s.topicFilter)
            guard shared == nil ? MQTTTopic.isValidFilter(s.topicFilter) : shared != .invalid else {
                codes.append(version == .v5 ? 0x8F : 0x80)
                continue
            }
            if shared != nil, s.noLocal {
                fail(0x82, "no local set on shared subscription \(s.topicFilter)")
                return nil
            }
            // A table's topics need the `subscribe` permission, and a wildcard over its records is a standing
            // query the table's `search` hook may refuse; both for the roles of the user the client signed in as.
            var checked = s.topicFilter
            if case .valid(_, let inner)? = shared { checked = inner }
            if broker.tables.refusesSubscription(filter: checked, clientID: clientID, principal: principal) {
                codes.append(version == .v5 ? 0x87 : 0x80)
                continue
            }
            s.identifier = subscribe.properties.subscriptionIdentifiers.first
            codes.append(s.qos.rawValue)
            requested.append((index, s, shared != nil))
        }
        let outcomes = broker.sessions.subscribe(session!, requested.map(\.subscription))
        // The filters whose retained messages go out, each once, with the options it ends up with.
        var wanted: OrderedDictionary<String, (subscription: MQTTSubscription, send: Bool)> = [:]
        for ((index, s, shared), outcome) in zip(requested, outcomes) {
            guard outcome != .refused else {
                codes[index] = quota
                continue
            }
            // A shared subscription gets no retained messages (MQTT 5 §4.8.2).
            let send = !shared && (s.retainHandling == 0 || (s.retainHandling == 1 && outcome == .added))
            wanted[s.topicFilter] = (s, send || (wanted[s.topicFilter]?.send ?? false))
        }
        send(.suback(MQTTSubAck(packetID: subscribe.packetID, reasonCodes: codes, properties: MQTTProperties())))
        retained.request(wanted.values.filter(\.send).map(\.subscription))
        return nil
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
