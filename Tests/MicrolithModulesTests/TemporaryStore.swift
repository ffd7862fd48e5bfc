import Foundation
import MicrolithSchema
import MicrolithStore

/// Runs `body` with a store of `schema` in a new temporary folder, then closes the store and
/// removes the folder.
func withTemporaryStore(schema: String, _ body: (Store) async throws -> Void) async throws {
    let folder = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-modules-tests-\(UUID().uuidString)")
    let store = try Store.open(
        schema: try SchemaParser.parse(schema, file: "schema.graphql"), configuration: StoreConfiguration(directory: folder, durability: .normal))
    defer {
        store.close()
        try? FileManager.default.removeItem(atPath: folder)
    }
    try await body(store)
}
