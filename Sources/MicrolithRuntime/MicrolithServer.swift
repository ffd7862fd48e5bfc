public import Foundation
public import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
public import Logging
public import MicrolithAuth
import MicrolithHTTP
import MicrolithJSON
import MicrolithJobs
public import MicrolithMQTT
public import MicrolithModules
public import MicrolithNetwork
public import MicrolithRealtime
import MicrolithReplication
import MicrolithSchema
public import MicrolithStore
public import MicrolithTLS
public import MicrolithTables
public import NIOCore
import NIOPosix
public import Prometheus
public import ServiceLifecycle
import Synchronization
public import UnixSignals

/// One microlith process: an app folder's store and its REST interface.
///
/// ```swift
/// let server = try await MicrolithServer.start(appDirectory: "./examples/todo", configure: { $0.http.port = 9926 })
/// try await server.run { _ in }   // until SIGTERM/SIGINT; then stops accepting, finishes requests, closes the store
/// ```
///
/// ## Lifecycle
///
/// ``start(appDirectory:modules:environment:logger:metricsRegistry:configure:)`` opens (migrates, seeds) the store
/// and sets the parts up; running the server runs every long-lived part as a service of one
/// `ServiceGroup` (swift-service-lifecycle), started in this order:
///
/// 1. the store (its service closes it),
/// 2. the store's maintenance (expiry sweep, change-log trim, statistics),
/// 3. the realtime hub,
/// 4. the modules (the connection pool to modules running elsewhere),
/// 5. with a certificate, the TLS reload on SIGHUP; the session audit (open connections checked
///    against their users),
/// 6. the MQTT listener (when `mqtt.enabled`),
/// 7. the HTTP-to-HTTPS redirect port (with `http.redirectPort`), then the HTTP server, with the
///    job worker (role `worker`) and scheduler (role `cron`).
///
/// A graceful shutdown (SIGTERM or SIGINT with ``run(gracefulShutdownSignals:onServerRunning:)``,
/// the enclosing group's when the server runs as a ``Service``, or
/// ``triggerGracefulShutdown()``) stops them in reverse order, each once the one after it has
/// ended: the HTTP server stops accepting and finishes the requests under way, then the
/// scheduler and the worker (running jobs get their grace period); the MQTT listener closes its
/// connections; the modules release their pools; the hub ends its subscriptions; the maintenance
/// stops; the store closes, last and once. The HTTP server binds only once the MQTT listener
/// has, so a taken MQTT port stops the start before HTTP serves anything. Cancelling the task
/// that runs the server stops every service at once instead (the store closes when its service
/// sees the cancellation).
public final class MicrolithServer: Service, Sendable {
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
    /// The table layer every door reads and writes through: the exported tables, the grammar of
    /// their URLs and topics, and the modules' table hooks.
    public let access: TableAccess
    /// The users who may sign in, and the verification of their credentials.
    public let authenticator: Authenticator
    /// The certificate HTTP and MQTT serve TLS with (read again on SIGHUP), when `tls.certificate` is set.
    public let tls: TLSContextSource?
    /// The lifecycle of the current run: its group, and the listeners it bound.
    private let lifecycle = Mutex<Lifecycle>(Lifecycle())
    /// The replication service's connection and applier, for `GET /_cluster`.
    let replicationMonitor = ReplicationMonitor()
    /// Requests, caches, commits and the rest, for `GET /metrics`; nil with `metrics.enabled: false`.
    let metrics: ServerMetrics?
    /// The log level of each subsystem (`log.level`, `log.levels`; `PUT /_log` while serving). With a
    /// logger of the caller's own, only the level of the whole logger is set from it, at start.
    public let logLevels: LogLevels

    private struct Lifecycle {
        var started = false
        var group: ServiceGroup?
        var shutdownRequested = false
        var mqtt: MQTTListenerService?
        var added: [any Service] = []
        var httpPort: Int?
        var redirectPort: Int?
    }
    /// The connection budget every port draws on (HTTP, WebSocket, MQTT), counted from accept.
    public let connections: ConnectionLimiter
    /// When this server was made (``start(appDirectory:modules:environment:logger:metricsRegistry:configure:)``).
    public let startedAt = Date()
    /// The same moment on the monotonic clock, for uptime.
    let startedInstant = ContinuousClock.now

