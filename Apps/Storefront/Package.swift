// swift-tools-version:6.1
import PackageDescription

// The storefront reference app: catalog, inventory, pricing and reviews modules plus a gateway
// that renders the shop's pages; one process (`--topology microlith`) or five (`services`).
let package = Package(
    name: "Storefront",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "storefront", targets: ["StorefrontServer"])
    ],
    dependencies: [
        .package(name: "Microlith", path: "../.."),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .target(
            name: "Storefront",
            dependencies: [
                .product(name: "Microlith", package: "Microlith"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            // The app folder (schema.graphql, templates/) ships beside the binary, so the shop
            // starts from any working directory.
            resources: [.copy("app")]
        ),
        // The `storefront` executable (its folder differs from the library's by more than case).
        .executableTarget(
            name: "StorefrontServer",
            dependencies: [
                "Storefront", .product(name: "Microlith", package: "Microlith"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "StorefrontTests",
            dependencies: [
                "Storefront", .product(name: "Microlith", package: "Microlith"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                // The reference the runtime's template renderer is checked against, page by page.
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
