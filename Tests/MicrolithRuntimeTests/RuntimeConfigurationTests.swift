import Foundation
import MicrolithHTTP
import MicrolithMQTT
import MicrolithNATS
import MicrolithReplication
import MicrolithRuntime
import MicrolithStore
import MicrolithTLS
import Testing

/// The message of the ``RuntimeError`` `body` throws, or `nil` (recording an issue) when it throws none.
func runtimeErrorMessage(sourceLocation: Testing.SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> String? {
    do {
        try body()
        Issue.record("expected a RuntimeError, but nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as RuntimeError {
        return error.message
    } catch {
        Issue.record("expected a RuntimeError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

@Suite("RuntimeConfiguration")
struct RuntimeConfigurationTests {
    @Test func defaults() {
        let c = RuntimeConfiguration(appDirectory: "/apps/todo")
        #expect(c.http.host == "127.0.0.1")
        #expect(c.http.port == 9926)
        #expect(c.http.maximumBodyBytes == 1_048_576)
        #expect(c.http.maximumQueryLength == 8192)
        #expect(c.http.maximumResults == 10_000)
        #expect(c.http.maximumConnections == 4096)
        #expect(c.http.backlog == 4096)
        #expect(c.http.allowedHosts.isEmpty && c.http.allowedOrigins.isEmpty)
        #expect(c.http.allowFullScans)
        #expect(c.http.webRoot == nil)
        #expect(c.store.directory == "/apps/todo/.microlith")
        #expect(c.store.durability == .full)
        #expect(c.store.cacheBytes == 64 << 20)
        #expect(c.store.changeLogRetentionSeconds == 86_400)
        #expect(c.store.nodeID == nil)
        #expect(c.logLevel == "info")
    }

    @Test func yamlSetsEveryKey() throws {
        var c = RuntimeConfiguration(appDirectory: "/app")
        try c.apply(
            yaml: """
                http:
                  host: 0.0.0.0
                  port: 8080
                  maxBodyBytes: 2048
                  maxQueryLength: 100
                  maxResults: 50
                  maxConnections: 10
                  backlog: 128
                  allowedHosts: [shop.example.com, "*"]
                  allowedOrigins:
                    - https://app.example.com
                  allowFullScans: false
                store:
                  dataDir: /var/data
                  durability: normal
                  cacheMB: 8
                  busyTimeoutMs: 250
                  changeLogRetentionHours: 2
                  nodeID: node-a
                log:
                  level: debug
                """, file: "microlith.yaml")
        #expect(c.http.host == "0.0.0.0")
        #expect(c.http.port == 8080)
        #expect(c.http.maximumBodyBytes == 2048)
        #expect(c.http.maximumQueryLength == 100)
        #expect(c.http.maximumResults == 50)
        #expect(c.http.maximumConnections == 10)
        #expect(c.http.backlog == 128)
        #expect(c.http.allowedHosts == ["shop.example.com", "*"])
        #expect(c.http.allowedOrigins == ["https://app.example.com"])
        #expect(!c.http.allowFullScans)
        #expect(c.store.directory == "/var/data")
        #expect(c.store.durability == .normal)
        #expect(c.store.cacheBytes == 8 << 20)
        #expect(c.store.busyTimeoutMilliseconds == 250)
        #expect(c.store.changeLogRetentionSeconds == 7200)
        #expect(c.store.nodeID == "node-a")
        #expect(c.logLevel == "debug")
    }

    @Test func environmentSetsEveryKey() throws {
        var c = RuntimeConfiguration(appDirectory: "/app")
        try c.apply(environment: [
            "MICROLITH_HTTP_HOST": "::1", "MICROLITH_HTTP_PORT": "0", "MICROLITH_HTTP_MAX_BODY_BYTES": "10",
            "MICROLITH_HTTP_MAX_QUERY_LENGTH": "20", "MICROLITH_HTTP_MAX_RESULTS": "30", "MICROLITH_HTTP_MAX_CONNECTIONS": "40",
            "MICROLITH_HTTP_BACKLOG": "50", "MICROLITH_HTTP_ALLOWED_HOSTS": "a.example, b.example",
            "MICROLITH_HTTP_ALLOWED_ORIGINS": "http://a.example:8080",
            "MICROLITH_HTTP_ALLOW_FULL_SCANS": "off", "MICROLITH_DATA_DIR": "/d", "MICROLITH_DURABILITY": "normal",
            "MICROLITH_CACHE_MB": "0", "MICROLITH_BUSY_TIMEOUT_MS": "0", "MICROLITH_CHANGELOG_RETENTION_HOURS": "1", "MICROLITH_NODE_ID": "n",
            "MICROLITH_LOG_LEVEL": "warning", "UNRELATED": "ignored",
        ])
        #expect(c.http.host == "::1")
        #expect(c.http.port == 0)
        #expect(c.http.maximumBodyBytes == 10)
        #expect(c.http.maximumQueryLength == 20)
        #expect(c.http.maximumResults == 30)
        #expect(c.http.maximumConnections == 40)
        #expect(c.http.backlog == 50)
        #expect(c.http.allowedHosts == ["a.example", "b.example"])
        #expect(c.http.allowedOrigins == ["http://a.example:8080"])
        #expect(!c.http.allowFullScans)
        #expect(c.store.directory == "/d")
        #expect(c.store.durability == .normal)
        #expect(c.store.cacheBytes == 0)
        #expect(c.store.busyTimeoutMilliseconds == 0)
        #expect(c.store.changeLogRetentionSeconds == 3600)
        #expect(c.store.nodeID == "n")
        #expect(c.logLevel == "warning")
    }

    @Test func environmentWinsOverYAML() throws {
        var c = RuntimeConfiguration(appDirectory: "/app")
        try c.apply(yaml: "http:\n  port: 1000\n  host: yaml-host\nstore:\n  cacheMB: 4\n", file: "microlith.yaml")
        try c.apply(environment: ["MICROLITH_HTTP_PORT": "2000"])
        #expect(c.http.port == 2000)
        #expect(c.http.host == "yaml-host", "keys the environment does not set keep the YAML value")
        #expect(c.store.cacheBytes == 4 << 20)
    }

    @Test(arguments: ["true", "yes", "1", "on", "TRUE", "On"])
    func booleanSpellingsForTrue(_ text: String) throws {
        var c = RuntimeConfiguration(appDirectory: "/app")
        c.http.allowFullScans = false
        try c.apply(environment: ["MICROLITH_HTTP_ALLOW_FULL_SCANS": text])
        #expect(c.http.allowFullScans)
    }

    @Test(arguments: ["false", "no", "0", "off", "False"])
    func booleanSpellingsForFalse(_ text: String) throws {
        var c = RuntimeConfiguration(appDirectory: "/app")
        try c.apply(environment: ["MICROLITH_HTTP_ALLOW_FULL_SCANS": text])
        #expect(!c.http.allowFullScans)
    }

    @Test func emptyYAMLChangesNothing() throws {
        var c = RuntimeConfiguration(appDirectory: "/app")
        try c.apply(yaml: "", file: "microlith.yaml")
        try c.apply(yaml: "# only a comment\n", file: "microlith.yaml")
        #expect(c.http.port == 9926)
    }

    @Test func unknownKeysAreErrorsNamingTheKey() {
        var c = RuntimeConfiguration(appDirectory: "/app")
        let message = runtimeErrorMessage { try c.apply(yaml: "http:\n  prot: 80\n", file: "/app/microlith.yaml") }
        #expect(message?.contains("/app/microlith.yaml") == true)
        #expect(message?.contains("unknown setting 'http.prot'") == true, "\(message ?? "")")
        #expect(message?.contains("http.port") == true, "the known settings are listed")

        let section = runtimeErrorMessage { try c.apply(yaml: "database:\n  path: x\n", file: "microlith.yaml") }
        #expect(section?.contains("'database.path'") == true)
        let flat = runtimeErrorMessage { try c.apply(yaml: "port: 80\n", file: "microlith.yaml") }
        #expect(flat?.contains("'port'") == true)
    }

    struct BadValue: Sendable, CustomTestStringConvertible {
        var yaml: String
        var key: String
        var testDescription: String { yaml.replacingOccurrences(of: "\n", with: " ") }
    }

    static let badYAMLValues: [BadValue] = [
        BadValue(yaml: "http:\n  port: abc\n", key: "http.port"),
        BadValue(yaml: "http:\n  port: -1\n", key: "http.port"),
        BadValue(yaml: "http:\n  port: 80.5\n", key: "http.port"),
        BadValue(yaml: "http:\n  maxBodyBytes: 0\n", key: "http.maxBodyBytes"),
        BadValue(yaml: "http:\n  maxQueryLength: 0\n", key: "http.maxQueryLength"),
        BadValue(yaml: "http:\n  maxResults: many\n", key: "http.maxResults"),
        BadValue(yaml: "http:\n  maxConnections: 0\n", key: "http.maxConnections"),
        BadValue(yaml: "http:\n  backlog: 0\n", key: "http.backlog"),
        BadValue(yaml: "http:\n  backlog: 70000\n", key: "http.backlog"),
        BadValue(yaml: "http:\n  allowedHosts: [https://shop.example.com]\n", key: "http.allowedHosts"),
        BadValue(yaml: "http:\n  allowedHosts: shop.example.com:8080\n", key: "http.allowedHosts"),
        BadValue(yaml: "http:\n  allowedOrigins: [app.example.com]\n", key: "http.allowedOrigins"),
        BadValue(yaml: "http:\n  allowedOrigins: [https://app.example.com/path]\n", key: "http.allowedOrigins"),
        BadValue(yaml: "http:\n  port: [1, 2]\n", key: "http.port"),
        BadValue(yaml: "http:\n  allowFullScans: maybe\n", key: "http.allowFullScans"),
        BadValue(yaml: "store:\n  durability: sometimes\n", key: "store.durability"),
        BadValue(yaml: "store:\n  cacheMB: -5\n", key: "store.cacheMB"),
        BadValue(yaml: "store:\n  busyTimeoutMs: -1\n", key: "store.busyTimeoutMs"),
        BadValue(yaml: "store:\n  changeLogRetentionHours: 0\n", key: "store.changeLogRetentionHours"),
        BadValue(yaml: "log:\n  level: loud\n", key: "log.level"),
        BadValue(yaml: "http:\n  host:\n    - a\n    - b\n", key: "http.host"),
        BadValue(yaml: "http:\n  redirectPort: 70000\n", key: "http.redirectPort"),
        BadValue(yaml: "tls:\n  clientCertificates: sometimes\n", key: "tls.clientCertificates"),
        BadValue(yaml: "tls:\n  certificate: ''\n", key: "tls.certificate"),
        BadValue(yaml: "mqtt:\n  tls: maybe\n", key: "mqtt.tls"),
        BadValue(yaml: "replication:\n  nats: [http://127.0.0.1:4222]\n", key: "replication.nats"),
        BadValue(yaml: "replication:\n  nats: []\n", key: "replication.nats"),
        BadValue(yaml: "replication:\n  node: a.b\n", key: "replication.node"),
        BadValue(yaml: "replication:\n  stream: 'x y'\n", key: "replication.stream"),
        BadValue(yaml: "replication:\n  replicas: 7\n", key: "replication.replicas"),
        BadValue(yaml: "replication:\n  maxClockAheadSeconds: 0\n", key: "replication.maxClockAheadSeconds"),
        BadValue(yaml: "replication:\n  retentionHours: 0\n", key: "replication.retentionHours"),
    ]

    @Test func replicationSettingsFromYAMLAndEnvironment() throws {
        var c = RuntimeConfiguration(appDirectory: "/app")
        #expect(!c.replication.isEnabled)
        try c.apply(
            yaml: """
                replication:
                  nats: [nats://127.0.0.1:4222, "nats://u:p@10.0.0.2:4223"]
                  node: node-1
                  stream: SHOP
                  replicas: 3
                  maxClockAheadSeconds: 5
                  retentionHours: 48
                """, file: "microlith.yaml")
        #expect(c.replication.isEnabled)
        #expect(c.replication.servers.map(\.description) == ["nats://127.0.0.1:4222", "nats://10.0.0.2:4223"])
        #expect(c.replication.servers[1].user == "u" && c.replication.servers[1].password == "p")
        #expect(c.store.nodeID == "node-1")
        #expect(c.replication.stream.name == "SHOP")
        #expect(c.replication.stream.replicas == 3)
        #expect(c.replication.maximumClockAhead == .seconds(5))
        #expect(c.replication.stream.maximumAge == .seconds(48 * 3600))
        #expect(c.store.tombstoneRetentionSeconds == 48 * 3600)
        try c.apply(environment: ["MICROLITH_REPLICATION_NATS": "nats://a:1,nats://b:2", "MICROLITH_REPLICATION_NODE": "node-2"])
        #expect(c.replication.servers.map(\.description) == ["nats://a:1", "nats://b:2"])
        #expect(c.store.nodeID == "node-2")
    }

    @Test(arguments: badYAMLValues)
    func badYAMLValuesAreErrorsNamingTheKey(_ bad: BadValue) {
        var c = RuntimeConfiguration(appDirectory: "/app")
        let message = runtimeErrorMessage { try c.apply(yaml: bad.yaml, file: "microlith.yaml") }
        #expect(message?.contains("microlith.yaml: \(bad.key)") == true, "\(message ?? "")")
    }

    @Test func tlsSettingsFromYAMLAndEnvironment() throws {
        var c = RuntimeConfiguration(appDirectory: "/app")
        #expect(c.tls == TLSSettings() && !c.tls.isEnabled && c.mqtt.tls && c.http.redirectPort == nil)
        try c.apply(
            yaml: """
                http:
                  redirectPort: 8080
                tls:
                  certificate: /etc/tls/cert.pem
                  privateKey: /etc/tls/key.pem
                  clientCA: /etc/tls/ca.pem
                mqtt:
                  tls: false
                """, file: "microlith.yaml")
        #expect(c.tls.certificateFile == "/etc/tls/cert.pem" && c.tls.privateKeyFile == "/etc/tls/key.pem")
        #expect(c.tls.clientCAFile == "/etc/tls/ca.pem" && c.tls.effectiveClientCertificates == .optional)
        #expect(c.http.redirectPort == 8080 && !c.mqtt.tls && c.tls.isEnabled)
        try c.apply(environment: ["MICROLITH_TLS_CLIENT_CERTIFICATES": "required", "MICROLITH_TLS_CERTIFICATE": "/run/cert.pem"])
        #expect(c.tls.effectiveClientCertificates == .required && c.tls.certificateFile == "/run/cert.pem")
    }

    @Test func portsBeyond65535AreRefused() {
        var c = RuntimeConfiguration(appDirectory: "/app")
        let yaml = runtimeErrorMessage { try c.apply(yaml: "http:\n  port: 70000\n", file: "microlith.yaml") }
        #expect(yaml?.contains("http.port") == true)
        let environment = runtimeErrorMessage { try c.apply(environment: ["MICROLITH_HTTP_PORT": "65536"]) }
        #expect(environment?.contains("MICROLITH_HTTP_PORT") == true)
    }

    @Test func badEnvironmentValuesAreErrorsNamingTheVariable() {
        var c = RuntimeConfiguration(appDirectory: "/app")
        let port = runtimeErrorMessage { try c.apply(environment: ["MICROLITH_HTTP_PORT": "eighty"]) }
        #expect(port?.contains("MICROLITH_HTTP_PORT") == true)
        #expect(port?.contains("'eighty'") == true)
        let durability = runtimeErrorMessage { try c.apply(environment: ["MICROLITH_DURABILITY": "FULL"]) }
        #expect(durability?.contains("MICROLITH_DURABILITY must be full or normal") == true, "\(durability ?? "")")
        let level = runtimeErrorMessage { try c.apply(environment: ["MICROLITH_LOG_LEVEL": "verbose"]) }
        #expect(level?.contains("MICROLITH_LOG_LEVEL") == true)
    }

    @Test func malformedYAMLIsAnError() {
        var c = RuntimeConfiguration(appDirectory: "/app")
        let invalid = runtimeErrorMessage { try c.apply(yaml: "http: [unclosed\n", file: "microlith.yaml") }
        #expect(invalid?.contains("invalid YAML") == true, "\(invalid ?? "")")
        let scalar = runtimeErrorMessage { try c.apply(yaml: "just text\n", file: "microlith.yaml") }
        #expect(scalar?.contains("mapping") == true, "\(scalar ?? "")")
    }
}
