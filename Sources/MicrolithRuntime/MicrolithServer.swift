public import Foundation
public import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
public import Logging
import MicrolithHTTP
import MicrolithJSON
import MicrolithJobs
public import MicrolithMQTT
public import MicrolithModules
public import MicrolithNetwork
public import MicrolithRealtime
import MicrolithSchema
public import MicrolithStore
public import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import UnixSignals

/// One microlith process: an app folder's store and its REST interface.
///
/// ```swift
/// let server = try await MicrolithServer.start(appDirectory: "./examples/todo", configure: { $0.http.port = 9926 })
/// try await server.run()   // until SIGTERM/SIGINT; then stops accepting, finishes requests, closes the store
/// ```
public final class MicrolithServer: Sendable {
    public let app: AppFolder
    public let configuration: RuntimeConfiguration
    public let store: Store
    public let logger: Logger
    /// The application's modules: those this process runs, and where the others are reached.
    public let modules: Modules
    /// The committed change stream: subscribe from Swift, publish messages to records.
    public let realtime: EventHub
    /// The MQTT broker, when `mqtt.enabled`.
    public let broker: MQTTBroker?
    private let mqttListener = Mutex<MQTTServer?>(nil)
    /// The connection budget every port draws on (HTTP, WebSocket, MQTT), counted from accept.
    public let connections: ConnectionLimiter

    private init(
        app: AppFolder, configuration: RuntimeConfiguration, store: Store, modules: Modules, realtime: EventHub, broker: MQTTBroker?, logger: Logger
    ) {
        self.realtime = realtime
        self.broker = broker
        self.modules = modules
        self.app = app
        self.configuration = configuration
        self.store = store
        self.logger = logger
        // Connections stay below the open-file limit, so the store can always open its files.
        var maximum = configuration.http.maximumConnections
        if let softLimit = FileDescriptorLimit.raise() {
            let budget = FileDescriptorLimit.connectionBudget(softLimit: softLimit)
            if budget < maximum {
                logger.notice(
                    """
                    http.maxConnections lowered from \(maximum) to \(budget): the open-file limit is \(softLimit) \
                    and \(FileDescriptorLimit.reserve) are kept for the store and logs (raise it with ulimit -n)
                    """)
                maximum = budget
            }
        }
        self.connections = ConnectionLimiter(maximum: maximum, maximumPerAddress: configuration.http.maximumConnectionsPerAddress)
    }

    /// Loads the app folder and configuration (defaults, `microlith.yaml`, environment, then
    /// `configure`), opens the store and seeds it on first start.
    public static func start(
        appDirectory: String,
        modules: [any Module] = [],
        environment: [String: String] = ProcessInfo.processInfo.environment,
        configure: (inout RuntimeConfiguration) throws -> Void = { _ in }
    ) async throws -> MicrolithServer {
        let app = try AppFolder.load(appDirectory)
        var configuration = RuntimeConfiguration(appDirectory: appDirectory)
        configuration.http.webRoot = app.webRoot
        if let file = app.configurationFile {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            try configuration.apply(yaml: text, file: file)
        }
        try configuration.apply(environment: environment)
        try configure(&configuration)
        if let roles = configuration.roles {
            let known = Set(RuntimeConfiguration.builtInRoles + modules.map(\.name))
            for role in roles where !known.contains(role) {
                throw RuntimeError(
                    "unknown role '\(role)'; roles are \(RuntimeConfiguration.builtInRoles.joined(separator: ", ")) or a module name"
                        + (modules.isEmpty ? " (this app has no modules)" : " (\(modules.map(\.name).sorted().joined(separator: ", ")))"))
            }
        }
        var logger = Logger(label: "microlith")
        logger.logLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
        let store: Store
        do {
            store = try Store.open(schema: app.schema, configuration: configuration.store, logger: logger)
        } catch let e as StoreError {
            throw RuntimeError(e.message)
        }
        let moduleSet: Modules
        do {
            moduleSet = try Modules(
                modules, runningHere: configuration.roles.map(Set.init), remotes: configuration.moduleEndpoints, store: store,
                keptResponseBytes: configuration.keptResponseBytes, logger: logger)
            if configuration.runs("api") {
                try ResourceRoutes.check(moduleSet, exportedTables: Set(store.tables.compactMap(\.definition.exportName)))
            }
        } catch let error as ModuleConfigurationError {
            store.close()
            throw RuntimeError(error.description)
        } catch {
            store.close()
            throw error
        }
        for name in moduleSet.unplacedModules {
            logger.notice("module \(name) does not run here and modules.\(name).url is not set: calls to it will fail")
        }
        do {
            try await Seeder(store: store, logger: logger).seedIfNeeded(files: app.seedFiles)
        } catch {
            store.close()
            await moduleSet.shutdown()
            throw error
        }
        let hub: EventHub
        do {
            hub = try await EventHub.start(
                store: store, bufferEvents: configuration.realtimeBufferEvents, bufferBytes: configuration.realtimeBufferBytes, logger: logger)
        } catch {
            store.close()
            await moduleSet.shutdown()
            throw error
        }
        let broker =
            configuration.mqtt.enabled
            ? MQTTBroker(configuration: configuration.mqtt, hub: hub, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger) : nil
        return MicrolithServer(
            app: app, configuration: configuration, store: store, modules: moduleSet, realtime: hub, broker: broker, logger: logger)
    }

    /// The `Server` header of every response.
    static let serverName = "microlith"

