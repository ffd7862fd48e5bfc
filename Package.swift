// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Microlith",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "microlith", targets: ["MicrolithTool"]),
        .library(name: "Microlith", targets: ["Microlith"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/GraphQLSwift/GraphQL", from: "4.3.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // OTLP over HTTP only: the gRPC exporter's packages are not built.
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        // `swift package generate-documentation`: the DocC catalogue, built by scripts/test.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        // PBKDF2 for password hashes (already built for swift-certificates).
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        // TLS for HTTP and MQTT; certificates read to check that a key belongs to its certificate.
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
    ],
    targets: [
        // The record value model and its fast JSON codec. No dependencies.
        .target(name: "MicrolithJSON"),
        // schema.graphql → validated model; record validation. No I/O.
        .target(
            name: "MicrolithSchema",
            dependencies: [
                "MicrolithJSON",
                .product(name: "GraphQL", package: "GraphQL"),
                .product(name: "OrderedCollections", package: "swift-collections"),
            ]
        ),
        // Child processes (posix_spawn): local clusters, split topologies, servers tests need.
        .target(name: "MicrolithProcess"),
        // The embedded store: GRDB/SQLite, group commit, change log, record cache.
        .target(
            name: "MicrolithStore",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "MicrolithJSON", "MicrolithSchema",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "OrderedCollections", package: "swift-collections"),
            ]
        ),
        // Harper's URL query language: parse, evaluate, plan through indexes, execute.
        .target(
            name: "MicrolithQuery",
            dependencies: [
                "MicrolithJSON", "MicrolithSchema", "MicrolithStore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "OrderedCollections", package: "swift-collections"),
            ]
        ),
        // The table layer every door goes through: one grammar for table targets (URL paths and MQTT
        // topics), one directory of exported tables, and the application's table hooks run in one place.
        .target(
            name: "MicrolithTables",
            dependencies: [
                "MicrolithJSON", "MicrolithSchema", "MicrolithStore",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Users and sign-in: password hashes (PBKDF2-HMAC-SHA256), the users' system table, HTTP Basic
        // credentials verified once and remembered, failed sign-ins limited.
        .target(
            name: "MicrolithAuth",
            dependencies: [
                "MicrolithSchema", "MicrolithStore", "MicrolithTables",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // TLS for every listener: the certificate and key read from files (and again on SIGHUP),
        // optional client certificates.
        .target(
            name: "MicrolithTLS",
            dependencies: [
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // The committed change stream fanned out to subscribers: records, tables, id prefixes,
        // queries; resume from the change log; bounded per-subscriber buffers; messages.
        .target(
            name: "MicrolithRealtime",
            dependencies: [
                "MicrolithJSON", "MicrolithSchema", "MicrolithStore", "MicrolithQuery",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Connection admission shared by every port (HTTP, WebSocket, MQTT): counts from accept,
        // per-address budgets, idle keep-alive eviction, the open-file budget.
        .target(
            name: "MicrolithNetwork",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]
        ),
        // The MQTT 3.1.1 and 5 broker on SwiftNIO: wire format, sessions, topics mapped to records.
        .target(
            name: "MicrolithMQTT",
            dependencies: [
                .product(name: "Metrics", package: "swift-metrics"),
                "MicrolithJSON", "MicrolithSchema", "MicrolithStore", "MicrolithQuery", "MicrolithRealtime", "MicrolithNetwork", "MicrolithTables",
                "MicrolithAuth", "MicrolithTLS",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // A NATS client on SwiftNIO (core protocol and the JetStream API), the transport of replication.
        .target(
            name: "MicrolithNATS",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Replication between nodes: the change log published to JetStream (the outbox).
        .target(
            name: "MicrolithReplication",
            dependencies: [
                "MicrolithJSON", "MicrolithSchema", "MicrolithStore", "MicrolithNATS",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // REST over Hummingbird: resources, problem+json, ETags, OpenAPI, static files, limits.
        .target(
            name: "MicrolithHTTP",
            dependencies: [
                "MicrolithCache", "MicrolithJSON", "MicrolithSchema", "MicrolithStore", "MicrolithQuery", "MicrolithModules",
                "MicrolithRealtime", "MicrolithNetwork", "MicrolithTables", "MicrolithAuth", "MicrolithTLS",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        // Kept responses: answers kept while nothing they read has changed, dropped by exactly
        // the commits that touch their read sets; live slots filled from the record cache.
        .target(
            name: "MicrolithCache",
            dependencies: [
                "MicrolithJSON", "MicrolithSchema", "MicrolithStore",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Modules: typed operations (direct calls in-process, JSON over HTTP across processes),
        // resources, typed records in transactions, job and schedule declarations.
        .target(
            name: "MicrolithModules",
            dependencies: [

                "MicrolithCache", "MicrolithJSON", "MicrolithSchema", "MicrolithStore", "MicrolithQuery", "MicrolithTables",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Background jobs (durable queue, workers, retries, dead letters) and scheduled tasks.
        .target(
            name: "MicrolithJobs",
            dependencies: [
                .product(name: "Metrics", package: "swift-metrics"),
                "MicrolithJSON", "MicrolithSchema", "MicrolithStore", "MicrolithModules",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Configuration (microlith.yaml + environment), app folder loading, seeding, lifecycle.
        .target(
            name: "MicrolithRuntime",
            dependencies: [
                "MicrolithCache", "MicrolithJSON", "MicrolithSchema", "MicrolithStore", "MicrolithHTTP", "MicrolithModules",
                "MicrolithJobs", "MicrolithRealtime", "MicrolithMQTT", "MicrolithNetwork", "MicrolithTables", "MicrolithAuth", "MicrolithTLS",
                "MicrolithNATS", "MicrolithReplication",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // Mustache templates parsed once and rendered from Encodable views. Foundation only.
        .target(name: "MicrolithTemplates"),
        // The `microlith` command line.
        .target(
            name: "MicrolithCLI",
            dependencies: [
                "MicrolithProcess", "MicrolithRuntime", "MicrolithHTTP", "MicrolithStore", "MicrolithSchema", "MicrolithModules", "MicrolithMQTT",
                "MicrolithTables",
                "MicrolithAuth", "MicrolithTLS", "MicrolithReplication", "MicrolithJSON", "MicrolithQuery",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // The library applications depend on: everything above in one import, and their `main`.
        .target(
            name: "Microlith",
            dependencies: [
                "MicrolithCache", "MicrolithCLI", "MicrolithHTTP", "MicrolithJSON", "MicrolithJobs", "MicrolithModules", "MicrolithProcess",
                "MicrolithRuntime",
                "MicrolithSchema",
                "MicrolithStore", "MicrolithRealtime", "MicrolithMQTT", "MicrolithTables", "MicrolithTemplates", "MicrolithTLS",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The `microlith` executable (a folder name that differs from the `Microlith` library's by
        // more than case, so the package checks out on case-insensitive file systems).
        .executableTarget(name: "MicrolithTool", dependencies: ["Microlith"]),
        // What several test targets share (a raw loopback client socket, test certificates); not a test target itself.
        .target(
            name: "MicrolithTestSupport",
            dependencies: [
                "MicrolithProcess",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Tests/MicrolithTestSupport"),
        .testTarget(name: "MicrolithJSONTests", dependencies: ["MicrolithJSON", "MicrolithTestSupport"]),
        .testTarget(name: "MicrolithProcessTests", dependencies: ["MicrolithProcess"]),
        .testTarget(
            name: "MicrolithReplicationTests",
            dependencies: [
                "MicrolithReplication", "MicrolithNATS", "MicrolithStore", "MicrolithSchema", "MicrolithJSON", "MicrolithTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "MicrolithNATSTests",
            dependencies: [
                "MicrolithNATS", "MicrolithTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "MicrolithCacheTests",
            dependencies: [
                "MicrolithCache", "MicrolithStore", "MicrolithQuery", "MicrolithSchema", "MicrolithJSON", "MicrolithTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "MicrolithNetworkTests",
            dependencies: [
                "MicrolithNetwork",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "MicrolithModulesTests",
            dependencies: [
                "MicrolithModules", "MicrolithCache", "MicrolithStore", "MicrolithSchema", "MicrolithJSON",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "MicrolithJobsTests",
            dependencies: [
                "MicrolithJobs", "MicrolithModules", "MicrolithStore", "MicrolithSchema", "MicrolithJSON",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "MicrolithRealtimeTests",
            dependencies: [
                "MicrolithRealtime", "MicrolithStore", "MicrolithSchema", "MicrolithJSON", "MicrolithQuery",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "MicrolithMQTTTests",
            dependencies: [
                "MicrolithMQTT", "MicrolithRealtime", "MicrolithStore", "MicrolithSchema", "MicrolithJSON", "MicrolithTables", "MicrolithAuth",
                "MicrolithTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "MicrolithTablesTests",
            dependencies: ["MicrolithTables", "MicrolithStore", "MicrolithSchema", "MicrolithJSON", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "MicrolithAuthTests",
            dependencies: ["MicrolithAuth", "MicrolithTables", "MicrolithStore", "MicrolithSchema", "MicrolithJSON"]
        ),
        .testTarget(
            name: "MicrolithTLSTests",
            dependencies: [
                "MicrolithTLS", "MicrolithTestSupport",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "MicrolithSchemaTests", dependencies: ["MicrolithSchema", "MicrolithJSON"]),
        .testTarget(name: "MicrolithTemplatesTests", dependencies: ["MicrolithTemplates"]),
        .testTarget(
            name: "MicrolithStoreTests",
            dependencies: [
                "MicrolithStore", "MicrolithSchema", "MicrolithJSON", "MicrolithTestSupport", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "MicrolithQueryTests",
            dependencies: [
                "MicrolithQuery", "MicrolithStore", "MicrolithSchema", "MicrolithJSON", "MicrolithTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(
            name: "MicrolithHTTPTests",
            dependencies: [
                "MicrolithHTTP", "MicrolithStore", "MicrolithSchema", "MicrolithJSON", "MicrolithModules", "MicrolithNetwork", "MicrolithCache",
                "MicrolithRealtime", "MicrolithTables", "MicrolithTestSupport",
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "MicrolithRuntimeTests",
            dependencies: [
                "MicrolithRuntime", "MicrolithJSON", "MicrolithStore", "MicrolithHTTP", "MicrolithSchema", "MicrolithModules", "MicrolithJobs",
                "MicrolithCache", "MicrolithMQTT", "MicrolithRealtime", "MicrolithTables", "MicrolithAuth", "MicrolithTLS", "MicrolithTestSupport",
                "MicrolithNATS", "MicrolithReplication",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .testTarget(
            name: "MicrolithCLITests",
            dependencies: ["MicrolithCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
    ]
)

// Benchmarks/modules/run: an operation called in-process vs over HTTP between two processes. Built
// only when MICROLITH_BENCHMARKS is set (the script sets it), so ordinary builds and CI skip it.
if Context.environment["MICROLITH_BENCHMARKS"] != nil {
    package.products.append(.executable(name: "microlith-callbench", targets: ["microlith-callbench"]))
    package.targets.append(
        .executableTarget(name: "microlith-callbench", dependencies: ["Microlith"], path: "Benchmarks/CallBench"))
}

for target in package.targets {
    var settings = target.swiftSettings ?? []
    settings.append(contentsOf: [
        .enableUpcomingFeature("ExistentialAny"),
        .enableUpcomingFeature("MemberImportVisibility"),
        .enableUpcomingFeature("InternalImportsByDefault"),
    ])
    target.swiftSettings = settings
}