    private init(
        app: AppFolder, configuration: RuntimeConfiguration, store: Store, modules: Modules, access: TableAccess, authenticator: Authenticator,
        tls: TLSContextSource?, realtime: EventHub, broker: MQTTBroker?, metricsRegistry: PrometheusCollectorRegistry?, logLevels: LogLevels,
        logger: Logger
    ) {
        self.logLevels = logLevels
        self.metrics = configuration.metricsEnabled ? ServerMetrics(registry: metricsRegistry ?? PrometheusCollectorRegistry()) : nil
        self.tls = tls
        self.realtime = realtime
        self.broker = broker
        self.access = access
        self.authenticator = authenticator
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
        // Only a node that fires schedules competes for their lease.
        if configuration.replication.isEnabled && configuration.runs("cron") {
            replicationMonitor.lease = ClusterLease(
                node: store.nodeID, configuration: configuration.replication.lease(name: "schedules"), logger: logger)
        }
    }

    /// Loads the app folder and configuration (defaults, `microlith.yaml`, environment, then
    /// `configure`), opens the store and seeds it on first start.
    ///
    /// - Parameters:
    ///   - logger: where the server logs (its level is set from the configuration's `logLevel`); by
    ///     default a logger labelled `microlith` with a ``RuntimeLogHandler`` (levels per subsystem,
    ///     text or JSON lines on standard error).
    ///   - metricsRegistry: the registry `GET /metrics` writes out, with the server's own metrics in
    ///     it. Pass the one the process bootstrapped swift-metrics with (`serve` does), so that what
    ///     anything reports through swift-metrics appears there too; by default a registry of the
    ///     server's own.
    ///
    /// Nothing runs yet: ``run(gracefulShutdownSignals:onServerRunning:)`` or ``run()`` serves.
    /// A server that is never run leaves the store open for the caller to close.
    public static func start(
        appDirectory: String,
        modules: [any Module] = [],
        environment: [String: String] = ProcessInfo.processInfo.environment,
        logger: Logger? = nil,
        metricsRegistry: PrometheusCollectorRegistry? = nil,
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
        // The server's own handler keeps a level per subsystem, changeable while serving, and
        // writes text or JSON lines. A logger given is wrapped instead: each request sets its id on
        // a copy of it, and wrapped, that formats nothing.
        let baseLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
        let logLevels = LogLevels(base: baseLevel, sources: configuration.logLevels)
        let given = logger
        var logger: Logger
        if let given {
            logger = DeferredMetadataLogHandler.wrap(given)
            logger.logLevel = baseLevel
        } else {
            let format = configuration.logFormat
            logger = Logger(label: "microlith") { label in RuntimeLogHandler(label: label, format: format, levels: logLevels) }
        }
        let tls = try Self.loadTLS(configuration, logger: logger)
        // Over HTTPS the server's own pages have https:// origins (BrowserPolicy).
        configuration.http.secure = tls != nil
        if configuration.replication.isEnabled {
            // A write accepted while NATS is away is published later, never trimmed first; a
            // delete leaves a tombstone older writes from other nodes cannot cross.
            configuration.store.keepUnpublishedChanges = true
            configuration.store.replicating = true
        }
        let store: Store
        do {
            store = try Store.open(schema: app.schema, configuration: configuration.store, logger: logger)
        } catch let e as StoreError {
            throw RuntimeError(e.message)
        }
        if configuration.replication.isEnabled {
            do {
                _ = try ReplicationSettings.node(store.nodeID, "the node name")
            } catch {
                store.close()
                throw RuntimeError("\(error); set replication.node in microlith.yaml")
            }
        }
        // Until the server exists, a failure closes what is open here; afterwards its lifecycle does.
        var opened: Modules?
        do {
            let moduleSet = try Modules(
                modules, runningHere: configuration.roles.map(Set.init), remotes: configuration.moduleEndpoints, store: store,
                keptResponseBytes: configuration.keptResponseBytes, logger: logger)
            opened = moduleSet
            if configuration.runs("api") {
                try ResourceRoutes.check(moduleSet, exportedTables: Set(store.tables.compactMap(\.definition.exportName)))
            }
            for name in moduleSet.unplacedModules {
                logger.notice("module \(name) does not run here and modules.\(name).url is not set: calls to it will fail")
            }
            try await Seeder(store: store, logger: logger).seedIfNeeded(files: app.seedFiles)
            let hub = try await EventHub.start(
                store: store, bufferEvents: configuration.realtimeBufferEvents, bufferBytes: configuration.realtimeBufferBytes, logger: logger)
            let roles = try RolesFile.load(folder: app.path, store: store)
            if let roles {
                logger.info("roles.yaml: roles \(roles.names.joined(separator: ", ")); requests without credentials act as '\(Roles.anonymous)'")
            } else {
                logger.notice("no roles.yaml in \(app.path): every exported table is open to every client (see the Roles article)")
            }
            let access = TableAccess(store: store, hooks: moduleSet.tableHooks, roles: roles)
            for op in moduleSet.localOperations {
                guard case .table(let name, _) = op.permission,
                    store.table(anyName: name) == nil
                else { continue }
                throw RuntimeError(
                    "operation \(op.module).\(op.operation) requires a permission on table '\(name)', which the schema does not declare")
            }
            let users = UserDirectory(store: store, iterations: configuration.passwordIterations)
            try await Self.addFirstSuperUser(users, environment: environment, logger: logger)
            let authenticator = Authenticator(users: users, tokens: TokenIssuer(store: store, configuration: configuration.tokens))
            let broker =
                configuration.mqtt.enabled
                ? MQTTBroker(
                    configuration: configuration.mqtt, hub: hub, access: access, authenticator: authenticator,
                    eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger)
                : nil
            return MicrolithServer(
                app: app, configuration: configuration, store: store, modules: moduleSet, access: access, authenticator: authenticator,
                tls: tls, realtime: hub, broker: broker, metricsRegistry: metricsRegistry, logLevels: logLevels, logger: logger)
        } catch {
            await opened?.shutdown()
            store.close()
            if let error = error as? ModuleConfigurationError { throw RuntimeError(error.description) }
            throw error
        }
    }

