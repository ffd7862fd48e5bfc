// swift-tools-version:6.1
import PackageDescription

// An application built on Microlith: two modules (pricing, cart) that call each other through
// the runtime, in one process or split across two, chosen by configuration only.
let package = Package(
    name: "ShopModules",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Microlith", path: "../..")
    ],
    targets: [
        .target(name: "ShopModules", dependencies: [.product(name: "Microlith", package: "Microlith")]),
        .executableTarget(name: "shop", dependencies: ["ShopModules", .product(name: "Microlith", package: "Microlith")]),
        .testTarget(name: "ShopModulesTests", dependencies: ["ShopModules", .product(name: "Microlith", package: "Microlith")]),
    ],
    swiftLanguageModes: [.v6]
)
