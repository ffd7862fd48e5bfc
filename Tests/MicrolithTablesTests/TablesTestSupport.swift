import Foundation
import MicrolithSchema
import MicrolithStore

/// The schema the table-layer tests use: string, integer and unexported tables.
let tablesSchemaText = """
    type Todo @table @export {
        id: ID @primaryKey
        title: String
        slug: String
    }

    type Counter @table @export {
        id: Int @primaryKey
        value: Int
    }

    type Hidden @table {
        id: ID @primaryKey
    }
    """

/// A store of ``tablesSchemaText`` in a new temporary folder; close it with ``closeAndRemove(_:)``.
func openTablesStore() throws -> Store {
    let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-tables-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return try Store.open(
        schema: try SchemaParser.parse(tablesSchemaText, file: "schema.graphql"),
        configuration: StoreConfiguration(directory: path, durability: .normal))
}

/// Closes `store` and deletes its folder.
func closeAndRemove(_ store: Store) {
    let directory = store.configuration.directory
    store.close()
    try? FileManager.default.removeItem(atPath: directory)
}
