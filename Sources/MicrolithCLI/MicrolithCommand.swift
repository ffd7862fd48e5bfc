public import ArgumentParser

/// The `microlith` command line.
@available(macOS 10.15, macCatalyst 13, iOS 13, tvOS 13, watchOS 6, *)
public struct MicrolithCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "microlith",
        abstract: "One process serving a schema.graphql app: embedded database, cache and REST API.",
        subcommands: [ServeCommand.self, CheckCommand.self]
    )

    public init() {}
}
