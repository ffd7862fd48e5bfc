import GRDB
public import MicrolithJSON
public import MicrolithStore

/// Where a node stands in its cluster, read from its store: per database, what it has still to
/// publish, what it has parked, and per peer what it has applied and how late.
public struct ReplicationStatus: Sendable {
    /// One other node, as a database of this node has heard from it.
    public struct Peer: Sendable, Equatable {
        public var node: String
        /// The highest sequence of the peer's change log applied here.
        public var appliedSequence: Int64
        /// The latest version applied here among the peer's writes.
        public var appliedVersion: Int64
        /// When the last batch with the peer's writes was applied (milliseconds since 1970).
        public var appliedAt: Int64
        /// How old the peer's latest write applied here was when it was applied (milliseconds;
        /// clock differences between the nodes count in it).
        public var lagMilliseconds: Int64 { max(0, appliedAt - HybridLogicalClock.milliseconds(of: appliedVersion)) }
    }

    /// One database of the node.
    public struct Database: Sendable, Equatable {
        public var name: String
        /// The highest sequence of the local change log.
        public var latestSequence: Int64
        /// The sequence up to which the local log is published.
        public var publishedSequence: Int64
        /// The node's own writes not yet published (the outbox).
        public var outbox: Int
        /// Deleted records remembered (tombstones).
        public var tombstones: Int
        public var peers: [Peer]
        /// Spans of other nodes' logs that never arrived, being recovered (or that cannot be).
        public var gaps: [ReplicationGap]
    }

    /// This node's name.
    public var node: String
    public var databases: [Database]
    /// Changes from other nodes set aside until they can be applied (``ChangeApplier/parkedCount()``).
    public var parked: Int

    /// Reads the status from `store`.
    public static func read(_ store: Store) async throws -> ReplicationStatus {
        var databases: [Database] = []
        let node = store.nodeID
        for name in store.databaseNames {
            let progress = try await store.appliedProgress(database: name)
            let counts = try await store.read(database: name) { db in
                let published =
                    try String.fetchOne(db, sql: "SELECT value FROM _microlith_meta WHERE key = ?", arguments: [Store.publishedChangeKey])
                    .flatMap { Int64($0) } ?? 0
                let latest = try Store.changeLogBounds(db).latest
                let outbox =
                    try Int.fetchOne(
                        db, sql: "SELECT COUNT(*) FROM _microlith_changelog WHERE seq > ? AND origin = ?", arguments: [published, node]) ?? 0
                let tombstones = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM _microlith_tombstones") ?? 0
                return (published, latest, outbox, tombstones)
            }
            let peers = progress.sorted { $0.key < $1.key }.map { node, p in
                Peer(node: node, appliedSequence: p.sequence, appliedVersion: p.version, appliedAt: p.appliedAt)
            }
            databases.append(
                Database(
                    name: name, latestSequence: counts.1, publishedSequence: counts.0, outbox: counts.2, tombstones: counts.3, peers: peers,
                    gaps: try await store.gaps(database: name)))
        }
        let parked = try await store.read(database: store.databaseNames.first ?? "data") { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM _microlith_parked") ?? 0
        }
        return ReplicationStatus(node: node, databases: databases, parked: parked)
    }

    /// The status as JSON.
    public var json: JSONValue {
        var root = JSONObject()
        root["node"] = .string(node)
        root["parked"] = .int(Int64(parked))
        root["databases"] = .array(
            databases.map { d in
                var o = JSONObject()
                o["name"] = .string(d.name)
                o["latestSequence"] = .int(d.latestSequence)
                o["publishedSequence"] = .int(d.publishedSequence)
                o["outbox"] = .int(Int64(d.outbox))
                o["tombstones"] = .int(Int64(d.tombstones))
                o["gaps"] = .array(
                    d.gaps.map { g in
                        .object([
                            "node": .string(g.origin), "after": .int(g.after), "upto": .int(g.upto), "foundAt": .int(g.foundAt),
                            "problem": g.problem.map(JSONValue.string) ?? .null,
                        ])
                    })
                o["peers"] = .array(
                    d.peers.map { p in
                        .object([
                            "node": .string(p.node), "appliedSequence": .int(p.appliedSequence), "appliedVersion": .int(p.appliedVersion),
                            "appliedAt": .int(p.appliedAt), "lagMilliseconds": .int(p.lagMilliseconds),
                        ])
                    })
                return .object(o)
            })
        return .object(root)
    }

    /// The status as lines for people.
    public var text: String {
        var lines = ["node \(node): \(parked) parked change(s)"]
        for d in databases {
            lines.append(
                "database \(d.name): log at \(d.latestSequence), published to \(d.publishedSequence), outbox \(d.outbox), tombstones \(d.tombstones)")
            if d.peers.isEmpty { lines.append("  no changes from other nodes applied yet") }
            for p in d.peers {
                lines.append("  peer \(p.node): applied up to sequence \(p.appliedSequence), last write \(p.lagMilliseconds) ms old when applied")
            }
            for g in d.gaps {
                let state = g.problem.map { "cannot be recovered: \($0)" } ?? "being recovered"
                lines.append("  gap: entries \(g.after + 1)...\(g.upto) of node \(g.origin)'s log never arrived; \(state)")
            }
        }
        return lines.joined(separator: "\n")
    }
}
