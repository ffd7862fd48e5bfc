import Foundation
public import MicrolithNATS
public import MicrolithReplication

/// How this node replicates to the other nodes of a cluster (`replication.*` in `microlith.yaml`).
///
/// With no NATS servers the node runs alone. With them, it publishes its own writes to the
/// ``ReplicationStream`` and applies every other node's (``ChangeLogPublisher``,
/// ``ChangeApplier``), and the change-log trim keeps what is not yet published.
public struct ReplicationSettings: Sendable {
    /// The NATS servers (with JetStream) to use; empty: no replication.
    public var servers: [NATSServerAddress] = []
    /// The stream every node of the cluster shares.
    public var stream = ReplicationStream()
    /// How far ahead of this node's clock a change's version may be before it waits.
    public var maximumClockAhead: Duration = .seconds(60)
    /// How long a cluster lease (the one that picks the node firing schedules) lasts unrenewed:
    /// how long schedules pause when its holder dies without a graceful stop.
    public var leaseDuration: Duration = .seconds(10)
    /// How long a write with `X-Replicate-To` waits for the other nodes.
    public var replicateTimeout: Duration = .seconds(5)
    /// How often each table is compared with another node's by digest (`nil`: never on its own).
    public var digestInterval: Duration? = .seconds(600)
    /// Rows written more recently than this are left out of digests (they may be on their way).
    public var digestSettled: Duration = .seconds(30)
    /// How long a process whose node name another running process answers for waits for that
    /// one to stop before it refuses to start.
    public var presenceWait: Duration = .seconds(10)

    public init() {}

    /// The lease `name` of this cluster: kept in the stream `<stream>_LEASES` beside the changes.
    public func lease(name: String) -> ClusterLease.Configuration {
        ClusterLease.Configuration(
            name: name, stream: "\(stream.name)_LEASES", subjectPrefix: "microlith.lease.\(stream.name)", duration: leaseDuration,
            replicas: stream.replicas)
    }

    /// Whether this node replicates.
    public var isEnabled: Bool { !servers.isEmpty }

    /// Parses `replication.nats`: a comma-separated list of `nats://` URLs.
    static func servers(_ text: String, _ name: String) throws -> [NATSServerAddress] {
        let list = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !list.isEmpty else { throw RuntimeError("\(name) must list at least one NATS server such as nats://127.0.0.1:4222") }
        return try list.map { url in
            do {
                return try NATSServerAddress(parsing: url)
            } catch {
                throw RuntimeError("\(name) must list NATS servers such as nats://127.0.0.1:4222, got '\(url)': \(error)")
            }
        }
    }

    /// Checks a node name: it becomes a token of NATS subjects and part of a consumer name.
    static func node(_ text: String, _ name: String) throws -> String {
        if let problem = nameProblem(text) {
            throw RuntimeError("\(name) must be a node name NATS subjects and consumer names can carry, got '\(text)': \(problem)")
        }
        return text
    }

    /// Checks a stream name.
    static func streamName(_ text: String, _ name: String) throws -> String {
        if let problem = nameProblem(text) {
            throw RuntimeError("\(name) must be a JetStream stream name, got '\(text)': \(problem)")
        }
        return text
    }

    /// Why `text` cannot be a subject token and a JetStream name, or `nil`.
    static func nameProblem(_ text: String) -> String? {
        if let problem = NATSSubject.tokenProblem(text) { return problem }
        if text.contains("/") || text.contains("\\") { return "it holds '/' or '\\', which JetStream names cannot" }
        return nil
    }
}
