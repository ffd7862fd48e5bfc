import ArgumentParser
import Foundation
import MicrolithRuntime
import MicrolithStore

/// Where a command finds a data folder: `--data-dir`, or the one an app folder's
/// `microlith.yaml` (and `MICROLITH_DATA_DIR`) names, as `serve` would.
struct DataFolderOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "The data folder (the databases' files).")
    var dataDir: String?

    @Option(name: .customLong("app"), help: "An app folder whose data folder to use (default <app>/.microlith, or store.dataDir).")
    var app: String?

    /// The data folder named.
    func resolve() throws -> String {
        if let dataDir {
            guard app == nil else { throw UserCommand.fail("give --data-dir or --app, not both") }
            return dataDir
        }
        guard let app else { throw UserCommand.fail("name the data folder with --data-dir DIR (or an app folder with --app DIR)") }
        return try UserCommand.load(appDirectory: app, dataDir: nil).1.store.directory
    }
}

/// `microlith backup --data-dir D --to PATH`: a consistent copy of every database of a data
/// folder, taken while a server may go on serving it (``Backup``).
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy every database of a data folder to a new backup folder, while the server keeps serving.",
        discussion: """
            Each database is copied as of one commit, with SQLite's backup API; writes go on meanwhile. \
            The backup folder holds one NAME.sqlite per database and a backup.json manifest (written last: \
            a folder without one is not a finished backup). Restore it with 'microlith restore'.
            """)

    @OptionGroup var folder: DataFolderOptions

    @Option(name: .customLong("to"), help: "The backup folder to create (it must not exist).")
    var destination: String

    func run() async throws {
        let dataDirectory = try folder.resolve()
        do {
            let manifest = try await Backup.take(dataDirectory: dataDirectory, to: destination)
            for line in BackupCommand.describe(manifest) { print(line) }
            print("backup in \(destination)")
        } catch let error as StoreError {
            throw UserCommand.fail(error.message)
        }
    }

    /// One line per database of `manifest`.
    static func describe(_ manifest: BackupManifest) -> [String] {
        manifest.databases.map { database in
            let tables = database.tables.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            return "\(database.name): \(database.bytes) bytes, records: \(tables.isEmpty ? "none" : tables)"
                + (database.lastChange.map { ", last change \($0)" } ?? "")
        }
    }
}

/// `microlith restore PATH --data-dir D [--replace]`: puts a backup's databases in a data folder
/// no server is using.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Put a backup's databases in a data folder; refused while a server or another command uses the folder.",
        discussion: """
            The backup is checked first (its manifest, each file's size, SQLite's quick_check). Databases the \
            folder already holds are only replaced with --replace, and are then moved to a replaced-<time> \
            folder inside it, not deleted. Not for a node of a running cluster yet: a restored database numbers \
            its next changes from the backup's last sequence, which the other nodes take for changes they have.
            """)

    @Argument(help: "The backup folder (made by 'microlith backup' or POST /_backup).")
    var backup: String

    @OptionGroup var folder: DataFolderOptions

    @Flag(help: "Replace the databases the data folder holds (they are moved aside, not deleted).")
    var replace = false

    func run() async throws {
        let dataDirectory = try folder.resolve()
        do {
            let restored = try Backup.restore(from: backup, into: dataDirectory, replace: replace)
            for line in BackupCommand.describe(restored.manifest) { print(line) }
            if let aside = restored.movedAside { print("the databases that were there are in \(aside)") }
            print("restored \(restored.manifest.created) backup into \(dataDirectory)")
        } catch let error as StoreError {
            throw UserCommand.fail(error.message)
        }
    }
}
