import Foundation
import MicrolithJSON
import MicrolithSchema
import Testing

@testable import MicrolithStore

/// A store opened read-only reads what a writer commits, takes no write, and opens only a folder
/// migrated to its schema.
@Suite struct StoreReadOnlyTests {
    static let schema = """
        type Todo @table @export {
            id: ID @primaryKey
            title: String!
        }
        """

    func readOnly(_ directory: String, schema: String = Self.schema) throws -> Store {
        var configuration = StoreConfiguration(directory: directory, durability: .normal)
        configuration.readOnly = true
        return try Store.open(schema: try parseSchema(schema), configuration: configuration)
    }

    @Test func readsBesideAWriterAndTakesNoWrite() async throws {
        let directory = try makeTemporaryDirectory()
        let writer = try openStore(directory, schema: Self.schema)
        defer { writer.closeAndRemoveFiles() }
        let todo = try writer.layout("Todo")
        try await writer.write { txn in _ = try txn.put(todo, id: .string("a"), body: ["title": "first"]) }

        let reader = try readOnly(directory)
        defer { reader.close() }
        #expect(reader.nodeID == writer.nodeID)
        #expect(try await reader.get(todo, .string("a"))?.record["title"] == "first")
        try await writer.write { txn in _ = try txn.put(todo, id: .string("b"), body: ["title": "second"]) }
        #expect(try await reader.get(todo, .string("b"))?.record["title"] == "second")
        let refused = await #expect(throws: StoreError.self) {
            try await reader.write { txn in _ = try txn.put(todo, id: .string("c"), body: ["title": "no"]) }
        }
        #expect(refused?.code == .closed && refused?.message.contains("read-only") == true)
        #expect(try await writer.get(todo, .string("c")) == nil)
    }

    @Test func opensOnlyAFolderMigratedToItsSchema() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let missing = #expect(throws: StoreError.self) { try readOnly(directory) }
        #expect(missing?.message.contains("no database data") == true)
        #expect(try Backup.databaseFiles(in: directory).isEmpty, "nothing was created")

        try openStore(directory, schema: Self.schema).close()
        let changed = Self.schema.replacingOccurrences(of: "title: String!", with: "title: String! @indexed")
        let error = #expect(throws: StoreError.self) { try readOnly(directory, schema: changed) }
        #expect(error?.code == .incompatibleSchema && error?.message.contains("table Todo") == true)
        let added = Self.schema + "\ntype Note @table { id: ID @primaryKey }\n"
        let notYet = #expect(throws: StoreError.self) { try readOnly(directory, schema: added) }
        #expect(notYet?.message.contains("table Note is not in database data yet") == true)
        try readOnly(directory).close()
    }

    @Test func refusesAnIndexWhoseSparsenessTheSchemaChanged() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let whole = Self.schema.replacingOccurrences(of: "title: String!", with: "title: String!\n    due: Date @indexed")
        let sparse = whole.replacingOccurrences(of: "due: Date @indexed", with: "due: Date @indexed(sparse: true)")
        try openStore(directory, schema: whole).close()
        let error = #expect(throws: StoreError.self) { try readOnly(directory, schema: sparse) }
        #expect(error?.code == .incompatibleSchema, "\(String(describing: error))")
        #expect(error?.message.contains("whole index of due, the schema a sparse one") == true, "\(String(describing: error))")
        try readOnly(directory, schema: whole).close()
        // A start migrates it; then the read-only store opens with the sparse schema, not the whole.
        try openStore(directory, schema: sparse).close()
        try readOnly(directory, schema: sparse).close()
        let back = #expect(throws: StoreError.self) { try readOnly(directory, schema: whole) }
        #expect(back?.message.contains("sparse index of due, the schema a whole one") == true, "\(String(describing: back))")
    }
}
