import ArgumentParser
import Foundation

/// `microlith cluster up DIR --nodes N --http-port P --data-dir D`: a local cluster in one
/// command, for trying replication and for tests (``LocalCluster``): three nats-servers as a
/// JetStream cluster (client ports `--nats-port` and the next two), then N nodes of the app,
/// node i serving HTTP on port P+i-1 with its data in `D/node-i`. It prints each node's URL and
/// stops everything on SIGTERM or Ctrl-C (the nodes first, then NATS).
struct ClusterUp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start 3 nats-servers (a JetStream cluster) and N nodes of the app on loopback; stop them all on Ctrl-C.")

    @Argument(help: "The app folder.") var appDirectory: String
    @Option(name: .customLong("nodes"), help: "How many nodes of the app (default 3).") var nodes = 3
    @Option(name: .customLong("http-port"), help: "HTTP port of node 1; node i serves on this + i - 1 (default 9926).") var httpPort = 9926
    @Option(name: .customLong("data-dir"), help: "Folder for every node's and NATS server's data (default <app>/.cluster).")
    var dataDir: String?
    @Option(name: .customLong("nats-port"), help: "Client port of the first nats-server; the others take the next two (default 4222).")
    var natsPort = 4222

    func validate() throws {
        if let problem = LocalCluster.optionProblem(nodes: nodes, httpPort: httpPort, natsPort: natsPort) { throw ValidationError(problem) }
    }

    func run() async throws {
        guard FileManager.default.fileExists(atPath: (appDirectory as NSString).appendingPathComponent("schema.graphql")) else {
            throw UserCommand.fail("\(appDirectory) is not an app folder: it has no schema.graphql")
        }
        let appDirectory = self.appDirectory
        let cluster = LocalCluster(
            nodes: nodes, httpPort: httpPort, natsPort: natsPort,
            dataDirectory: dataDir ?? (appDirectory as NSString).appendingPathComponent(".cluster")
        ) { node in
            (
                LocalCluster.ownExecutable(),
                [
                    "serve", appDirectory, "--host", "127.0.0.1", "--http-port", String(node.httpPort), "--mqtt-port", "0", "--data-dir",
                    node.dataDirectory,
                ]
            )
        }
        do {
            try await cluster.run()
        } catch let error as LocalCluster.Problem {
            throw UserCommand.fail(error.description)
        }
    }
}
