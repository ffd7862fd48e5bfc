import ArgumentParser
import Foundation
import Microlith
import Storefront

/// The `storefront` command line: `storefront [serve] [options]` opens the shop (default: one
/// process on port 9926, data in .storefront, pages kept); `storefront service NAME ...` runs one
/// module (the services topology starts these); `storefront cluster up` runs several replicating
/// nodes of the shop and a NATS cluster on loopback.
@main
struct StorefrontMain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storefront",
        abstract: "The storefront reference app: catalog, inventory, pricing and reviews behind a gateway that renders the shop.",
        subcommands: [Serve.self, Service.self, Cluster.self],
        defaultSubcommand: Serve.self
    )

    static func main() async {
        Microlith.runConcurrencyOnEventLoops()
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let error as RuntimeError {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            Foundation.exit(2)
        } catch {
            exit(withError: error)
        }
    }
}

/// What `serve` and `service` share.
struct CommonOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "Folder for the data (default .storefront).")
    var dataDirectory: String?

    @Option(help: "Product multiplier: 1,013 products × N (1 to 1000, default 1).")
    var scale: Int?

    @Option(help: "Every product's stock when the data is first seeded (default: 0 to 120 each).")
    var stock: Int?

    @Option(
        name: .customLong("app"),
        help: "The app folder (schema.graphql, templates/); default: the one built into the package.")
    var appDirectory: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice (default), warning, error or critical.")
    var logLevel: String?

    func validate() throws {
        if let scale, !(1...1000).contains(scale) { throw ValidationError("--scale must be 1 to 1000, got '\(scale)'") }
        if let stock, !(0...1_000_000_000).contains(stock) { throw ValidationError("--stock must be 0 to 1000000000, got '\(stock)'") }
        if let appDirectory, !Self.isAppFolder(appDirectory) {
            throw ValidationError("no storefront app folder at '\(appDirectory)' (it needs schema.graphql and templates/); pass --app DIR")
        }
        if appDirectory == nil, Self.defaultAppDirectory() == nil {
            throw ValidationError("no storefront app folder beside the binary or in the working directory; pass --app DIR")
        }
    }

    /// The options these arguments give, on top of the defaults.
    func options() -> Storefront.Options {
        var options = Storefront.Options(appDirectory: appDirectory ?? Self.defaultAppDirectory() ?? "app")
        if let dataDirectory { options.dataDirectory = dataDirectory }
        if let scale { options.scale = scale }
        options.stock = stock
        if let logLevel { options.logLevel = logLevel }
        return options
    }

    static func isAppFolder(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent("schema.graphql"))
    }

    /// The app folder built into the package, else `app` or `Apps/Storefront/app` here.
    static func defaultAppDirectory() -> String? {
        Storefront.bundledAppDirectory() ?? ["app", "Apps/Storefront/app"].first(where: isAppFolder)
    }
}

/// Validates a port option's value.
func checkPort(_ port: Int?, _ flag: String) throws {
    if let port, !(0...65535).contains(port) { throw ValidationError("\(flag) must be 0 to 65535, got '\(port)'") }
}

extension StorefrontMain {
    /// `storefront serve`: the whole shop, as one process or as five.
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Serve the shop (the default command).")

        @Option(help: "microlith (every module in one process, default) or services (four service processes and the gateway).")
        var topology: String?

        @Option(help: "HTTP port (default 9926; 0 picks a free port).")
        var port: Int?

        @Option(name: .customLong("mqtt-port"), help: "The gateway's MQTT port (default: no broker).")
        var mqttPort: Int?

        @Option(help: "Address to bind (default 127.0.0.1).")
        var host: String?

        @Option(help: "on (pages kept until a commit touches what they read, default) or off (every request rendered).")
        var cache: String?

        @Flag(name: .customLong("no-seed"), help: "Do not seed an empty store with the catalogue (a cluster's second node gets it by replication).")
        var noSeed = false

        @OptionGroup var common: CommonOptions

