import Logging
import MicrolithNATS
import MicrolithReplication
import MicrolithStore
import ServiceLifecycle

/// Replication as a service of the server's lifecycle: it connects to NATS (trying again, with
/// a growing wait, while no server answers: writes are kept meanwhile and published later),
/// then publishes this node's writes, applies the other nodes', answers their requests for
/// entries they missed and for its tables' rows (a resync), and keeps or waits for the lease of
/// the schedules, until shutdown
/// reaches it, before the store closes.
struct ReplicationService: Service, CustomStringConvertible {
    let store: Store
    let settings: ReplicationSettings
    let monitor: ReplicationMonitor
    let logger: Logger

    var description: String { "replication" }

    func run() async throws {
        try await cancelWhenGracefulShutdown { try await replicate() }
        logger.debug("replication stopped")
    }

    private func replicate() async throws {
        var configuration = NATSClient.Configuration(servers: settings.servers)
        configuration.options.name = "microlith-\(store.nodeID)"
        let servers = settings.servers.map(\.description).joined(separator: ", ")
        var wait: Duration = .milliseconds(100)
        var client: NATSClient?
        while client == nil && !Task.isCancelled {
            do {
                client = try await NATSClient.connect(configuration, logger: logger)
            } catch {
                logger.warning("replication: no NATS server answers (\(servers)): \(error); writes are kept and published once one does")
                try? await Task.sleep(for: wait)
                wait = min(wait * 2, .seconds(5))
            }
        }
        guard let client else { return }
        logger.info("replication: node \(store.nodeID) connected to NATS (\(servers)), stream \(settings.stream.name)")
        // Nothing is published or applied under a name another running process holds. This one
        // answers for the name first (two started at once then both see the other), and waits a
        // while for a holder that is stopping (a restart that starts the new process first).
        let presence = NodePresence(node: store.nodeID, client: client, stream: settings.stream, logger: logger)
        let answering = Task { await presence.run() }
        defer { answering.cancel() }
        var other = try? await presence.otherInstance()
        let giveUp = ContinuousClock.now + settings.presenceWait
        while let holder = other, ContinuousClock.now < giveUp, !Task.isCancelled {
            logger.warning(
                "replication: another process answers as node \(store.nodeID) (\(holder)); waiting up to \(settings.presenceWait) for it to stop")
            try? await Task.sleep(for: .seconds(1))
            other = try? await presence.otherInstance()
        }
        if let other {
            await client.close()
            throw RuntimeError(
                "another process already replicates as node \(store.nodeID) through \(servers) (\(other)); give each node its own replication.node (MICROLITH_REPLICATION_NODE)"
            )
        }
        let jetStream = NATSJetStream(client: client)
        var publishing = ChangeLogPublisher.Configuration()
        publishing.stream = settings.stream
        var applying = ChangeApplier.Configuration()
        applying.stream = settings.stream
        applying.maximumClockAhead = settings.maximumClockAhead
        applying.digestInterval = settings.digestInterval
        applying.digestSettled = settings.digestSettled
        let publisher = ChangeLogPublisher(store: store, jetStream: jetStream, configuration: publishing, logger: logger)
        let applier = ChangeApplier(store: store, jetStream: jetStream, configuration: applying, logger: logger)
        let responder = RepairResponder(store: store, client: client, stream: settings.stream, logger: logger)
        let resyncResponder = ResyncResponder(store: store, client: client, stream: settings.stream, logger: logger) { applier.owesResync }
        let progress = PeerProgress(node: store.nodeID, stream: settings.stream, logger: logger)
        monitor.running(client: client, applier: applier, progress: progress)
        let lease = monitor.lease
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await publisher.run() }
            group.addTask { await applier.run() }
            group.addTask { await responder.run() }
            group.addTask { await resyncResponder.run() }
            group.addTask { await progress.run(client: client) }
            if let lease { group.addTask { await lease.run(jetStream: jetStream) } }
        }
        monitor.running(client: nil, applier: nil, progress: nil)
        await client.close()
    }
}
