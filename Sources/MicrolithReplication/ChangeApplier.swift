public import Logging
public import MicrolithNATS
public import MicrolithStore

/// Applies the other nodes' writes to this node's store: it follows the replication stream
/// through a durable pull consumer of its own, applies each batch in one local transaction per
/// database, last writer wins, and acknowledges the batch only after that transaction has
/// committed.
///
/// - Idempotent: a change this node already holds, or one older than what it holds, changes
///   nothing (``WriteTransaction/apply(_:)``), so a redelivery or a second copy is harmless.
/// - Per origin, the highest sequence applied is recorded in the same transaction
///   (``Store/appliedPositions(database:)``).
/// - Its own entries are acknowledged and passed over.
/// - A change it cannot take yet is refused loudly and delivered again later, never dropped:
///   a table this node does not have, a table whose schema differs here (the
///   ``TableLayout/replicationDigest`` disagrees), a version further ahead of this node's
///   clock than ``Configuration/maximumClockAhead``, a record the schema refuses.
/// - A message that is not a change at all is logged and terminated (never delivered again).
///
/// A consumer that does not exist is made, starting at the stream's first entry: a new node
/// takes every change the stream still holds.
public final class ChangeApplier: Sendable {
    /// How changes are followed.
    public struct Configuration: Sendable {
        /// The stream, as the publishers use it.
        public var stream = ReplicationStream()
        /// The durable consumer's name: `microlith-<node id>` when `nil`.
        public var consumer: String?
        /// Changes fetched (and applied in one transaction) at most per round.
        public var batch = 256
        /// How long a fetch waits for changes when there are none.
        public var expires: Duration = .seconds(1)
        /// How long the server waits for an acknowledgement before delivering a change again
        /// (after this node died holding it, for one).
        public var ackWait: Duration = .seconds(10)
        /// How far ahead of this node's wall clock a change's version may be; one further ahead
        /// is refused until the clock catches up (its origin's clock is wrong).
        public var maximumClockAhead: Duration = .seconds(60)
        /// The wait before a refused change is delivered again.
        public var refusedRedeliveryWait: Duration = .seconds(5)
        /// The wait after a failed round; it doubles up to ``maximumRetryWait``.
        public var retryWait: Duration = .milliseconds(100)
        public var maximumRetryWait: Duration = .seconds(5)

        public init() {}
    }

    /// What one batch came to.
    public struct Report: Sendable, Equatable {
        /// Messages looked at.
        public var received = 0
        /// Changes that took effect.
        public var applied = 0
        /// Changes this node already held, or held something newer than.
        public var superseded = 0
        /// This node's own entries.
        public var own = 0
        /// Changes refused for now, to be delivered again.
        public var refused = 0
        /// Messages that are not changes, terminated.
        public var malformed = 0

        public init() {}
    }

    let store: Store
    let jetStream: NATSJetStream
    let configuration: Configuration
    let logger: Logger
    /// The durable consumer's name.
    public let consumerName: String

    public init(store: Store, jetStream: NATSJetStream, configuration: Configuration = Configuration(), logger: Logger) {
        self.store = store
        self.jetStream = jetStream
        self.configuration = configuration
        self.logger = logger
        self.consumerName = configuration.consumer ?? "microlith-\(store.nodeID)"
    }

    /// The consumer's configuration: every subject of the stream, from its first entry,
    /// acknowledged one by one.
    public var consumerConfiguration: NATSConsumerConfiguration {
        NATSConsumerConfiguration(
            durableName: consumerName, deliverPolicy: .all, ackWait: configuration.ackWait, maximumAckPending: max(1000, configuration.batch * 4))
    }

    /// Makes the stream and this node's consumer unless they exist.
    public func prepare() async throws {
        if let problem = NATSSubject.tokenProblem(consumerName) {
            throw ReplicationError("the consumer name '\(consumerName)' cannot be used: \(problem)")
        }
        try await configuration.stream.prepare(jetStream)
        do {
            _ = try await jetStream.createConsumer(stream: configuration.stream.name, consumerConfiguration)
        } catch let error as NATSJetStreamError {
            // It exists with other settings (someone changed them): follow it as it is.
            guard (try? await jetStream.consumerInfo(stream: configuration.stream.name, name: consumerName)) != nil else { throw error }
        }
    }

    /// Fetches the next batch (waiting up to ``Configuration/expires`` for one) and applies it.
    @discardableResult
    public func applyNext() async throws -> Report {
        let messages = try await jetStream.fetch(
            stream: configuration.stream.name, consumer: consumerName, batch: configuration.batch, expires: configuration.expires)
        return try await apply(messages)
    }

