import ArgumentParser
import Foundation
import MicrolithRuntime
import MicrolithSchema
import MicrolithStore

/// `microlith tables APP`: each table of the schema with its database, key, indexes, REST name,
/// and how many records the data folder holds (read without writing, beside a running server).
struct TablesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tables", abstract: "List the schema's tables: database, key, indexes, REST name and records in the data folder.")

    @OptionGroup var location: UserCommand.Location

    func run() async throws {
        let (app, configuration) = try location.load()
        let directory = configuration.store.directory
        var counts: [String: [String: Int]] = [:]
        if FileManager.default.fileExists(atPath: directory) {
            do {
                for summary in try DatabaseSummary.read(dataDirectory: directory) { counts[summary.name] = summary.tables }
            } catch let error as StoreError {
                throw UserCommand.fail(error.message)
            }
        }
        for table in app.schema.tables {
            let key = table.primaryKeyAttribute
            var parts = ["database \(table.database)", "key \(key.name): \(key.type)"]
            if let count = counts[table.database]?[table.name] {
                parts.append("\(count) record\(count == 1 ? "" : "s")")
            } else {
                parts.append("not in the data folder yet")
            }
            let indexed = table.indexedAttributes.map(\.name) + table.compositeIndexes.map { "(\($0.attributes.joined(separator: ", ")))" }
            parts.append(indexed.isEmpty ? "no index" : "indexed \(indexed.joined(separator: ", "))")
            parts.append(table.exportName.map { "REST /\($0)/" } ?? "not exported")
            if let expiration = table.expiration { parts.append("records expire after \(expiration) s") }
            print("\(table.typeName): \(parts.joined(separator: "; "))")
        }
        for (database, tables) in counts.sorted(by: { $0.key < $1.key }) {
            for (name, count) in tables.sorted(by: { $0.key < $1.key }) where !app.schema.tables.contains(where: { $0.name == name }) {
                print("\(name): in database \(database) with \(count) record\(count == 1 ? "" : "s"), no longer in the schema")
            }
        }
    }
}
