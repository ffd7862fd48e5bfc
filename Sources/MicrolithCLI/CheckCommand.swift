import ArgumentParser
import Foundation
import MicrolithRuntime
import MicrolithSchema

/// `microlith check DIR`: validates an app folder's schema and configuration without serving.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate an app folder's schema.graphql and microlith.yaml, then print its tables."
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
            print("ok")
        } catch let error as RuntimeError {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            throw ExitCode.failure
        }
    }
}
