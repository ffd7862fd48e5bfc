import Foundation
import Microlith

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How the storefront runs: one process, or the four modules as services behind a gateway.
public enum Topology: String, Sendable, CaseIterable {
    /// Every module in one process: in-process calls, one store, pages kept by the runtime.
    case microlith
    /// catalog, inventory, pricing and reviews as four processes (each with its own data),
    /// plus the gateway, all over HTTP with bulk calls, pooled keep-alive and timeouts.
    case services
}

/// Starting the storefront.
public enum Storefront {
    /// The modules that run as their own processes in the services topology, and the tables each owns.
    public static let serviceTables: [String: Set<String>] = [
        "catalog": ["Category", "Product"], "inventory": ["Stock", "Order"], "pricing": ["Price"], "reviews": ["Review"],
    ]

    public struct Options: Sendable {
        public var topology: Topology = .microlith
        public var port = 9926
        public var host = "127.0.0.1"
        public var dataDirectory = ".storefront"
        public var scale = 1
        /// Every product's stock when the data is first seeded (`--stock`); `nil` gives each
        /// product its own level from 0 to 120.
        public var stock: Int?
        /// Whether an empty store is seeded with the catalogue (`--no-seed` turns it off: a
        /// second node of a cluster gets the first node's catalogue by replication, rather than
        /// seeding a copy of its own whose later writes would race the first node's checkouts).
        public var seed = true
        public var appDirectory: String
        public var logLevel = "notice"
        /// Whether pages are kept (`--cache on|off`); off renders every request, as the services
        /// topology's gateway does.
        public var cache = true
        /// The gateway's MQTT port (`--mqtt-port`); `nil` runs no broker.
        public var mqttPort: Int?
        /// The `storefront` binary the services topology starts its service processes with
        /// (by default this very executable).
        public var serviceExecutable = Storefront.executablePath()

        public init(appDirectory: String) {
            self.appDirectory = appDirectory
        }
    }

    static func modules(_ names: Set<String>) -> [any Module] {
        var modules: [any Module] = []
        if names.contains("catalog") { modules.append(CatalogModule()) }
        if names.contains("inventory") { modules.append(InventoryModule()) }
        if names.contains("pricing") { modules.append(PricingModule()) }
        if names.contains("reviews") { modules.append(ReviewsModule()) }
        return modules
    }

    /// Starts the storefront's HTTP server in this process (for the services topology, after
    /// starting the four service processes) and returns it with the processes to stop afterwards.
    public static func start(_ options: Options) async throws -> (MicrolithServer, [ChildProcess]) {
        let templates = try GatewayModule.loadTemplates(appDirectory: options.appDirectory)
        switch options.topology {
        case .microlith:
            let server = try await gateway(options, templates: templates) { c in c.store.directory = options.dataDirectory }
            if options.seed {
                try await CatalogGenerator(scale: options.scale, stock: options.stock).seed(
                    server.store, tables: Set(serviceTables.values.flatMap { $0 }), logger: server.logger)
            }
            return (server, [])
        case .services:
            var processes: [ChildProcess] = []
            var endpoints: [String: RemoteEndpoint] = [:]
            do {
                for name in serviceTables.keys.sorted() {
                    let (process, port) = try launchService(name, options)
                    processes.append(process)
                    endpoints[name] = RemoteEndpoint(url: "http://127.0.0.1:\(port)", timeout: .seconds(5))
                }
                let server = try await gateway(options, templates: templates) { c in
                    c.store.directory = (options.dataDirectory as NSString).appendingPathComponent("gateway")
                    c.roles = ["api", "gateway"]
                    c.moduleEndpoints = endpoints
                }
                return (server, processes)
            } catch {
                stop(processes)
                throw error
            }
        }
    }

    /// The process serving the pages on `options.port`: every module known, the gateway's
    /// templates, then `placement` (data folder, roles, where the others run).
    static func gateway(
        _ options: Options, templates: TemplateLibrary, _ placement: @escaping (inout RuntimeConfiguration) -> Void
    ) async throws -> MicrolithServer {
        try await MicrolithServer.start(
            appDirectory: options.appDirectory, modules: modules(Set(serviceTables.keys)) + [GatewayModule(templates: templates)],
            environment: ProcessInfo.processInfo.environment
        ) { c in
            c.http.port = options.port
            c.http.host = options.host
            c.logLevel = options.logLevel
            c.mqtt.enabled = options.mqttPort != nil
            if !options.cache { c.keptResponseBytes = 0 }
            c.mqtt.host = options.host
            if let port = options.mqttPort { c.mqtt.port = port }
            placement(&c)
        }
    }

