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

    /// The marker file earlier versions wrote in the data folder once the seed files were loaded;
    /// still honoured.
    public static let markerName = ".seeded"
    /// The key under which the first database records that the seed files were loaded (with the
    /// time), so the mark travels with the data into backups and restores.
    public static let metaKey = "seeded"

    /// Whether the seed files were loaded into `store` (or, by an earlier version, into its folder).
    public static func wasSeeded(_ store: Store) async throws -> Bool {
        let marker = (store.configuration.directory as NSString).appendingPathComponent(markerName)
        if FileManager.default.fileExists(atPath: marker) { return true }
        return try await store.metaValue(metaKey, database: store.databaseNames[0]) != nil
    }

    /// Loads `files` unless this data folder was seeded before; returns how many records were written.
    @discardableResult
    public func seedIfNeeded(files: [String]) async throws -> Int {
        guard !files.isEmpty else { return 0 }
        let marker = (store.configuration.directory as NSString).appendingPathComponent(Self.markerName)
        if try await Self.wasSeeded(store) {
            // A folder an earlier version seeded: the mark goes into the database too, so that its
            // backups carry it.
            if FileManager.default.fileExists(atPath: marker), try await store.metaValue(Self.metaKey, database: store.databaseNames[0]) == nil {
                try await store.setMetaValue(Self.metaKey, "before \(ISO8601DateFormatter().string(from: Date()))", database: store.databaseNames[0])
            }
            return 0
        }
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
        do {
            try await store.setMetaValue(Self.metaKey, ISO8601DateFormatter().string(from: Date()), database: store.databaseNames[0])
        } catch let e as StoreError {
            throw RuntimeError("the seed files were loaded but cannot be marked as loaded: \(e.message)")
        }
        return total
    }
}
