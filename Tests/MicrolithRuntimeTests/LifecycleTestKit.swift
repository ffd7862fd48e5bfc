import Foundation
import Logging
import MicrolithHTTP
import MicrolithMQTT
import MicrolithModules
import MicrolithRuntime
import MicrolithStore
import NIOCore
import NIOPosix
import Synchronization
import Testing

// A shutdown test kit: a real server on loopback ports, driven through its lifecycle, with what
// it logged on the way and a raw TCP client to hold connections open across the shutdown.

/// Every message logged through a logger it made, in order.
final class LogRecorder: Sendable {
    private let lines = Mutex<[String]>([])

    /// A logger whose records land here (its level is the server's `logLevel`).
    func logger(label: String = "lifecycle-test") -> Logger {
        Logger(label: label) { _ in Handler(recorder: self) }
    }

    var messages: [String] { lines.withLock { $0 } }

    /// The recorded messages that are among `wanted`, in the order they were logged.
    func sequence(of wanted: [String]) -> [String] {
        messages.filter { wanted.contains($0) }
    }

    fileprivate func record(_ message: String) {
        lines.withLock { $0.append(message) }
    }

    private struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var metadataProvider: Logger.MetadataProvider?
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            recorder.record(event.message.description)
        }
    }
}

/// What each of a server's lifecycle services logs (at debug) once it has stopped, in the
/// order a graceful shutdown must reach them: the reverse of their start.
let lifecycleEndings = [
    "HTTP server stopped", "MQTT listener closed", "modules shut down", "realtime delivery stopped", "store maintenance stopped",
    "store closed",
]

/// A server running (in a child task) on free loopback ports.
final class LiveServer: Sendable {
    let server: MicrolithServer
    let log: LogRecorder
    let httpPort: Int
    private let ended: AsyncStream<Result<Void, any Error>>

    fileprivate init(server: MicrolithServer, log: LogRecorder, httpPort: Int, ended: AsyncStream<Result<Void, any Error>>) {
        self.server = server
        self.log = log
        self.httpPort = httpPort
        self.ended = ended
    }

    /// Shuts the server down gracefully (as SIGTERM does) and waits until its run has returned.
    func shutDown() async throws {
        await server.triggerGracefulShutdown()
        try await finished()
    }

    /// Waits until the run has returned (or rethrows what it threw).
    func finished() async throws {
        var iterator = ended.makeAsyncIterator()
        let result = try #require(await iterator.next(), "the server's run ended twice or never reported")
        try result.get()
    }
}

/// Starts the app of `files` with `modules` on free loopback ports (MQTT too, unless
/// `configure` turns it off), logging at debug into a ``LogRecorder``, runs `body`, then shuts
/// the server down gracefully if `body` did not.
func withLiveServer(
    _ files: [String: String], modules: [any Module] = [], configure: @escaping (inout RuntimeConfiguration) -> Void = { _ in },
    _ body: (LiveServer) async throws -> Void
) async throws {
    let app = try TemporaryApp(files)
    defer { app.remove() }
    let log = LogRecorder()
    let server = try await MicrolithServer.start(appDirectory: app.path, modules: modules, environment: [:], logger: log.logger()) { c in
        c.http.port = 0
        c.mqtt.port = 0
        c.store.directory = app.file("data")
        c.store.durability = .normal
        c.logLevel = "debug"
        configure(&c)
    }
    let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
    let (ended, endedContinuation) = AsyncStream.makeStream(of: Result<Void, any Error>.self)
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            let result: Result<Void, any Error>
            do {
                try await server.run(gracefulShutdownSignals: []) { channel in portContinuation.yield(channel.localAddress?.port ?? 0) }
                result = .success(())
            } catch {
                result = .failure(error)
            }
            portContinuation.finish()
            endedContinuation.yield(result)
            endedContinuation.finish()
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            var outcome = ended.makeAsyncIterator()
            try await outcome.next()?.get()
            Issue.record("the server ended without serving")
            return
        }
        let live = LiveServer(server: server, log: log, httpPort: port, ended: ended)
        do {
            try await body(live)
        } catch {
            await server.triggerGracefulShutdown()
            throw error
        }
        await server.triggerGracefulShutdown()
        try await group.waitForAll()
    }
}

/// Whether a listener can bind `port` on the loopback address now (nothing listens there).
func portIsFree(_ port: Int) async -> Bool {
    do {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: port).get()
        try await channel.close()
        return true
    } catch {
        return false
    }
}

/// `operation`'s result, or `nil` when it takes longer than `limit` (it is then cancelled).
func withDeadline<T: Sendable>(_ limit: Duration, _ operation: @escaping @Sendable () async -> T) async -> T? {
    await withTaskGroup(of: T?.self) { group in
        group.addTask { await operation() }
        group.addTask {
            try? await Task.sleep(for: limit)
            return nil
        }
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}

/// A loopback port some listener holds, for a server that must find it taken.
struct HeldPort {
    let channel: any Channel
    let port: Int

    static func listen() async throws -> HeldPort {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        return HeldPort(channel: channel, port: try #require(channel.localAddress?.port))
    }

    func close() {
        channel.close(promise: nil)
    }
}

/// A plain TCP connection to a loopback port: bytes out, bytes in until the peer closes.
final class RawConnection: Sendable {
    private let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>

    private init(channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>) {
        self.channel = channel
    }

    static func open(port: Int) async throws -> RawConnection {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        return RawConnection(channel: channel)
    }

    /// Writes `bytes`, then returns what arrives until `enough` says so, or the peer closes.
    func exchange(_ bytes: [UInt8], until enough: ([UInt8]) -> Bool = { _ in false }) async throws -> (bytes: [UInt8], closed: Bool) {
        try await channel.executeThenClose { inbound, outbound in
            if !bytes.isEmpty { try await outbound.write(ByteBuffer(bytes: bytes)) }
            var received: [UInt8] = []
            for try await buffer in inbound {
                received += buffer.readableBytesView
                if enough(received) { return (received, false) }
            }
            return (received, true)
        }
    }
}

extension RawConnection {
    /// Sends one HTTP/1.1 request with `Connection: close` and returns the status and the body.
    static func http(port: Int, _ method: String, _ path: String, json: String? = nil) async throws -> (status: Int, body: String) {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        if let json { head += "Content-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n" }
        let request = Array((head + "\r\n" + (json ?? "")).utf8)
        let (bytes, _) = try await open(port: port).exchange(request)
        let text = String(decoding: bytes, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        let statusLine = parts.first?.components(separatedBy: "\r\n").first ?? ""
        let status = statusLine.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return (status, parts.dropFirst().joined(separator: "\r\n\r\n"))
    }
}

/// A door an operation waits behind until the test opens it; the test can wait until a caller
/// is there.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
    private let arrivals: AsyncStream<Void>
    private let arrival: AsyncStream<Void>.Continuation

    init() {
        (arrivals, arrival) = AsyncStream.makeStream(of: Void.self)
    }

    /// Called by the operation: announces itself and waits until ``open()``.
    func pass() async {
        arrival.yield()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.open { return true }
                s.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Returns once a caller waits at the gate.
    func someoneArrived() async {
        var iterator = arrivals.makeAsyncIterator()
        _ = await iterator.next()
    }

    func open() {
        let waiters = state.withLock { s in
            s.open = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
