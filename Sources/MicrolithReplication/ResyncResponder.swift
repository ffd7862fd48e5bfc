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
/// `{"from":"node","table":"T","kind":"records"|"tombstones","after":key|null,"limit":n}`,
/// optionally with `"buckets":[i,…],"of":n` (only keys in those buckets, ``TableDigest``); the
/// answer is `{"node":"…","changes":[…],"next":key|null}` (`next` null: the table is done), or
/// `{"problem":"…"}`. A request of kind `digest`, `{"from":"node","table":"T","kind":"digest",
/// "of":n,"before":version}`, is answered with the table's ``TableDigest`` over rows older than
/// `before` (tombstones from `tombstonesSince` on, when given): `{"node":"…","digest":["<16 hex
/// digits>",…],"records":n,"tombstones":n}`; a tombstones request may carry `"since":version` too.
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
        let prefix = stream.resyncPrefix
        let answerer = RequestAnswerer(
            client: client, subjects: ["\(prefix).*", "\(prefix).*.\(store.nodeID)"], what: "resync requests", logger: logger)
        await answerer.run { request in
            let tokens = request.subject.dropFirst(prefix.count + 1).split(separator: ".")
            guard let database = tokens.first.map(String.init) else { return nil }
            return await self.answer(request.payload, database: database)
        }
    }

    /// The answer to the request `payload` for `database`, or `nil` for this node's own request.
    public func answer(_ payload: ByteBuffer, database: String) async -> ByteBuffer? {
        func problem(_ text: String) -> ByteBuffer {
            ByteBuffer(bytes: JSONWriter.encode(.object(["node": .string(store.nodeID), "problem": .string(text)])))
        }
        guard case .object(let o)? = try? JSONParser.parse(payload.readableBytesView), case .string(let from)? = o["from"],
            case .string(let tableName)? = o["table"], case .string(let kind)? = o["kind"],
            kind == "records" || kind == "tombstones" || kind == "digest"
        else {
            return problem(
                #"a resync request is {"from":"node","table":"T","kind":"records"|"tombstones"|"digest","after":key|null,"limit":n}"#)
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
        var bucketCount = 1
        if case .int(let n)? = o["of"] {
            guard (1...4096).contains(n) else { return problem("'of' (the number of buckets) is from 1 to 4096") }
            bucketCount = Int(n)
        }
        if kind == "digest" {
            var before: Int64?
            if case .int(let n)? = o["before"] { before = n }
            var since: Int64?
            if case .int(let n)? = o["tombstonesSince"] { since = n }
            do {
                let digest = try await store.digest(table, buckets: bucketCount, before: before, tombstonesSince: since)
                var answer = JSONObject()
                answer["node"] = .string(store.nodeID)
                answer["digest"] = .array(digest.buckets.map { .string(TableDigest.hex($0)) })
                answer["records"] = .int(Int64(digest.records))
                answer["tombstones"] = .int(Int64(digest.tombstones))
                return ByteBuffer(bytes: JSONWriter.encode(.object(answer)))
            } catch {
                return problem("node \(store.nodeID) could not read \(tableName): \(error)")
            }
        }
        var buckets: Set<Int>?
        if case .array(let list)? = o["buckets"] {
            var set = Set<Int>()
            for item in list {
                guard case .int(let n) = item, n >= 0, n < bucketCount else {
                    return problem("'buckets' holds bucket numbers below 'of' (\(bucketCount))")
                }
                set.insert(Int(n))
            }
            buckets = set
        }
        var since: Int64?
        if case .int(let n)? = o["since"] { since = n }
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
                ? try await store.snapshot(table, after: after, limit: limit, buckets: buckets, bucketCount: bucketCount)
                : try await store.tombstones(table, after: after, limit: limit, buckets: buckets, bucketCount: bucketCount, since: since)
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