        func validate() throws {
            if let topology, Topology(rawValue: topology) == nil {
                throw ValidationError("--topology must be microlith or services, got '\(topology)'")
            }
            try checkPort(port, "--port")
            try checkPort(mqttPort, "--mqtt-port")
            if let cache, cache != "on" && cache != "off" { throw ValidationError("--cache must be on or off, got '\(cache)'") }
        }

        func run() async throws {
            var options = common.options()
            if let topology, let t = Topology(rawValue: topology) { options.topology = t }
            if let port { options.port = port }
            if let mqttPort { options.mqttPort = mqttPort }
            if let host { options.host = host }
            if let cache { options.cache = cache == "on" }
            options.seed = !noSeed
            let (server, services) = try await Storefront.start(options)
            let announced = "storefront: serving the shop (\(options.topology.rawValue)) on http://\(options.host):"
            do {
                try await server.run { channel in
                    FileHandle.standardOutput.write(Data("\(announced)\(channel.localAddress?.port ?? 0)\n".utf8))
                }
            } catch {
                Storefront.stop(services)
                throw error
            }
            Storefront.stop(services)
        }
    }

    /// `storefront service NAME`: one module on its own port (the services topology runs four).
    struct Service: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run one module: catalog, inventory, pricing or reviews.")

        @Argument(help: "catalog, inventory, pricing or reviews.")
        var name: String

        @Option(help: "HTTP port (0 picks a free port).")
        var port: Int

        @OptionGroup var common: CommonOptions

        func validate() throws {
            try checkPort(port, "--port")
        }

        func run() async throws {
            var options = common.options()
            options.port = port
            let name = self.name
            try await Storefront.serveModule(name, options) { port in
                FileHandle.standardOutput.write(Data("storefront: service \(name) on http://127.0.0.1:\(port)\n".utf8))
            }
        }
    }

    /// `storefront cluster up --nodes N --port P --data-dir D`: N nodes of the shop (each the
    /// whole shop in one process) replicating through three nats-servers on loopback, node i on
    /// port P+i-1 with its data in `D/node-i` (``LocalCluster``); Ctrl-C stops them all.
    struct Cluster: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a local cluster of the shop.", subcommands: [Up.self])

        struct Up: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Start 3 nats-servers (a JetStream cluster) and N nodes of the shop on loopback; stop them all on Ctrl-C.")

            @Option(help: "How many nodes (default 3).") var nodes = 3
            @Option(help: "HTTP port of node 1; node i serves on this + i - 1 (default 9926).") var port = 9926
            @Option(name: .customLong("nats-port"), help: "Client port of the first nats-server; the others take the next two (default 4222).")
            var natsPort = 4222
            @OptionGroup var common: CommonOptions

            func validate() throws {
                if let problem = LocalCluster.optionProblem(nodes: nodes, httpPort: port, natsPort: natsPort, httpFlag: "--port") {
                    throw ValidationError(problem)
                }
            }

            func run() async throws {
                var passed: [String] = []
                if let scale = common.scale { passed += ["--scale", String(scale)] }
                if let stock = common.stock { passed += ["--stock", String(stock)] }
                if let app = common.appDirectory { passed += ["--app", app] }
                if let level = common.logLevel { passed += ["--log-level", level] }
                let arguments = passed
                let cluster = LocalCluster(
                    nodes: nodes, httpPort: port, natsPort: natsPort, dataDirectory: common.dataDirectory ?? ".storefront-cluster"
                ) { node in
                    // Node 1 seeds the catalogue; the others get it from node 1 by replication (two
                    // seeds would race: a later seed's stock levels overwrite an earlier checkout).
                    (
                        LocalCluster.ownExecutable(),
                        ["serve", "--host", "127.0.0.1", "--port", String(node.httpPort), "--data-dir", node.dataDirectory] + arguments
                            + (node.index == 1 ? [] : ["--no-seed"])
                    )
                }
                do {
                    try await cluster.run()
                } catch let error as LocalCluster.Problem {
                    FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
                    throw ExitCode.failure
                }
            }
        }
    }
}
