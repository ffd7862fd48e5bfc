import Foundation
import Hummingbird
import MicrolithCache
import MicrolithHTTP
public import MicrolithJSON
import MicrolithMQTT
import MicrolithModules
import MicrolithNetwork
import MicrolithRealtime
import MicrolithSchema
public import MicrolithStore
import MicrolithTables

/// `GET /_status`: what an operator asks first (version, uptime, roles, each database's size and
/// records per table, the caches, connections and subscribers), for a super user.
/// `microlith status --url` prints it.
enum StatusRoutes {
    static func add(to router: Router<MicrolithRequestContext>, server: MicrolithServer) {
        let access = server.access
        router.get("/_status") { _, _ -> Response in
            try access.authorize(.superUser, to: "read the server status", for: Principal.current)
            return JobRoutes.json(.object(try await server.status()))
        }
    }
}

extension MicrolithServer {
    /// This runtime's version.
    public static let version = "0.17.0"

    /// The figures `GET /_status` answers.
    public func status() async throws -> JSONObject {
        var root: JSONObject = [
            "version": .string(Self.version), "node": .string(store.nodeID),
            "startedAt": .string(DateValue.format(Int64(startedAt.timeIntervalSince1970 * 1000))),
            "uptimeSeconds": .double(((ContinuousClock.now - startedInstant).milliseconds * 10).rounded() / 10_000),
            "roles": configuration.roles.map { .array($0.map(JSONValue.string)) } ?? .string("all"),
            "dataDirectory": .string(store.configuration.directory),
        ]
        let summaries = try await store.summaries()
        root["databases"] = .array(summaries.map(Self.statusJSON))
        // The schema's tables as clients name them, with their records: what the studio lists.
        root["tables"] = .array(
            store.tables.map { table in
                let definition = table.definition
                let records = summaries.first { $0.name == definition.database }?.tables[definition.name] ?? 0
                return [
                    "name": .string(definition.name), "type": .string(definition.typeName), "database": .string(definition.database),
                    "exportName": definition.exportName.map(JSONValue.string) ?? .null, "key": .string(definition.primaryKey),
                    "indexed": .array(definition.indexedAttributes.map { .string($0.name) }),
                    "attributes": .array(definition.attributes.map { .string($0.name) }), "records": .int(Int64(records)),
                ]
            })
        let records = store.cache.statistics
        root["recordCache"] = [
            "entries": .int(Int64(records.entries)), "bytes": .int(Int64(records.bytes)), "limitBytes": .int(Int64(store.cache.limitBytes)),
            "hits": .int(Int64(clamping: records.hits)), "misses": .int(Int64(clamping: records.misses)),
        ]
        if let kept = modules.keptResponses {
            let s = kept.statistics
            root["responseCache"] = [
                "entries": .int(Int64(s.entries)), "bytes": .int(Int64(s.bytes)), "limitBytes": .int(Int64(kept.limitBytes)),
                "hits": .int(Int64(clamping: s.hits)), "misses": .int(Int64(clamping: s.misses)),
                "invalidations": .int(Int64(clamping: s.invalidations)), "evictions": .int(Int64(clamping: s.evictions)),
            ]
        } else {
            root["responseCache"] = .null
        }
        let counters = connections.counters
        root["connections"] = [
            "open": .int(Int64(connections.openConnections)), "limit": .int(Int64(connections.maximum)),
            "limitPerAddress": .int(Int64(connections.maximumPerAddress)), "evictedIdle": .int(Int64(counters.evicted)),
            "refused": .int(Int64(counters.refused)),
        ]
        root["subscriptions"] = .int(Int64(realtime.subscriptionCount))
        if let broker {
            root["mqtt"] = ["connections": .int(Int64(broker.connectionCount)), "subscriptions": .int(Int64(broker.subscriptionCount))]
        } else {
            root["mqtt"] = .null
        }
        return root
    }

    /// One database's summary as `GET /_status` shows it.
    public static func statusJSON(_ summary: DatabaseSummary) -> JSONValue {
        var tables = JSONObject()
        for (name, count) in summary.tables.sorted(by: { $0.key < $1.key }) { tables[name] = .int(Int64(count)) }
        return [
            "name": .string(summary.name), "bytes": .int(summary.bytes), "logBytes": .int(summary.logBytes), "tables": .object(tables),
            "lastChange": summary.lastChange.map(JSONValue.int) ?? .null,
        ]
    }
}
