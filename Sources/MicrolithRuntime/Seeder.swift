import Foundation
package import Logging
import MicrolithJSON
import MicrolithSchema
package import MicrolithStore

/// Loads `data/<Table>.json` seed files (a JSON array of records each) into an empty data
/// folder, once: a marker file in the data folder records that seeding happened.
package struct Seeder {
    public let store: Store
    public let logger: Logger

    public init(store: Store, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    /// The marker written once the seed files are loaded.
    public static let markerName = ".seeded"

    /// Loads `files` unless this data folder was seeded before; returns how many records were written.
    @discardableResult
    public func seedIfNeeded(files: [String]) async throws -> Int {
        let marker = (store.configuration.directory as NSString).appendingPathComponent(Self.markerName)
        guard !files.isEmpty, !FileManager.default.fileExists(atPath: marker) else { return 0 }
        var total = 0
        for file in files {
            let name = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
            guard let table = store.table(exportName: name) ?? store.table(typeName: name) ?? store.tables.first(where: { $0.name == name }) else {
                throw RuntimeError("\(file): no table named \(name) in the schema (seed files are named after their table)")
            }
            guard let data = FileManager.default.contents(atPath: file) else { throw RuntimeError("\(file): cannot read the file") }
            let records: [JSONObject]
            do {
                guard case .array(let values) = try JSONParser.parse(data) else {
                    throw RuntimeError("\(file): a seed file holds a JSON array of records")
                }
                records = try values.enumerated().map { index, value in
                    guard case .object(let o) = value else { throw RuntimeError("\(file): element \(index) is not a JSON object") }
                    return o
                }
            } catch let e as JSONParseError {
                throw RuntimeError("\(file): \(e.description)")
            }
            do {
                try await store.write(database: table.definition.database) { txn in
                    let pk = table.definition.primaryKeyAttribute
                    for (index, record) in records.enumerated() {
                        do {
                            if let given = record[pk.name], let id = RecordID(json: given, type: pk.type) {
                                try txn.put(table, id: id, body: record)
                            } else {
                                _ = try txn.insert(table, body: record)
                            }
                        } catch let e as StoreError {
                            throw StoreError(e.code, "element \(index): \(e.message)", attribute: e.attribute)
                        }
                    }
                }
            } catch let e as StoreError {
                throw RuntimeError("\(file): \(e.message)")
            }
            logger.info("seeded \(records.count) records into \(table.name) from \(file)")
            total += records.count
        }
        guard FileManager.default.createFile(atPath: marker, contents: Data("seeded\n".utf8)) else {
            throw RuntimeError("cannot write \(marker) in the data folder")
        }
        return total
    }
}
