import GRDB
public import Logging
import MicrolithJSON
public import MicrolithNATS
public import MicrolithSchema
public import MicrolithStore
import NIOCore
import Synchronization

/// Publishes this node's change log to a JetStream stream: every entry of a local write, once,
/// in order, each under a message id that makes a retry a duplicate rather than a second copy.
///
/// The log is the outbox. The position up to which entries are published is recorded per
/// database in the database itself (`_microlith_meta`, ``Store/publishedChangeKey``) after the
/// stream has acknowledged them, so a write accepted while NATS is unreachable, or before a
/// restart, is published later; with ``StoreConfiguration/keepUnpublishedChanges`` the trim
/// leaves such entries alone. Entries that came from other nodes are passed over: each node
/// publishes only its own writes. A crash between the stream's receipt and the recorded position
/// publishes some entries again: under the same id the stream drops them within its duplicate
/// window, but a message gathered anew may hold other entries than the first (another id, so
/// the stream keeps both), and an applier must treat a change it already holds as done.
///
/// Subjects are `<prefix>.<node>.<database>.<table>`. Own entries waiting together are sent as
/// one message of up to ``Configuration/entriesPerMessage`` (a JSON array, on its table's subject,
/// or on ``ReplicationStream/mixedTables`` when it holds entries of several tables), so a burst of
/// writes costs one publish, one receipt and one delivery per node for many entries.
public final class ChangeLogPublisher: Sendable {
    /// Where and how entries are published.
    public struct Configuration: Sendable {
        /// The stream that keeps every node's entries, and its subjects.
        public var stream = ReplicationStream()
        /// Entries read from the log per round.
        public var batch = 256
        /// Publishes awaiting their receipts at once.
        public var window = 64
        /// Entries sent in one message at most: own entries waiting together (a group commit's)
        /// travel as one message (a JSON array), one receipt and one delivery to each node,
        /// instead of one each.
        public var entriesPerMessage = 128
        /// Bytes of entries in one message at most (a single larger entry still goes alone); never
        /// more than half the server's `max_payload`.
        public var bytesPerMessage = 256 * 1024
        /// How often the log is looked at when no commit said so (at least every
        /// ``recordInterval``, so a position left unrecorded is recorded soon after).
        public var pollInterval: Duration = .seconds(1)
        /// After a round that published something, how long the next waits: commits made
        /// meanwhile go out together, in fewer messages, at the cost of up to this much lag.
        /// Under a steady stream of writes it bounds rounds (each a log read, publishes, and their
        /// receipts) to about one per linger; at a low rate a write finds the wait long over.
        public var linger: Duration = .milliseconds(2)
        /// How often, at most, the published position is recorded in the database.
        public var recordInterval: Duration = .milliseconds(250)
        /// The wait after a failed round; it doubles up to ``maximumRetryWait``.
        public var retryWait: Duration = .milliseconds(100)
        public var maximumRetryWait: Duration = .seconds(5)

        public init() {}
    }

    let store: Store
    let jetStream: NATSJetStream
    let configuration: Configuration
    let logger: Logger
    private let wake: AsyncStream<Void>.Continuation
    private let wakes: Mutex<AsyncStream<Void>?>
    /// Per database, how far the log is published (in memory, recorded from time to time), and
    /// the last own entry published.
    private let cursors = Mutex<[String: Cursor]>([:])

    private struct Cursor {
        /// Every entry up to here is published, or another node's.
        var position: Int64
        /// This node's last own entry up to `position` (`nil`: trimmed away).
        var lastOwn: Int64?
        /// Whether entries were published since the position was last recorded (passing over
        /// other nodes' entries alone costs no commit).
        var unrecorded: Bool
        var recordedAt: ContinuousClock.Instant
    }

    public init(store: Store, jetStream: NATSJetStream, configuration: Configuration = Configuration(), logger: Logger) {
        self.store = store
        self.jetStream = jetStream
        self.configuration = configuration
        self.logger = logger
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        wake = continuation
        wakes = Mutex(stream)
        let wake = continuation
        store.onCommit { changes in
            if !changes.isEmpty { wake.yield() }
        }
    }

    /// The stream and its subjects.
    public var stream: ReplicationStream { configuration.stream }

    /// Creates the stream unless it exists. The node id, database and table names go into
    /// subjects: one that cannot be a subject token is refused here.
    public func prepare() async throws {
        var names: [(what: String, name: String)] = [("node id", store.nodeID)]
        names += store.databaseNames.map { ("database", $0) }
        names += store.tables.map { ("table", $0.definition.name) }
        for (what, name) in names {
            if let problem = NATSSubject.tokenProblem(name) {
                throw ReplicationError("the \(what) '\(name)' cannot be part of a NATS subject: \(problem)")
            }
        }
        try await stream.prepare(jetStream)
    }

