public import ArgumentParser
public import MicrolithModules

/// The `microlith` command line.
@available(macOS 10.15, macCatalyst 13, iOS 13, tvOS 13, watchOS 6, *)
public struct MicrolithCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "microlith",
        abstract: "One process serving a schema.graphql app: embedded database, cache and REST API.",
        subcommands: [
            ServeCommand.self, CheckCommand.self, UserCommand.self, RoleCommand.self, ClusterCommand.self, BackupCommand.self, RestoreCommand.self,
            ExportCommand.self, ImportCommand.self, StatusCommand.self, TablesCommand.self, QueryCommand.self,
        ]
    )

    public init() {}

    /// The modules of the application this command line belongs to (none for the plain
    /// `microlith` binary; an app's own binary passes its modules to ``main(modules:)``).
    @TaskLocal static var modules: [any Module] = []

    /// Runs the command line of an application binary that has `modules`: `serve`, `check`.
    public static func main(modules: [any Module]) async {
        await $modules.withValue(modules) {
            await main()
        }
    }
}
