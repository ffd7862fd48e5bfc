import MicrolithMQTT
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

/// A transport on a ``NIOAsyncTestingEventLoop``: time moves only when the test says, so timeouts are
/// checked to the second. It records what the broker writes and whether it closed or paused reading.
final class VirtualTransport: MQTTTransport {
    let loop: NIOAsyncTestingEventLoop
    var eventLoop: any EventLoop { loop }
    let peer = "virtual"
    let address: String? = nil
    private let state = Mutex<(written: ByteBuffer, unflushed: Int, closed: Bool, reading: Bool)>((ByteBuffer(), 0, false, true))
    private let connection = Mutex<MQTTClientConnection?>(nil)

    init(loop: NIOAsyncTestingEventLoop = NIOAsyncTestingEventLoop()) {
        self.loop = loop
    }

    /// Accepts the transport as a new connection of `broker` (time zero for its timeouts).
    func connect(to broker: MQTTBroker) async throws {
        try await loop.executeInContext { self.connection.withLock { $0 = broker.accept(self) } }
    }

    /// Feeds the connection `bytes` from the client.
    func receive(_ bytes: [UInt8]) async throws {
        try await loop.executeInContext { self.connection.withLock { $0 }!.receive(ByteBuffer(bytes: bytes)) }
    }

    /// Feeds the connection `packet`, encoded in `version`.
    func receive(_ packet: MQTTPacket, version: MQTTProtocolVersion = .v5) async throws {
        var out = ByteBuffer()
        packet.encode(version: version, into: &out)
        try await receive(Array(out.readableBytesView))
    }

    /// Feeds the connection `packet` and closes it in the same turn of the loop: a client gone before
    /// its CONNECT could be answered.
    func receiveAndVanish(_ packet: MQTTPacket) async throws {
        var encoded = ByteBuffer()
        packet.encode(version: .v5, into: &encoded)
        let bytes = encoded
        try await loop.executeInContext {
            let connection = self.connection.withLock { $0 }!
            connection.receive(bytes)
            self.state.withLock { $0.closed = true }
            connection.closed()
        }
    }

    func write(_ bytes: ByteBuffer) {
        var bytes = bytes
        state.withLock { s in
            s.unflushed += bytes.readableBytes
            _ = s.written.writeBuffer(&bytes)
        }
    }

    /// The bytes count as on the network as soon as they are written.
    func flush(written: @escaping @Sendable (Int) -> Void) {
        let count = state.withLock { s in
            defer { s.unflushed = 0 }
            return s.unflushed
        }
        if count > 0 { written(count) }
    }

    func setReading(_ enabled: Bool) {
        state.withLock { $0.reading = enabled }
    }

    func close() {
        // Like the real transports: after the writes already queued on the loop.
        loop.execute {
            self.state.withLock { $0.closed = true }
            self.connection.withLock { $0 }?.closed()
        }
    }

    var isClosed: Bool { state.withLock { $0.closed } }
    var isReading: Bool { state.withLock { $0.reading } }

    /// The packets written so far (and not returned before), decoded as a `version` client would.
    func packets(version: MQTTProtocolVersion = .v5) throws -> [MQTTPacket] {
        var decoder = MQTTPacketDecoder(maximumPacketSize: 1 << 24, version: version)
        var buffer = state.withLock { s in s.written.readSlice(length: s.written.readableBytes)! }
        var out: [MQTTPacket] = []
        while let packet = try decoder.decode(&buffer) { out.append(packet) }
        return out
    }

    /// Lets tasks the broker queued on the loop run, without moving time.
    func settle() async {
        await loop.run()
    }

    /// Moves the loop's clock on by `seconds`, running what falls due.
    func advance(seconds: Int64) async {
        await loop.advanceTime(by: .seconds(seconds))
    }
}

func connectPacket(clientID: String, version: MQTTProtocolVersion = .v5, keepAlive: UInt16 = 0) -> MQTTPacket {
    .connect(
        MQTTConnect(
            version: version, clientID: clientID, cleanStart: true, keepAlive: keepAlive, username: nil, password: nil, will: nil,
            properties: MQTTProperties()))
}
