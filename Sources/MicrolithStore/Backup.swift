import Foundation
package import GRDB

/// What a backup folder holds, written last as its `backup.json`: a folder without one is not a
/// finished backup.
public struct BackupManifest: Codable, Sendable, Equatable {
    /// One database of the backup.
    public struct Database: Codable, Sendable, Equatable {
        /// The database's name (`data` for tables without `@table(database:)`).
        public var name: String
        /// Its file in the backup folder.
        public var file: String
        /// The file's size.
        public var bytes: Int64
        /// The records of each table, by table name, at the moment of the copy.
        public var tables: [String: Int]
        /// The last change-log sequence the copy holds (nil when the log is empty).
        public var lastChange: Int64?
    }

    /// The layout of this manifest; a restore refuses a newer one.
    public var format: Int
    /// When the backup was taken (ISO 8601, UTC).
    public var created: String
    /// The node whose data this is.
    public var node: String?
    /// Every database, each a consistent snapshot of its own.
    public var databases: [Database]
}

/// Online backup and restore of a data folder's databases.
///
/// A backup copies each database with SQLite's backup API inside one read transaction, so it is
/// the database as of one commit, while writers go on (WAL readers do not block them). Each
/// database is consistent on its own; no transaction spans two databases, so nothing is lost
/// between them. The copies go to a `.partial` folder that is renamed once the manifest is
/// written: a backup folder either is whole or does not exist.
public enum Backup {
    /// The manifest's file name in a backup folder.
    public static let manifestName = "backup.json"
    /// The manifest layout this version writes and reads.
    public static let format = 1

    /// Takes a backup of every database (`*.sqlite`) in `dataDirectory`, which a server may be
    /// serving meanwhile, into the new folder `destination`.
    ///
    /// - Throws: ``StoreError`` (`storage`) when the folder holds no database, the destination
    ///   exists, or a copy fails; a failed backup leaves no destination folder.
    public static func take(dataDirectory: String, to destination: String) async throws -> BackupManifest {
        let files = try databaseFiles(in: dataDirectory)
        guard !files.isEmpty else { throw StoreError(.storage, "\(dataDirectory) holds no database (no *.sqlite file)") }
        let lock = try DataFolderLock(directory: dataDirectory, mode: .shared)
        defer { lock.release() }
        return try await write(to: destination) { partial in
            try files.map { file in
                var configuration = Configuration()
                configuration.busyMode = .timeout(10)
                let name = String(file.dropLast(".sqlite".count))
                let source: DatabaseQueue
                do {
                    source = try DatabaseQueue(path: (dataDirectory as NSString).appendingPathComponent(file), configuration: configuration)
                } catch {
                    throw StoreError(.storage, "cannot open \(file) in \(dataDirectory): \(error)", underlying: error)
                }
                defer { try? source.close() }
                do {
                    return try source.read { db in try copy(db, name: name, into: partial) }
                } catch let error as StoreError {
                    throw error
                } catch {
                    throw StoreError(.storage, "cannot copy database \(name): \(error)", underlying: error)
                }
            }
        }
    }

    /// What ``restore(from:into:replace:)`` did.
    public struct Restored: Sendable {
        /// The backup's manifest.
        public var manifest: BackupManifest
        /// Where the databases the folder held before went (nil when it held none).
        public var movedAside: String?
    }

    /// Reads and checks the backup folder `folder`: its manifest, and every database it names
    /// (present, of the recorded size, and whole by SQLite's `PRAGMA quick_check`).
    ///
    /// - Throws: ``StoreError`` (`storage`) naming what is missing or damaged.
    public static func verify(_ folder: String) throws -> BackupManifest {
        let manifest = try manifest(at: folder)
        for database in manifest.databases {
            let file = (folder as NSString).appendingPathComponent(database.file)
            guard let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.int64Value else {
                throw StoreError(.storage, "the backup lacks \(database.file), which \(manifestName) names")
            }
            guard size == database.bytes else {
                throw StoreError(
                    .storage, "\(file) has \(size) bytes where \(manifestName) says \(database.bytes): the backup was changed or cut short")
            }
            do {
                var configuration = Configuration()
                configuration.readonly = true
                let queue = try DatabaseQueue(path: file, configuration: configuration)
                defer { try? queue.close() }
                let verdict = try queue.read { db in try String.fetchAll(db, sql: "PRAGMA quick_check") }
                guard verdict == ["ok"] else {
                    throw StoreError(.storage, "\(file) is damaged: \(verdict.prefix(3).joined(separator: "; "))")
                }
            } catch let error as StoreError {
                throw error
            } catch {
                throw StoreError(.storage, "\(file) is not a readable database: \(error)", underlying: error)
            }
        }
        return manifest
    }