    /// Reads the TLS certificate when `tls.certificate` is set (a file that cannot be used stops
    /// the start with a message naming it), and checks the settings that need TLS.
    package static func loadTLS(_ configuration: RuntimeConfiguration, logger: Logger) throws -> TLSContextSource? {
        guard configuration.tls != TLSSettings() else {
            if configuration.http.redirectPort != nil {
                throw RuntimeError(
                    "http.redirectPort redirects plain HTTP to HTTPS, but this server has no certificate: set tls.certificate and tls.privateKey too")
            }
            return nil
        }
        let source: TLSContextSource
        do {
            source = try TLSContextSource(settings: configuration.tls)
        } catch {
            throw RuntimeError(error.description)
        }
        if let redirect = configuration.http.redirectPort, redirect != 0, redirect == configuration.http.port {
            throw RuntimeError("http.redirectPort (\(redirect)) must differ from http.port, which serves HTTPS")
        }
        if configuration.tls.effectiveClientCertificates == .required, configuration.mqtt.enabled, !configuration.mqtt.tls {
            throw RuntimeError(
                "tls.clientCertificates is required but mqtt.tls is false: MQTT would admit clients without a certificate; "
                    + "set mqtt.tls: true, or turn the broker off (mqtt.enabled: false)")
        }
        var serves = ["HTTPS"]
        if configuration.mqtt.enabled && configuration.mqtt.tls { serves.append("MQTT over TLS") }
        logger.info("TLS: \(serves.joined(separator: " and ")) with the \(source.certificateSummary); SIGHUP reads the files again")
        if let expiry = source.notValidAfter {
            if expiry < Date() {
                logger.error("TLS: the certificate in \(configuration.tls.certificateFile ?? "") expired on \(expiry): clients will refuse it")
            } else if expiry < Date().addingTimeInterval(14 * 86_400) {
                logger.warning("TLS: the certificate in \(configuration.tls.certificateFile ?? "") expires on \(expiry); renew it and send SIGHUP")
            }
        }
        return source
    }

