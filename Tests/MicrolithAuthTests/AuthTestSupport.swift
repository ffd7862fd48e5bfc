import Foundation
import MicrolithAuth
import MicrolithSchema
import MicrolithStore
import MicrolithTables
import Testing

/// A store with the users' table in a new temporary folder; closed and deleted after `body`.
func withUsers(
    wallClock: @escaping @Sendable () -> Int64 = HybridLogicalClock.systemMilliseconds, _ body: (UserDirectory) async throws -> Void
) async throws {
    let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-auth-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    let store = try Store.open(
        schema: try SchemaParser.parse("type Todo @table @export { id: ID @primaryKey }", file: "schema.graphql"),
        configuration: StoreConfiguration(directory: path, durability: .normal, wallClock: wallClock, systemTables: [.users]))
    defer { store.close() }
    // A low cost keeps the tests quick; the stored hash names its own cost, checked below.
    try await body(UserDirectory(store: store, iterations: 2_000))
}

/// `Basic` credentials for `user:password`.
func basic(_ user: String, _ password: String) -> String {
    "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
}
