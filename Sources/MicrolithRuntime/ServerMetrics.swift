import Foundation
import HTTPTypes
import MicrolithCache
import MicrolithHTTP
import MicrolithJobs
import MicrolithMQTT
import MicrolithModules
import MicrolithNetwork
import MicrolithRealtime
import MicrolithReplication
import MicrolithStore
import Prometheus
import Synchronization

/// A server's metrics: requests by method, route and status with latency histograms (kept in a
/// swift-prometheus registry, which also holds whatever the process reports through
/// swift-metrics when `serve` bootstrapped it), and, read when scraped, the caches, group
/// commits, change log, connections, subscribers, MQTT, jobs and replication lag.
final class ServerMetrics: RequestRecorder, Sendable {
    let registry: PrometheusCollectorRegistry
    /// The event-loop answers of the running server, once it runs.
    let answers = Mutex<CachedAnswers?>(nil)
    /// The event-loop writes of the running server, once it runs.
    let writes = Mutex<DirectWrites?>(nil)

    private struct Key: Hashable {
        var method: HTTPRequest.Method
        var route: String
        var status: Int
    }

    /// A request's counter and its route's histogram, found with one lookup.
    private struct Handles {
        let counter: Counter
        let histogram: DurationHistogram
    }

    private let handles = Mutex<[Key: Handles]>([:])

