public import Logging
import MicrolithJSON
public import MicrolithNATS
import MicrolithSchema
public import MicrolithStore
import NIOCore

/// Brings a node up to date from another node's tables, row by row, when the stream cannot:
/// a node away longer than the stream keeps changes, or new to a cluster whose stream was
/// trimmed, gets every record and every tombstone of a peer (``ResyncResponder``) and merges
/// each as a replicated write, on its stamps (version, then node name, attribute by attribute).
///
/// Nothing is replaced: a row only this node holds stays (it reaches the others through the
/// stream as any write), a row where this node is newer keeps this node's attributes, and a
/// tombstone deletes only what is older than it. Running it when nothing diverged changes
/// nothing.
public struct PeerResync: Sendable {
    /// What a resync did.
    public struct Report: Sendable, Equatable {
        /// The node that answered.
        public var peer: String?
        /// Records and tombstones received.
        public var received = 0
        /// Those that changed something here.
        public var changed = 0
        /// Those this node could not take (a record its schema refuses, a version too far ahead).
        public var refused = 0
    }

    let store: Store
    let client: NATSClient
    let stream: ReplicationStream
    let logger: Logger
    /// Rows per request.
    var pageSize = 256
    /// How long a request waits for its answer.
    var timeout: Duration = .seconds(10)
    /// How far ahead of this node's clock a row's version may be.
    var maximumClockAhead: Duration = .seconds(60)

    public init(store: Store, client: NATSClient, stream: ReplicationStream, maximumClockAhead: Duration = .seconds(60), logger: Logger) {
        self.store = store
        self.client = client
        self.stream = stream
        self.maximumClockAhead = maximumClockAhead
        self.logger = logger
    }

    /// Merges every table of `database` from `peer` (any other node that answers when `nil`).
    public func run(database: String, from peer: String? = nil) async throws -> Report {
        var report = Report(peer: peer)
        for table in store.tables where table.definition.database == database {
            try await pull(table, database: database, buckets: nil, report: &report)
        }
        return report
    }

    /// What comparing digests did (``compare(database:from:buckets:settled:)``).
    public struct DigestReport: Sendable, Equatable {
        /// The node compared with.
        public var peer: String?
        /// Tables compared.
        public var tables = 0
        /// Buckets that differed, over all tables.
        public var differingBuckets = 0
        /// The tables with buckets that differed.
        public var differingTables: [String] = []
        /// Rows received for those buckets, and how many changed something here.
        public var received = 0
        public var changed = 0
        public var refused = 0

        public init(peer: String? = nil) { self.peer = peer }
    }

    /// Compares each table of `database` with `peer`'s (any other node that answers when `nil`)
    /// by ``TableDigest``, over rows written before `settled` ago (writes still on their way do
    /// not count; a row merged here under an older stamp takes a local version, so it may be left
    /// out on one side for that long and its bucket pulled for nothing), tombstones younger than
    /// half their retention, and tables without expiration, and merges the rows of the buckets
    /// that differ, as ``run(database:from:)``
    /// does for whole tables: silent divergence (a change both the stream and its origin's log
    /// lost) heals on the node that lacks the newer row. A peer whose rows are older than this
    /// node's changes nothing here; it heals when it compares with this node.
    public func compare(
        database: String, from peer: String? = nil, buckets: Int = 64, settled: Duration = .seconds(30)
    ) async throws
        -> DigestReport
    {
        var report = DigestReport(peer: peer)
        let now = store.configuration.wallClock()
        let cutoff = HybridLogicalClock.timestamp(milliseconds: now - settled.wholeMilliseconds)
        // Tombstones older than half their retention are left out: each node trims them on its
        // own timer, and one pulled back would be kept anew.
        let tombstonesSince = HybridLogicalClock.timestamp(milliseconds: now - Int64(store.configuration.tombstoneRetentionSeconds) * 500)
        // Records of expiring tables are swept on each node's own timer: not compared.
        for table in store.tables where table.definition.database == database && table.definition.expiration == nil {
            let answer = try await ask(
                database: database, peer: report.peer,
                [
                    "from": .string(store.nodeID), "to": report.peer.map(JSONValue.string) ?? .null, "table": .string(table.name),
                    "kind": .string("digest"), "of": .int(Int64(buckets)), "before": .int(cutoff), "tombstonesSince": .int(tombstonesSince),
                ], what: "digest of \(table.name)")
            guard case .string(let node)? = answer["node"], case .array(let sums)? = answer["digest"] else {
                throw ReplicationError("a digest answer lacks its node or digest")
            }
            report.peer = node
            var theirs: [UInt64] = []
            for sum in sums {
                guard case .string(let hex) = sum, let value = TableDigest.bucketSum(hex: hex) else {
                    throw ReplicationError("a digest answer's buckets are not 16 hexadecimal digits each")
                }
                theirs.append(value)
            }
            let mine = try await store.digest(table, buckets: buckets, before: cutoff, tombstonesSince: tombstonesSince)
            report.tables += 1
            let differing = mine.differingBuckets(from: TableDigest(buckets: theirs))
            guard !differing.isEmpty else { continue }
            report.differingBuckets += differing.count
            report.differingTables.append(table.name)
            var pulled = Report(peer: node)
            try await pull(table, database: database, buckets: (Set(differing), buckets), tombstonesSince: tombstonesSince, report: &pulled)
            report.received += pulled.received
            report.changed += pulled.changed
            report.refused += pulled.refused
        }
        return report
    }