    /// The sequence up to which `database`'s log is published (0: nothing yet).
    public func published(database: String = Schema.defaultDatabase) async throws -> Int64 {
        let recorded = try await recordedPosition(database: database)
        return max(recorded, cursors.withLock { $0[database]?.position ?? 0 })
    }

    /// The position last recorded in the database.
    func recordedPosition(database: String) async throws -> Int64 {
        try await store.read(database: database) { db in
            try String.fetchOne(db, sql: "SELECT value FROM _microlith_meta WHERE key = ?", arguments: [Store.publishedChangeKey])
                .flatMap { Int64($0) } ?? 0
        }
    }

    /// Publishes `database`'s unpublished local entries and records how far it got; returns how
    /// many entries it published. Up to ``Configuration/window`` messages are in flight at once,
    /// sent in log order; it stops at the first failure, with the position after the last entry
    /// the stream took in order.
    ///
    /// The position is kept in memory between rounds and recorded in the database at most every
    /// ``Configuration/recordInterval`` (and after a failure, and when ``run()`` ends): a commit
    /// per round would cost the writes a commit of their own. A crash loses at most that much of
    /// the record, and those entries are published again, as duplicates.
    @discardableResult
    public func publishPending(database: String = Schema.defaultDatabase) async throws -> Int {
        var count = 0
        let digests = store.tables.map(\.replicationDigest)
        var cursor = try await cursor(database: database)
        // After a failure the cursor is read again from the database next round (the last own
        // entry the stream took is not known here).
        var failed = false
        defer { cursors.withLock { $0[database] = failed ? nil : cursor } }
        while true {
            let changes = try await store.changes(database: database, after: cursor.position, limit: configuration.batch)
            guard let last = changes.last else {
                try await recordIfDue(&cursor, database: database)
                return count
            }
            var inFlight: [(sequence: Int64, entries: Int, receipt: NATSPendingPublish)] = []
            var message = MessageBuilder()
            let bytesLimit = max(1024, min(configuration.bytesPerMessage, (jetStream.client.serverInfo?.maxPayload ?? 1 << 20) / 2))
            do {
                for change in changes {
                    if change.origin == store.nodeID {
                        let entry = ReplicatedChange(
                            change, node: store.nodeID, database: database, schema: digests[change.table], previous: cursor.lastOwn)
                        cursor.lastOwn = change.sequence
                        let json = JSONWriter.encode(entry.jsonValue)
                        if message.count > 0
                            && (message.count >= configuration.entriesPerMessage || message.bytes + json.count + 1 > bytesLimit)
                        {
                            inFlight.append(try send(&message, database: database))
                        }
                        message.add(entry, json: json)
                    }
                    if inFlight.count >= configuration.window || change.sequence == last.sequence {
                        if message.count > 0 { inFlight.append(try send(&message, database: database)) }
                        for sent in inFlight {
                            _ = try await sent.receipt.value()
                            count += sent.entries
                            cursor.position = sent.sequence
                            cursor.unrecorded = true
                        }
                        inFlight = []
                        // Entries of other nodes up to here are passed over.
                        cursor.position = change.sequence
                    }
                }
            } catch {
                // What the stream took in order is recorded; the rest is sent again next round
                // (the last own entry is read again from the log then).
                failed = true
                if cursor.unrecorded { try await record(&cursor, database: database) }
                throw error
            }
            cursor.position = last.sequence
            try await recordIfDue(&cursor, database: database)
            if changes.count < configuration.batch { return count }
        }
    }

    /// Own entries gathered for one message.
    private struct MessageBuilder {
        var payload = ByteBuffer()
        var count = 0
        var bytes: Int { payload.readableBytes }
        var first: ReplicatedChange?
        var last: ReplicatedChange?
        var tables: Set<String> = []

        mutating func add(_ entry: ReplicatedChange, json: [UInt8]) {
            payload.writeInteger(count == 0 ? UInt8(ascii: "[") : UInt8(ascii: ","))
            payload.writeBytes(json)
            if first == nil { first = entry }
            last = entry
            tables.insert(entry.table)
            count += 1
        }
    }

    /// Sends what `message` gathered (one entry as its object, more as an array) and empties it.
    private func send(_ message: inout MessageBuilder, database: String) throws -> (sequence: Int64, entries: Int, receipt: NATSPendingPublish) {
        defer { message = MessageBuilder() }
        guard let first = message.first, let last = message.last else { throw ReplicationError("an empty message") }
        var payload = message.payload
        let messageID: String
        if message.count == 1 {
            payload.moveReaderIndex(forwardBy: 1)
            messageID = first.messageID
        } else {
            payload.writeInteger(UInt8(ascii: "]"))
            messageID = ReplicatedChange.messageID(first: first, last: last)
        }
        let table = message.tables.count == 1 ? first.table : ReplicationStream.mixedTables
        let receipt = try jetStream.send(
            publish: stream.subject(node: store.nodeID, database: database, table: table), payload: payload, messageID: messageID)
        return (last.sequence, message.count, receipt)
    }