    /// The latency buckets of requests: 100 µs to 10 s.
    static let buckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2_500), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .microseconds(2_500_000), .seconds(10),
    ]

    private static var requests: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "microlith", subsystem: "http", metricName: "requests", unitName: "total",
            helpText: "Requests answered through the router, by method, route and status")
    }
    private static var durations: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "microlith", subsystem: "http", metricName: "request_duration", unitName: "seconds",
            helpText: "Time from a request's head to its response, through the router")
    }

    private static let methods: Set<HTTPRequest.Method> = [.get, .head, .post, .put, .patch, .delete, .options]

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func record(method: HTTPRequest.Method, route: String, status: Int, duration: Duration) {
        let key = Key(method: method, route: route, status: status)
        let found = handles.withLock { known in
            if let found = known[key] { return found }
            let name = Self.methods.contains(method) ? method.rawValue : "other"
            // The registry gives back the histogram it has for a route it has seen.
            let made = Handles(
                counter: registry.makeCounter(descriptor: Self.requests, labels: [("method", name), ("route", route), ("status", String(status))]),
                histogram: registry.makeDurationHistogram(
                    descriptor: Self.durations, labels: [("method", name), ("route", route)], buckets: Self.buckets))
            known[key] = made
            return made
        }
        found.counter.increment()
        found.histogram.record(duration)
    }

    /// The whole exposition: the registry's metrics, then the figures read now from `server`.
    func render(_ server: MicrolithServer) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        var out = PrometheusText()
        let store = server.store
        out.family(
            "microlith_info", .gauge, "This server: its version and node", [([("version", MicrolithServer.version), ("node", store.nodeID)], 1)])
        out.single("microlith_uptime_seconds", .gauge, "Seconds since the server started", (ContinuousClock.now - server.startedInstant).inSeconds)
        if let answers = answers.withLock({ $0 }) {
            out.family(
                "microlith_http_cached_answers_total", .counter,
                "Requests answered on the event loop ahead of the router, from the record cache or a kept response",
                [
                    ([("kind", "record")], Double(answers.recordAnswers.load(ordering: .relaxed))),
                    ([("kind", "kept")], Double(answers.keptAnswers.load(ordering: .relaxed))),
                ])
        }
        if let writes = writes.withLock({ $0 }) {
            out.family(
                "microlith_http_direct_writes_total", .counter,
                "Anonymous PUTs and POSTs run from the event loop ahead of the router: answered with the record, or refused with a problem",
                [
                    ([("outcome", "answered")], Double(writes.answered.load(ordering: .relaxed))),
                    ([("outcome", "refused")], Double(writes.refused.load(ordering: .relaxed))),
                ])
        }
        if EventLoopGlobalExecutor.isInstalled {
            out.single(
                "microlith_task_resumptions_total", .counter,
                "Swift tasks run from an event loop's queue: a task started or resumed after it waited, not a function call",
                Double(EventLoopGlobalExecutor.enqueuedJobs))
        }
        let cache = store.cache.statistics
        out.single("microlith_record_cache_entries", .gauge, "Records (and known absences) the record cache holds", Double(cache.entries))
        out.single("microlith_record_cache_bytes", .gauge, "Bytes the record cache holds", Double(cache.bytes))
        out.single("microlith_record_cache_limit_bytes", .gauge, "The record cache's budget", Double(store.cache.limitBytes))
        out.single("microlith_record_cache_hits_total", .counter, "Record reads the cache answered", Double(cache.hits))
        out.single("microlith_record_cache_misses_total", .counter, "Record reads the cache could not answer", Double(cache.misses))
        if let kept = server.modules.keptResponses {
            let s = kept.statistics
            out.single("microlith_response_cache_entries", .gauge, "Responses kept", Double(s.entries))
            out.single("microlith_response_cache_bytes", .gauge, "Bytes of kept responses", Double(s.bytes))
            out.single("microlith_response_cache_limit_bytes", .gauge, "The kept responses' budget", Double(kept.limitBytes))
            out.single("microlith_response_cache_hits_total", .counter, "Requests answered with a kept response", Double(s.hits))
            out.single("microlith_response_cache_misses_total", .counter, "Requests for responses that may be kept but were not", Double(s.misses))
            out.single(
                "microlith_response_cache_invalidations_total", .counter, "Kept responses dropped because a commit changed what they read",
                Double(s.invalidations))
            out.single("microlith_response_cache_evictions_total", .counter, "Kept responses dropped to stay within the budget", Double(s.evictions))
        }
        let writes = store.writeStatistics().sorted { $0.key < $1.key }
        out.family("microlith_store_commits_total", .counter, "Group commits", writes.map { ([("database", $0.key)], Double($0.value.commits)) })
        out.family(
            "microlith_store_writes_total", .counter, "Writes carried by group commits",
            writes.map { ([("database", $0.key)], Double($0.value.writes)) })
        out.family(
            "microlith_store_batch_replays_total", .counter,
            "Group commits without savepoints rolled back and run again, a savepoint per write, after a write failed",
            writes.map { ([("database", $0.key)], Double($0.value.replays)) })
        out.family(
            "microlith_store_savepoint_writes_total", .counter,
            "Writes run in a savepoint of their own (batches with a write that is not replayable, and replayed batches)",
            writes.map { ([("database", $0.key)], Double($0.value.savepointWrites)) })
        out.histogram(
            "microlith_store_batch_size", "Writes per group commit", bounds: WriteStatistics.batchBounds,
            writes.map { ([("database", $0.key)], $0.value.batchBuckets, Double($0.value.writes)) })
        out.histogram(
            "microlith_store_commit_seconds", "Time of a group commit's COMMIT: writing the log and, with full durability, its fsync",
            bounds: WriteStatistics.commitBounds, writes.map { ([("database", $0.key)], $0.value.commitBuckets, $0.value.commitSeconds) })
        var logEntries: [(labels: [(String, String)], value: Double)] = []
        var sizes: [(labels: [(String, String)], value: Double)] = []
        var jobs: [(labels: [(String, String)], value: Double)] = []
        let queue = JobQueue(store: store)
        for database in store.databaseNames {
            let bounds = try await store.changeLogBounds(database: database)
            logEntries.append(([("database", database)], Double(bounds.oldest.map { bounds.latest - $0 + 1 } ?? 0)))
            let path = (store.configuration.directory as NSString).appendingPathComponent("\(database).sqlite")
            sizes.append(([("database", database), ("file", "database")], Double(DatabaseSummary.size(of: path))))
            sizes.append(([("database", database), ("file", "log")], Double(DatabaseSummary.size(of: path + "-wal"))))
            // By state only: the queue's index on (state, run_at) answers it without reading the jobs.
            let states = try await queue.counts(database: database)
            for state in JobRecord.State.allCases {
                jobs.append(([("database", database), ("state", state.rawValue)], Double(states[state] ?? 0)))
            }
        }
        out.family("microlith_changelog_entries", .gauge, "Entries the change log retains (its sequence span)", logEntries)
        out.family("microlith_database_file_bytes", .gauge, "Size of each database file and of its write-ahead log", sizes)
        out.family(
            "microlith_jobs", .gauge, "Jobs in the queue by state (dead: failed on every attempt; runs by job: microlith_job_runs_total)", jobs)
        let counters = server.connections.counters
        out.single("microlith_connections_open", .gauge, "Open connections: HTTP, WebSocket and MQTT", Double(server.connections.openConnections))
        out.single("microlith_connections_limit", .gauge, "The connection budget (http.maxConnections)", Double(server.connections.maximum))
        out.single("microlith_connections_refused_total", .counter, "Connections refused for want of room", Double(counters.refused))
        out.single("microlith_connections_evicted_total", .counter, "Idle keep-alive connections closed to make room", Double(counters.evicted))
        var subscribers: [(labels: [(String, String)], value: Double)] = [([("kind", "websocket_sse")], Double(server.realtime.subscriptionCount))]
        if let broker = server.broker {
            subscribers.append(([("kind", "mqtt")], Double(broker.subscriptionCount)))
            out.single("microlith_mqtt_connections", .gauge, "Connected MQTT clients", Double(broker.connectionCount))
        }
        out.family("microlith_subscriptions", .gauge, "Open subscriptions by kind", subscribers)
        if server.configuration.replication.isEnabled {
            let status = try await ReplicationStatus.read(store)
            var lag: [(labels: [(String, String)], value: Double)] = []
            var outbox: [(labels: [(String, String)], value: Double)] = []
            for database in status.databases {
                outbox.append(([("database", database.name)], Double(database.outbox)))
                for peer in database.peers {
                    lag.append(([("database", database.name), ("peer", peer.node)], Double(peer.lagMilliseconds) / 1000))
                }
            }
            out.family("microlith_replication_outbox", .gauge, "Own writes not yet recorded as published", outbox)
            out.family(
                "microlith_replication_lag_seconds", .gauge, "Per peer, how late its last write applied here arrived (commit there to apply here)",
                lag)
        }
        bytes.append(contentsOf: out.text.utf8)
        return bytes
    }
}

extension Duration {
    /// The duration in seconds, with its fraction.
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
