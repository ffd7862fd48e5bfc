public import Logging
import MicrolithJSON
public import MicrolithNATS
import MicrolithSchema
public import MicrolithStore
public import NIOCore

/// Answers other nodes' requests for a table's current rows, page by page: what a node merges
/// when the stream no longer holds what it missed (away longer than the retention, or new to a
/// cluster whose stream was trimmed). See ``PeerResync``.
///
/// Requests arrive on `<resyncPrefix>.<database>` (any node may answer; a node does not answer
/// its own) and `<resyncPrefix>.<database>.<node>` (this node), as
/// `{"from":"node","table":"T","kind":"records"|"tombstones","after":key|null,"limit":n}`; the
/// answer is `{"node":"…","changes":[…],"next":key|null}` (`next` null: the table is done), or
/// `{"problem":"…"}`.
public final class ResyncResponder: Sendable {
    let store: Store
    let client: NATSClient
    let stream: ReplicationStream
    let logger: Logger
    /// Whether this node is itself behind (owes a resync): it then answers nobody, so a node
    /// asking any node does not take a copy as far behind as this one.
    let isBehind: @Sendable () -> Bool

    public init(
        store: Store, client: NATSClient, stream: ReplicationStream = ReplicationStream(), logger: Logger,
        isBehind: @escaping @Sendable () -> Bool = { false }
    ) {
        self.store = store
        self.client = client
        self.stream = stream
        self.logger = logger
        self.isBehind = isBehind
    }

    /// Answers requests until the task is cancelled.
    public func run() async {
        var wait: Duration = .milliseconds(100)
        while !Task.isCancelled {
            do {
                let any = try client.subscribe("\(stream.resyncPrefix).*")
                let mine = try client.subscribe("\(stream.resyncPrefix).*.\(store.nodeID)")
                defer {
                    any.unsubscribe()
                    mine.unsubscribe()
                }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for subscription in [any, mine] {
                        group.addTask {
                            for try await request in subscription {
                                guard let reply = request.replyTo else { continue }
                                let tokens = request.subject.dropFirst(self.stream.resyncPrefix.count + 1).split(separator: ".")
                                guard let database = tokens.first.map(String.init) else { continue }
                                guard let answer = await self.answer(request.payload, database: database) else { continue }
                                try? self.client.publish(reply, payload: answer)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                return
            } catch {
                if Task.isCancelled { return }
                logger.warning("replication: answering resync requests failed: \(error)")
                try? await Task.sleep(for: wait)
                wait = min(wait * 2, .seconds(5))
            }
        }
    }

    /// The answer to the request `payload` for `database`, or `nil` for this node's own request.
    public func answer(_ payload: ByteBuffer, database: String) async -> ByteBuffer? {
        func problem(_ text: String) -> ByteBuffer {
            ByteBuffer(bytes: JSONWriter.encode(.object(["node": .string(store.nodeID), "problem": .string(text)])))
        }
        guard case .object(let o)? = try? JSONParser.parse(payload.readableBytesView), case .string(let from)? = o["from"],
            case .string(let tableName)? = o["table"], case .string(let kind)? = o["kind"], kind == "records" || kind == "tombstones"
        else {
            return problem(#"a resync request is {"from":"node","table":"T","kind":"records"|"tombstones","after":key|null,"limit":n}"#)
        }
        if from == store.nodeID { return nil }
        if isBehind() {
            // Asked by name, say so; asked as any node, leave it to one that is not behind.
            guard o["to"] == .string(store.nodeID) else { return nil }
            return problem("node \(store.nodeID) is behind itself (it owes a resync); ask another node")
        }
        guard let table = store.table(name: tableName, database: database) else {
            return problem("node \(store.nodeID) has no table \(tableName) in database '\(database)'")
        }
        var after: RecordID?
        if let key = o["after"], !key.isNull {
            guard let id = RecordID(json: key, type: table.definition.primaryKeyAttribute.type) else {
                return problem("'after' is not a key of \(tableName)")
            }
            after = id
        }
        var limit = 256
        if case .int(let n)? = o["limit"] { limit = Int(min(max(n, 1), 1000)) }
        do {
            let rows =
                kind == "records"
                ? try await store.snapshot(table, after: after, limit: limit) : try await store.tombstones(table, after: after, limit: limit)
            var answer = JSONObject()
            answer["node"] = .string(store.nodeID)
            answer["changes"] = .array(
                rows.map { ReplicatedChange($0, node: $0.origin, database: database, schema: table.replicationDigest).jsonValue })
            answer["next"] = rows.count < limit ? .null : (rows.last?.id.jsonValue ?? .null)
            return ByteBuffer(bytes: JSONWriter.encode(.object(answer)))
        } catch {
            return problem("node \(store.nodeID) could not read \(tableName): \(error)")
        }
    }
}
