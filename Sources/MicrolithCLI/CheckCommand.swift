import ArgumentParser
import Foundation
import MicrolithRuntime
import MicrolithSchema
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
            let rolesFile = (appDirectory as NSString).appendingPathComponent("roles.yaml")
            if let data = FileManager.default.contents(atPath: rolesFile) {
                for role in try RolesFile.check(String(decoding: data, as: UTF8.self), file: rolesFile, schema: app.schema) {
                    let grants = role.tables.map { "\($0.table): [\($0.verbs.sorted().map(\.rawValue).joined(separator: ", "))]" }
                    print("role \(role.name): \(role.superUser ? "super user" : grants.isEmpty ? "nothing" : grants.joined(separator: ", "))")
                }
            } else {
                print("no roles.yaml: every exported table is open to every client")
            }
            print("ok")
        } catch let error as RuntimeError {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            throw ExitCode.failure
        }
    }
}
