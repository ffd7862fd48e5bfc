import Foundation
import GRDB
public import MicrolithSchema

/// What one database file holds: its size, the records of each table, the last change.
public struct DatabaseSummary: Sendable, Equatable {
    /// The database's name (`data` for tables without `@table(database:)`).
    public var name: String
    /// The size of its file.
    public var bytes: Int64
    /// The size of its write-ahead log (`-wal`), not yet folded into the file.
    public var logBytes: Int64
    /// The records of each table, by table name.
    public var tables: [String: Int]
    /// The last change-log sequence (nil when the log is empty).
    public var lastChange: Int64?
    /// The node id the file records.
    public var node: String?

    /// The summaries of every database (`*.sqlite`) of `dataDirectory`, read without writing
    /// (a server may be serving the folder meanwhile), in name order.
    ///
    /// - Throws: ``StoreError`` (`storage`) when the folder or a file cannot be read.
    public static func read(dataDirectory: String) throws -> [DatabaseSummary] {
        let lock = try DataFolderLock(directory: dataDirectory, mode: .shared)
        defer { lock.release() }
        return try Backup.databaseFiles(in: dataDirectory).map { file in
            let path = (dataDirectory as NSString).appendingPathComponent(file)
            var configuration = Configuration()
            configuration.readonly = true
            configuration.busyMode = .timeout(5)
            do {
                let queue = try DatabaseQueue(path: path, configuration: configuration)
                defer { try? queue.close() }
                return try queue.read { db in try summary(db, name: String(file.dropLast(".sqlite".count)), path: path) }
            } catch let error as StoreError {
                throw error
            } catch {
                throw StoreError(.storage, "cannot read database \(path): \(error)", underlying: error)
            }
        }
    }

    /// The summary of the database `db` (inside a read transaction), whose file is `path`.
    static func summary(_ db: Database, name: String, path: String) throws -> DatabaseSummary {
        var tables: [String: Int] = [:]
        if try db.tableExists("_microlith_tables") {
            for table in try String.fetchAll(db, sql: "SELECT name FROM _microlith_tables") where try db.tableExists("r_\(table)") {
                tables[table] = try Int.fetchOne(db, sql: "SELECT count(*) FROM \"r_\(table)\"") ?? 0
            }
        }
        let last = try db.tableExists("_microlith_changelog") ? try Int64.fetchOne(db, sql: "SELECT max(seq) FROM _microlith_changelog") : nil
        let node =
            try db.tableExists("_microlith_meta") ? try String.fetchOne(db, sql: "SELECT value FROM _microlith_meta WHERE key = 'node'") : nil
        return DatabaseSummary(
            name: name, bytes: size(of: path), logBytes: size(of: path + "-wal"), tables: tables, lastChange: last, node: node)
    }

    /// The size of the file at `path`; 0 when there is none.
    public static func size(of path: String) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.int64Value ?? 0
    }
}

extension Store {
    /// The summary of each database of this store, in ``databaseNames`` order: each as of one
    /// commit, counted on a reader while writes go on.
    public func summaries() async throws -> [DatabaseSummary] {
        var found: [DatabaseSummary] = []
        for name in databaseNames {
            let path = (configuration.directory as NSString).appendingPathComponent("\(name).sqlite")
            found.append(try await read(database: name) { db in try DatabaseSummary.summary(db, name: name, path: path) })
        }
        return found
    }
}

extension Store {
    /// The value the database `database` keeps under `key` among the runtime's own settings
    /// (`_microlith_meta`), or nil. Such values travel with the file: into backups, restores and
    /// copies.
    public func metaValue(_ key: String, database: String = Schema.defaultDatabase) async throws -> String? {
        try await read(database: database) { db in try String.fetchOne(db, sql: "SELECT value FROM _microlith_meta WHERE key = ?", arguments: [key]) }
    }

    /// Keeps `value` under `key` in the database `database` (``metaValue(_:database:)``), durably.
    public func setMetaValue(_ key: String, _ value: String, database: String = Schema.defaultDatabase) async throws {
        try await write(database: database) { txn in
            try txn.db.execute(sql: "INSERT OR REPLACE INTO _microlith_meta(key, value) VALUES (?, ?)", arguments: [key, value])
        }
    }
}