    /// Where publishing `database` stands: kept from the last round, else read from the database.
    private func cursor(database: String) async throws -> Cursor {
        if let known = cursors.withLock({ $0[database] }) { return known }
        let position = try await recordedPosition(database: database)
        let bounds = try await store.changeLogBounds(database: database)
        if !bounds.canReplay(after: position) && position < bounds.latest {
            let oldest = bounds.oldest.map(String.init) ?? "none"
            logger.error(
                "replication: database \(database)'s change log was trimmed past what was published (published up to \(position), oldest kept \(oldest)): those writes never reached the other nodes; set keepUnpublishedChanges to keep them"
            )
        }
        let lastOwn = try await lastOwnSequence(database: database, upTo: position)
        return Cursor(position: position, lastOwn: lastOwn, unrecorded: false, recordedAt: .now)
    }

    /// Records the position when entries were published since it was last recorded, and
    /// ``Configuration/recordInterval`` has passed.
    private func recordIfDue(_ cursor: inout Cursor, database: String) async throws {
        guard cursor.unrecorded, ContinuousClock.now - cursor.recordedAt >= configuration.recordInterval else { return }
        try await record(&cursor, database: database)
    }

    private func record(_ cursor: inout Cursor, database: String) async throws {
        try await record(cursor.position, database: database)
        cursor.unrecorded = false
        cursor.recordedAt = .now
    }

    /// Records every position not recorded yet (when publishing stops).
    func recordPositions() async {
        for (database, var cursor) in cursors.withLock({ $0 }) where cursor.unrecorded {
            do {
                try await record(&cursor, database: database)
                cursors.withLock { $0[database] = cursor }
            } catch {
                logger.warning(
                    "replication: cannot record how far database \(database)'s log is published (it is published again after a restart): \(error)")
            }
        }
    }

    /// The sequence of this node's last own entry at or before `position` in `database`'s log:
    /// 0 when there is none, `nil` when the log was trimmed past it.
    func lastOwnSequence(database: String, upTo position: Int64) async throws -> Int64? {
        let node = store.nodeID
        return try await store.read(database: database) { db in
            if let found = try Int64.fetchOne(
                db, sql: "SELECT seq FROM _microlith_changelog WHERE seq <= ? AND origin = ? ORDER BY seq DESC LIMIT 1",
                arguments: [position, node])
            {
                return found
            }
            let oldest = try Int64.fetchOne(db, sql: "SELECT MIN(seq) FROM _microlith_changelog")
            let trimmed = (oldest ?? (position + 1)) > 1 && position > 0
            return trimmed ? nil : 0
        }
    }

    /// Publishes until the task is cancelled: after each commit and every ``Configuration/pollInterval``,
    /// every database. A failure (NATS away, the stream missing) is logged and the round tried
    /// again after a wait that grows.
    public func run() async {
        guard
            let wakes = wakes.withLock({ s -> AsyncStream<Void>? in
                defer { s = nil }
                return s
            })
        else {
            logger.error("a ChangeLogPublisher runs once")
            return
        }
        // Often enough, too, that a position left unrecorded after the last round is recorded
        // about a record interval later (what `GET /_cluster` shows as the outbox).
        let poll = min(configuration.pollInterval, max(configuration.recordInterval, .milliseconds(50)))
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: poll)
                wake.yield()
            }
        }
        defer { ticker.cancel() }
        var wait = configuration.retryWait
        var prepared = false
        wake.yield()
        for await _ in wakes {
            if Task.isCancelled { break }
            var failure: (any Error)?
            var published = 0
            do {
                if !prepared {
                    try await prepare()
                    prepared = true
                }
                // Each database on its own: one that fails does not hold up the others.
                for database in store.databaseNames {
                    do {
                        published += try await publishPending(database: database)
                    } catch {
                        failure = failure ?? error
                        logger.warning("replication: publishing database \(database)'s change log failed: \(error)")
                    }
                }
            } catch {
                failure = error
                logger.warning("replication: preparing stream \(configuration.stream.name) failed: \(error)")
            }
            guard let failure else {
                wait = configuration.retryWait
                if published > 0 && configuration.linger > .zero { try? await Task.sleep(for: configuration.linger) }
                continue
            }
            // A stream deleted under it answers as nobody (no responders) or as 404: make it again.
            if (failure as? NATSJetStreamError)?.code == 404 || (failure as? NATSError)?.kind == .noResponders { prepared = false }
            try? await Task.sleep(for: wait)
            wait = min(wait * 2, configuration.maximumRetryWait)
            wake.yield()
        }
        await recordPositions()
    }

    private func record(_ position: Int64, database: String) async throws {
        try await store.write(database: database) { txn in
            try txn.db.execute(
                sql: "INSERT OR REPLACE INTO _microlith_meta(key, value) VALUES (?, ?)", arguments: [Store.publishedChangeKey, String(position)])
        }
    }
}
