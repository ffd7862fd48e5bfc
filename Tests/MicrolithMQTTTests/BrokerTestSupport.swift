import Foundation
import Logging
import MicrolithAuth
import MicrolithMQTT
import MicrolithRealtime
import MicrolithSchema
import MicrolithStore
import MicrolithTables
import NIOCore
import NIOPosix
import Synchronization
import Testing

let brokerSchema = """
    type Sensor @table @export {
        id: ID @primaryKey
        room: String
        temp: Float!
    }
    """

/// A store, a hub and a broker listening on a free loopback port, writing through the table
/// `hooks` under the `roles` (none: every table open), with `users` (name, password, roles) to
/// sign in as; all gone after `body`.
func withBroker<T>(
    hooks: [TableHooks] = [], roles: [Roles.Declaration]? = nil, users: [(String, String, [String])] = [],
    _ configure: (inout MQTTConfiguration) -> Void = { _ in }, _ body: (Store, MQTTServer) async throws -> T
) async throws -> T {
    try await withTemporaryDirectory { directory in
        try await withBroker(in: directory, hooks: hooks, roles: roles, users: users, configure, body)
    }
}

/// A fresh folder for the time of `body`, removed after.
func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-mqtt-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    return try await body(directory)
}

/// ``withBroker(hooks:roles:users:_:_:)`` on the store in `directory`, which may hold what an earlier
/// broker kept (`wallClock`: the store's clock, to move time on between two).
func withBroker<T>(
    in directory: String, hooks: [TableHooks] = [], roles: [Roles.Declaration]? = nil, users: [(String, String, [String])] = [],
    wallClock: @escaping @Sendable () -> Int64 = HybridLogicalClock.systemMilliseconds,
    _ configure: (inout MQTTConfiguration) -> Void = { _ in }, _ body: (Store, MQTTServer) async throws -> T
) async throws -> T {
    let store = try Store.open(
        schema: try SchemaParser.parse(brokerSchema, file: "schema.graphql"),
        configuration: StoreConfiguration(directory: directory, durability: .normal, wallClock: wallClock, systemTables: [.users, .mqtt]))
    defer { store.close() }
    let hub = try await EventHub.start(store: store, logger: Logger(label: "test"))
    var configuration = MQTTConfiguration(port: 0)
    configure(&configuration)
    // Few iterations: these tests are about who may do what, not about the hash's cost.
    let userDirectory = UserDirectory(store: store, iterations: 1_000)
    for (name, password, roles) in users { try await userDirectory.add(name, password: password, roles: roles) }
    let broker = MQTTBroker(
        configuration: configuration, hub: hub, access: TableAccess(store: store, hooks: hooks, roles: try roles.map { try Roles($0, store: store) }),
        authenticator: Authenticator(users: userDirectory), eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
        logger: Logger(label: "test"))
    return try await withThrowingTaskGroup { group in
        group.addTask { await broker.run() }
        let server = try await MQTTServer.start(broker: broker, group: MultiThreadedEventLoopGroup.singleton)
        let result: Result<T, any Error>
        do {
            result = .success(try await body(store, server))
        } catch {
            result = .failure(error)
        }
        // Stopping the server shuts the broker down, which ends its run().
        await server.stop()
        try await group.waitForAll()
        return try result.get()
    }
}

