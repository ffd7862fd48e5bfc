import Foundation
public import Logging
import MicrolithJSON
public import MicrolithNATS
import NIOCore

/// Keeps two running processes from replicating under one node name (a copied configuration, a
/// second start on another machine): they would publish two logs as one, and each would pass
/// over the other's entries as its own.
///
/// Every replicating process answers on `<presencePrefix>.<node>` (``ReplicationStream/presencePrefix``)
/// with its instance (a token made when it starts), its host and when it started. Before it
/// publishes or applies anything, a process asks there ``otherInstance(timeout:)``: an answer
/// from another instance means the name is taken.
public struct NodePresence: Sendable {
    public let node: String
    /// This process's token.
    public let instance: String
    let client: NATSClient
    let stream: ReplicationStream
    let logger: Logger
    let startedAt: Int64
    let host: String

    public init(node: String, client: NATSClient, stream: ReplicationStream, logger: Logger) {
        self.node = node
        self.instance = NATSClient.randomToken()
        self.client = client
        self.stream = stream
        self.logger = logger
        self.startedAt = Int64(Date().timeIntervalSince1970 * 1000)
        self.host = ProcessInfo.processInfo.hostName
    }

    /// The subject the processes of this node name answer on.
    public var subject: String { "\(stream.presencePrefix).\(node)" }

    /// Another running process that answers for this node's name (`host`, process start), or
    /// `nil` when none answers within `timeout`.
    public func otherInstance(timeout: Duration = .milliseconds(500)) async throws -> String? {
        let request = JSONValue.object(["instance": .string(instance)])
        let answer: NATSMessage
        do {
            answer = try await client.request(subject, payload: ByteBuffer(bytes: JSONWriter.encode(request)), timeout: timeout)
        } catch let error as NATSError where error.kind == .noResponders || error.kind == .timeout {
            return nil
        }
        guard case .object(let o)? = try? JSONParser.parse(answer.payload.readableBytesView), case .string(let other)? = o["instance"],
            other != instance
        else { return nil }
        var said = "instance \(other)"
        if case .string(let host)? = o["host"] { said += " on host \(host)" }
        if case .int(let started)? = o["startedAt"] {
            said += ", started \(Date(timeIntervalSince1970: Double(started) / 1000).formatted(.iso8601))"
        }
        return said
    }

    /// Answers other processes asking for this node's name, until the task is cancelled, and
    /// logs each: a process that asks is being started under a name this one holds.
    public func run() async {
        let answerer = RequestAnswerer(client: client, subjects: [subject], what: "presence requests", logger: logger)
        await answerer.run { request in
            guard case .object(let o)? = try? JSONParser.parse(request.payload.readableBytesView), case .string(let asker)? = o["instance"],
                asker != instance
            else { return nil }
            logger.error("replication: another process (instance \(asker)) is being started as node \(node); this one holds the name")
            let answer = JSONValue.object([
                "instance": .string(instance), "host": .string(host), "startedAt": .int(startedAt), "node": .string(node),
            ])
            return ByteBuffer(bytes: JSONWriter.encode(answer))
        }
    }
}
