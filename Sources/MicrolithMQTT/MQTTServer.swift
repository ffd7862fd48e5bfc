import Logging
public import MicrolithNetwork
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
    /// counted in it from accept (together with the process's other ports); a refused one is closed.
    public static func start(broker: MQTTBroker, group: any EventLoopGroup, limiter: ConnectionLimiter? = nil) async throws -> MQTTServer {
        let configuration = broker.configuration
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // Out of file descriptors, accept waits a second instead of spinning on the listener.
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(AcceptBackoffHandler()) }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 64 * 1024, high: max(128 * 1024, configuration.bufferBytes)))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let limiter {
                        let logger = broker.logger
                        try channel.pipeline.syncOperations.addHandler(
                            ConnectionAdmissionHandler(limiter: limiter) { refusal, peer in
                                logger.notice("MQTT connection from \(peer?.description ?? "?") refused: \(refusal.description)")
                            })
                    }
                    try channel.pipeline.syncOperations.addHandler(MQTTChannelHandler(broker: broker, channel: channel))
                }
            }
        let channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        let sweeper = group.next().scheduleRepeatedTask(initialDelay: .milliseconds(500), delay: .milliseconds(500)) { _ in broker.sweep() }
        return MQTTServer(broker: broker, channel: channel, sweeper: sweeper)
    }

    /// Stops listening and closes every client connection.
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
    private var connection: MQTTClientConnection?
    private let broker: MQTTBroker

    init(broker: MQTTBroker, channel: any Channel) {
        self.broker = broker
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.peer = channel.remoteAddress?.description ?? "?"
    }

    func channelActive(context: ChannelHandlerContext) {
        connection = broker.accept(self)
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

    func send(_ bytes: ByteBuffer) -> Bool {
        // Past the high-water mark (mqtt.bufferBytes) the client is a slow consumer.
        if !channel.isWritable { return false }
        // Always through the loop's queue: callers hold session locks, and a write that fails on a
        // closed channel must not close it (and detach the session) re-entrantly; the queue keeps order.
        let channel = self.channel
        eventLoop.execute { channel.writeAndFlush(bytes, promise: nil) }
        return true
    }

    func write(_ bytes: ByteBuffer) {
        channel.write(bytes, promise: nil)
    }

    func flush() {
        channel.flush()
    }

    var isWritable: Bool { channel.isWritable }

    func close() {
        // After the writes already queued (a CONNACK or DISCONNECT explaining why).
        let channel = self.channel
        eventLoop.execute { channel.close(mode: .all, promise: nil) }
    }
}
