import GRDB
public import Logging
import MicrolithJSON
public import MicrolithNATS
public import MicrolithStore
public import NIOCore

/// Answers other nodes' requests for entries of this node's log they missed (a gap the stream
/// lost: JetStream on nats-server 2.9 can lose acknowledged messages), from the change log
/// itself, the record of truth.
///
/// Requests arrive on `<repairPrefix>.<node>.<database>` (``ReplicationStream/repairSubject(node:database:)``)
/// as `{"after":a,"upto":b,"limit":n}`; the answer (``RepairReply``) holds this node's own
/// entries with sequences in `(a, b]`, at most `n` and about 512 KiB of them, and where to go on.
/// A span the log was trimmed past is answered with a problem: those entries can no longer be
/// given (a node away that long needs a full resync).
public final class RepairResponder: Sendable {
    let store: Store
    let client: NATSClient
    let stream: ReplicationStream
    let logger: Logger

    public init(store: Store, client: NATSClient, stream: ReplicationStream = ReplicationStream(), logger: Logger) {
        self.store = store
        self.client = client
        self.stream = stream
        self.logger = logger
    }

    /// Answers requests until the task is cancelled.
    public func run() async {
        let answerer = RequestAnswerer(
            client: client, subjects: ["\(stream.repairPrefix).\(store.nodeID).*"], what: "repair requests", logger: logger)
        await answerer.run { request in
            let database = String(request.subject.split(separator: ".").last ?? "")
            return await self.answer(request.payload, database: database).json
        }
    }

    /// The answer to the request `payload` for `database`.
    public func answer(_ payload: ByteBuffer, database: String) async -> RepairReply {
        guard store.databaseNames.contains(database) else {
            return RepairReply(changes: [], next: 0, done: false, problem: "node \(store.nodeID) has no database '\(database)'")
        }
        guard case .object(let o)? = try? JSONParser.parse(payload.readableBytesView), case .int(let after)? = o["after"],
            case .int(let upto)? = o["upto"], after >= 0, upto >= after
        else {
            return RepairReply(changes: [], next: 0, done: false, problem: "a repair request is {\"after\":a,\"upto\":b,\"limit\":n}")
        }
        var limit = 64
        if case .int(let n)? = o["limit"] { limit = Int(min(max(n, 1), 1000)) }
        do {
            let bounds = try await store.changeLogBounds(database: database)
            if let oldest = bounds.oldest, oldest > after + 1 {
                return RepairReply(
                    changes: [], next: after, done: false,
                    problem: "node \(store.nodeID)'s log of \(database) was trimmed past \(after + 1) (it starts at \(oldest))")
            }
            if bounds.oldest == nil && bounds.latest > after {
                return RepairReply(changes: [], next: after, done: false, problem: "node \(store.nodeID)'s log of \(database) was trimmed")
            }
            let digests = store.tables.map(\.replicationDigest)
            var found: [ReplicatedChange] = []
            var bytes = 0
            var position = after
            let cap = 512 << 10
            scan: while position < upto && found.count < limit && bytes < cap {
                let changes = try await store.changes(database: database, after: position, limit: 256)
                guard !changes.isEmpty else {
                    position = upto  // the log ends here: nothing more in the span
                    break
                }
                for change in changes {
                    if change.sequence > upto {
                        position = upto
                        break scan
                    }
                    if found.count >= limit || bytes >= cap { break scan }
                    position = change.sequence
                    guard change.origin == store.nodeID else { continue }
                    let entry = ReplicatedChange(change, node: store.nodeID, database: database, schema: digests[change.table])
                    bytes += entry.json.readableBytes
                    found.append(entry)
                }
            }
            return RepairReply(changes: found, next: min(position, upto), done: position >= upto)
        } catch {
            return RepairReply(changes: [], next: after, done: false, problem: "node \(store.nodeID) could not read its log: \(error)")
        }
    }
}
