import ArgumentParser
import Foundation
import Logging
import MicrolithRuntime
import MicrolithSchema
import MicrolithStore
import MicrolithTLS
import MicrolithTables
import Synchronization

/// `microlith check DIR`: validates an app folder's schema and configuration without serving.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate an app folder's schema.graphql, microlith.yaml and roles.yaml, then print its tables and roles."
    )

    @Argument(help: "The app folder.")
    var appDirectory: String

    @Option(
        name: .customLong("against"),
        help: "A data folder: also say what a start would migrate in it (tried on a copy; the folder is not changed).")
    var against: String?

    @Option(help: "Where --against copies the data folder to try a start on (default: the system's temporary folder).")
    var scratch: String?

    func run() async throws {
        do {
            let app = try AppFolder.load(appDirectory)
            var configuration = RuntimeConfiguration(appDirectory: appDirectory)
            if let file = app.configurationFile {
                try configuration.apply(yaml: try String(contentsOfFile: file, encoding: .utf8), file: file)
            }
            for table in app.schema.tables {
                let indexed = table.indexedAttributes.map(\.name)
                let export = table.exportName.map { "exported as /\($0)/" } ?? "not exported"
                print(
                    "\(table.database).\(table.name): key \(table.primaryKey), \(table.attributes.count) attributes, "
                        + "indexed [\(indexed.joined(separator: ", "))], \(export)")
            }
            for line in try Self.describeRoles(appDirectory: appDirectory, schema: app.schema) { print(line) }
            // The files microlith.yaml names are read, and the settings checked, as serve does.
            var logger = Logger(label: "microlith")
            logger.logLevel = .warning
            if let tls = try MicrolithServer.loadTLS(configuration, logger: logger) { print("tls: \(tls.certificateSummary)") }
            if let against {
                for line in try await Self.migrations(
                    schema: app.schema, configuration: configuration.store, dataDirectory: against, scratch: scratch ?? NSTemporaryDirectory())
                {
                    print(line)
                }
            }
            print("ok")
        } catch let error as RuntimeError {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            throw ExitCode.failure
        }
    }

    /// What a start would change in the data folder `dataDirectory`: the migrations the store's
    /// opening logs, found by opening a backup copy of the folder (taken as `microlith backup`
    /// takes one, beside a running server) and then deleting the copy.
    ///
    /// - Throws: a ``RuntimeError`` with the reason when a start would fail on it.
    static func migrations(schema: Schema, configuration: StoreConfiguration, dataDirectory: String, scratch: String) async throws -> [String] {
        let present: [DatabaseSummary]
        do {
            present = FileManager.default.fileExists(atPath: dataDirectory) ? try DatabaseSummary.read(dataDirectory: dataDirectory) : []
        } catch let error as StoreError {
            throw RuntimeError("against \(dataDirectory): \(error.message)")
        }
        guard !present.isEmpty else {
            return ["against \(dataDirectory): no database yet; a start creates the \(schema.tables.count) tables"]
        }
        let needed = present.reduce(Int64(0)) { $0 + $1.bytes + $1.logBytes }
        if let free = (try? FileManager.default.attributesOfFileSystem(forPath: scratch)[.systemFreeSize] as? NSNumber)?.int64Value,
            free < needed + needed / 10
        {
            throw RuntimeError(
                "against \(dataDirectory): trying it needs a copy of \(needed >> 20) MiB, and \(scratch) has \(free >> 20) MiB free; "
                    + "name a folder with room with --scratch")
        }
        let scratch = (scratch as NSString).appendingPathComponent("microlith-check-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let copy = (scratch as NSString).appendingPathComponent("data")
        do {
            _ = try await Backup.take(dataDirectory: dataDirectory, to: copy)
        } catch let error as StoreError {
            throw RuntimeError("against \(dataDirectory): cannot copy it to try: \(error.message)")
        }
        let sink = MessageSink()
        var logger = Logger(label: "microlith.check") { _ in MessageSink.Handler(sink: sink) }
        logger.logLevel = .info
        var trial = configuration
        trial.directory = copy
        do {
            let store = try Store.open(schema: schema, configuration: trial, logger: logger)
            store.close()
        } catch let error as StoreError {
            throw RuntimeError("against \(dataDirectory): a start would stop: \(error.message)")
        }
        let messages = sink.messages
        guard !messages.isEmpty else { return ["against \(dataDirectory): at this schema; a start migrates nothing"] }
        return ["against \(dataDirectory): a start would"] + messages.map { "  \($0)" }
    }

    /// One line per role of the app folder's `roles.yaml` (checked against `schema`): its verbs and
    /// attribute limits per table; a line saying there is no file.
    static func describeRoles(appDirectory: String, schema: Schema) throws -> [String] {
        let rolesFile = (appDirectory as NSString).appendingPathComponent("roles.yaml")
        guard let data = FileManager.default.contents(atPath: rolesFile) else {
            return ["no roles.yaml: every exported table is open to every client"]
        }
        return try RolesFile.check(String(decoding: data, as: UTF8.self), file: rolesFile, schema: schema).map { role in
            let grants = role.tables.map { grant in
                var text = "\(grant.table): [\(grant.verbs.sorted().map(\.rawValue).joined(separator: ", "))]"
                if let limits = role.attributes[grant.table] {
                    if !limits.hide.isEmpty { text += " hiding \(limits.hide.sorted().joined(separator: ", "))" }
                    if !limits.readOnly.isEmpty { text += " read-only \(limits.readOnly.sorted().joined(separator: ", "))" }
                }
                return text
            }
            return "role \(role.name): \(role.superUser ? "super user" : grants.isEmpty ? "nothing" : grants.joined(separator: ", "))"
        }
    }
}

/// `microlith role list DIR`: the roles of an app folder's `roles.yaml`, checked against its schema.
struct RoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "role", abstract: "List the roles roles.yaml declares (users get roles with 'microlith user roles').",
        subcommands: [List.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print each role's verbs and attribute limits per table.")
        @Argument(help: "The app folder.") var appDirectory: String

        func run() async throws {
            do {
                let app = try AppFolder.load(appDirectory)
                for line in try CheckCommand.describeRoles(appDirectory: appDirectory, schema: app.schema) { print(line) }
            } catch let error as RuntimeError {
                FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
                throw ExitCode.failure
            }
        }
    }
}

/// The messages logged through its handlers, in order.
final class MessageSink: Sendable {
    private let collected = Mutex<[String]>([])

    var messages: [String] { collected.withLock { $0 } }

    struct Handler: LogHandler {
        let sink: MessageSink
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            sink.collected.withLock { $0.append("\(event.message)") }
        }
    }
}
