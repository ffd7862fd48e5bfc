import Logging
import MicrolithMQTT
import MicrolithNetwork
import MicrolithTLS
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The MQTT broker's TCP listener as a service: it binds `mqtt.host:mqtt.port` when the
/// lifecycle starts, and when shutdown reaches it (right after the HTTP server) stops listening
/// and closes every MQTT connection.
///
/// The HTTP server waits for ``waitUntilListening()`` before it binds, so a server that
/// announces its HTTP port has its MQTT port bound too. A port already taken ends the start with
/// a ``RuntimeError`` that says how to choose another one.
final class MQTTListenerService: Service, CustomStringConvertible, Sendable {
    let broker: MQTTBroker
    let connections: ConnectionLimiter
    let tls: TLSContextSource?
    let logger: Logger
    private let state = Mutex<State>(State())

    private struct State {
        var port: Int?
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextTicket: UInt64 = 0
    }

    init(broker: MQTTBroker, connections: ConnectionLimiter, tls: TLSContextSource?, logger: Logger) {
        self.broker = broker
        self.connections = connections
        self.tls = tls
        self.logger = logger
    }

    var description: String { "MQTT listener" }

    /// The bound port, once listening.
    var port: Int? { state.withLock { $0.port } }

    /// Binds the listener and runs the broker's background work beside it, until graceful shutdown;
    /// then closes the listener and every MQTT connection and waits for that work to end.
    func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            let broker = self.broker
            group.addTask { await broker.run() }
            do {
                try await broker.restore()
            } catch {
                throw RuntimeError("cannot read the MQTT sessions and retained messages kept in the store: \(error)")
            }
            let listener: MQTTServer
            do {
                listener = try await MQTTServer.start(
                    broker: broker, group: MultiThreadedEventLoopGroup.singleton, limiter: connections, tls: tls)
            } catch {
                let configuration = broker.configuration
                throw RuntimeError(
                    "cannot listen for MQTT on \(configuration.host):\(configuration.port): \(error); "
                        + "choose another port with --mqtt-port (mqtt.port) or turn the broker off with --no-mqtt (mqtt.enabled: false)")
            }
            let waiters = state.withLock { s in
                s.port = listener.port
                defer { s.waiters = [:] }
                return Array(s.waiters.values)
            }
            for waiter in waiters { waiter.resume() }
            try? await gracefulShutdown()
            // Stopping the listener shuts the broker down, which ends its run().
            await listener.stop()
        }
        logger.debug("MQTT listener closed")
    }

    /// Returns once the listener is bound; throws `CancellationError` when the task is cancelled
    /// first (as it is when binding fails: the failure ends the whole lifecycle).
    func waitUntilListening() async throws {
        let ticket = state.withLock { s in
            defer { s.nextTicket += 1 }
            return s.nextTicket
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s -> Bool in
                    if s.port != nil || Task.isCancelled { return true }
                    s.waiters[ticket] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: ticket) }?.resume()
        }
        try Task.checkCancellation()
    }
}