    /// Makes the first user, holding the `super_user` role, from `MICROLITH_ADMIN_USER` and
    /// `MICROLITH_ADMIN_PASSWORD` when the store has no user yet; afterwards these variables are ignored.
    static func addFirstSuperUser(_ users: UserDirectory, environment: [String: String], logger: Logger) async throws {
        guard let name = environment["MICROLITH_ADMIN_USER"], !name.isEmpty else { return }
        guard let password = environment["MICROLITH_ADMIN_PASSWORD"], !password.isEmpty else {
            throw RuntimeError("MICROLITH_ADMIN_USER is set but MICROLITH_ADMIN_PASSWORD is not: the first super user needs a password")
        }
        guard try await users.list().isEmpty else { return }
        do {
            try await users.add(name, password: password, roles: [Roles.superUser])
        } catch let refusal as UserDirectory.Refusal {
            throw RuntimeError("MICROLITH_ADMIN_USER: \(refusal.description)")
        }
        logger.notice("made the first user, \(name), with the role \(Roles.superUser) (from MICROLITH_ADMIN_USER)")
    }

    /// The `Server` header of every response.
    static let serverName = "microlith"

    /// The HTTP application (not yet running).
    ///
    /// Besides the HTTP server it runs, as services of the same lifecycle, the job worker (role
    /// `worker`) and the scheduler (role `cron`). On shutdown the server stops first (no new
    /// requests, in-flight ones finish), then the worker lets running jobs finish.
    public func makeApplication(onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) -> some ApplicationProtocol {
        makeApplication(onServerRunning: onServerRunning, beforeServerStarts: nil)
    }

    /// What a write with `X-Replicate-To` waits on: this node's log positions and the other
    /// nodes' progress.
    var replicationWaiter: ReplicationWaiter {
        let store = self.store
        let monitor = replicationMonitor
        let timeout = configuration.replication.replicateTimeout
        return ReplicationWaiter(
            replicating: configuration.replication.isEnabled, timeout: timeout,
            positions: {
                var positions: [String: Int64] = [:]
                for database in store.databaseNames { positions[database] = try await store.latestOwnSequence(database: database) }
                return positions
            },
            wait: { database, sequence, peers in
                guard let progress = monitor.progress else { return 0 }
                return await progress.wait(database: database, sequence: sequence, peers: peers, timeout: timeout)
            })
    }

