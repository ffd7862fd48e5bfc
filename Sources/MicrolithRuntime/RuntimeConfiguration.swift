import Foundation
public import Logging
public import MicrolithAuth
public import MicrolithHTTP
public import MicrolithJobs
public import MicrolithMQTT
public import MicrolithModules
import MicrolithReplication
public import MicrolithStore
public import MicrolithTLS
import Yams

/// Everything a microlith process is configured with.
///
/// Sources, later ones winning: defaults, `microlith.yaml` in the app folder, environment
/// variables, command-line flags (applied by the caller). Keys (YAML path → environment variable):
///
/// | key | variable | default |
/// |---|---|---|
/// | `http.host` | `MICROLITH_HTTP_HOST` | `127.0.0.1` |
/// | `http.port` | `MICROLITH_HTTP_PORT` | `9926` |
/// | `http.maxBodyBytes` | `MICROLITH_HTTP_MAX_BODY_BYTES` | 1048576 |
/// | `http.maxQueryLength` | `MICROLITH_HTTP_MAX_QUERY_LENGTH` | 8192 |
/// | `http.maxResults` | `MICROLITH_HTTP_MAX_RESULTS` | 10000 |
/// | `http.maxConnections` | `MICROLITH_HTTP_MAX_CONNECTIONS` | 4096 (HTTP, WebSocket and MQTT together) |
/// | `http.maxConnectionsPerAddress` | `MICROLITH_HTTP_MAX_CONNECTIONS_PER_ADDRESS` | 4096 (lower it when clients connect directly) |
/// | `http.headerTimeoutSeconds` | `MICROLITH_HTTP_HEADER_TIMEOUT_SECONDS` | 10 |
/// | `http.minBodyBytesPerSecond` | `MICROLITH_HTTP_MIN_BODY_BYTES_PER_SECOND` | 1024 (0: no floor) |
/// | `http.idleTimeoutSeconds` | `MICROLITH_HTTP_IDLE_TIMEOUT_SECONDS` | 60 (0: never) |
/// | `http.backlog` | `MICROLITH_HTTP_BACKLOG` | 4096 (capped by `net.core.somaxconn`) |
/// | `http.allowedHosts` | `MICROLITH_HTTP_ALLOWED_HOSTS` | none besides IP addresses and names without a dot (a list; `*`: any) |
/// | `http.allowedOrigins` | `MICROLITH_HTTP_ALLOWED_ORIGINS` | none besides the server's own (a list; `*`: any) |
/// | `http.allowFullScans` | `MICROLITH_HTTP_ALLOW_FULL_SCANS` | `true` |
/// | `http.trustedProxies` | `MICROLITH_HTTP_TRUSTED_PROXIES` | none (IP addresses of proxies whose `X-Forwarded-For` names the client) |
/// | `http.redirectPort` | `MICROLITH_HTTP_REDIRECT_PORT` | none (with TLS: a plain-HTTP port answering 308 to HTTPS) |
/// | `tls.certificate` | `MICROLITH_TLS_CERTIFICATE` | none: plain HTTP and MQTT (a PEM file: the certificate, then its chain) |
/// | `tls.privateKey` | `MICROLITH_TLS_PRIVATE_KEY` | none (a PEM file, not encrypted) |
/// | `tls.clientCA` | `MICROLITH_TLS_CLIENT_CA` | none (a PEM file of the authorities that sign client certificates) |
/// | `tls.clientCertificates` | `MICROLITH_TLS_CLIENT_CERTIFICATES` | `optional` with `tls.clientCA`, else `none` (or `required`) |
/// | `store.dataDir` | `MICROLITH_DATA_DIR` | `<app>/.microlith` |
/// | `store.durability` | `MICROLITH_DURABILITY` | `full` (or `normal`) |
/// | `store.cacheMB` | `MICROLITH_CACHE_MB` | 64 |
/// | `store.busyTimeoutMs` | `MICROLITH_BUSY_TIMEOUT_MS` | 2000 (a write waits this long for a lock another process holds, then 503) |
/// | `store.changeLogRetentionHours` | `MICROLITH_CHANGELOG_RETENTION_HOURS` | 24 |
/// | `store.changeLogRetentionSeconds` | `MICROLITH_CHANGELOG_RETENTION_SECONDS` | (the same, in seconds) |
/// | `realtime.bufferEvents` | `MICROLITH_REALTIME_BUFFER_EVENTS` | 1000 (per WebSocket/SSE subscriber) |
/// | `realtime.bufferBytes` | `MICROLITH_REALTIME_BUFFER_BYTES` | 8388608 (per WebSocket/SSE subscriber: bytes of events waiting for the client) |
/// | `mqtt.enabled` | `MICROLITH_MQTT_ENABLED` | `true` |
/// | `mqtt.host` | `MICROLITH_MQTT_HOST` | `127.0.0.1` |
/// | `mqtt.port` | `MICROLITH_MQTT_PORT` | 1883 (0: a free port; 8883 is MQTT over TLS's usual port) |
/// | `mqtt.tls` | `MICROLITH_MQTT_TLS` | `true`: with `tls.certificate`, MQTT speaks TLS too |
/// | `mqtt.allowAnonymous` | `MICROLITH_MQTT_ALLOW_ANONYMOUS` | `true`: clients without a user name connect, as the `anonymous` role |
/// | `mqtt.maxPacketBytes` | `MICROLITH_MQTT_MAX_PACKET_BYTES` | 1048576 |
/// | `mqtt.sessionExpirySeconds` | `MICROLITH_MQTT_SESSION_EXPIRY_SECONDS` | 86400 |
/// | `mqtt.maxQueuedMessages` | `MICROLITH_MQTT_MAX_QUEUED_MESSAGES` | 1000 |
/// | `mqtt.bufferBytes` | `MICROLITH_MQTT_BUFFER_BYTES` | 8388608 (a slower client is dropped) |
/// | `mqtt.connectTimeoutSeconds` | `MICROLITH_MQTT_CONNECT_TIMEOUT_SECONDS` | 10 (for a complete CONNECT after connecting) |
/// | `mqtt.maxKeepAliveSeconds` | `MICROLITH_MQTT_MAX_KEEP_ALIVE_SECONDS` | 3600 (the keep-alive of clients asking for none or more) |
/// | `mqtt.packetTimeoutSeconds` | `MICROLITH_MQTT_PACKET_TIMEOUT_SECONDS` | 60 (to finish a started packet) |
/// | `mqtt.writeTimeoutSeconds` | `MICROLITH_MQTT_WRITE_TIMEOUT_SECONDS` | 30 (to make room for retained messages) |
/// | `mqtt.maxSubscriptionsPerClient` | `MICROLITH_MQTT_MAX_SUBSCRIPTIONS_PER_CLIENT` | 1000 |
/// | `mqtt.maxTopicFiltersPerPacket` | `MICROLITH_MQTT_MAX_TOPIC_FILTERS_PER_PACKET` | 100 |
/// | `mqtt.maxSubscriptionsTotal` | `MICROLITH_MQTT_MAX_SUBSCRIPTIONS_TOTAL` | 100000 |
/// | `mqtt.maxSessions` | `MICROLITH_MQTT_MAX_SESSIONS` | 100000 (connected and kept sessions; kept ones survive restarts) |
/// | `mqtt.maxConnections` | `MICROLITH_MQTT_MAX_CONNECTIONS` | 4096 (MQTT over TCP and WebSocket; past it CONNACK 0x89 / 0x03) |
/// | `mqtt.maxConnectionsPerAddress` | `MICROLITH_MQTT_MAX_CONNECTIONS_PER_ADDRESS` | 4096 (past it CONNACK 0x97 / 0x03) |
/// | `store.nodeID` | `MICROLITH_NODE_ID` | generated once per data folder |
/// | `replication.nats` | `MICROLITH_REPLICATION_NATS` | none: one node (a list of `nats://[user:password@]host[:port]`; set, this node replicates through them) |
/// | `replication.node` | `MICROLITH_REPLICATION_NODE` | the same as `store.nodeID`: this node's name, unique in the cluster (no `.`, `*`, `>` or spaces) |
/// | `replication.stream` | `MICROLITH_REPLICATION_STREAM` | `MICROLITH_CHANGES` (the JetStream stream every node of the cluster shares; another name scopes every subject to it, `microlith.<name>.changes.…`, so clusters sharing NATS under different names stay apart) |
/// | `replication.replicas` | `MICROLITH_REPLICATION_REPLICAS` | 1 (copies the stream keeps: 3 on a cluster of three NATS servers) |
/// | `replication.maxClockAheadSeconds` | `MICROLITH_REPLICATION_MAX_CLOCK_AHEAD_SECONDS` | 60 (a change stamped further ahead of this node's clock waits, logged) |
/// | `replication.leaseSeconds` | `MICROLITH_REPLICATION_LEASE_SECONDS` | 10: how long the lease that picks the one node firing schedules lasts unrenewed (schedules pause that long when its holder dies) |
/// | `replication.replicateTimeoutMs` | `MICROLITH_REPLICATION_REPLICATE_TIMEOUT_MS` | 5000: how long a write with `X-Replicate-To: N` waits for N nodes before it answers 504 |
/// | `replication.digestIntervalSeconds` | `MICROLITH_REPLICATION_DIGEST_INTERVAL_SECONDS` | 600: how often each table is compared with another node's by digest, and the rows that differ merged (0: never on its own; `POST /_cluster/digest` does it at once) |
/// | `replication.digestSettledSeconds` | `MICROLITH_REPLICATION_DIGEST_SETTLED_SECONDS` | 30: rows written more recently are left out of digests (they may still be on their way) |
/// | `replication.retentionHours` | `MICROLITH_REPLICATION_RETENTION_HOURS` | 168: how long the stream keeps changes and the store keeps tombstones; the longest a node may be away |
/// | `log.level` | `MICROLITH_LOG_LEVEL` | `info` |
/// | `log.levels` | `MICROLITH_LOG_LEVELS` | none: levels of single subsystems, `MicrolithStore=debug,MicrolithHTTP=warning` (a YAML map or that text; `PUT /_log` changes them while serving) |
/// | `log.format` | `MICROLITH_LOG_FORMAT` | `text` (or `json`: one object per line with `time`, `level`, `source`, `message`, `requestId`, `metadata`) |
/// | `tracing.endpoint` | `MICROLITH_TRACING_ENDPOINT` | none: no tracing. With it, `serve` sends spans (request, operation, store write) there, OTLP over HTTP |
/// | `tracing.serviceName` | `MICROLITH_TRACING_SERVICE_NAME` | `microlith` |
/// | `tracing.sampleRatio` | `MICROLITH_TRACING_SAMPLE_RATIO` | 1 (the share of requests traced; a traced caller's choice is followed) |
/// | `metrics.enabled` | `MICROLITH_METRICS` | `true` (`GET /metrics` and the request counters behind it) |
/// | `backup.directory` | `MICROLITH_BACKUP_DIR` | `<app>/.microlith-backups` (where `POST /_backup` writes) |
/// | `auth.accessTokenSeconds` | `MICROLITH_AUTH_ACCESS_TOKEN_SECONDS` | 900 (how long a bearer access token is valid) |
/// | `auth.refreshTokenSeconds` | `MICROLITH_AUTH_REFRESH_TOKEN_SECONDS` | 2592000 (30 days) |
/// | `auth.keyRotationSeconds` | `MICROLITH_AUTH_KEY_ROTATION_SECONDS` | 2592000 (a new signing key after 30 days) |
/// | `auth.sessionCheckSeconds` | `MICROLITH_AUTH_SESSION_CHECK_SECONDS` | 30 (how often open subscriptions and MQTT connections are checked against their users) |
/// | `jobs.concurrency` | `MICROLITH_JOBS_CONCURRENCY` | 4 |
/// | `jobs.pollMs` | `MICROLITH_JOBS_POLL_MS` | 500 |
/// | `jobs.leaseSeconds` | `MICROLITH_JOBS_LEASE_SECONDS` | 30 |
/// | `jobs.shutdownGraceSeconds` | `MICROLITH_JOBS_SHUTDOWN_GRACE_SECONDS` | 30 |
/// | `jobs.retentionHours` | `MICROLITH_JOBS_RETENTION_HOURS` | 24 |
/// | `roles` | `MICROLITH_ROLES` | every role and module (a list, or comma-separated) |
/// | `modules.<name>.url` | — | none: where module `<name>` runs when not here |
/// | `modules.<name>.timeoutMs` | — | 5000 |
public struct RuntimeConfiguration: Sendable {
    public var http: HTTPConfiguration
    public var store: StoreConfiguration
    /// swift-log level name.
    public var logLevel: String
    /// Levels of single subsystems (a message's source module), over ``logLevel`` (`log.levels`).
    public var logLevels: [String: Logger.Level] = [:]
    /// How the server writes its log (`log.format`).
    public var logFormat = RuntimeLogHandler.Format.text
    /// What this process runs: built-in roles (``builtInRoles``) and module names; `nil` runs everything.
    public var roles: [String]?
    /// Where modules that do not run here are reached, by module name.
    public var moduleEndpoints: [String: RemoteEndpoint] = [:]
    /// How background jobs and schedules run.
    public var jobs = JobConfiguration()
    /// The MQTT broker.
    public var mqtt = MQTTConfiguration()
    /// Replication to the other nodes of a cluster (`replication.*`); off without NATS servers.
    public var replication = ReplicationSettings()
    /// The certificate every listener serves TLS with, when there is one (`tls.*`).
    public var tls = TLSSettings()
    /// Live events that may wait unread for one WebSocket or SSE subscriber before it is dropped.
    public var realtimeBufferEvents = 1000
    /// Bytes of events that may wait unread, or written but not yet taken by the connection, for one
    /// WebSocket or SSE subscriber before it is dropped.
    public var realtimeBufferBytes = 8 << 20
    /// The memory budget of responses kept for resources declared with `get(keep: true)`
    /// (`cache.responsesMB`); 0 keeps none.
    public var keptResponseBytes = 64 << 20
    /// Whether `GET /metrics` exists and requests are counted (`metrics.enabled`; on by default).
    public var metricsEnabled = true
    /// Where `serve` sends trace spans, OTLP over HTTP (`tracing.endpoint`, such as
    /// `http://127.0.0.1:4318`); no tracing without it.
    public var tracingEndpoint: String?
    /// The service name spans carry (`tracing.serviceName`; `microlith` by default).
    public var tracingServiceName = "microlith"
    /// The share of requests traced, 0 to 1 (`tracing.sampleRatio`; 1 by default).
    public var tracingSampleRatio = 1.0
    /// Where `POST /_backup` writes backups (`backup.directory`; default `<app>/.microlith-backups`).
    public var backupDirectory: String
    /// Bearer token lifetimes and signing-key rotation (`auth.*`).
    public var tokens = TokenIssuer.Configuration()
    /// How often open subscriptions and MQTT connections are checked against their users
    /// (`auth.sessionCheckSeconds`): one whose user was removed, or changed roles or password, ends.
    public var sessionCheckSeconds = 30
    /// The PBKDF2 cost of new password hashes: the documented 600,000, lowered only by this
    /// package's own tests (no setting reaches it).
    package var passwordIterations = PasswordHash.defaultIterations