    /// Applies `messages`, one transaction per database, and acknowledges what is done once it
    /// has committed.
    public func apply(_ messages: [NATSJetStreamMessage]) async throws -> Report {
        var report = Report()
        var done: [NATSJetStreamMessage] = []
        var byDatabase: [String: [(message: NATSJetStreamMessage, change: ReplicatedChange, write: RemoteWrite)]] = [:]
        var databases: [String] = []
        for message in messages {
            report.received += 1
            let change: ReplicatedChange
            do {
                change = try ReplicatedChange(json: message.payload)
            } catch {
                logger.error("replication: stream entry \(message.streamSequence) (\(message.message.subject)) is not a change, dropped: \(error)")
                try? message.term()
                report.malformed += 1
                continue
            }
            if change.node == store.nodeID {
                done.append(message)
                report.own += 1
                continue
            }
            let table: TableLayout
            switch admit(change) {
            case .success(let found): table = found
            case .failure(let refusal):
                refuse(message, change, refusal.message)
                report.refused += 1
                continue
            }
            let write = RemoteWrite(
                table: table, id: change.id, operation: change.operation, version: change.version, origin: change.node, record: change.record,
                stamps: change.stamps)
            if byDatabase[change.database] == nil { databases.append(change.database) }
            byDatabase[change.database, default: []].append((message, change, write))
        }
        for database in databases {
            let entries = byDatabase[database] ?? []
            do {
                let applied = try await write(entries.map { ($0.write, $0.change.sequence) }, database: database)
                report.applied += applied
                report.superseded += entries.count - applied
                done += entries.map(\.message)
            } catch {
                guard Self.isRefusal(error) else {
                    for entry in entries { try? entry.message.nak(delay: configuration.retryWait) }
                    throw error
                }
                // One of them does not fit: apply them one by one to set it aside.
                for entry in entries {
                    do {
                        let applied = try await write([(entry.write, entry.change.sequence)], database: database)
                        report.applied += applied
                        report.superseded += 1 - applied
                        done.append(entry.message)
                    } catch {
                        guard Self.isRefusal(error) else {
                            try? entry.message.nak(delay: configuration.retryWait)
                            throw error
                        }
                        refuse(entry.message, entry.change, "\(error)")
                        report.refused += 1
                    }
                }
            }
        }
        // The server handles one connection's messages in order: once the last acknowledgement
        // is confirmed, so are the ones sent before it.
        if let last = done.last {
            for message in done.dropLast() { try message.ackNoWait() }
            try await last.ack()
        }
        return report
    }

    /// Follows the stream until the task is cancelled. A failure (NATS away, the consumer
    /// deleted) is logged and the round tried again after a wait that grows.
    public func run() async {
        var wait = configuration.retryWait
        var prepared = false
        while !Task.isCancelled {
            do {
                if !prepared {
                    try await prepare()
                    prepared = true
                }
                try await applyNext()
                wait = configuration.retryWait
            } catch {
                if Task.isCancelled { break }
                logger.warning("replication: applying changes from stream \(configuration.stream.name) failed: \(error)")
                if (error as? NATSJetStreamError)?.code == 404 || (error as? NATSError)?.kind == .noResponders
                    || (error as? NATSError)?.kind == .timeout
                {
                    prepared = false
                }
                try? await Task.sleep(for: wait)
                wait = min(wait * 2, configuration.maximumRetryWait)
            }
        }
    }

    /// The table `change` is for, or why this node cannot take it now.
    private func admit(_ change: ReplicatedChange) -> Result<TableLayout, ReplicationError> {
        guard store.databaseNames.contains(change.database) else {
            return .failure(ReplicationError("this node has no database '\(change.database)'"))
        }
        guard let table = store.table(name: change.table, database: change.database) else {
            return .failure(ReplicationError("this node's schema has no table \(change.table) in database '\(change.database)'"))
        }
        guard table.replicationDigest == change.schema else {
            return .failure(
                ReplicationError(
                    "table \(change.table) is declared differently here (schema digest \(table.replicationDigest)) than on node "
                        + "\(change.node) (\(change.schema)): run the same schema on every node"))
        }
        let ahead = HybridLogicalClock.milliseconds(of: change.version) - store.configuration.wallClock()
        let limit =
            configuration.maximumClockAhead.components.seconds * 1000
            + configuration.maximumClockAhead.components.attoseconds / 1_000_000_000_000_000
        if ahead > limit {
            return .failure(
                ReplicationError(
                    "its version is \(ahead) ms ahead of this node's clock (at most \(limit) ms is taken): node \(change.node)'s clock is wrong"
                ))
        }
        return .success(table)
    }

    private func refuse(_ message: NATSJetStreamMessage, _ change: ReplicatedChange, _ why: String) {
        logger.error(
            "replication: change \(change.messageID) (\(change.operation.rawValue) \(change.table)/\(change.id)) not applied, delivered again in \(configuration.refusedRedeliveryWait): \(why)"
        )
        try? message.nak(delay: configuration.refusedRedeliveryWait)
    }

    /// Applies `writes` in one transaction of `database`, recording each origin's highest
    /// sequence; returns how many took effect.
    private func write(_ writes: [(write: RemoteWrite, sequence: Int64)], database: String) async throws -> Int {
        try await store.write(database: database) { txn in
            var applied = 0
            var positions: [String: Int64] = [:]
            for (write, sequence) in writes {
                if try txn.apply(write) { applied += 1 }
                positions[write.origin] = max(positions[write.origin] ?? 0, sequence)
            }
            for (origin, sequence) in positions { try txn.recordApplied(origin: origin, sequence: sequence) }
            return applied
        }
    }

    /// Whether `error` says a change does not fit this node (and others may), rather than that
    /// the database failed.
    private static func isRefusal(_ error: any Error) -> Bool {
        guard let error = error as? StoreError else { return false }
        return error.code == .invalidRecord || error.code == .invalidID
    }
}