    /// The manifest of the backup folder `folder`, read and checked (its format, and database
    /// names that stay inside a folder), without reading the databases.
    public static func manifest(at folder: String) throws -> BackupManifest {
        let path = (folder as NSString).appendingPathComponent(manifestName)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StoreError(.storage, "\(folder) is not a finished backup: it has no \(manifestName)")
        }
        let manifest: BackupManifest
        do {
            manifest = try JSONDecoder().decode(BackupManifest.self, from: data)
        } catch {
            throw StoreError(.storage, "\(path) cannot be read: \(error)", underlying: error)
        }
        guard manifest.format <= format else {
            throw StoreError(
                .storage, "\(path) has format \(manifest.format), newer than this version reads (\(format)); restore with a newer microlith")
        }
        guard !manifest.databases.isEmpty else { throw StoreError(.storage, "\(path) names no database") }
        for database in manifest.databases {
            let safe = database.name.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F || c == 0x2D
            }
            guard safe, !database.name.isEmpty, database.file == "\(database.name).sqlite" else {
                throw StoreError(.storage, "\(path) names a database '\(database.name)' in file '\(database.file)': not a database of a data folder")
            }
        }
        return manifest
    }

    /// Puts the databases of the backup `backup` in `dataDirectory` (created when missing).
    ///
    /// It holds the folder's lock exclusively, so it refuses to run while a server or another
    /// command has the databases open. Databases the folder already holds are replaced only with
    /// `replace`, and then moved, with their `-wal` and `-shm` files, to a `replaced-<time>` folder
    /// inside it rather than deleted. Each file is copied under a temporary name, flushed, and
    /// renamed into place.
    ///
    /// - Throws: ``StoreError`` (`storage`) saying what stopped it; the folder is then as it was,
    ///   or (for a failure after the old files moved) holds them in the `replaced-` folder.
    public static func restore(from backup: String, into dataDirectory: String, replace: Bool) throws -> Restored {
        let manifest = try verify(backup)
        let manager = FileManager.default
        do {
            try manager.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        } catch {
            throw StoreError(.storage, "cannot create the data folder \(dataDirectory): \(error)", underlying: error)
        }
        let lock = try DataFolderLock(directory: dataDirectory, mode: .exclusive)
        defer { lock.release() }
        let present = try databaseFiles(in: dataDirectory)
        if !present.isEmpty && !replace {
            throw StoreError(
                .storage,
                "\(dataDirectory) holds databases already (\(present.joined(separator: ", "))); "
                    + "pass --replace to move them to a replaced-<time> folder inside it and restore over them")
        }
        // Every database is copied in, under a temporary name, and flushed before anything of the
        // folder moves: a copy that fails leaves the folder as it was.
        var copied: [(temporary: String, target: String)] = []
        do {
            for database in manifest.databases {
                let target = (dataDirectory as NSString).appendingPathComponent(database.file)
                let temporary = target + ".restoring"
                try? manager.removeItem(atPath: temporary)
                try manager.copyItem(atPath: (backup as NSString).appendingPathComponent(database.file), toPath: temporary)
                try synchronize(temporary)
                copied.append((temporary, target))
            }
        } catch {
            for (temporary, _) in copied { try? manager.removeItem(atPath: temporary) }
            try? manager.removeItem(atPath: (dataDirectory as NSString).appendingPathComponent("\(manifest.databases[copied.count].file).restoring"))
            if let error = error as? StoreError { throw error }
            throw StoreError(.storage, "cannot copy the backup into \(dataDirectory): \(error); the folder is as it was", underlying: error)
        }
        var aside: String?
        if !present.isEmpty {
            let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
            let folder = (dataDirectory as NSString).appendingPathComponent("replaced-\(stamp)")
            do {
                try manager.createDirectory(atPath: folder, withIntermediateDirectories: false)
                let companions = try manager.contentsOfDirectory(atPath: dataDirectory).filter { name in
                    present.contains { name == $0 || name == $0 + "-wal" || name == $0 + "-shm" || name == $0 + "-journal" }
                }
                for name in companions {
                    try manager.moveItem(
                        atPath: (dataDirectory as NSString).appendingPathComponent(name), toPath: (folder as NSString).appendingPathComponent(name))
                }
            } catch {
                for (temporary, _) in copied { try? manager.removeItem(atPath: temporary) }
                throw StoreError(.storage, "cannot move the present databases to \(folder): \(error)", underlying: error)
            }
            aside = folder
        }
        for (temporary, target) in copied {
            do {
                for stale in ["-wal", "-shm", "-journal"] { try? manager.removeItem(atPath: target + stale) }
                try manager.moveItem(atPath: temporary, toPath: target)
            } catch {
                throw StoreError(.storage, "cannot put \((target as NSString).lastPathComponent) in \(dataDirectory): \(error)", underlying: error)
            }
        }
        try synchronize(dataDirectory)
        return Restored(manifest: manifest, movedAside: aside)
    }

    /// Creates `destination` through a `.partial` folder: `copy` fills it and names its
    /// databases; the manifest is written, then the folder renamed.
    package static func write(
        to destination: String, copy: (String) async throws -> [BackupManifest.Database]
    ) async throws -> BackupManifest {
        let manager = FileManager.default
        guard !manager.fileExists(atPath: destination) else {
            throw StoreError(.alreadyExists, "\(destination) exists already; name a new folder for the backup")
        }
        // A folder of this backup's own: two backups to one name never touch each other's files
        // (the second to finish finds the name taken and removes only its own).
        let partial = destination + ".partial-\(UUID().uuidString.prefix(8).lowercased())"
        do {
            try manager.createDirectory(atPath: (partial as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try manager.createDirectory(atPath: partial, withIntermediateDirectories: false)
        } catch {
            throw StoreError(.storage, "cannot create \(partial): \(error)", underlying: error)
        }
        do {
            let databases = try await copy(partial)
            let manifest = BackupManifest(
                format: format, created: ISO8601DateFormatter().string(from: Date()), node: databases.isEmpty ? nil : try node(partial, databases),
                databases: databases)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let manifestPath = (partial as NSString).appendingPathComponent(manifestName)
            try encoder.encode(manifest).write(to: URL(fileURLWithPath: manifestPath))
            for file in databases.map(\.file) + [manifestName] {
                try synchronize((partial as NSString).appendingPathComponent(file))
            }
            guard !manager.fileExists(atPath: destination) else {
                throw StoreError(.alreadyExists, "\(destination) exists already; name a new folder for the backup")
            }
            try manager.moveItem(atPath: partial, toPath: destination)
            try synchronize((destination as NSString).deletingLastPathComponent)
            return manifest
        } catch {
            try? manager.removeItem(atPath: partial)
            if let error = error as? StoreError { throw error }
            throw StoreError(.storage, "cannot write the backup to \(destination): \(error)", underlying: error)
        }
    }

    /// Copies `source` (a connection inside a read transaction, so one snapshot) to
    /// `folder/name.sqlite`, and describes the copy.
    package static func copy(_ source: Database, name: String, into folder: String) throws -> BackupManifest.Database {
        let file = "\(name).sqlite"
        let path = (folder as NSString).appendingPathComponent(file)
        let destination = try DatabaseQueue(path: path)
        do {
            try destination.writeWithoutTransaction { db in try source.backup(to: db) }
            // The copy stands alone: its log folded in, no -wal file beside it.
            try destination.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
            let described = try destination.read { db in try DatabaseSummary.summary(db, name: name, path: path) }
            try destination.close()
            return BackupManifest.Database(
                name: name, file: file, bytes: DatabaseSummary.size(of: path), tables: described.tables, lastChange: described.lastChange)
        } catch {
            try? destination.close()
            throw error
        }
    }

    /// The node id the first copied database records.
    private static func node(_ folder: String, _ databases: [BackupManifest.Database]) throws -> String? {
        let queue = try DatabaseQueue(path: (folder as NSString).appendingPathComponent(databases[0].file))
        defer { try? queue.close() }
        return try queue.read { db in
            guard try db.tableExists("_microlith_meta") else { return nil }
            return try String.fetchOne(db, sql: "SELECT value FROM _microlith_meta WHERE key = 'node'")
        }
    }

    /// The database files (`NAME.sqlite`) of a data folder, sorted.
    static func databaseFiles(in directory: String) throws -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw StoreError(.storage, "cannot read the folder \(directory): \(error)", underlying: error)
        }
        return names.filter { $0.hasSuffix(".sqlite") && $0.count > ".sqlite".count }.sorted()
    }

    /// Flushes a file or folder to disk.
    static func synchronize(_ path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw StoreError(.storage, "cannot open \(path) to flush it: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw StoreError(.storage, "cannot flush \(path): \(String(cString: strerror(errno)))") }
    }
}

extension Store {
    /// Takes a backup of every database of this store into the new folder `destination`, while
    /// it goes on serving (``Backup``).
    public func backup(to destination: String) async throws -> BackupManifest {
        try await Backup.write(to: destination) { partial in
            var copied: [BackupManifest.Database] = []
            for name in databaseNames {
                do {
                    copied.append(try await read(database: name) { db in try Backup.copy(db, name: name, into: partial) })
                } catch {
                    throw StoreError(.storage, "cannot copy database \(name): \(error)", underlying: error)
                }
            }
            return copied
        }
    }
}