    /// Runs one module as a service process (the services topology's children).
    public static func serveModule(_ name: String, _ options: Options, announce: @escaping @Sendable (Int) -> Void) async throws {
        guard let tables = serviceTables[name] else {
            throw RuntimeError("no service named '\(name)'; services: \(serviceTables.keys.sorted().joined(separator: ", "))")
        }
        let parent = getppid()
        try await withThrowingDiscardingTaskGroup { group in
            // Go when the storefront that started this process goes, even when it was killed:
            // SIGTERM, a graceful shutdown once serving.
            group.addTask {
                while getppid() == parent, !Task.isCancelled { try? await Task.sleep(for: .milliseconds(500)) }
                if !Task.isCancelled { kill(getpid(), SIGTERM) }
            }
            let server = try await MicrolithServer.start(
                appDirectory: options.appDirectory, modules: modules([name]), environment: ProcessInfo.processInfo.environment
            ) { c in
                c.http.port = options.port
                c.http.host = "127.0.0.1"
                c.store.directory = options.dataDirectory
                c.logLevel = options.logLevel
                c.roles = [name]
                c.mqtt.enabled = false
            }
            try await CatalogGenerator(scale: options.scale, stock: options.stock).seed(server.store, tables: tables, logger: server.logger)
            try await server.run { channel in announce(channel.localAddress?.port ?? 0) }
            group.cancelAll()
        }
    }

    /// Starts `storefront service NAME` and waits for the port it announces.
    static func launchService(_ name: String, _ options: Options) throws -> (ChildProcess, Int) {
        var arguments = [
            "service", name, "--port", "0", "--data-dir", (options.dataDirectory as NSString).appendingPathComponent(name), "--scale",
            String(options.scale), "--app", options.appDirectory, "--log-level", options.logLevel,
        ]
        if let stock = options.stock { arguments += ["--stock", String(stock)] }
        let process = try ChildProcess(executable: options.serviceExecutable, arguments: arguments, standardOutput: .pipe)
        // The first line says where it listens: "storefront: service NAME on http://127.0.0.1:PORT".
        guard let text = process.readLine() else {
            let ended = process.waitUntilExit()
            throw RuntimeError("service \(name) ended (\(ended)) before it was ready")
        }
        guard let colon = text.split(separator: ":").last, let port = Int(colon.trimmingCharacters(in: .whitespaces)) else {
            process.terminate()
            process.waitUntilExit()
            throw RuntimeError("service \(name) announced no port: \(text)")
        }
        return (process, port)
    }

    /// Stops service processes (SIGTERM) and waits for them.
    public static func stop(_ processes: [ChildProcess]) {
        for p in processes where p.isRunning { p.terminate() }
        for p in processes { p.waitUntilExit() }
    }

    /// The app folder (schema.graphql, templates/) built into the package as a resource: beside
    /// the executable (`Storefront_Storefront.resources/app` on Linux, the `.bundle` on macOS), or
    /// in the build folder the binary came from. `nil` when neither is there (a binary copied
    /// away on its own: pass `--app DIR`).
    public static func bundledAppDirectory() -> String? {
        let executableFolder = URL(fileURLWithPath: executablePath()).deletingLastPathComponent()
        let bundles = ["Storefront_Storefront.resources", "Storefront_Storefront.bundle", "Storefront_Storefront.bundle/Contents/Resources"]
        var candidates = bundles.map { executableFolder.appendingPathComponent($0).appendingPathComponent("app").path }
        // The package's own copy, for a binary started from anywhere inside a build of this package.
        candidates.append(builtAppDirectory)
        return candidates.first { FileManager.default.fileExists(atPath: ($0 as NSString).appendingPathComponent("schema.graphql")) }
    }

    /// The resource folder in the source tree this binary was built from.
    static let builtAppDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("app").path

    public static func executablePath() -> String {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        return CommandLine.arguments[0]
    }
}