    /// The HTTP application; `beforeServerStarts` runs (and must return) before it binds its port.
    func makeApplication(
        onServerRunning: @escaping @Sendable (any Channel) async -> Void, beforeServerStarts: (@Sendable () async throws -> Void)?
    ) -> some ApplicationProtocol {
        let api = configuration.runs("api")
        let endpoint = TableEndpoint(access: access, configuration: configuration.http)
        var openAPI = api ? OpenAPIDocument.make(schema: store.schema) : OpenAPIDocument.make(schema: Schema(tables: [], nestedTypes: [:]))
        OperationRoutes.document(modules, in: &openAPI)
        if api { ResourceRoutes.document(modules, in: &openAPI) }
        var subscriptions = api ? SubscriptionEndpoint(hub: realtime, tables: endpoint) : nil
        subscriptions?.sessions = authenticator.sessions
        let router = RESTRouter.make(
            endpoint: endpoint, openAPI: openAPI, logger: logger, servesTables: api,
            rootIsTaken: api && modules.resources.contains { $0.path == "/" },
            subscriptions: subscriptions, authenticator: authenticator, replication: replicationWaiter, recorder: metrics,
            tracing: Spans.enabled)
        OperationRoutes.add(to: router, modules: modules, access: access, maximumBodyBytes: configuration.http.maximumBodyBytes)
        if api {
            ResourceRoutes.add(
                to: router, modules: modules, access: access, maximumBodyBytes: configuration.http.maximumBodyBytes,
                secure: configuration.http.secure)
        }
        JobRoutes.add(to: router, store: store, access: access)
        BackupRoutes.add(to: router, store: store, access: access, directory: configuration.backupDirectory)
        StatusRoutes.add(to: router, server: self)
        if let metrics { MetricsRoutes.add(to: router, server: self, metrics: metrics) }
        LogRoutes.add(to: router, levels: logLevels, access: access, logger: logger)
        // The studio, unless the app serves something at /studio itself.
        if store.table(exportName: "studio") == nil, !modules.resources.contains(where: { $0.path == "/studio" || $0.path == "/studio/" }) {
            // (`/studio/` too: the router takes a path with or without its last slash.)
            router.get("/studio") { _, _ in
                Response(
                    status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-cache"],
                    body: ResponseBody(byteBuffer: StudioPage.html))
            }
            router.head("/studio") { _, _ in
                Response(
                    status: .ok,
                    headers: [
                        .contentType: "text/html; charset=utf-8", .cacheControl: "no-cache", .contentLength: String(StudioPage.html.readableBytes),
                    ])
            }
        } else {
            logger.notice("the app serves /studio itself: the studio is not served")
        }
        ClusterRoutes.add(to: router, store: store, access: access, settings: configuration.replication, monitor: replicationMonitor)
        UserRoutes.add(to: router, authenticator: authenticator, access: access, maximumBodyBytes: configuration.http.maximumBodyBytes)
        if let tokens = authenticator.tokens {
            AuthRoutes.add(
                to: router, authenticator: authenticator, tokens: tokens, maximumBodyBytes: configuration.http.maximumBodyBytes,
                clientAddress: configuration.http.clientAddress)
        }
        let responseCaches = api ? modules.responseCaches : []
        var services: [any Service] = []
        if configuration.runs("worker") {
            services.append(JobWorker(store: store, modules: modules, configuration: configuration.jobs, logger: logger))
        }
        if configuration.runs("cron") {
            let monitor = replicationMonitor
            services.append(Scheduler(store: store, modules: modules, logger: logger) { monitor.scheduleTurn })
        }
        let broker = self.broker
        let upgrade = WebSocketUpgrade(
            subscriptions: subscriptions, broker: { broker }, maximumMessageBytes: min(configuration.http.maximumBodyBytes, 1 << 24),
            policy: configuration.http.browserPolicy, authenticator: authenticator, clientAddress: configuration.http.clientAddress)
        // Cache hits (GET /T/id, and what the app keeps) are answered in the event loop, ahead of
        // the router: from the raw bytes on a connection that has needed nothing else yet
        // (CachedReadFastPath), by CachedReadHandler once the full pipeline is there.
        let answers = api ? CachedAnswers(endpoint: endpoint, serverName: Self.serverName, responses: responseCaches) : nil
        metrics?.answers.withLock { $0 = answers }
        // Anonymous PUTs and POSTs of tables without hooks are run from the event loop too (DirectWriteHandler),
        // except while requests are logged one by one or traced.
        let levels = logLevels
        let writes =
            api
            ? DirectWrites(
                endpoint: endpoint, serverName: Self.serverName, recorder: metrics, logger: logger,
                bypassed: { levels.minimum <= .debug || Spans.enabled })
            : nil
        metrics?.writes.withLock { $0 = writes }
        // New handlers for each connection.
        @Sendable func eventLoopHandlers() -> [any RemovableChannelHandler] {
            var handlers: [any RemovableChannelHandler] = []
            if let writes { handlers.append(DirectWriteHandler(writes: writes)) }
            if let answers { handlers.append(CachedReadHandler(answers: answers)) }
            return handlers
        }
        let http1 = HTTP1WebSocketUpgradeChannel.Configuration(
            // The guard keeps the idle timeout, whichever pipeline serves the connection.
            http1: .init(
                additionalChannelHandlers: eventLoopHandlers(),
                idleTimeout: nil),
            ws: .init(maxFrameSize: max(1 << 16, min(configuration.mqtt.maximumPacketBytes, 1 << 24))))
        let limits = connectionLimits
        let connections = self.connections
        let tls = self.tls
        let maximumBodyBytes = configuration.http.maximumBodyBytes
        let policy = configuration.http.browserPolicy
        // Every connection is guarded from accept: counted, timed and answered even before (or
        // instead of) a first parsable request.
        let server = HTTPServerBuilder { responder in
            GuardedHTTPChannel(
                HTTP1WebSocketUpgradeChannel(
                    responder: responder, configuration: http1,
                    shouldUpgrade: { request, channel, _ in upgrade.decide(request, channel: channel) }),
                limiter: connections, limits: limits, maximumBodyBytes: maximumBodyBytes, policy: policy, answers: answers, tls: tls)
        }
        var application = Application(
            router: router,
            server: server,
            configuration: .init(
                address: .hostname(configuration.http.host, port: configuration.http.port), serverName: Self.serverName,
                backlog: configuration.http.backlog),
            services: services,
            onServerRunning: onServerRunning,
            logger: logger)
        if let beforeServerStarts { application.beforeServerStarts(perform: beforeServerStarts) }
        return application
    }

