import ArgumentParser
import Foundation
import MicrolithJSON
import MicrolithReplication
import MicrolithStore

/// `microlith cluster status DIR`: where this node stands in its cluster, read from its data
/// folder (it may be serving meanwhile). `microlith cluster up DIR`: a local cluster in one
/// command (``ClusterUp``).
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Run a local cluster, or see where a node stands among the nodes it replicates with.",
        subcommands: [ClusterUp.self, Status.self]
    )

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Per database: the outbox (writes not yet published), parked changes, and per peer what was applied and how late.")
        @OptionGroup var location: UserCommand.Location
        @Flag(help: "Print JSON instead of text.") var json = false

        func run() async throws {
            let (_, store) = try location.openUsers()
            defer { store.close() }
            let status = try await ReplicationStatus.read(store)
            if json {
                print(String(decoding: JSONWriter.encode(status.json), as: UTF8.self))
            } else {
                print(status.text)
            }
        }
    }
}
