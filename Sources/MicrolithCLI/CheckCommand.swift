import ArgumentParser
import Foundation
import Logging
import MicrolithRuntime
import MicrolithSchema
import MicrolithTLS
import MicrolithTables

/// `microlith check DIR`: validates an app folder's schema and configuration without serving.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate an app folder's schema.graphql, microlith.yaml and roles.yaml, then print its tables and roles."
    )

    @Argument(help: "The app folder.")
    var appDirectory: String

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
            print("ok")
        } catch let error as RuntimeError {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            throw ExitCode.failure
        }
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
