import Foundation
public import MicrolithHTTP
public import MicrolithStore
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
/// | `http.maxConnections` | `MICROLITH_HTTP_MAX_CONNECTIONS` | 4096 |
/// | `http.idleTimeoutSeconds` | `MICROLITH_HTTP_IDLE_TIMEOUT_SECONDS` | 60 (0: never) |
/// | `http.allowFullScans` | `MICROLITH_HTTP_ALLOW_FULL_SCANS` | `true` |
/// | `store.dataDir` | `MICROLITH_DATA_DIR` | `<app>/.microlith` |
/// | `store.durability` | `MICROLITH_DURABILITY` | `full` (or `normal`) |
/// | `store.cacheMB` | `MICROLITH_CACHE_MB` | 64 |
/// | `store.changeLogRetentionHours` | `MICROLITH_CHANGELOG_RETENTION_HOURS` | 24 |
/// | `store.nodeID` | `MICROLITH_NODE_ID` | generated once per data folder |
/// | `log.level` | `MICROLITH_LOG_LEVEL` | `info` |
public struct RuntimeConfiguration: Sendable {
    public var http: HTTPConfiguration
    public var store: StoreConfiguration
    /// swift-log level name.
    public var logLevel: String

    /// The defaults for an app in `appDirectory`.
    public init(appDirectory: String) {
        self.http = HTTPConfiguration(webRoot: nil)
        self.store = StoreConfiguration(directory: (appDirectory as NSString).appendingPathComponent(".microlith"))
        self.logLevel = "info"
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
        Key(path: "http.idleTimeoutSeconds", environment: "MICROLITH_HTTP_IDLE_TIMEOUT_SECONDS") { c, v, n in
            c.http.idleTimeoutSeconds = try int(v, n, min: 0)
        },
        Key(path: "http.allowFullScans", environment: "MICROLITH_HTTP_ALLOW_FULL_SCANS") { c, v, n in c.http.allowFullScans = try bool(v, n) },
        Key(path: "store.dataDir", environment: "MICROLITH_DATA_DIR") { c, v, _ in c.store.directory = v },
        Key(path: "store.durability", environment: "MICROLITH_DURABILITY") { c, v, n in
            guard let d = StoreConfiguration.Durability(rawValue: v) else { throw RuntimeError("\(n) must be full or normal, got '\(v)'") }
            c.store.durability = d
        },
        Key(path: "store.cacheMB", environment: "MICROLITH_CACHE_MB") { c, v, n in c.store.cacheBytes = try int(v, n) << 20 },
        Key(path: "store.changeLogRetentionHours", environment: "MICROLITH_CHANGELOG_RETENTION_HOURS") { c, v, n in
            c.store.changeLogRetentionSeconds = try int(v, n, min: 1) * 3600
        },
        Key(path: "store.nodeID", environment: "MICROLITH_NODE_ID") { c, v, _ in c.store.nodeID = v },
        Key(path: "log.level", environment: "MICROLITH_LOG_LEVEL") { c, v, n in
            let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
            guard levels.contains(v) else { throw RuntimeError("\(n) must be one of \(levels.joined(separator: ", ")), got '\(v)'") }
            c.logLevel = v
        },
    ]

    /// Applies `microlith.yaml` text; unknown keys and wrong types are errors naming the key.
    public mutating func apply(yaml text: String, file: String) throws {
        let loaded: Any?
        do {
            loaded = try Yams.load(yaml: text)
        } catch {
            throw RuntimeError("\(file): invalid YAML: \(error)")
        }
        guard let loaded else { return }
        guard let root = loaded as? [String: Any] else {
            throw RuntimeError("\(file): the top level must be a mapping of sections (http, store, log)")
        }
        var flat: [String: String] = [:]
        func walk(_ value: Any, _ path: String) throws {
            if let map = value as? [String: Any] {
                for (k, v) in map { try walk(v, path.isEmpty ? k : "\(path).\(k)") }
            } else if value is [Any] {
                throw RuntimeError("\(file): \(path) must be a single value, not a list")
            } else {
                flat[path] = "\(value)"
            }
        }
        try walk(root, "")
        for (path, value) in flat.sorted(by: { $0.key < $1.key }) {
            guard let key = Self.keys.first(where: { $0.path == path }) else {
                throw RuntimeError("\(file): unknown setting '\(path)'; known settings: \(Self.keys.map(\.path).joined(separator: ", "))")
            }
            try key.apply(&self, value, "\(file): \(path)")
        }
    }

    /// Applies `MICROLITH_*` environment variables.
    public mutating func apply(environment: [String: String]) throws {
        for key in Self.keys {
            if let v = environment[key.environment] { try key.apply(&self, v, key.environment) }
        }
    }
}