/// A raw MQTT client over a real TCP connection: packets encoded and decoded by the codec under test.
final class TestClient: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let version: MQTTProtocolVersion
    let state = Mutex<(buffer: ByteBuffer, decoder: MQTTPacketDecoder, packets: [MQTTPacket], closed: Bool)>(
        (ByteBuffer(), MQTTPacketDecoder(maximumPacketSize: 1 << 24, version: nil), [], false))
    let channel = Mutex<(any Channel)?>(nil)

    init(version: MQTTProtocolVersion) {
        self.version = version
        state.withLock { $0.decoder = MQTTPacketDecoder(maximumPacketSize: 1 << 24, version: version) }
    }

    /// Connects; `receiveBuffer` sets the socket's receive buffer (a client that will stop reading).
    static func connect(port: Int, version: MQTTProtocolVersion = .v5, receiveBuffer: Int32? = nil) async throws -> TestClient {
        let client = TestClient(version: version)
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        if let receiveBuffer { bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBuffer)) }
        let channel =
            try await bootstrap
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(client) } }
            .connect(host: "127.0.0.1", port: port).get()
        client.channel.withLock { $0 = channel }
        return client
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        state.withLock { s in
            s.buffer.writeBuffer(&bytes)
            while let packet = try? s.decoder.decode(&s.buffer) { s.packets.append(packet) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        state.withLock { $0.closed = true }
    }

    func send(_ packet: MQTTPacket) async throws {
        var out = ByteBuffer()
        packet.encode(version: version, into: &out)
        try await sendRaw(out)
    }

    func sendRaw(_ bytes: ByteBuffer) async throws {
        try await channel.withLock { $0! }.writeAndFlush(bytes).get()
    }

    /// The next packet received, failing after `seconds`.
    func receive(within seconds: Double = 5, sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws -> MQTTPacket {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if let packet = state.withLock({ s in s.packets.isEmpty ? nil : s.packets.removeFirst() }) { return packet }
            try await Task.sleep(for: .milliseconds(5))
        }
        Issue.record("no packet within \(seconds) s", sourceLocation: sourceLocation)
        throw CancellationError()
    }

    /// Whether the server closed the connection within `seconds`.
    func closed(within seconds: Double = 5) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if state.withLock({ $0.closed }) { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    var pending: [MQTTPacket] { state.withLock { $0.packets } }

    /// CONNECT (with `properties` as `configure` sets them), expecting a successful CONNACK; returns it.
    @discardableResult
    func handshake(
        clientID: String, cleanStart: Bool = true, keepAlive: UInt16 = 60, sessionExpiry: UInt32? = nil,
        configure: (inout MQTTProperties) -> Void = { _ in }
    ) async throws -> MQTTConnAck {
        var properties = MQTTProperties()
        properties.sessionExpiryInterval = sessionExpiry
        configure(&properties)
        try await send(
            .connect(
                MQTTConnect(
                    version: version, clientID: clientID, cleanStart: cleanStart, keepAlive: keepAlive, username: nil, password: nil, will: nil,
                    properties: properties)))
        guard case .connack(let ack) = try await receive() else {
            Issue.record("expected CONNACK")
            throw CancellationError()
        }
        #expect(ack.reasonCode == 0)
        return ack
    }

    /// CONNECT with a user name and password; returns the CONNACK, whatever its reason code.
    func connect(
        clientID: String, username: String?, password: String?, cleanStart: Bool = true, sessionExpiry: UInt32? = nil
    ) async throws
        -> MQTTConnAck
    {
        var properties = MQTTProperties()
        properties.sessionExpiryInterval = sessionExpiry
        try await send(
            .connect(
                MQTTConnect(
                    version: version, clientID: clientID, cleanStart: cleanStart, keepAlive: 60, username: username,
                    password: password.map { ByteBuffer(string: $0) }, will: nil, properties: properties)))
        // Signing in hashes on a thread pool that the tests running beside this one share.
        guard case .connack(let ack) = try await receive(within: 30) else {
            Issue.record("expected CONNACK")
            throw CancellationError()
        }
        return ack
    }

    /// A retained QoS 1 publish of `payload` to `topic` (a write of the record it names); its PUBACK.
    func retainedPublish(_ topic: String, _ payload: String, id: UInt16) async throws -> MQTTAck {
        try await send(.publish(MQTTPublish(topic: topic, payload: ByteBuffer(string: payload), qos: .atLeastOnce, retain: true, packetID: id)))
        guard case .ack(let ack) = try await receive() else { throw CancellationError() }
        #expect(ack.packetID == id)
        return ack
    }

    func close() async {
        try? await channel.withLock { $0! }.close()
    }
}

extension Store {
    var sensor: TableLayout { tables.first { $0.name == "Sensor" }! }
}

func publishOf(_ packet: MQTTPacket, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> MQTTPublish {
    guard case .publish(let p) = packet else {
        Issue.record("expected PUBLISH, got \(packet)", sourceLocation: sourceLocation)
        throw CancellationError()
    }
    return p
}

extension TestClient {
    /// SUBSCRIBE, expecting the SUBACK; returns its reason codes.
    func subscribe(_ filters: [String], qos: MQTTQoS = .atMostOnce, packetID: UInt16 = 1) async throws -> [UInt8] {
        try await subscribe(filters.map { MQTTSubscription(topicFilter: $0, qos: qos) }, packetID: packetID)
    }

    func subscribe(_ subscriptions: [MQTTSubscription], packetID: UInt16 = 1) async throws -> [UInt8] {
        try await send(.subscribe(MQTTSubscribe(packetID: packetID, subscriptions: subscriptions)))
        guard case .suback(let ack) = try await receive() else {
            Issue.record("expected SUBACK")
            throw CancellationError()
        }
        #expect(ack.packetID == packetID)
        return ack.reasonCodes
    }

    /// Every PUBLISH that arrives until `expected` have come and then nothing more for `quiet` seconds
    /// (acknowledging QoS 1 ones if `acknowledge`), failing past `within` seconds. The quiet period only
    /// starts once `expected` are in, so a busy machine that is slow to send the first one is waited for,
    /// while extra (duplicate) deliveries still arrive in time to be counted.
    func publishes(
        expected: Int = 0, quiet: Double = 0.3, within: Double = 20, acknowledge: Bool = false
    ) async throws -> [MQTTPublish] {
        var out: [MQTTPublish] = []
        let deadline = ContinuousClock.now + .seconds(within)
        var lastArrival = ContinuousClock.now
        while ContinuousClock.now < deadline {
            let next = state.withLock { s in s.packets.isEmpty ? nil : s.packets.removeFirst() }
            guard let next else {
                if out.count >= expected, ContinuousClock.now - lastArrival > .seconds(quiet) { return out }
                try await Task.sleep(for: .milliseconds(5))
                continue
            }
            lastArrival = ContinuousClock.now
            guard case .publish(let p) = next else {
                Issue.record("expected PUBLISH, got \(next)")
                throw CancellationError()
            }
            if acknowledge, let id = p.packetID { try await send(.ack(MQTTAck(kind: .puback, packetID: id))) }
            out.append(p)
        }
        Issue.record("after \(within) s: \(out.count) publishes of \(expected) expected, or they kept coming")
        return out
    }

    /// Stops reading from the socket, as a client that never reads.
    func stopReading() async throws {
        let channel = self.channel.withLock { $0! }
        try await channel.setOption(.autoRead, value: false).get()
    }
}