    /// Roles every process knows: `api` serves the tables and resources over REST; `worker`
    /// runs the background jobs of the modules running here; `cron` fires their schedules.
    public static let builtInRoles = ["api", "worker", "cron"]

    /// Whether this process has `role` (or runs module `role`).
    public func runs(_ role: String) -> Bool {
        roles.map { $0.contains(role) } ?? true
    }

    /// Parses a roles value: a comma-separated list of names.
    public static func parseRoles(_ text: String, _ name: String) throws -> [String] {
        let roles = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !roles.isEmpty else { throw RuntimeError("\(name) must name at least one role or module, got '\(text)'") }
        return roles
    }

    /// The defaults for an app in `appDirectory`.
    public init(appDirectory: String) {
        self.http = HTTPConfiguration(webRoot: nil)
        self.store = StoreConfiguration(
            directory: (appDirectory as NSString).appendingPathComponent(".microlith"), systemTables: [.jobs, .users, .mqtt])
        self.logLevel = "info"
        self.backupDirectory = (appDirectory as NSString).appendingPathComponent(".microlith-backups")
    }

    struct Key: Sendable {
        var path: String
        var environment: String
        var apply: @Sendable (inout RuntimeConfiguration, String, String) throws -> Void
    }

    static func int(_ text: String, _ name: String, min: Int = 0, max: Int? = nil) throws -> Int {
        guard let v = Int(text.trimmingCharacters(in: .whitespaces)), v >= min, v <= (max ?? Int.max) else {
            if let max { throw RuntimeError("\(name) must be an integer from \(min) to \(max), got '\(text)'") }
            throw RuntimeError("\(name) must be an integer ≥ \(min), got '\(text)'")
        }
        return v
    }

