import ArgumentParser
import Foundation
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// `microlith cluster up DIR --nodes N --http-port P --data-dir D`: a local cluster in one
/// command, for trying replication and for tests. It starts three nats-servers as a JetStream
/// cluster (client ports `--nats-port` and the next two, route ports 2000 above them, data in
/// `D/nats-1` to `D/nats-3`, logs in `D/nats-1.log` to `D/nats-3.log`), then N nodes of the app, node i serving HTTP on port P+i-1 with
/// its data in `D/node-i`, replicating through a stream of three replicas. It prints each
/// node's URL and stops everything on SIGTERM or Ctrl-C (the nodes first, then NATS).
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
        guard (1...32).contains(nodes) else { throw ValidationError("--nodes must be from 1 to 32, got \(nodes)") }
        guard (1...65535).contains(httpPort), httpPort + nodes - 1 <= 65535 else {
            throw ValidationError("--http-port must leave room for \(nodes) ports below 65536, got \(httpPort)")
        }
        guard (1...63533).contains(natsPort) else { throw ValidationError("--nats-port must be from 1 to 63533, got \(natsPort)") }
    }

    func run() async throws {
        guard FileManager.default.fileExists(atPath: (appDirectory as NSString).appendingPathComponent("schema.graphql")) else {
            throw UserCommand.fail("\(appDirectory) is not an app folder: it has no schema.graphql")
        }
        guard let nats = Self.natsServer() else {
            throw UserCommand.fail("nats-server is not installed (Debian: apt-get install nats-server)")
        }
        let data = dataDir ?? (appDirectory as NSString).appendingPathComponent(".cluster")
        let ports = (0..<3).map { natsPort + $0 }
        let all = ports + ports.map({ $0 + 2000 }) + (0..<nodes).map({ httpPort + $0 })
        if Set(all).count < all.count {
            throw UserCommand.fail(
                "the HTTP ports \(httpPort)...\(httpPort + nodes - 1) overlap the NATS ports \(natsPort)...\(natsPort + 2) or their route ports \(natsPort + 2000)...\(natsPort + 2002); choose others"
            )
        }
        for port in all where !Self.isFree(port) {
            throw UserCommand.fail("port \(port) is in use on 127.0.0.1; choose other ports (--http-port, --nats-port)")
        }
        // Trapped before anything starts, so a signal during start-up stops what started.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        var children: [(name: String, process: Process)] = []
        func stopAll() {
            // The nodes first, so they publish what they can while NATS is still there; then NATS.
            Self.stop(children.filter { $0.name.hasPrefix("node-") }.map(\.process))
            Self.stop(children.filter { $0.name.hasPrefix("nats-") }.map(\.process))
        }
        do {
            for i in 0..<3 {
                let folder = (data as NSString).appendingPathComponent("nats-\(i + 1)")
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                let routes = ports.enumerated().filter { $0.offset != i }.map { "nats://127.0.0.1:\($0.element + 2000)" }.joined(separator: ",")
                let process = try Self.launch(
                    nats,
                    [
                        "-js", "-a", "127.0.0.1", "-p", String(ports[i]), "-sd", folder, "-n", "nats-\(i + 1)", "--cluster_name", "microlith",
                        "--cluster", "nats://127.0.0.1:\(ports[i] + 2000)", "--routes", routes, "-l",
                        (data as NSString).appendingPathComponent("nats-\(i + 1).log"),
                    ], environment: nil)
                children.append(("nats-\(i + 1)", process))
            }
            for (i, port) in ports.enumerated() { try await Self.waitForListener(port, what: "nats-\(i + 1)", process: children[i].process) }
            let urls = ports.map { "nats://127.0.0.1:\($0)" }.joined(separator: ",")
            let binary = Self.ownBinary()
            for i in 1...nodes {
                var environment = ProcessInfo.processInfo.environment
                environment["MICROLITH_REPLICATION_NATS"] = urls
                environment["MICROLITH_REPLICATION_NODE"] = "node-\(i)"
                environment["MICROLITH_REPLICATION_REPLICAS"] = "3"
                let process = try Self.launch(
                    binary,
                    [
                        "serve", appDirectory, "--host", "127.0.0.1", "--http-port", String(httpPort + i - 1), "--mqtt-port", "0", "--data-dir",
                        (data as NSString).appendingPathComponent("node-\(i)"),
                    ], environment: environment)
                children.append(("node-\(i)", process))
            }
            for i in 1...nodes { try await Self.waitForListener(httpPort + i - 1, what: "node-\(i)", process: children[2 + i].process) }
        } catch {
            stopAll()
            if let error = error as? ExitCode { throw error }
            throw UserCommand.fail("\(error)")
        }
        print("cluster up: 3 nats-servers (\(ports.map { "nats://127.0.0.1:\($0)" }.joined(separator: ", "))), data in \(data)")
        for i in 1...nodes { print("node-\(i): http://127.0.0.1:\(httpPort + i - 1)") }
        print("Ctrl-C or SIGTERM stops them all")
        fflush(nil)
        for await _ in signals { break }
        print("cluster up: stopping")
        fflush(nil)
        stopAll()
        print("cluster up: stopped")
        fflush(nil)
    }

    /// Stops `processes`: SIGTERM (and SIGCONT, for one stopped), then SIGKILL for those still
    /// running after 30 s.
    static func stop(_ processes: [Process]) {
        for process in processes where process.isRunning {
            process.terminate()
            kill(process.processIdentifier, SIGCONT)
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while processes.contains(where: \.isRunning) && ContinuousClock.now < deadline { usleep(50_000) }
        for process in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        for process in processes { process.waitUntilExit() }
    }

    /// Where nats-server is: on the PATH, or where Debian installs it.
    static func natsServer() -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/bin"]
        return path.map { ($0 as NSString).appendingPathComponent("nats-server") }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// This program's own executable.
    static func ownBinary() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    static func launch(_ executable: String, _ arguments: [String], environment: [String: String]?) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        try process.run()
        return process
    }

    /// Whether nothing listens on `port` of 127.0.0.1.
    static func isFree(_ port: Int) -> Bool {
        !canConnect(port)
    }

    static func canConnect(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// Waits until something listens on `port` (30 s at most), while `process` runs.
    static func waitForListener(_ port: Int, what: String, process: Process) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while !canConnect(port) {
            guard process.isRunning else {
                throw ClusterUpError("\(what) exited (status \(process.terminationStatus)) before it listened on port \(port)")
            }
            guard ContinuousClock.now < deadline else { throw ClusterUpError("\(what) did not listen on port \(port) within 30 s") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    struct ClusterUpError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
