import Logging
public import MicrolithNetwork
public import MicrolithTLS
public import NIOCore
import NIOPosix
import Synchronization

/// The broker's TCP listener (`mqtt.port`, 1883 by default).
public final class MQTTServer: Sendable {
    public let broker: MQTTBroker
    private let channel: any Channel
    private let sweeper: RepeatedTask

    private init(broker: MQTTBroker, channel: any Channel, sweeper: RepeatedTask) {
        self.broker = broker
        self.channel = channel
        self.sweeper = sweeper
    }

    /// The bound port.
    public var port: Int { channel.localAddress?.port ?? 0 }

    /// Binds the listener; throws when the address is taken. With `limiter`, every connection is
    /// counted in it from accept (together with the process's other ports); a refused one is answered with a CONNACK refusal when it sends its CONNECT (within 2 s), then closed.
    /// With `tls`, clients speak MQTT over TLS (the connect timeout, from accept, covers the
    /// handshake). The broker's ``MQTTBroker/run()`` must run while the listener serves (``stop()`` ends it).
    /// Throws, too, when what the store kept for the broker cannot be read (``MQTTBroker/restore()``).
    public static func start(
        broker: MQTTBroker, group: any EventLoopGroup, limiter: ConnectionLimiter? = nil, tls: TLSContextSource? = nil
    ) async throws -> MQTTServer {
        let configuration = broker.configuration
        // What the store kept (sessions, queued and retained messages) is back before anyone connects.
        try await broker.restore()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // Out of file descriptors, accept waits a second instead of spinning on the listener.
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(AcceptBackoffHandler()) }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try Self.configure(channel, broker: broker, limiter: limiter, tls: tls) }
            }
        let channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        let sweeper = group.next().scheduleRepeatedTask(initialDelay: .milliseconds(500), delay: .milliseconds(500)) { _ in broker.sweep() }
        return MQTTServer(broker: broker, channel: channel, sweeper: sweeper)
    }

    /// Sets up an accepted connection's pipeline (on its event loop): counted in `limiter` first,
    /// when there is one, then TLS, when there is a certificate.
    static func configure(_ channel: any Channel, broker: MQTTBroker, limiter: ConnectionLimiter? = nil, tls: TLSContextSource? = nil) throws {
        if let limiter {
            let logger = broker.logger
            try channel.pipeline.syncOperations.addHandler(
                ConnectionAdmissionHandler(limiter: limiter, answersRefusals: true) { refusal, peer in
                    logger.notice("MQTT connection from \(peer?.description ?? "?") refused: \(refusal.description)")
                })
        }
        if let tls { try channel.pipeline.syncOperations.addHandler(tls.makeServerHandler()) }
        try channel.pipeline.syncOperations.addHandler(MQTTChannelHandler(broker: broker, channel: channel))
    }

    /// Stops listening, closes every client connection and shuts the broker down.
    public func stop() async {
        sweeper.cancel()
        try? await channel.close()
        broker.shutdown()
    }
}

/// A TCP connection: bytes to and from the broker's connection.
final class MQTTChannelHandler: ChannelInboundHandler, MQTTTransport, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let channel: any Channel
    let eventLoop: any EventLoop
    let peer: String
    let address: String?
    private var connection: MQTTClientConnection?
    private let broker: MQTTBroker
    private let writes: MQTTChannelWrites

    init(broker: MQTTBroker, channel: any Channel) {
        self.broker = broker
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.peer = channel.remoteAddress?.description ?? "?"
        self.address = channel.remoteAddress?.ipAddress
        self.writes = MQTTChannelWrites(channel: channel) { NIOAny($0) }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        writes.writeThrough(context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        writes.writeThrough(nil)
    }

    func channelActive(context: ChannelHandlerContext) {
        // A connection past the process's budget is answered with a CONNACK refusal, then closed.
        let refusal = (try? context.pipeline.syncOperations.handler(type: ConnectionAdmissionHandler.self))?.refusal
        connection = broker.accept(self, refusal: refusal)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection?.receive(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection?.closed()
        connection = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func write(_ bytes: ByteBuffer) { writes.write(bytes) }

    func flush(written: @escaping @Sendable (Int) -> Void) { writes.flush(written: written) }

    func setReading(_ enabled: Bool) {
        try? channel.syncOptions?.setOption(.autoRead, value: enabled)
    }

    func close() {
        // After the writes already on their way to the loop (a CONNACK or DISCONNECT explaining why).
        eventLoop.execute { [self] in
            writes.flush { _ in }
            channel.close(mode: .all, promise: nil)
        }
    }
}