    /// A comma-separated list of host names (`*` for any): no scheme, port or path.
    static func hosts(_ text: String, _ name: String) throws -> [String] {
        let list = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        for host in list where host != "*" {
            guard !host.contains("/"), !host.contains(":"), !host.contains(" ") else {
                throw RuntimeError("\(name) must list host names such as shop.example.com (no scheme, port or path), got '\(host)'")
            }
        }
        return list
    }

    /// A comma-separated list of origins (`*` for any): `scheme://host[:port]`, no path.
    static func origins(_ text: String, _ name: String) throws -> [String] {
        let list = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        for origin in list where origin != "*" {
            guard let scheme = origin.range(of: "://"), origin[..<scheme.lowerBound].allSatisfy(\.isLetter),
                !origin[scheme.lowerBound...].isEmpty, !origin[scheme.upperBound...].contains("/"), !origin.hasSuffix("://")
            else {
                throw RuntimeError("\(name) must list origins such as https://app.example.com (scheme, host, optional port), got '\(origin)'")
            }
        }
        return list
    }

    /// A comma-separated list of IP addresses.
    static func addresses(_ text: String, _ name: String) throws -> [String] {
        let list = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        for address in list where !ClientAddress.isAddress(address) {
            throw RuntimeError("\(name) must list IP addresses such as 10.0.0.2 or fd00::2 (no names, ports or ranges), got '\(address)'")
        }
        return list
    }

