import Foundation
import GRDB
import MicrolithJSON
import MicrolithSchema
import MicrolithStore
import Synchronization
import Testing

/// A new, empty folder under the system's temporary folder.
func makeTemporaryDirectory() throws -> String {
    let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-store-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Deletes a folder made by ``makeTemporaryDirectory()``.
func removeDirectory(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

/// The schema most store tests use.
let todoSchemaText = """
    type Todo @table @export {
        id: ID @primaryKey
        title: String!
        done: Boolean @indexed
        tags: [String] @indexed
        priority: Int @indexed
        score: Float
        notes: String
        labels: [String]
        meta: Any
        createdAt: Long @createdTime
        updatedAt: Long @updatedTime
    }

    type Counter @table {
        id: Int @primaryKey
        value: Int
    }
    """

func parseSchema(_ text: String) throws -> Schema {
    try SchemaParser.parse(text, file: "schema.graphql")
}

func openStore(
    _ directory: String, schema text: String = todoSchemaText, cacheBytes: Int = 64 << 20, maximumBatch: Int = 512
) throws
    -> Store
{
    try Store.open(
        schema: try parseSchema(text),
        configuration: StoreConfiguration(directory: directory, durability: .normal, cacheBytes: cacheBytes, maximumBatch: maximumBatch))
}

/// A store in a new temporary folder; close it with ``Store/closeAndRemoveFiles()``.
func openTemporaryStore(schema text: String = todoSchemaText) throws -> Store {
    try openStore(try makeTemporaryDirectory(), schema: text)
}

extension Store {
    /// Closes the store and deletes its folder (one made by ``openTemporaryStore(schema:)``).
    func closeAndRemoveFiles() {
        close()
        removeDirectory(configuration.directory)
    }

    /// The table named `name`; records an issue and stops the test when there is none.
    func layout(_ name: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> TableLayout {
        try #require(table(name: name), sourceLocation: sourceLocation)
    }

    /// Writes one record with `put` and returns it.
    @discardableResult
    func put(_ table: TableLayout, _ id: RecordID, _ body: JSONObject, precondition: WritePrecondition = .none) async throws -> CachedRecord {
        try await write { txn in try txn.put(table, id: id, body: body, precondition: precondition) }
    }

    /// The values of `column` in `table`'s SQLite table, by record id text.
    func indexColumn(_ table: TableLayout, _ column: String) async throws -> [String: DatabaseValue] {
        try await read(database: table.definition.database) { db in
            var result: [String: DatabaseValue] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT CAST(id AS TEXT), \"\(column)\" FROM \"r_\(table.name)\"") {
                result[row[0] as String] = row[1] as DatabaseValue
            }
            return result
        }
    }

    /// The rows of a list attribute's side table, as (value, id) text pairs sorted.
    func sideTable(_ table: TableLayout, _ attribute: String) async throws -> [String] {
        try await read(database: table.definition.database) { db in
            try String.fetchAll(
                db, sql: "SELECT CAST(id AS TEXT) || '=' || CAST(value AS TEXT) FROM \"a_\(table.name)_\(attribute)\" ORDER BY 1")
        }
    }

    /// The names of the columns of `table`'s SQLite table.
    func sqlColumns(_ table: TableLayout) async throws -> [String] {
        try await read(database: table.definition.database) { db in
            try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?)", arguments: ["r_\(table.name)"])
        }
    }

    /// The names of the SQLite tables of `database`.
    func sqlTables(database: String = "data") async throws -> Set<String> {
        try await read(database: database) { db in
            Set(try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'"))
        }
    }
}

/// Runs `body` and returns the ``StoreError`` it throws, or `nil` (recording an issue) when it throws none.
func storeError(
    sourceLocation: Testing.SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async -> StoreError? {
    do {
        try await body()
        Issue.record("expected a StoreError, but nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as StoreError {
        return error
    } catch {
        Issue.record("expected a StoreError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// A counter shared between tasks.
final class SharedCounter: Sendable {
    private let value = Mutex(0)

    func increment(by n: Int = 1) { value.withLock { $0 += n } }

    var current: Int { value.withLock { $0 } }
}

/// Lines appended from any task.
final class SharedLog: Sendable {
    private let lines = Mutex<[String]>([])

    func append(_ new: [String]) { lines.withLock { $0.append(contentsOf: new) } }

    var entries: [String] { lines.withLock { $0 } }
}
