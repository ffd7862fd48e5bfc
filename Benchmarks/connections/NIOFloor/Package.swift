// swift-tools-version:6.0
// The floor of a new connection per request on SwiftNIO: the least an NIO server does to
// accept a connection, read one request head, write fixed bytes and close. Measured by
// Benchmarks/connections/run --nio-floor beside nginx and the storefront.
import PackageDescription

let package = Package(
    name: "NIOFloor",
    dependencies: [.package(url: "https://github.com/apple/swift-nio", from: "2.101.2")],
    targets: [
        .executableTarget(
            name: "NIOFloor",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")]
        )
    ]
)