    /// A file path: not empty.
    static func path(_ text: String, _ name: String) throws -> String {
        let path = text.trimmingCharacters(in: .whitespaces)
        guard !path.isEmpty else { throw RuntimeError("\(name) must be a file path, got nothing") }
        return path
    }

    static func level(_ text: String, _ name: String) throws -> Logger.Level {
        guard let level = Logger.Level(rawValue: text) else {
            throw RuntimeError("\(name) must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")), got '\(text)'")
        }
        return level
    }

    static func bool(_ text: String, _ name: String) throws -> Bool {
        switch text.lowercased() {
        case "true", "yes", "1", "on": return true
        case "false", "no", "0", "off": return false
        default: throw RuntimeError("\(name) must be true or false, got '\(text)'")
        }
    }

    static let keys: [Key] = [
        Key(path: "http.host", environment: "MICROLITH_HTTP_HOST") { c, v, _ in c.http.host = v },
        Key(path: "http.port", environment: "MICROLITH_HTTP_PORT") { c, v, n in c.http.port = try int(v, n, min: 0, max: 65535) },
        Key(path: "http.maxBodyBytes", environment: "MICROLITH_HTTP_MAX_BODY_BYTES") { c, v, n in c.http.maximumBodyBytes = try int(v, n, min: 1) },
        Key(path: "http.maxQueryLength", environment: "MICROLITH_HTTP_MAX_QUERY_LENGTH") { c, v, n in
            c.http.maximumQueryLength = try int(v, n, min: 1)
        },
        Key(path: "http.maxResults", environment: "MICROLITH_HTTP_MAX_RESULTS") { c, v, n in c.http.maximumResults = try int(v, n, min: 1) },
        Key(path: "http.maxConnections", environment: "MICROLITH_HTTP_MAX_CONNECTIONS") { c, v, n in
            c.http.maximumConnections = try int(v, n, min: 1)
        },
        Key(path: "http.maxConnectionsPerAddress", environment: "MICROLITH_HTTP_MAX_CONNECTIONS_PER_ADDRESS") { c, v, n in
            c.http.maximumConnectionsPerAddress = try int(v, n, min: 1)
        },
        Key(path: "http.headerTimeoutSeconds", environment: "MICROLITH_HTTP_HEADER_TIMEOUT_SECONDS") { c, v, n in
            c.http.headerTimeoutSeconds = try int(v, n, min: 1, max: 3600)
        },
        Key(path: "http.minBodyBytesPerSecond", environment: "MICROLITH_HTTP_MIN_BODY_BYTES_PER_SECOND") { c, v, n in
            c.http.minimumBodyBytesPerSecond = try int(v, n, min: 0)
        },
        Key(path: "http.idleTimeoutSeconds", environment: "MICROLITH_HTTP_IDLE_TIMEOUT_SECONDS") { c, v, n in
            c.http.idleTimeoutSeconds = try int(v, n, min: 0)
        },
        Key(path: "http.backlog", environment: "MICROLITH_HTTP_BACKLOG") { c, v, n in c.http.backlog = try int(v, n, min: 1, max: 65535) },
        Key(path: "http.allowedHosts", environment: "MICROLITH_HTTP_ALLOWED_HOSTS") { c, v, n in c.http.allowedHosts = try hosts(v, n) },
        Key(path: "http.allowedOrigins", environment: "MICROLITH_HTTP_ALLOWED_ORIGINS") { c, v, n in c.http.allowedOrigins = try origins(v, n) },
        Key(path: "http.allowFullScans", environment: "MICROLITH_HTTP_ALLOW_FULL_SCANS") { c, v, n in c.http.allowFullScans = try bool(v, n) },
        Key(path: "http.trustedProxies", environment: "MICROLITH_HTTP_TRUSTED_PROXIES") { c, v, n in
            c.http.trustedProxies = try addresses(v, n)
        },
        Key(path: "http.redirectPort", environment: "MICROLITH_HTTP_REDIRECT_PORT") { c, v, n in
            c.http.redirectPort = try int(v, n, min: 0, max: 65535)
        },
        Key(path: "tls.certificate", environment: "MICROLITH_TLS_CERTIFICATE") { c, v, n in c.tls.certificateFile = try path(v, n) },
        Key(path: "tls.privateKey", environment: "MICROLITH_TLS_PRIVATE_KEY") { c, v, n in c.tls.privateKeyFile = try path(v, n) },
        Key(path: "tls.clientCA", environment: "MICROLITH_TLS_CLIENT_CA") { c, v, n in c.tls.clientCAFile = try path(v, n) },
        Key(path: "tls.clientCertificates", environment: "MICROLITH_TLS_CLIENT_CERTIFICATES") { c, v, n in
            guard let mode = TLSSettings.ClientCertificates(rawValue: v) else {
                throw RuntimeError("\(n) must be none, optional or required, got '\(v)'")
            }
            c.tls.clientCertificates = mode
        },
        Key(path: "store.dataDir", environment: "MICROLITH_DATA_DIR") { c, v, _ in c.store.directory = v },
        Key(path: "metrics.enabled", environment: "MICROLITH_METRICS") { c, v, n in c.metricsEnabled = try bool(v, n) },
        Key(path: "tracing.endpoint", environment: "MICROLITH_TRACING_ENDPOINT") { c, v, n in
            guard v.hasPrefix("http://") || v.hasPrefix("https://"), URL(string: v)?.host != nil else {
                throw RuntimeError("\(n) must be the http:// or https:// URL of an OTLP/HTTP collector (http://127.0.0.1:4318), got '\(v)'")
            }
            c.tracingEndpoint = v
        },
        Key(path: "tracing.serviceName", environment: "MICROLITH_TRACING_SERVICE_NAME") { c, v, n in
            guard !v.isEmpty else { throw RuntimeError("\(n) must not be empty") }
            c.tracingServiceName = v
        },
        Key(path: "tracing.sampleRatio", environment: "MICROLITH_TRACING_SAMPLE_RATIO") { c, v, n in
            guard let ratio = Double(v), ratio >= 0, ratio <= 1 else { throw RuntimeError("\(n) must be a number from 0 to 1, got '\(v)'") }
            c.tracingSampleRatio = ratio
        },
        Key(path: "backup.directory", environment: "MICROLITH_BACKUP_DIR") { c, v, n in c.backupDirectory = try path(v, n) },
        Key(path: "store.durability", environment: "MICROLITH_DURABILITY") { c, v, n in
            guard let d = StoreConfiguration.Durability(rawValue: v) else { throw RuntimeError("\(n) must be full or normal, got '\(v)'") }
            c.store.durability = d
        },
        Key(path: "store.cacheMB", environment: "MICROLITH_CACHE_MB") { c, v, n in c.store.cacheBytes = try int(v, n) << 20 },
        Key(path: "cache.responsesMB", environment: "MICROLITH_CACHE_RESPONSES_MB") { c, v, n in
            c.keptResponseBytes = try int(v, n, min: 0, max: 1 << 20) << 20
        },
        Key(path: "store.busyTimeoutMs", environment: "MICROLITH_BUSY_TIMEOUT_MS") { c, v, n in
            c.store.busyTimeoutMilliseconds = try int(v, n, min: 0, max: 600_000)
        },
        Key(path: "store.changeLogRetentionHours", environment: "MICROLITH_CHANGELOG_RETENTION_HOURS") { c, v, n in
            c.store.changeLogRetentionSeconds = try int(v, n, min: 1) * 3600
        },
        Key(path: "store.changeLogRetentionSeconds", environment: "MICROLITH_CHANGELOG_RETENTION_SECONDS") { c, v, n in
            c.store.changeLogRetentionSeconds = try int(v, n, min: 1)
        },
        Key(path: "realtime.bufferEvents", environment: "MICROLITH_REALTIME_BUFFER_EVENTS") { c, v, n in
            c.realtimeBufferEvents = try int(v, n, min: 1, max: 1_000_000)
        },
        Key(path: "realtime.bufferBytes", environment: "MICROLITH_REALTIME_BUFFER_BYTES") { c, v, n in
            c.realtimeBufferBytes = try int(v, n, min: 1024)
        },
        Key(path: "mqtt.enabled", environment: "MICROLITH_MQTT_ENABLED") { c, v, n in c.mqtt.enabled = try bool(v, n) },
        Key(path: "mqtt.host", environment: "MICROLITH_MQTT_HOST") { c, v, _ in c.mqtt.host = v },
        Key(path: "mqtt.tls", environment: "MICROLITH_MQTT_TLS") { c, v, n in c.mqtt.tls = try bool(v, n) },
        Key(path: "mqtt.port", environment: "MICROLITH_MQTT_PORT") { c, v, n in c.mqtt.port = try int(v, n, min: 0, max: 65535) },
        Key(path: "mqtt.allowAnonymous", environment: "MICROLITH_MQTT_ALLOW_ANONYMOUS") { c, v, n in c.mqtt.allowAnonymous = try bool(v, n) },
        Key(path: "mqtt.maxPacketBytes", environment: "MICROLITH_MQTT_MAX_PACKET_BYTES") { c, v, n in
            c.mqtt.maximumPacketBytes = try int(v, n, min: 64, max: 268_435_455)
        },
        Key(path: "mqtt.sessionExpirySeconds", environment: "MICROLITH_MQTT_SESSION_EXPIRY_SECONDS") { c, v, n in
            c.mqtt.sessionExpirySeconds = try int(v, n, min: 0, max: Int(UInt32.max))
        },
        Key(path: "mqtt.maxQueuedMessages", environment: "MICROLITH_MQTT_MAX_QUEUED_MESSAGES") { c, v, n in
            c.mqtt.maximumQueuedMessages = try int(v, n, min: 0)
        },
        Key(path: "mqtt.bufferBytes", environment: "MICROLITH_MQTT_BUFFER_BYTES") { c, v, n in c.mqtt.bufferBytes = try int(v, n, min: 65536) },
        Key(path: "mqtt.connectTimeoutSeconds", environment: "MICROLITH_MQTT_CONNECT_TIMEOUT_SECONDS") { c, v, n in
            c.mqtt.connectTimeoutSeconds = try int(v, n, min: 1, max: 3600)
        },
        Key(path: "mqtt.maxKeepAliveSeconds", environment: "MICROLITH_MQTT_MAX_KEEP_ALIVE_SECONDS") { c, v, n in
            c.mqtt.maximumKeepAliveSeconds = try int(v, n, min: 1, max: 65_535)
        },
        Key(path: "mqtt.packetTimeoutSeconds", environment: "MICROLITH_MQTT_PACKET_TIMEOUT_SECONDS") { c, v, n in
            c.mqtt.packetTimeoutSeconds = try int(v, n, min: 1, max: 86_400)
        },
        Key(path: "mqtt.writeTimeoutSeconds", environment: "MICROLITH_MQTT_WRITE_TIMEOUT_SECONDS") { c, v, n in
            c.mqtt.writeTimeoutSeconds = try int(v, n, min: 1, max: 86_400)
        },
        Key(path: "mqtt.maxSubscriptionsPerClient", environment: "MICROLITH_MQTT_MAX_SUBSCRIPTIONS_PER_CLIENT") { c, v, n in
            c.mqtt.maximumSubscriptionsPerClient = try int(v, n, min: 1)
        },
        Key(path: "mqtt.maxTopicFiltersPerPacket", environment: "MICROLITH_MQTT_MAX_TOPIC_FILTERS_PER_PACKET") { c, v, n in
            c.mqtt.maximumTopicFiltersPerPacket = try int(v, n, min: 1)
        },
        Key(path: "mqtt.maxSubscriptionsTotal", environment: "MICROLITH_MQTT_MAX_SUBSCRIPTIONS_TOTAL") { c, v, n in
            c.mqtt.maximumSubscriptionsTotal = try int(v, n, min: 1)
        },
        Key(path: "mqtt.maxSessions", environment: "MICROLITH_MQTT_MAX_SESSIONS") { c, v, n in c.mqtt.maximumSessions = try int(v, n, min: 1) },
        Key(path: "mqtt.maxConnections", environment: "MICROLITH_MQTT_MAX_CONNECTIONS") { c, v, n in
            c.mqtt.maximumConnections = try int(v, n, min: 1)
        },
        Key(path: "mqtt.maxConnectionsPerAddress", environment: "MICROLITH_MQTT_MAX_CONNECTIONS_PER_ADDRESS") { c, v, n in
            c.mqtt.maximumConnectionsPerAddress = try int(v, n, min: 1)
        },
        Key(path: "store.nodeID", environment: "MICROLITH_NODE_ID") { c, v, _ in c.store.nodeID = v },
        Key(path: "auth.accessTokenSeconds", environment: "MICROLITH_AUTH_ACCESS_TOKEN_SECONDS") { c, v, n in
            c.tokens.accessTokenSeconds = try int(v, n, min: 10, max: 86_400)
        },
        Key(path: "auth.refreshTokenSeconds", environment: "MICROLITH_AUTH_REFRESH_TOKEN_SECONDS") { c, v, n in
            c.tokens.refreshTokenSeconds = try int(v, n, min: 60, max: 366 * 86_400)
        },
        Key(path: "auth.sessionCheckSeconds", environment: "MICROLITH_AUTH_SESSION_CHECK_SECONDS") { c, v, n in
            c.sessionCheckSeconds = try int(v, n, min: 1, max: 3600)
        },
        Key(path: "auth.keyRotationSeconds", environment: "MICROLITH_AUTH_KEY_ROTATION_SECONDS") { c, v, n in
            c.tokens.keyRotationSeconds = try int(v, n, min: 60)
        },
        Key(path: "jobs.concurrency", environment: "MICROLITH_JOBS_CONCURRENCY") { c, v, n in c.jobs.concurrency = try int(v, n, min: 1, max: 1024) },
        Key(path: "jobs.pollMs", environment: "MICROLITH_JOBS_POLL_MS") { c, v, n in c.jobs.pollInterval = .milliseconds(try int(v, n, min: 10)) },
        Key(path: "jobs.leaseSeconds", environment: "MICROLITH_JOBS_LEASE_SECONDS") { c, v, n in c.jobs.lease = .seconds(try int(v, n, min: 1)) },
        Key(path: "jobs.shutdownGraceSeconds", environment: "MICROLITH_JOBS_SHUTDOWN_GRACE_SECONDS") { c, v, n in
            c.jobs.shutdownGrace = .seconds(try int(v, n, min: 0))
        },
        Key(path: "jobs.retentionHours", environment: "MICROLITH_JOBS_RETENTION_HOURS") { c, v, n in
            c.jobs.retention = .seconds(try int(v, n, min: 1) * 3600)
        },
        Key(path: "roles", environment: "MICROLITH_ROLES") { c, v, n in c.roles = try parseRoles(v, n) },
        Key(path: "replication.nats", environment: "MICROLITH_REPLICATION_NATS") { c, v, n in
            c.replication.servers = try ReplicationSettings.servers(v, n)
        },
        Key(path: "replication.node", environment: "MICROLITH_REPLICATION_NODE") { c, v, n in c.store.nodeID = try ReplicationSettings.node(v, n) },
        Key(path: "replication.stream", environment: "MICROLITH_REPLICATION_STREAM") { c, v, n in
            let stream = c.replication.stream
            c.replication.stream = ReplicationStream.named(
                try ReplicationSettings.streamName(v, n), replicas: stream.replicas, maximumAge: stream.maximumAge)
        },
        Key(path: "replication.replicas", environment: "MICROLITH_REPLICATION_REPLICAS") { c, v, n in
            c.replication.stream.replicas = try int(v, n, min: 1, max: 5)
        },
        Key(path: "replication.maxClockAheadSeconds", environment: "MICROLITH_REPLICATION_MAX_CLOCK_AHEAD_SECONDS") { c, v, n in
            c.replication.maximumClockAhead = .seconds(try int(v, n, min: 1, max: 86_400))
        },
        Key(path: "replication.leaseSeconds", environment: "MICROLITH_REPLICATION_LEASE_SECONDS") { c, v, n in
            c.replication.leaseDuration = .seconds(try int(v, n, min: 1, max: 3600))
        },
        Key(path: "replication.replicateTimeoutMs", environment: "MICROLITH_REPLICATION_REPLICATE_TIMEOUT_MS") { c, v, n in
            c.replication.replicateTimeout = .milliseconds(try int(v, n, min: 1, max: 600_000))
        },
        Key(path: "replication.digestIntervalSeconds", environment: "MICROLITH_REPLICATION_DIGEST_INTERVAL_SECONDS") { c, v, n in
            let seconds = try int(v, n, min: 0, max: 7 * 86_400)
            c.replication.digestInterval = seconds == 0 ? nil : .seconds(seconds)
        },
        Key(path: "replication.digestSettledSeconds", environment: "MICROLITH_REPLICATION_DIGEST_SETTLED_SECONDS") { c, v, n in
            c.replication.digestSettled = .seconds(try int(v, n, min: 0, max: 86_400))
        },
        Key(path: "replication.retentionHours", environment: "MICROLITH_REPLICATION_RETENTION_HOURS") { c, v, n in
            let hours = try int(v, n, min: 1, max: 24 * 366)
            c.replication.stream.maximumAge = .seconds(hours * 3600)
            c.store.tombstoneRetentionSeconds = hours * 3600
        },
        Key(path: "log.level", environment: "MICROLITH_LOG_LEVEL") { c, v, n in
            c.logLevel = try level(v, n).rawValue
        },
        Key(path: "log.levels", environment: "MICROLITH_LOG_LEVELS") { c, v, n in
            var levels: [String: Logger.Level] = [:]
            for item in v.split(separator: ",") {
                let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, !parts[0].isEmpty else {
                    throw RuntimeError("\(n) takes subsystem=level pairs separated by commas (MicrolithStore=debug), got '\(item)'")
                }
                levels[parts[0]] = try level(parts[1], "\(n) (\(parts[0]))")
            }
            c.logLevels = levels
        },
        Key(path: "log.format", environment: "MICROLITH_LOG_FORMAT") { c, v, n in
            guard let format = RuntimeLogHandler.Format(rawValue: v) else {
                throw RuntimeError("\(n) must be text or json, got '\(v)'")
            }
            c.logFormat = format
        },
    ]

    /// Settings that may be YAML lists (or comma-separated text).
    static let listKeys: Set<String> = ["roles", "http.allowedHosts", "http.allowedOrigins", "http.trustedProxies", "replication.nats"]

    /// Applies `microlith.yaml` text; unknown keys and wrong types are errors naming the key.
    public mutating func apply(yaml text: String, file: String) throws {
        let loaded: Any?
        do {
            loaded = try Yams.load(yaml: text)
        } catch {
            throw RuntimeError("\(file): invalid YAML: \(error)")
        }
        guard let loaded else { return }
        guard var root = loaded as? [String: Any] else {
            throw RuntimeError("\(file): the top level must be a mapping of sections (http, store, log)")
        }
        var flat: [String: String] = [:]
        func walk(_ value: Any, _ path: String) throws {
            if path == "log.levels", let map = value as? [String: Any] {
                // A map of subsystems to levels: the same as the variable's `A=level,B=level`.
                flat[path] = map.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            } else if let map = value as? [String: Any] {
                for (k, v) in map { try walk(v, path.isEmpty ? k : "\(path).\(k)") }
            } else if let list = value as? [Any] {
                guard Self.listKeys.contains(path) else { throw RuntimeError("\(file): \(path) must be a single value, not a list") }
                flat[path] = list.map { "\($0)" }.joined(separator: ",")
            } else {
                flat[path] = "\(value)"
            }
        }
        if let modules = root.removeValue(forKey: "modules") {
            try applyModules(modules, file: file)
        }
        if let mqtt = root["mqtt"] as? [String: Any], mqtt["users"] != nil {
            throw RuntimeError(
                """
                \(file): mqtt.users is no longer read: MQTT clients sign in as the app's users, the same as HTTP. \
                Remove it, and add each user with 'microlith user add DIR NAME --role ROLE' (roles.yaml says what their roles may do)
                """)
        }
        try walk(root, "")
        for (path, value) in flat.sorted(by: { $0.key < $1.key }) {
            guard let key = Self.keys.first(where: { $0.path == path }) else {
                throw RuntimeError("\(file): unknown setting '\(path)'; known settings: \(Self.keys.map(\.path).joined(separator: ", "))")
            }
            try key.apply(&self, value, "\(file): \(path)")
        }
    }

    /// Reads the `modules:` section: `modules: { pricing: { url: http://host:port, timeoutMs: 2000 } }`.
    mutating func applyModules(_ value: Any, file: String) throws {
        guard let modules = value as? [String: Any] else {
            throw RuntimeError("\(file): modules must be a mapping of module names to settings (url, timeoutMs)")
        }
        for (name, settings) in modules.sorted(by: { $0.key < $1.key }) {
            guard let settings = settings as? [String: Any] else {
                throw RuntimeError("\(file): modules.\(name) must be a mapping with url (and optionally timeoutMs)")
            }
            for key in settings.keys where key != "url" && key != "timeoutMs" {
                throw RuntimeError("\(file): unknown setting 'modules.\(name).\(key)'; known: url, timeoutMs")
            }
            guard let url = settings["url"].map({ "\($0)" }), url.hasPrefix("http://") else {
                throw RuntimeError("\(file): modules.\(name).url must be an http:// URL, got '\(settings["url"].map { "\($0)" } ?? "nothing")'")
            }
            var endpoint = RemoteEndpoint(url: url)
            if let timeout = settings["timeoutMs"] {
                endpoint.timeout = .milliseconds(try Self.int("\(timeout)", "\(file): modules.\(name).timeoutMs", min: 1))
            }
            moduleEndpoints[name] = endpoint
        }
    }

    /// Applies `MICROLITH_*` environment variables.
    public mutating func apply(environment: [String: String]) throws {
        for key in Self.keys {
            if let v = environment[key.environment] { try key.apply(&self, v, key.environment) }
        }
    }
}
