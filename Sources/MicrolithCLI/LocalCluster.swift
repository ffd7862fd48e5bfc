import Foundation
import MicrolithProcess
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// A cluster on loopback for trying replication and for tests, as `microlith cluster up` (and an
/// app's own command line, such as `storefront cluster up`) starts it: three nats-servers as a
/// JetStream cluster (client ports ``natsPort`` and the next two, route ports 2000 above them,
/// data in `<dataDirectory>/nats-1` to `nats-3`, logs beside them), then ``nodes`` nodes, node
/// i serving HTTP on ``httpPort`` + i - 1 with its data in `<dataDirectory>/node-i`, replicating
/// through a stream of three replicas (`MICROLITH_REPLICATION_*` in their environment).
///
/// ``run()`` prints each node's URL, then waits for SIGTERM or SIGINT (Ctrl-C) and stops
/// everything: the nodes first, so they publish what they can while NATS is there, then NATS.
public struct LocalCluster: Sendable {
    /// What a node is started with: its number (from 1), port and data folder.
    public struct Node: Sendable {
        public var index: Int
        public var name: String
        public var httpPort: Int
        public var dataDirectory: String
    }

    /// How many nodes (1 to 32).
    public var nodes: Int
    /// Node 1's HTTP port; node i serves on this + i - 1.
    public var httpPort: Int
    /// The first nats-server's client port; the others take the next two.
    public var natsPort: Int
    /// Where every node's and NATS server's data goes.
    public var dataDirectory: String
    /// The executable and arguments that start a node serving HTTP on its port with its data
    /// folder (the replication settings come in the environment).
    public var command: @Sendable (Node) -> (executable: String, arguments: [String])

    public init(
        nodes: Int = 3, httpPort: Int = 9926, natsPort: Int = 4222, dataDirectory: String,
        command: @escaping @Sendable (Node) -> (executable: String, arguments: [String])
    ) {
        self.nodes = nodes
        self.httpPort = httpPort
        self.natsPort = natsPort
        self.dataDirectory = dataDirectory
        self.command = command
    }

    /// Why the cluster cannot start, or stopped early: printed as the command's error.
    public struct Problem: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// What is wrong with the numbers, if anything: the message names the option.
    public static func optionProblem(nodes: Int, httpPort: Int, natsPort: Int, httpFlag: String = "--http-port") -> String? {
        guard (1...32).contains(nodes) else { return "--nodes must be from 1 to 32, got \(nodes)" }
        guard (1...65535).contains(httpPort), httpPort + nodes - 1 <= 65535 else {
            return "\(httpFlag) must leave room for \(nodes) ports below 65536, got \(httpPort)"
        }
        guard (1...63533).contains(natsPort) else { return "--nats-port must be from 1 to 63533, got \(natsPort)" }
        return nil
    }

    /// Starts the cluster, prints where it is, and stops it on SIGTERM or SIGINT.
    public func run() async throws {
        if let problem = Self.optionProblem(nodes: nodes, httpPort: httpPort, natsPort: natsPort) { throw Problem(problem) }
        guard let nats = Self.natsServer() else {
            throw Problem("nats-server is not installed (Debian: apt-get install nats-server)")
        }
        let data = dataDirectory
        let ports = (0..<3).map { natsPort + $0 }
        let all = ports + ports.map({ $0 + 2000 }) + (0..<nodes).map({ httpPort + $0 })
        if Set(all).count < all.count {
            throw Problem(
                "the HTTP ports \(httpPort)...\(httpPort + nodes - 1) overlap the NATS ports \(natsPort)...\(natsPort + 2) or their route ports \(natsPort + 2000)...\(natsPort + 2002); choose others"
            )
        }
        for port in all where !Self.isFree(port) {
            throw Problem("port \(port) is in use on 127.0.0.1; choose other ports")
        }
        // Trapped before anything starts, so a signal during start-up stops what started.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        var children: [(name: String, process: ChildProcess)] = []
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
                let process = try ChildProcess(
                    executable: nats,
                    arguments: [
                        "-js", "-a", "127.0.0.1", "-p", String(ports[i]), "-sd", folder, "-n", "nats-\(i + 1)", "--cluster_name", "microlith",
                        "--cluster", "nats://127.0.0.1:\(ports[i] + 2000)", "--routes", routes, "-l",
                        (data as NSString).appendingPathComponent("nats-\(i + 1).log"),
                    ])
                children.append(("nats-\(i + 1)", process))
            }
            for (i, port) in ports.enumerated() { try await Self.waitForListener(port, what: "nats-\(i + 1)", process: children[i].process) }
            let urls = ports.map { "nats://127.0.0.1:\($0)" }.joined(separator: ",")
            for i in 1...nodes {
                var environment = ProcessInfo.processInfo.environment
                environment["MICROLITH_REPLICATION_NATS"] = urls
                environment["MICROLITH_REPLICATION_NODE"] = "node-\(i)"
                environment["MICROLITH_REPLICATION_REPLICAS"] = "3"
                let node = Node(
                    index: i, name: "node-\(i)", httpPort: httpPort + i - 1, dataDirectory: (data as NSString).appendingPathComponent("node-\(i)"))
                let (executable, arguments) = command(node)
                children.append((node.name, try ChildProcess(executable: executable, arguments: arguments, environment: environment)))
            }
            for i in 1...nodes { try await Self.waitForListener(httpPort + i - 1, what: "node-\(i)", process: children[2 + i].process) }
        } catch {
            stopAll()
            throw (error as? Problem) ?? Problem("\(error)")
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

    /// This program's own executable (to start nodes of the same app).
    public static func ownExecutable() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// Stops `processes`: SIGTERM (and SIGCONT, for one stopped), then SIGKILL for those still
    /// running after 30 s.
    static func stop(_ processes: [ChildProcess]) {
        for process in processes where process.isRunning {
            process.terminate()
            process.send(SIGCONT)
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while processes.contains(where: \.isRunning) && ContinuousClock.now < deadline { usleep(50_000) }
        for process in processes where process.isRunning { process.send(SIGKILL) }
        for process in processes { process.waitUntilExit() }
    }

    /// Where nats-server is: on the PATH, or where Debian installs it.
    static func natsServer() -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/bin"]
        return path.map { ($0 as NSString).appendingPathComponent("nats-server") }.first { FileManager.default.isExecutableFile(atPath: $0) }
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
    static func waitForListener(_ port: Int, what: String, process: ChildProcess) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while !canConnect(port) {
            guard process.isRunning else {
                // Reaped by `isRunning` just now: waiting returns how it ended at once.
                throw Problem("\(what) exited (\(process.waitUntilExit())) before it listened on port \(port)")
            }
            guard ContinuousClock.now < deadline else { throw Problem("\(what) did not listen on port \(port) within 30 s") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}