    /// Sends `request` to `peer` (any other node when `nil`) and returns the answer's object, or
    /// throws what went wrong.
    private func ask(database: String, peer: String?, _ request: JSONObject, what: String) async throws -> JSONObject {
        let subject = peer.map { "\(stream.resyncPrefix).\(database).\($0)" } ?? "\(stream.resyncPrefix).\(database)"
        let answer: NATSMessage
        do {
            answer = try await client.request(subject, payload: ByteBuffer(bytes: JSONWriter.encode(.object(request))), timeout: timeout)
        } catch let error as NATSError where error.kind == .noResponders || error.kind == .timeout {
            throw ReplicationError("no other node answered a resync request for \(database) (\(peer ?? "any node")): \(error)")
        }
        guard case .object(let o)? = try? JSONParser.parse(answer.payload.readableBytesView) else {
            throw ReplicationError("a resync answer is not a JSON object")
        }
        if case .string(let problem)? = o["problem"] { throw ReplicationError("resync (\(what)): \(problem)") }
        return o
    }

    /// Merges `table`'s records and tombstones from `report.peer` (any node when `nil`, then the
    /// one that answered), only keys in `buckets` when given.
    private func pull(
        _ table: TableLayout, database: String, buckets: (Set<Int>, of: Int)?, tombstonesSince: Int64? = nil, report: inout Report
    ) async throws {
        for kind in ["records", "tombstones"] {
            var after: JSONValue = .null
            while true {
                var request: JSONObject = [
                    "from": .string(store.nodeID), "to": report.peer.map(JSONValue.string) ?? .null, "table": .string(table.name),
                    "kind": .string(kind), "after": after, "limit": .int(Int64(pageSize)),
                ]
                if let buckets {
                    request["buckets"] = .array(buckets.0.sorted().map { .int(Int64($0)) })
                    request["of"] = .int(Int64(buckets.of))
                }
                if let tombstonesSince, kind == "tombstones" { request["since"] = .int(tombstonesSince) }
                let o = try await ask(database: database, peer: report.peer, request, what: table.name)
                guard case .string(let node)? = o["node"], case .array(let list)? = o["changes"], let next = o["next"] else {
                    throw ReplicationError("a resync answer lacks its node, changes or next")
                }
                report.peer = node
                var writes: [RemoteWrite] = []
                for item in list {
                    let change = try ReplicatedChange(jsonValue: item)
                    report.received += 1
                    if let problem = refusal(change) {
                        report.refused += 1
                        logger.warning("replication: resync of \(table.name)/\(change.id) from \(node) not taken: \(problem)")
                        continue
                    }
                    writes.append(
                        RemoteWrite(
                            table: table, id: change.id, operation: change.operation, version: change.version, origin: change.node,
                            record: change.record, stamps: change.stamps))
                }
                let (changed, refused) = try await merge(writes, database: database)
                report.changed += changed
                report.refused += refused
                if next.isNull { break }
                after = next
            }
        }
    }

    /// Why this node cannot take `change` now, or `nil`.
    private func refusal(_ change: ReplicatedChange) -> String? {
        let ahead = HybridLogicalClock.milliseconds(of: change.version) - store.configuration.wallClock()
        let limit = maximumClockAhead.wholeMilliseconds
        return ahead > limit ? "its version is \(ahead) ms ahead of this node's clock" : nil
    }

    /// Merges `writes` in one transaction; when one does not fit, one by one, leaving it out.
    private func merge(_ writes: [RemoteWrite], database: String) async throws -> (changed: Int, refused: Int) {
        guard !writes.isEmpty else { return (0, 0) }
        do {
            let changed = try await store.write(database: database) { txn in
                var changed = 0
                for write in writes where try txn.apply(write) { changed += 1 }
                return changed
            }
            return (changed, 0)
        } catch let error as StoreError where error.code == .invalidRecord || error.code == .invalidID {
            var changed = 0
            var refused = 0
            for write in writes {
                do {
                    if try await store.write(database: database, { txn in try txn.apply(write) }) { changed += 1 }
                } catch let error as StoreError where error.code == .invalidRecord || error.code == .invalidID {
                    refused += 1
                    logger.warning("replication: resync of \(write.table.name)/\(write.id) not taken: \(error)")
                }
            }
            return (changed, refused)
        }
    }
}