    /// Runs `service` with the server's own, started before them and stopped after them (a span or
    /// log exporter that must see everything). Add it before the server runs.
    public func addService(_ service: any Service) {
        lifecycle.withLock { $0.added.append(service) }
    }

    /// The MQTT listener's port, once the running server has bound it.
    public var mqttPort: Int? { lifecycle.withLock { $0.mqtt?.port } }

    /// The HTTP port, once the running server has bound it.
    public var httpPort: Int? { lifecycle.withLock { $0.httpPort } }

    /// The plain-HTTP port that redirects to HTTPS (`http.redirectPort`), once bound.
    public var redirectPort: Int? { lifecycle.withLock { $0.redirectPort } }

    /// Serves until the enclosing service group shuts down gracefully, or until
    /// ``triggerGracefulShutdown()``; traps no signal. See the type's "Lifecycle" for what runs and
    /// in which order it stops. A server runs once.
    public func run() async throws {
        try await run(gracefulShutdownSignals: [], onServerRunning: { _ in })
    }

    /// Serves until one of `gracefulShutdownSignals` arrives (or the enclosing group shuts down,
    /// or ``triggerGracefulShutdown()``), then shuts down gracefully; the store is closed when
    /// this returns or throws. `onServerRunning` is called once the HTTP port (and the MQTT port,
    /// when enabled) is bound. A port already taken throws (a ``RuntimeError`` for MQTT).
    public func run(
        gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint],
        onServerRunning: @escaping @Sendable (any Channel) async -> Void
    ) async throws {
        let ranBefore = lifecycle.withLock { l in
            defer { l.started = true }
            return l.started
        }
        guard !ranBefore else { throw RuntimeError("this server has run already; start a new one") }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: makeServices(onServerRunning: onServerRunning).map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
                gracefulShutdownSignals: gracefulShutdownSignals,
                logger: logger))
        let requested = lifecycle.withLock { l in
            l.group = group
            return l.shutdownRequested
        }
        if requested { await group.triggerGracefulShutdown() }
        try await group.run()
    }

    /// Serves until SIGTERM or SIGINT (or `gracefulShutdownSignals`), then shuts down gracefully:
    /// what a `main` calls. ``run()`` alone traps no signal; it is the entry point for a
    /// `ServiceGroup` of the caller's own, which handles the signals.
    public func runService(gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint]) async throws {
        try await run(gracefulShutdownSignals: gracefulShutdownSignals) { _ in }
    }

    /// Shuts the running server down gracefully, as SIGTERM does; before it runs, makes its run
    /// end at once (closing the store).
    public func triggerGracefulShutdown() async {
        let group = lifecycle.withLock { l in
            l.shutdownRequested = true
            return l.group
        }
        await group?.triggerGracefulShutdown()
    }

    /// The services of one run, in start order (they stop in reverse).
    private func makeServices(onServerRunning: @escaping @Sendable (any Channel) async -> Void) -> [any Service] {
        let mqtt = broker.map {
            MQTTListenerService(broker: $0, connections: connections, tls: configuration.mqtt.tls ? tls : nil, logger: logger)
        }
        lifecycle.withLock { $0.mqtt = mqtt }
        // The HTTP server binds once the MQTT listener has.
        var beforeServerStarts: (@Sendable () async throws -> Void)?
        if let mqtt { beforeServerStarts = { try await mqtt.waitUntilListening() } }
        let application = makeApplication(
            onServerRunning: { [self] channel in
                lifecycle.withLock { $0.httpPort = channel.localAddress?.port }
                await onServerRunning(channel)
            },
            beforeServerStarts: beforeServerStarts)
        // Services added from outside (the span exporter) start first and stop last.
        var services: [any Service] = lifecycle.withLock { $0.added }
        services += [
            StoreService(store: store, logger: logger),
            StoreMaintenanceService(store: store, logger: logger),
            EventHubService(hub: realtime, logger: logger),
            ModulesService(modules: modules, logger: logger),
        ]
        if configuration.replication.isEnabled {
            services.append(ReplicationService(store: store, settings: configuration.replication, monitor: replicationMonitor, logger: logger))
        }
        if let tls { services.append(TLSReloadService(source: tls, logger: logger)) }
        services.append(
            SessionAuditService(sessions: authenticator.sessions, interval: .seconds(configuration.sessionCheckSeconds), logger: logger))
        if let mqtt { services.append(mqtt) }
        if tls != nil, let port = configuration.http.redirectPort { services.append(makeRedirect(port: port)) }
        services.append(HTTPService(application: application, logger: logger))
        return services
    }
}

