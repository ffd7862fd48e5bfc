import ArgumentParser
import Foundation
import Logging
import Metrics
import MicrolithHTTP
import MicrolithMQTT
import MicrolithRuntime
import MicrolithStore
import NIOCore
import OTel
import Prometheus
import Tracing

/// `microlith serve DIR`: serves an app folder until SIGTERM/SIGINT.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve an app folder (schema.graphql, optional microlith.yaml, data/, web/).",
        discussion: "Flags override microlith.yaml and MICROLITH_* environment variables."
    )

    @Argument(help: "The app folder.")
    var appDirectory: String

    @Option(name: .customLong("http-port"), help: "HTTP port (default 9926; 0 picks a free port).")
    var httpPort: Int?

    @Option(name: .customLong("mqtt-port"), help: "MQTT broker port (default 1883; 0 picks a free port).")
    var mqttPort: Int?

    @Flag(name: .customLong("no-mqtt"), help: "Run no MQTT broker.")
    var noMQTT = false

    @Option(name: .customLong("host"), help: "Address to bind (default 127.0.0.1).")
    var host: String?

    @Option(name: .customLong("data-dir"), help: "Folder for the database files (default <app>/.microlith).")
    var dataDir: String?

    @Option(name: .customLong("durability"), help: "full (fsync every commit, default) or normal.")
    var durability: String?

    @Option(name: .customLong("cache-mb"), help: "Record cache budget in MiB (default 64).")
    var cacheMB: Int?

    @Option(
        name: .customLong("roles"),
        help: "What this process runs, comma-separated: api, worker, cron and module names (default: everything).")
    var roles: String?

    func validate() throws {
        if let httpPort, !(0...65535).contains(httpPort) { throw ValidationError("--http-port must be between 0 and 65535, got \(httpPort)") }
        if let mqttPort, !(0...65535).contains(mqttPort) { throw ValidationError("--mqtt-port must be between 0 and 65535, got \(mqttPort)") }
        if mqttPort != nil && noMQTT { throw ValidationError("--mqtt-port and --no-mqtt contradict each other; give one") }
        if let durability, StoreConfiguration.Durability(rawValue: durability) == nil {
            throw ValidationError("--durability must be full or normal, got '\(durability)'")
        }
        if let cacheMB, cacheMB < 0 { throw ValidationError("--cache-mb must be ≥ 0, got \(cacheMB)") }
    }

    /// Sends the server's spans to the OTLP/HTTP collector at `endpoint`: a tracer for the process
    /// (swift-distributed-tracing's `InstrumentationSystem`), and its exporter run with the server.
    /// The `OTEL_*` variables of the OpenTelemetry specification may override the settings.
    static func startTracing(_ server: MicrolithServer, endpoint: String) throws {
        var configuration = OTel.Configuration.default
        configuration.serviceName = server.configuration.tracingServiceName
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        configuration.traces.enabled = true
        configuration.traces.exporter = .otlp
        configuration.traces.otlpExporter.endpoint = endpoint
        configuration.traces.sampler = .parentBasedTraceIDRatio(ratio: server.configuration.tracingSampleRatio) ?? .parentBasedAlwaysOn
        let (tracer, service) = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(tracer)
        Spans.enable()
        server.addService(service)
        server.logger.info("tracing: spans go to \(endpoint) (OTLP/HTTP), sampling \(server.configuration.tracingSampleRatio)")
    }

    /// The registry swift-metrics reports to in this process, bootstrapped once, on first use.
    static let metricsRegistry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()

    func run() async throws {
        let server: MicrolithServer
        // What the process reports through swift-metrics (the runtime's job and MQTT counters, an
        // app's own) lands in the registry GET /metrics writes out.
        let registry = Self.metricsRegistry
        do {
            server = try await MicrolithServer.start(
                appDirectory: appDirectory, modules: MicrolithCommand.modules, metricsRegistry: registry
            ) { c in
                if let roles { c.roles = try RuntimeConfiguration.parseRoles(roles, "--roles") }
                if let httpPort { c.http.port = httpPort }
                if let host {
                    c.http.host = host
                    c.mqtt.host = host
                }
                if let mqttPort { c.mqtt.port = mqttPort }
                if noMQTT { c.mqtt.enabled = false }
                if let dataDir { c.store.directory = dataDir }
                if let durability, let d = StoreConfiguration.Durability(rawValue: durability) { c.store.durability = d }
                if let cacheMB { c.store.cacheBytes = cacheMB << 20 }
            }
        } catch let error as RuntimeError {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            throw ExitCode.failure
        }
        if let endpoint = server.configuration.tracingEndpoint {
            do {
                try Self.startTracing(server, endpoint: endpoint)
            } catch {
                server.store.close()
                FileHandle.standardError.write(Data("error: tracing.endpoint \(endpoint): \(error)\n".utf8))
                throw ExitCode.failure
            }
        }
        let app = appDirectory
        let dataDirectory = server.configuration.store.directory
        let boundHost = server.configuration.http.host
        do {
            let mqttHost = server.configuration.mqtt.host
            let https = server.tls != nil
            let mqtts = https && server.configuration.mqtt.tls
            try await server.run { channel in
                let port = channel.localAddress?.port ?? 0
                var line = "microlith: serving \(app) on http\(https ? "s" : "")://\(boundHost):\(port) (data in \(dataDirectory))\n"
                if let mqtt = server.mqttPort { line += "microlith: MQTT on mqtt\(mqtts ? "s" : "")://\(mqttHost):\(mqtt)\n" }
                FileHandle.standardOutput.write(Data(line.utf8))
            }
        } catch let error as RuntimeError {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            throw ExitCode.failure
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}
