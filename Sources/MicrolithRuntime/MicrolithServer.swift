public import Foundation
public import Hummingbird
public import Logging
import MicrolithHTTP
public import MicrolithStore
public import NIOCore
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

    private init(app: AppFolder, configuration: RuntimeConfiguration, store: Store, logger: Logger) {
        self.app = app
        self.configuration = configuration
        self.store = store
        self.logger = logger
    }

    /// Loads the app folder and configuration (defaults, `microlith.yaml`, environment, then
    /// `configure`), opens the store and seeds it on first start.
    public static func start(
        appDirectory: String,
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
        var logger = Logger(label: "microlith")
        logger.logLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
        let store: Store
        do {
            store = try Store.open(schema: app.schema, configuration: configuration.store, logger: logger)
        } catch let e as StoreError {
            throw RuntimeError(e.message)
        }
        do {
            try await Seeder(store: store, logger: logger).seedIfNeeded(files: app.seedFiles)
        } catch {
            store.close()
            throw error
        }
        return MicrolithServer(app: app, configuration: configuration, store: store, logger: logger)
    }

    /// The `Server` header of every response.
    static let serverName = "microlith"

    /// The HTTP application (not yet running).
    public func makeApplication(onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) -> some ApplicationProtocol {
        let endpoint = TableEndpoint(store: store, configuration: configuration.http)
        let router = RESTRouter.make(endpoint: endpoint, openAPI: OpenAPIDocument.make(schema: store.schema), logger: logger)
        let limiter = ConnectionLimiter(maximum: configuration.http.maximumConnections)
        return Application(
            router: router,
            // Cache hits of GET /T/id are answered in the event loop, ahead of the router.
            server: .http1(
                configuration: .init(
                    additionalChannelHandlers: [
                        limiter.makeHandler(), CachedReadHandler(endpoint: endpoint, serverName: Self.serverName),
                    ],
                    idleTimeout: configuration.http.idleTimeoutSeconds > 0 ? .seconds(Int64(configuration.http.idleTimeoutSeconds)) : nil)),
            configuration: .init(address: .hostname(configuration.http.host, port: configuration.http.port), serverName: Self.serverName),
            onServerRunning: onServerRunning,
            logger: logger)
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully and closes the store.
    public func run(onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) async throws {
        let application = makeApplication(onServerRunning: onServerRunning)
        defer { store.close() }
        try await application.runService(gracefulShutdownSignals: [UnixSignal.sigterm, UnixSignal.sigint])
    }
}
