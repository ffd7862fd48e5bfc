import Hummingbird
import MicrolithHTTP
import MicrolithJSON
import MicrolithNATS
import MicrolithReplication
import MicrolithSchema
import MicrolithStore
import MicrolithTables

/// `GET /_cluster`: where this node stands among the nodes it replicates with
/// (``ReplicationStatus``: per database the outbox, per peer what was applied and how late),
/// whether it is connected to NATS, and what its consumer has still to deliver. Needs a super
/// user, as the job routes do.
enum ClusterRoutes {
    static func add(
        to router: Router<MicrolithRequestContext>, store: Store, access: TableAccess, settings: ReplicationSettings, monitor: ReplicationMonitor
    ) {
        router.get("/_cluster") { _, _ -> Response in
            try access.authorize(.superUser, to: "read the cluster status", for: Principal.current)
            guard case .object(var root) = try await ReplicationStatus.read(store).json else { return JobRoutes.json(.null) }
            root["replicating"] = .bool(settings.isEnabled)
            if settings.isEnabled {
                root["nats"] = .array(settings.servers.map { .string($0.description) })
                root["stream"] = .string(settings.stream.name)
                root["connected"] = .bool(monitor.client?.isConnected ?? false)
                if let lease = monitor.lease {
                    let holder: JSONValue
                    switch lease.holder {
                    case .this: holder = .string(lease.node)
                    case .other(let node): holder = .string(node)
                    case .unknown: holder = .null
                    }
                    root["schedules"] = .object(["lease": holder, "firesHere": .bool(lease.isHeld)])
                }
                if let repair = monitor.applier?.lastRepair {
                    root["lastRepair"] = .object([
                        "origin": .string(repair.origin), "database": .string(repair.database),
                        "entries": .string("\(repair.after + 1)...\(repair.upto)"), "at": .string(DateValue.format(repair.at)),
                    ])
                }
                if let reports = monitor.applier?.lastResyncReports {
                    var resync = JSONObject()
                    for (database, report) in reports.sorted(by: { $0.key < $1.key }) { resync[database] = ClusterRoutes.json(report) }
                    root["lastResync"] = .object(resync)
                }
                if let digest = monitor.applier?.lastDigestReports {
                    var databases = JSONObject()
                    for (database, report) in digest.reports.sorted(by: { $0.key < $1.key }) { databases[database] = json(report) }
                    root["lastDigest"] = .object(["at": .string(DateValue.format(digest.at)), "databases": .object(databases)])
                }
                if let applier = monitor.applier {
                    do {
                        let info = try await applier.consumerInfo()
                        root["consumer"] = .object([
                            "name": .string(info.name), "pending": .int(Int64(info.pending)), "unacknowledged": .int(Int64(info.ackPending)),
                            "deliveredStreamSequence": .int(Int64(info.delivered.streamSequence)),
                        ])
                    } catch {
                        root["consumer"] = .object(["error": .string("\(error)")])
                    }
                }
            }
            return JobRoutes.json(.object(root))
        }
        // Merges every table from another node, row by row: for silent divergence, or at once
        // after a long absence. `?from=node` asks that node; by default any that answers.
        router.post("/_cluster/resync") { request, _ -> Response in
            try access.authorize(.superUser, to: "resync this node", for: Principal.current)
            guard settings.isEnabled else { throw Problem(.badRequest, "this node does not replicate (replication.nats is not set)") }
            guard let applier = monitor.applier, monitor.client?.isConnected == true else {
                throw Problem(.serviceUnavailable, "this node is not connected to NATS; try again once it is")
            }
            let peer = request.uri.queryParameters.get("from")
            let reports: [String: PeerResync.Report]
            do {
                reports = try await applier.resync(from: peer)
            } catch let error as ReplicationError {
                throw Problem(.serviceUnavailable, error.message)
            }
            var root = JSONObject()
            for (database, report) in reports.sorted(by: { $0.key < $1.key }) { root[database] = json(report) }
            return JobRoutes.json(.object(root))
        }
        // Compares every table with another node's by digest now and merges the rows of the
        // buckets that differ (it also runs every replication.digestIntervalSeconds).
        router.post("/_cluster/digest") { request, _ -> Response in
            try access.authorize(.superUser, to: "compare this node's tables", for: Principal.current)
            guard settings.isEnabled else { throw Problem(.badRequest, "this node does not replicate (replication.nats is not set)") }
            guard let applier = monitor.applier, monitor.client?.isConnected == true else {
                throw Problem(.serviceUnavailable, "this node is not connected to NATS; try again once it is")
            }
            let reports: [String: PeerResync.DigestReport]
            do {
                reports = try await applier.compareDigests(with: request.uri.queryParameters.get("from"))
            } catch let error as ReplicationError {
                throw Problem(.serviceUnavailable, error.message)
            }
            var root = JSONObject()
            for (database, report) in reports.sorted(by: { $0.key < $1.key }) { root[database] = json(report) }
            return JobRoutes.json(.object(root))
        }
    }

    static func json(_ report: PeerResync.DigestReport) -> JSONValue {
        .object([
            "peer": report.peer.map(JSONValue.string) ?? .null, "tables": .int(Int64(report.tables)),
            "differingBuckets": .int(Int64(report.differingBuckets)), "differingTables": .array(report.differingTables.map(JSONValue.string)),
            "received": .int(Int64(report.received)), "changed": .int(Int64(report.changed)), "refused": .int(Int64(report.refused)),
        ])
    }

    static func json(_ report: PeerResync.Report) -> JSONValue {
        .object([
            "peer": report.peer.map(JSONValue.string) ?? .null, "received": .int(Int64(report.received)), "changed": .int(Int64(report.changed)),
            "refused": .int(Int64(report.refused)),
        ])
    }
}