    /// The HTTP application (not yet running).
    ///
    /// Besides the HTTP server it runs, as services of the same lifecycle, the job worker (role
    /// `worker`) and the scheduler (role `cron`). On shutdown the server stops first (no new
    /// requests, in-flight ones finish), then the worker lets running jobs finish.
    public func makeApplication(onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) -> some ApplicationProtocol {
        let api = configuration.runs("api")
        let endpoint = TableEndpoint(store: store, configuration: configuration.http, hooks: modules.tableHooks)
        var openAPI = api ? OpenAPIDocument.make(schema: store.schema) : OpenAPIDocument.make(schema: Schema(tables: [], nestedTypes: [:]))
        OperationRoutes.document(modules, in: &openAPI)
        if api { ResourceRoutes.document(modules, in: &openAPI) }
        let subscriptions = api ? SubscriptionEndpoint(hub: realtime, tables: endpoint) : nil
        let router = RESTRouter.make(
            endpoint: endpoint, openAPI: openAPI, logger: logger, servesTables: api,
            rootIsTaken: api && modules.resources.contains { $0.path == "/" },
            subscriptions: subscriptions)
        OperationRoutes.add(to: router, modules: modules, maximumBodyBytes: configuration.http.maximumBodyBytes)
        if api { ResourceRoutes.add(to: router, modules: modules, maximumBodyBytes: configuration.http.maximumBodyBytes) }
        JobRoutes.add(to: router, store: store)
        let responseCaches = api ? modules.responseCaches : []
        var services: [any Service] = []
        if configuration.runs("worker") {
            services.append(JobWorker(store: store, modules: modules, configuration: configuration.jobs, logger: logger))
        }
        if configuration.runs("cron") {
            services.append(Scheduler(store: store, modules: modules, logger: logger))
        }
        let broker = self.broker
        let upgrade = WebSocketUpgrade(
            subscriptions: subscriptions, broker: { broker }, maximumMessageBytes: min(configuration.http.maximumBodyBytes, 1 << 24))
        // Cache hits (GET /T/id, and what the app keeps) are answered in the event loop, ahead of
        // the router: from the raw bytes on a connection that has needed nothing else yet
        // (CachedReadFastPath), by CachedReadHandler once the full pipeline is there.
        let answers = api ? CachedAnswers(endpoint: endpoint, serverName: Self.serverName, responses: responseCaches) : nil
        let http1 = HTTP1WebSocketUpgradeChannel.Configuration(
            // The guard keeps the idle timeout, whichever pipeline serves the connection.
            http1: .init(
                additionalChannelHandlers: answers.map { [CachedReadHandler(answers: $0)] as [any RemovableChannelHandler] } ?? [],
                idleTimeout: nil),
            ws: .init(maxFrameSize: max(1 << 16, min(configuration.mqtt.maximumPacketBytes, 1 << 24))))
        let limits = HTTPConnectionGuard.Limits(
            headerTimeout: .seconds(Int64(configuration.http.headerTimeoutSeconds)),
            minimumBodyBytesPerSecond: configuration.http.minimumBodyBytesPerSecond,
            idleTimeout: configuration.http.idleTimeoutSeconds > 0 ? .seconds(Int64(configuration.http.idleTimeoutSeconds)) : nil)
        let connections = self.connections
        let maximumBodyBytes = configuration.http.maximumBodyBytes
        // Every connection is guarded from accept: counted, timed and answered even before (or
        // instead of) a first parsable request.
        let server = HTTPServerBuilder { responder in
            GuardedHTTPChannel(
                HTTP1WebSocketUpgradeChannel(
                    responder: responder, configuration: http1,
                    shouldUpgrade: { request, channel, _ in upgrade.decide(request, channel: channel) }),
                limiter: connections, limits: limits, maximumBodyBytes: maximumBodyBytes, answers: answers)
        }
        return Application(
            router: router,
            server: server,
            configuration: .init(address: .hostname(configuration.http.host, port: configuration.http.port), serverName: Self.serverName),
            services: services,
            onServerRunning: onServerRunning,
            logger: logger)
    }

    /// The MQTT listener's port, once ``run(onServerRunning:)`` has bound it.
    public var mqttPort: Int? { mqttListener.withLock { $0?.port } }

    /// Binds the MQTT listener (when enabled); throws a ``RuntimeError`` when the port is taken.
    public func startMQTT() async throws {
        guard let broker, mqttListener.withLock({ $0 == nil }) else { return }
        do {
            let listener = try await MQTTServer.start(broker: broker, group: MultiThreadedEventLoopGroup.singleton, limiter: connections)
            mqttListener.withLock { $0 = listener }
        } catch {
            throw RuntimeError(
                "cannot listen for MQTT on \(configuration.mqtt.host):\(configuration.mqtt.port): \(error); "
                    + "choose another port with --mqtt-port (mqtt.port) or turn the broker off with --no-mqtt (mqtt.enabled: false)")
        }
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully and closes the store.
    /// The MQTT listener (when enabled) is bound first and closed when HTTP has stopped.
    public func run(onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) async throws {
        let application = makeApplication(onServerRunning: onServerRunning)
        do {
            try await startMQTT()
            try await application.runService(gracefulShutdownSignals: [UnixSignal.sigterm, UnixSignal.sigint])
        } catch {
            await stopMQTT()
            await modules.shutdown()
            store.close()
            throw error
        }
        await stopMQTT()
        await modules.shutdown()
        store.close()
    }

    private func stopMQTT() async {
        if let listener = mqttListener.withLock({ $0.take() }) { await listener.stop() }
    }
}
