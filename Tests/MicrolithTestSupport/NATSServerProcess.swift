public import Foundation
import MicrolithProcess

/// A real `nats-server` (the Debian package; `scripts/test` installs it) on a loopback port of
/// its own choosing, its log in a temporary folder; it can be stopped, paused and started again
/// on the same port.
public final class NATSServerProcess: @unchecked Sendable {
    public let folder: URL
    public let arguments: [String]
    public private(set) var port = 0
    private var process: ChildProcess?
    private var starts = 0

    /// The binary, from `PATH` or the Debian location.
    public static var binary: String? {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/bin", "/usr/sbin"]
        return paths.map { $0 + "/nats-server" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Starts a server with `arguments` added (`--user`, `--auth`, `-js`, …).
    public init(_ arguments: [String] = []) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("microlith-nats-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        self.arguments = arguments
        try start()
    }

    deinit {
        process?.terminate()
        process?.waitUntilExit()
        try? FileManager.default.removeItem(at: folder)
    }

    public var url: String { "nats://127.0.0.1:\(port)" }

    /// Starts the server: on a port it picks the first time, on the same port afterwards.
    public func start() throws {
        guard let binary = Self.binary else {
            throw ServerError("nats-server is not installed: apt-get install nats-server (scripts/test installs it)")
        }
        starts += 1
        let log = folder.appendingPathComponent("server-\(starts).log")
        let p = try ChildProcess(
            executable: binary,
            arguments: ["-a", "127.0.0.1", "-p", port == 0 ? "-1" : String(port), "-l", log.path, "-sd", folder.appendingPathComponent("js").path]
                + arguments,
            standardOutput: .discard, standardError: .discard)
        process = p
        // The log says where it listens once it does.
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if let text = try? String(contentsOf: log, encoding: .utf8),
                let line = text.split(separator: "\n").first(where: { $0.contains("Listening for client connections on") }),
                let portText = line.split(separator: ":").last, let found = Int(portText.trimmingCharacters(in: .whitespaces))
            {
                port = found
                return
            }
            guard p.isRunning else { break }
            Thread.sleep(forTimeInterval: 0.02)
        }
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        p.terminate()
        throw ServerError("nats-server did not start: \(text.suffix(2000))")
    }

    /// Stops the server (SIGTERM) and waits for it to exit.
    public func stop() {
        guard let p = process else { return }
        p.terminate()
        p.waitUntilExit()
        process = nil
    }

    /// Pauses (SIGSTOP) or resumes (SIGCONT) the server: connections stay open, nothing is answered.
    public func pause(_ paused: Bool) {
        guard let p = process else { return }
        p.send(paused ? SIGSTOP : SIGCONT)
    }

    public struct ServerError: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }
}