extension MicrolithServer {
    /// The time limits of every HTTP connection (``HTTPConnectionGuard``), from `http.*`.
    var connectionLimits: HTTPConnectionGuard.Limits {
        HTTPConnectionGuard.Limits(
            headerTimeout: .seconds(Int64(configuration.http.headerTimeoutSeconds)),
            minimumBodyBytesPerSecond: configuration.http.minimumBodyBytesPerSecond,
            idleTimeout: configuration.http.idleTimeoutSeconds > 0 ? .seconds(Int64(configuration.http.idleTimeoutSeconds)) : nil)
    }

    /// The plain-HTTP listener of `http.redirectPort`: every request is redirected to HTTPS
    /// (``HTTPSRedirect``), under the same connection limits, timeouts and Host check as HTTPS.
    func makeRedirect(port: Int) -> HTTPService {
        let limits = connectionLimits
        let connections = self.connections
        let policy = configuration.http.browserPolicy
        let maximumBodyBytes = configuration.http.maximumBodyBytes
        let application = Application(
            responder: HTTPSRedirect(httpsPort: { [self] in httpPort }),
            server: HTTPServerBuilder { responder in
                // The pipeline of the HTTPS port (where the guard's inspector expects HTTP/1 parts),
                // with no upgrade accepted.
                GuardedHTTPChannel(
                    HTTP1WebSocketUpgradeChannel(
                        responder: responder, configuration: .init(http1: .init(idleTimeout: nil)),
                        shouldUpgrade: { _, _, _ -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>> in .dontUpgrade }),
                    limiter: connections, limits: limits, maximumBodyBytes: maximumBodyBytes, policy: policy)
            },
            configuration: .init(address: .hostname(configuration.http.host, port: port), serverName: Self.serverName),
            onServerRunning: { [self] channel in lifecycle.withLock { $0.redirectPort = channel.localAddress?.port } },
            logger: logger)
        return HTTPService(application: application, logger: logger, name: "HTTP to HTTPS redirect")
    }
}

/// The HTTP application (the server, job worker and scheduler in its own group) as the last
/// service of a server's lifecycle: the first to stop.
struct HTTPService: Service, CustomStringConvertible {
    let application: any Service
    let logger: Logger
    var name = "HTTP server"

    var description: String { name }

    func run() async throws {
        try await application.run()
        logger.debug("\(name) stopped")
    }
}
