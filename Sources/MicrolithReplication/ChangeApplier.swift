import Foundation
import GRDB
public import Logging
import MicrolithJSON
public import MicrolithNATS
import MicrolithSchema
public import MicrolithStore
import NIOCore
import Synchronization

/// Applies the other nodes' writes to this node's store: it follows the replication stream
/// through a durable pull consumer of its own, applies each batch in one local transaction per
/// database, last writer wins, and acknowledges the batch only after that transaction has
/// committed.
///
/// - Idempotent: a change this node already holds, or one older than what it holds, changes
///   nothing (``WriteTransaction/apply(_:)``), so a redelivery or a second copy is harmless.
/// - Per origin, the highest sequence applied is recorded in the same transaction
///   (``Store/appliedPositions(database:)``).
/// - Its own entries change nothing when it holds them; a node restored from a backup, or
///   made anew under its old name, whose consumer was deleted, gets them back from the stream.
/// - A change it cannot take now is parked, never dropped: kept in the store
///   (`_microlith_parked`, ``parkedCount()``), logged as an error, acknowledged so it holds up
///   nothing else, and tried again every ``Configuration/parkedRetryInterval`` and at start-up
///   (``retryParked()``). That is a table this node does not have, a version further ahead of
///   this node's clock than ``Configuration/maximumClockAhead``, a record this node's schema
///   refuses, or a message this version cannot read.
/// - A table declared differently on the origin (its ``TableLayout/replicationDigest``
///   differs) takes the change when the record fits here (a warning says so once), and parks it
///   when it does not.
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
        /// How often parked changes are tried again.
        public var parkedRetryInterval: Duration = .seconds(30)
        /// How often gaps are asked for again while their origin does not answer.
        public var gapRetryInterval: Duration = .seconds(5)
        /// How long a repair request waits for the origin's answer.
        public var repairTimeout: Duration = .seconds(5)
        /// The wait after a failed round; it doubles up to ``maximumRetryWait``.
        public var retryWait: Duration = .milliseconds(100)
        public var maximumRetryWait: Duration = .seconds(5)
        /// How often each table is compared with another node's by digest
        /// (``compareDigests(with:)``); `nil`: never on its own.
        public var digestInterval: Duration? = .seconds(600)
        /// Buckets of keys per table digest: more send more sums and fewer rows for a difference.
        public var digestBuckets = 64
        /// Rows written more recently than this are left out of digests (they may be on their way).
        public var digestSettled: Duration = .seconds(30)

        public init() {}
    }

    /// What one batch came to.
    public struct Report: Sendable, Equatable {
        /// Messages looked at (one may hold several entries of one node's log).
        public var received = 0
        /// Changes that took effect.
        public var applied = 0
        /// Changes this node already held, or held something newer than.
        public var superseded = 0
        /// Messages of this node's own log among them (passed over, or applied or superseded like
        /// the others).
        public var own = 0
        /// Changes this node cannot take now, parked (and acknowledged).
        public var refused = 0
        /// Of those, messages this node cannot read as changes at all.
        public var malformed = 0

        public init() {}
    }

    let store: Store
    let jetStream: NATSJetStream
    let configuration: Configuration
    let logger: Logger
    /// The durable consumer's name.
    public let consumerName: String
    /// Tables declared differently elsewhere whose changes were applied anyway, logged once each.
    private let notedDigests = Mutex<Set<String>>([])
    /// Whether a batch found gaps the next round should try to fill at once.
    private let gapsPending = Mutex(false)
    private let lastRepairState = Mutex<Repair?>(nil)

    /// A span of an origin's log this node recovered from the origin (a gap the stream left).
    public struct Repair: Sendable, Equatable {
        public var origin: String
        public var database: String
        /// The span `(after, upto]`.
        public var after: Int64
        public var upto: Int64
        /// When it was recovered (milliseconds since 1970).
        public var at: Int64
    }

    /// The last gap recovered since this node started, if any.
    public var lastRepair: Repair? { lastRepairState.withLock { $0 } }

    /// Whether a resync is owed (the stream dropped entries this node had not applied, or an
    /// origin's log no longer holds entries of a gap), and from which nodes (none named: any).
    private let resyncPending = Mutex(false)
    private let resyncOrigins = Mutex<Set<String>>([])
    private let lastResync = Mutex<(at: ContinuousClock.Instant, reports: [String: PeerResync.Report])?>(nil)
    private let lastDigest = Mutex<(at: Int64, reports: [String: PeerResync.DigestReport])?>(nil)
    /// Per database and origin, the sequences of the parked changes: not applied here, so the
    /// notices to their origin leave them out (a write waiting with `X-Replicate-To` does not
    /// count this node for them).
    private let parkedSequences = Mutex<[String: [String: Set<Int64>]]>([:])

    /// Notes that `change` is parked, before anything after it is announced.
    private func noteParked(_ change: ReplicatedChange?) {
        guard let change else { return }
        parkedSequences.withLock { _ = $0[change.database, default: [:]][change.node, default: []].insert(change.sequence) }
    }

    public init(store: Store, jetStream: NATSJetStream, configuration: Configuration = Configuration(), logger: Logger) {
        self.store = store
        self.jetStream = jetStream
        self.configuration = configuration
        self.logger = logger
        self.consumerName = configuration.consumer ?? "microlith-\(store.nodeID)"
    }

    /// The consumer's configuration: every subject of the stream, from its first entry, each
    /// message acknowledged on its own (acknowledging a batch by its last message would also
    /// acknowledge one refused earlier and not yet delivered again).
    public var consumerConfiguration: NATSConsumerConfiguration {
        NATSConsumerConfiguration(
            durableName: consumerName, deliverPolicy: .all, ackPolicy: .explicit, ackWait: configuration.ackWait,
            maximumAckPending: max(1000, configuration.batch * 4))
    }

    /// Makes the stream and this node's consumer unless they exist.
    public func prepare() async throws {
        if let problem = NATSSubject.tokenProblem(consumerName) {
            throw ReplicationError("the consumer name '\(consumerName)' cannot be used: \(problem)")
        }
        try await configuration.stream.prepare(jetStream)
        let consumer: NATSConsumerInfo
        do {
            consumer = try await jetStream.createConsumer(stream: configuration.stream.name, consumerConfiguration)
        } catch let error as NATSJetStreamError {
            // It exists with other settings (someone changed them, or an older version made it
            // acknowledging one by one): follow it as it is.
            guard let info = try? await jetStream.consumerInfo(stream: configuration.stream.name, name: consumerName) else { throw error }
            consumer = info
        }
        // Entries the stream dropped (its age limit) before this consumer took them: only another
        // node's tables have them now. A new consumer starts at the stream's first entry, so a
        // node that never applied anything, joining a stream that starts past 1, owes one too.
        let first = try await jetStream.streamInfo(configuration.stream.name).state.firstSequence
        var appliedNothing = true
        for database in store.databaseNames where try await !store.appliedPositions(database: database).isEmpty { appliedNothing = false }
        if first > consumer.ackFloor.streamSequence + 1 || (appliedNothing && first > 1) {
            logger.warning(
                "replication: the stream no longer holds entries \(consumer.ackFloor.streamSequence + 1)...\(first - 1) this node has not applied (it was away longer than the stream keeps them, or is new to the cluster); resyncing from another node's tables"
            )
            resyncPending.withLock { $0 = true }
        }
        // Gaps their origin's log could no longer fill, found before a restart.
        for database in store.databaseNames {
            for gap in try await store.gaps(database: database) where gap.problem != nil {
                resyncPending.withLock { $0 = true }
                resyncOrigins.withLock { _ = $0.insert(gap.origin) }
            }
        }
    }

    /// Asks other nodes for their tables' rows and digests.
    private var peerResync: PeerResync {
        PeerResync(
            store: store, client: jetStream.client, stream: configuration.stream, maximumClockAhead: configuration.maximumClockAhead,
            logger: logger)
    }

    /// Merges every database from another node's tables, row by row (``PeerResync``): after the
    /// stream dropped entries this node missed, or on request (`POST /_cluster/resync`).
    public func resync(from peer: String? = nil) async throws -> [String: PeerResync.Report] {
        var reports: [String: PeerResync.Report] = [:]
        for database in store.databaseNames {
            let resync = peerResync
            let report = try await resync.run(database: database, from: peer)
            reports[database] = report
            logger.notice(
                "replication: resync of database \(database) from \(report.peer ?? "nobody"): \(report.received) rows received, \(report.changed) changed something here, \(report.refused) not taken"
            )
        }
        lastResync.withLock { $0 = (ContinuousClock.now, reports) }
        return reports
    }

    /// Compares every table with another node's (`peer`, or any that answers) by digest and
    /// merges the rows of the buckets that differ (``PeerResync/compare(database:from:buckets:settled:)``):
    /// the periodic check for silent divergence, every ``Configuration/digestInterval``, and on
    /// request (`POST /_cluster/digest`).
    public func compareDigests(with peer: String? = nil) async throws -> [String: PeerResync.DigestReport] {
        guard peer != store.nodeID else { throw ReplicationError("node \(store.nodeID) does not compare its tables with itself") }
        var reports: [String: PeerResync.DigestReport] = [:]
        for database in store.databaseNames {
            // One peer computes the digests, not every node that hears an "any node" request:
            // one of the nodes whose writes were applied here, at random, when none is named.
            var peer = peer
            if peer == nil { peer = try await store.appliedPositions(database: database).keys.filter { $0 != store.nodeID }.randomElement() }
            let resync = peerResync
            let report = try await resync.compare(
                database: database, from: peer, buckets: configuration.digestBuckets, settled: configuration.digestSettled)
            reports[database] = report
            if report.differingBuckets > 0 {
                logger.warning(
                    "replication: database \(database) differs from node \(report.peer ?? "?") in \(report.differingBuckets) bucket(s) of table(s) \(report.differingTables.joined(separator: ", ")); \(report.received) rows received, \(report.changed) changed something here"
                )
            } else {
                logger.info("replication: database \(database) matches node \(report.peer ?? "?") (\(report.tables) tables compared)")
            }
        }
        lastDigest.withLock { $0 = (store.configuration.wallClock(), reports) }
        return reports
    }

    /// The last digest comparison's reports, per database, and when it ended (milliseconds since 1970).
    public var lastDigestReports: (at: Int64, reports: [String: PeerResync.DigestReport])? { lastDigest.withLock { $0 } }

    /// Does the resync owed: from each origin whose log could not fill a gap (its gaps then
    /// closed: its tables hold what the entries did), else from any node.
    func resyncOwed() async throws {
        let origins = resyncOrigins.withLock { $0 }
        if origins.isEmpty {
            _ = try await resync()
        }
        for origin in origins.sorted() {
            _ = try await resync(from: origin)
            for database in store.databaseNames {
                for gap in try await store.gaps(database: database) where gap.origin == origin && gap.problem != nil {
                    try await updateGap(gap, database: database, after: nil, problem: nil)
                }
            }
            resyncOrigins.withLock { _ = $0.remove(origin) }
        }
        resyncPending.withLock { $0 = false }
    }

    /// Whether a resync is owed: the stream dropped entries this node had not applied, and no
    /// resync has succeeded since.
    public var owesResync: Bool { resyncPending.withLock { $0 } }

    /// The last resync's reports, per database, and when it ended.
    public var lastResyncReports: [String: PeerResync.Report]? { lastResync.withLock { $0?.reports } }

    /// The consumer as the server sees it: what it has still to deliver, and what waits for an
    /// acknowledgement.
    public func consumerInfo() async throws -> NATSConsumerInfo {
        try await jetStream.consumerInfo(stream: configuration.stream.name, name: consumerName)
    }

    /// Fetches the next batch (waiting up to ``Configuration/expires`` for one) and applies it.
    ///
    /// A pull for a whole batch would wait until the batch is full or the pull expires (up to a
    /// second of lag at a low write rate), so it waits for one change, then takes what else is
    /// there without waiting.
    @discardableResult
    public func applyNext() async throws -> Report {
        var messages = try await jetStream.fetch(
            stream: configuration.stream.name, consumer: consumerName, batch: 1, expires: configuration.expires)
        if !messages.isEmpty && configuration.batch > 1 {
            do {
                messages += try await jetStream.fetch(
                    stream: configuration.stream.name, consumer: consumerName, batch: configuration.batch - 1, noWait: true)
            } catch {
                // The first is applied now; the rest come with the next pull.
                logger.debug("replication: a pull for more changes failed: \(error)")
            }
        }
        return try await apply(messages)
    }

    /// Applies `messages`, one transaction per database, sets aside (parks) what this node cannot
    /// take now, and acknowledges them all once that has committed.
    public func apply(_ messages: [NATSJetStreamMessage]) async throws -> Report {
        var report = Report()
        var items: [Item] = []
        var done: [NATSJetStreamMessage] = []
        // This node's own entries that its log still holds (the same sequence of the same
        // transaction) change nothing here: told by the message id
        // (`node:database:sequence:transaction`), without reading the change. One a restored
        // node numbered again is applied.
        // A message of several entries is told by its first and last.
        var own: [String: [(message: NATSJetStreamMessage, entries: [(sequence: Int64, transaction: Int64)])]] = [:]
        for message in messages {
            if let entry = Self.ownEntry(message, node: store.nodeID) {
                own[entry.database, default: []].append((message, entry.entries))
            }
        }
        var held: Set<UInt64> = []
        for (database, messages) in own where store.databaseNames.contains(database) {
            let kept = (try? await store.ownEntries(database: database, sequences: messages.flatMap { $0.entries.map(\.sequence) })) ?? [:]
            for message in messages where message.entries.allSatisfy({ kept[$0.sequence] == $0.transaction }) {
                held.insert(message.message.streamSequence)
            }
        }
        for message in messages {
            report.received += 1
            if held.contains(message.streamSequence) {
                report.own += 1
                done.append(message)
                continue
            }
            let results: [Result<ReplicatedChange, ReplicationError>]
            do {
                results = try ReplicatedChange.entryResults(json: message.payload)
            } catch {
                items.append(Item(message: message, change: nil, problem: "it is not a change this node can read: \(error.message)"))
                continue
            }
            // This node's own entries are applied too: nothing changes when it holds them (the
            // usual case), and a node restored from a backup gets back what it wrote since.
            if results.contains(where: { (try? $0.get())?.node == store.nodeID }) { report.own += 1 }
            var unreadable: [String] = []
            for result in results {
                switch result {
                case .success(let change): items.append(Item(message: message, change: change, problem: nil))
                case .failure(let error): unreadable.append(error.message)
                }
            }
            // The entries read are applied; the message is parked whole for the others (it is
            // read again when parked changes are tried again: its applied entries change nothing).
            if !unreadable.isEmpty {
                let problem = "\(unreadable.count) of its \(results.count) entries cannot be read here: \(unreadable[0])"
                items.append(Item(message: message, change: nil, problem: problem))
            }
        }
        do {
            let outcome = try await apply(items)
            report.applied += outcome.applied
            report.superseded += outcome.superseded
            report.refused += outcome.parked.count
            report.malformed += outcome.parked.filter { $0.change == nil }.count
            if !outcome.parked.isEmpty { try await park(outcome.parked) }
        } catch {
            var naked: Set<UInt64> = []
            for item in items {
                guard let message = item.message, naked.insert(message.streamSequence).inserted else { continue }
                try? message.nak(delay: configuration.retryWait)
            }
            throw error
        }
        var seen = Set(done.map(\.streamSequence))
        done += items.compactMap(\.message).filter { seen.insert($0.streamSequence).inserted }
        // The server handles one connection's messages in order: once the last acknowledgement
        // is confirmed, so are the ones sent before it. A consumer that acknowledges all needs
        // only the last.
        done.sort { $0.streamSequence < $1.streamSequence }
        if items.isEmpty {
            // Only own entries passed over: a lost acknowledgement costs a redelivery that is
            // passed over again, so none waits for the server's confirmation.
            for message in done { try message.ackNoWait() }
        } else if let last = done.last {
            for message in done.dropLast() { try message.ackNoWait() }
            try await last.ack()
        }
        return report
    }

    /// The database, and the sequence and transaction of its entry (of its first and last entry,
    /// for a message of several), when `message` is of `node`'s own log, from its message id.
    static func ownEntry(
        _ message: NATSJetStreamMessage, node: String
    ) -> (
        database: String, entries: [(sequence: Int64, transaction: Int64)]
    )? {
        guard let id = message.message.headers?["Nats-Msg-Id"], id.hasPrefix(node + ":") else { return nil }
        let parts = id.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 4 || parts.count == 6, parts[0] == node else { return nil }
        var entries: [(sequence: Int64, transaction: Int64)] = []
        for index in stride(from: 2, to: parts.count, by: 2) {
            guard let sequence = Int64(parts[index]), let transaction = Int64(parts[index + 1]) else { return nil }
            entries.append((sequence, transaction))
        }
        return (String(parts[1]), entries)
    }

    /// A change read from the stream, or from a repair answer (no `message` then); `change` is
    /// `nil` when it could not be read, and `problem` says why.
    struct Item: Sendable {
        var message: NATSJetStreamMessage?
        var change: ReplicatedChange?
        var problem: String?
        var subject: String

        init(message: NATSJetStreamMessage, change: ReplicatedChange?, problem: String?) {
            self.message = message
            self.change = change
            self.problem = problem
            self.subject = message.message.subject
        }

        init(repaired change: ReplicatedChange, subject: String) {
            self.message = nil
            self.change = change
            self.problem = nil
            self.subject = subject
        }

        /// What is kept when it is parked: the change alone (a message may hold several), or the
        /// message as it came when it could not be read.
        var payload: ByteBuffer { change?.json ?? message?.payload ?? ByteBuffer() }

        /// The same item with `problem`.
        func refused(_ problem: String) -> Item {
            var item = self
            item.problem = problem
            return item
        }

        /// What identifies it among parked changes.
        var key: String {
            if let change { return change.messageID }
            return "stream:\(message?.streamSequence ?? 0)"
        }
    }

    /// Applies what can be applied of `items`; returns how many took effect, how many changed
    /// nothing, and the items this node cannot take now, with why.
    func apply(_ items: [Item]) async throws -> (applied: Int, superseded: Int, parked: [Item]) {
        var parked: [Item] = []
        var byDatabase: [String: [(item: Item, write: RemoteWrite, sequence: Int64, digestDiffers: Bool)]] = [:]
        var databases: [String] = []
        for item in items {
            guard let change = item.change else {
                parked.append(item)
                continue
            }
            switch admit(change) {
            case .failure(let refusal):
                noteParked(item.change)
                parked.append(item.refused(refusal.message))
            case .success(let table):
                let write = RemoteWrite(
                    table: table, id: change.id, operation: change.operation, version: change.version, origin: change.node,
                    record: change.record, stamps: change.stamps)
                if byDatabase[change.database] == nil { databases.append(change.database) }
                byDatabase[change.database, default: []].append((item, write, change.sequence, table.replicationDigest != change.schema))
            }
        }
        var applied = 0
        var superseded = 0
        // Up to 256 changes per transaction: a message may hold many, and one that does not fit
        // sets the changes of its transaction apart one by one.
        let chunks = databases.flatMap { database in
            let all = byDatabase[database] ?? []
            return stride(from: 0, to: all.count, by: 256).map { (database, Array(all[$0..<min($0 + 256, all.count)])) }
        }
        for (database, entries) in chunks {
            do {
                let n = try await write(entries.map { ($0.write, $0.sequence, $0.item.change?.previous) }, database: database)
                applied += n
                superseded += entries.count - n
                for entry in entries where entry.digestDiffers { noteDigest(entry.item.change!, entry.write.table) }
            } catch {
                guard Self.isRefusal(error) else { throw error }
                // One of them does not fit: apply them one by one to set it aside.
                for entry in entries {
                    do {
                        let n = try await write([(entry.write, entry.sequence, entry.item.change?.previous)], database: database)
                        applied += n
                        superseded += 1 - n
                        if entry.digestDiffers { noteDigest(entry.item.change!, entry.write.table) }
                    } catch {
                        guard Self.isRefusal(error) else { throw error }
                        var problem = "\(error)"
                        if entry.digestDiffers, let change = entry.item.change {
                            problem =
                                "table \(change.table) is declared differently on node \(change.node) (schema digest \(change.schema), here "
                                + "\(entry.write.table.replicationDigest)) and the record does not fit here: \(error)"
                        }
                        noteParked(entry.item.change)
                        parked.append(entry.item.refused(problem))
                    }
                }
            }
        }
        return (applied, superseded, parked)
    }

    /// Keeps `items` in the parked table (of the store's first database), logging each.
    private func park(_ items: [Item]) async throws {
        for item in items {
            let what = item.change.map { "change \($0.messageID) (\($0.operation.rawValue) \($0.table)/\($0.id))" } ?? item.key
            logger.error("replication: \(what) not applied, parked until it can be: \(item.problem ?? "")")
        }
        let rows = items.map { item in (item.key, item.subject, Array(item.payload.readableBytesView), item.problem ?? "") }
        let now = store.configuration.wallClock()
        try await store.write(database: parkingDatabase) { txn in
            for (key, subject, payload, problem) in rows {
                try txn.db.execute(
                    sql: """
                        INSERT OR REPLACE INTO _microlith_parked(message_id, subject, payload, problem, parked_at)
                        VALUES (?, ?, ?, ?, ?)
                        """, arguments: [key, subject, Data(payload), problem, now])
            }
        }
    }

    /// The database holding the parked table.
    private var parkingDatabase: String { store.databaseNames.first ?? Schema.defaultDatabase }

    /// How many changes are parked.
    public func parkedCount() async throws -> Int {
        try await store.read(database: parkingDatabase) { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM _microlith_parked") ?? 0 }
    }

    /// Tries the parked changes again (after a schema change, once a clock has caught up):
    /// those that can be applied now are, and leave the table; returns how many left it.
    @discardableResult
    public func retryParked() async throws -> Int {
        let rows = try await store.read(database: parkingDatabase) { db in
            try Row.fetchAll(db, sql: "SELECT id, payload FROM _microlith_parked ORDER BY id").map {
                (sequence: $0[0] as Int64, payload: $0[1] as Data)
            }
        }
        // A row holds one change, or a whole message some of whose entries could not be read.
        var parkedRows: [(sequence: Int64, changes: [ReplicatedChange])] = []
        for row in rows {
            guard let results = try? ReplicatedChange.entryResults(json: ByteBuffer(bytes: row.payload)) else { continue }
            let changes = results.compactMap { try? $0.get() }
            parkedRows.append((row.sequence, changes.count == results.count ? changes : []))
        }
        // What the table holds is what is parked (read again at start-up and on every retry).
        parkedSequences.withLock { parked in
            parked = [:]
            for (_, changes) in parkedRows where changes.count == 1 {
                let change = changes[0]
                parked[change.database, default: [:]][change.node, default: []].insert(change.sequence)
            }
        }
        guard !rows.isEmpty else { return 0 }
        var cleared: [Int64] = []
        rowsLoop: for (sequence, changes) in parkedRows where !changes.isEmpty {
            for change in changes {
                guard case .success(let table) = admit(change) else { continue rowsLoop }
                let write = RemoteWrite(
                    table: table, id: change.id, operation: change.operation, version: change.version, origin: change.node,
                    record: change.record, stamps: change.stamps)
                // Applied, it is announced as such.
                parkedSequences.withLock { _ = $0[change.database]?[change.node]?.remove(change.sequence) }
                do {
                    _ = try await self.write([(write, change.sequence, nil)], database: change.database)
                } catch {
                    noteParked(change)
                    guard Self.isRefusal(error) else { throw error }
                    continue rowsLoop
                }
            }
            cleared.append(sequence)
        }
        guard !cleared.isEmpty else { return 0 }
        try await store.write(database: parkingDatabase) { [cleared] txn in
            for id in cleared { try txn.db.execute(sql: "DELETE FROM _microlith_parked WHERE id = ?", arguments: [id]) }
        }
        logger.notice("replication: \(cleared.count) parked change(s) applied")
        return cleared.count
    }

    /// Asks the origins of the gaps this node knows of for the entries it missed, and applies
    /// them (``RepairResponder`` answers); returns how many changes took effect. A gap whose
    /// origin does not answer now stays for the next try; one whose origin's log no longer holds
    /// the entries is kept with that problem, logged as an error, and not asked for again.
    @discardableResult
    public func fillGaps() async throws -> Int {
        var recovered = 0
        for database in store.databaseNames {
            for gap in try await store.gaps(database: database) where gap.problem == nil {
                var after = gap.after
                var current = gap
                while true {
                    let request = JSONValue.object(["after": .int(after), "upto": .int(gap.upto), "limit": .int(64)])
                    let subject = configuration.stream.repairSubject(node: gap.origin, database: database)
                    let answer: NATSMessage
                    do {
                        answer = try await jetStream.client.request(
                            subject, payload: ByteBuffer(bytes: JSONWriter.encode(request)), timeout: configuration.repairTimeout)
                    } catch let error as NATSError where error.kind == .noResponders || error.kind == .timeout {
                        logger.notice("replication: node \(gap.origin) does not answer for its entries \(after + 1)...\(gap.upto) yet: \(error)")
                        break
                    }
                    let reply = try RepairReply(json: answer.payload)
                    if let problem = reply.problem {
                        logger.error(
                            "replication: entries \(after + 1)...\(gap.upto) of node \(gap.origin)'s log of database \(database) cannot be recovered: \(problem)"
                        )
                        try await updateGap(current, database: database, after: after, problem: problem)
                        // Its log no longer has them: its tables do.
                        resyncPending.withLock { $0 = true }
                        resyncOrigins.withLock { _ = $0.insert(gap.origin) }
                        break
                    }
                    let outcome = try await apply(reply.changes.map { Item(repaired: $0, subject: subject) })
                    recovered += outcome.applied
                    if !outcome.parked.isEmpty { try await park(outcome.parked) }
                    if reply.done || reply.next <= after {
                        try await updateGap(current, database: database, after: nil, problem: nil)
                        logger.notice("replication: entries \(gap.after + 1)...\(gap.upto) of node \(gap.origin)'s log recovered")
                        let repair = Repair(
                            origin: gap.origin, database: database, after: gap.after, upto: gap.upto, at: store.configuration.wallClock())
                        lastRepairState.withLock { $0 = repair }
                        break
                    }
                    after = reply.next
                    try await updateGap(current, database: database, after: after, problem: nil)
                    current.after = after
                }
            }
        }
        return recovered
    }

    /// Records progress on `gap`: a new start (`after`), a problem, or (`after` nil) that it is filled.
    private func updateGap(_ gap: ReplicationGap, database: String, after: Int64?, problem: String?) async throws {
        try await store.write(database: database) { txn in
            try txn.db.execute(sql: "DELETE FROM _microlith_gaps WHERE origin = ? AND after = ?", arguments: [gap.origin, gap.after])
            if let after {
                try txn.db.execute(
                    sql: "INSERT OR REPLACE INTO _microlith_gaps(origin, after, upto, found_at, problem) VALUES (?, ?, ?, ?, ?)",
                    arguments: [gap.origin, after, gap.upto, gap.foundAt, problem])
            }
        }
    }

    /// Logs, once per table and digest, that a table declared differently on another node took
    /// a change anyway (its records fit here).
    private func noteDigest(_ change: ReplicatedChange, _ table: TableLayout) {
        let key = "\(change.table) \(change.schema)"
        guard notedDigests.withLock({ $0.insert(key).inserted }) else { return }
        logger.warning(
            "replication: table \(change.table) is declared differently on node \(change.node) (schema digest \(change.schema), here \(table.replicationDigest)); its records fit here and are applied, but run the same schema on every node"
        )
    }

    /// Follows the stream until the task is cancelled. A failure (NATS away, the consumer
    /// deleted) is logged and the round tried again after a wait that grows.
    public func run() async {
        var wait = configuration.retryWait
        var prepared = false
        var lastRetry: ContinuousClock.Instant?
        var lastGapCheck: ContinuousClock.Instant?
        var lastResyncAttempt: ContinuousClock.Instant?
        // Digests are compared beside applying, never holding it up.
        let comparing = Task { await compareDigestsPeriodically() }
        defer { comparing.cancel() }
        while !Task.isCancelled {
            do {
                if !prepared {
                    try await prepare()
                    prepared = true
                }
                if lastRetry.map({ ContinuousClock.now - $0 >= configuration.parkedRetryInterval }) ?? true {
                    lastRetry = ContinuousClock.now
                    try await retryParked()
                }
                let found = gapsPending.withLock { p in
                    defer { p = false }
                    return p
                }
                if resyncPending.withLock({ $0 }),
                    lastResyncAttempt.map({ ContinuousClock.now - $0 >= configuration.parkedRetryInterval }) ?? true
                {
                    lastResyncAttempt = ContinuousClock.now
                    do {
                        try await resyncOwed()
                    } catch {
                        logger.warning("replication: resync failed (tried again in \(configuration.parkedRetryInterval)): \(error)")
                    }
                }
                if found || lastGapCheck.map({ ContinuousClock.now - $0 >= configuration.gapRetryInterval }) ?? true {
                    lastGapCheck = ContinuousClock.now
                    try await fillGaps()
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

    /// Compares digests every ``Configuration/digestInterval`` until the task is cancelled; the
    /// first comparison waits a whole interval (a node just started has its stream to catch up
    /// on first), and none runs while a resync is owed or the consumer has a backlog.
    private func compareDigestsPeriodically() async {
        guard let interval = configuration.digestInterval else { return }
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled || resyncPending.withLock({ $0 }) { continue }
            do {
                let pending = try await consumerInfo().pending
                guard pending < UInt64(configuration.batch) else {
                    logger.info("replication: digests not compared: \(pending) changes still to apply (tried again in \(interval))")
                    continue
                }
                _ = try await compareDigests()
            } catch {
                logger.notice("replication: comparing digests with another node failed (tried again in \(interval)): \(error)")
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
        let ahead = HybridLogicalClock.milliseconds(of: change.version) - store.configuration.wallClock()
        let limit = configuration.maximumClockAhead.wholeMilliseconds
        if ahead > limit {
            return .failure(
                ReplicationError(
                    "its version is \(ahead) ms ahead of this node's clock (at most \(limit) ms is taken): a clock in the cluster runs fast "
                        + "(node \(change.node)'s, or one whose writes it saw), or this node's runs slow"
                ))
        }
        return .success(table)
    }

    /// Applies `writes` in one transaction of `database`, recording per origin what was done and
    /// the gaps the entries' predecessors reveal (logged); returns how many took effect. Once
    /// committed, tells each origin how far this node got (``AppliedNotice``).
    private func write(_ writes: [(write: RemoteWrite, sequence: Int64, previous: Int64?)], database: String) async throws -> Int {
        let nodeID = store.nodeID
        let (applied, gaps, highest, open, positions) = try await store.write(database: database) { txn in
            var applied = 0
            var entries: [String: [(sequence: Int64, previous: Int64?)]] = [:]
            var versions: [String: Int64] = [:]
            for (write, sequence, previous) in writes {
                if try txn.apply(write) { applied += 1 }
                guard write.origin != nodeID else { continue }
                entries[write.origin, default: []].append((sequence, previous))
                versions[write.origin] = max(versions[write.origin] ?? 0, write.version)
            }
            var gaps: [(origin: String, after: Int64, upto: Int64)] = []
            for (origin, list) in entries.sorted(by: { $0.key < $1.key }) {
                for gap in try txn.recordApplied(origin: origin, entries: list, version: versions[origin] ?? 0) {
                    gaps.append((origin, gap.after, gap.upto))
                }
            }
            // What the notices to the origins say, read in this transaction.
            var open: [String: [(after: Int64, upto: Int64)]] = [:]
            var positions: [String: Int64] = [:]
            if !entries.isEmpty {
                for row in try Row.fetchAll(txn.db, sql: "SELECT origin, after, upto FROM _microlith_gaps ORDER BY after") {
                    open[row[0], default: []].append((row[1], row[2]))
                }
                for row in try Row.fetchAll(txn.db, sql: "SELECT origin, seq FROM _microlith_applied") { positions[row[0]] = row[1] }
            }
            return (applied, gaps, entries.mapValues { $0.map(\.sequence).max() ?? 0 }, open, positions)
        }
        for gap in gaps {
            logger.warning(
                "replication: entries \(gap.after + 1)...\(gap.upto) of node \(gap.origin)'s log of database \(database) have not arrived (lost by the stream, or delivered out of order); asking \(gap.origin) for them"
            )
        }
        if !gaps.isEmpty { gapsPending.withLock { $0 = true } }
        announce(highest, database: database, gaps: open, positions: positions)
        return applied
    }

    /// Tells each origin how far this node has applied its log of `database` (best effort: a
    /// notice lost only makes a write waiting with `X-Replicate-To` wait for the next).
    private func announce(
        _ highest: [String: Int64], database: String, gaps: [String: [(after: Int64, upto: Int64)]], positions: [String: Int64]
    ) {
        let parked = parkedSequences.withLock { $0[database] ?? [:] }
        for (origin, sequence) in highest {
            var through = max(sequence, positions[origin] ?? 0)
            // Parked entries as spans (neighbours in one), at most 256 of them: past that the
            // notice claims less than was applied, never more.
            var spans: [(after: Int64, upto: Int64)] = []
            for entry in (parked[origin] ?? []).sorted() {
                if let last = spans.last, last.upto == entry - 1 {
                    spans[spans.count - 1].upto = entry
                } else if spans.count == 256 {
                    through = min(through, entry - 1)
                    break
                } else {
                    spans.append((entry - 1, entry))
                }
            }
            let notice = AppliedNotice(node: store.nodeID, database: database, through: through, gaps: (gaps[origin] ?? []) + spans)
            try? jetStream.client.publish(configuration.stream.appliedSubject(origin: origin, database: database), payload: notice.json)
        }
    }

    /// Whether `error` says a change does not fit this node (and others may), rather than that
    /// the database failed.
    private static func isRefusal(_ error: any Error) -> Bool {
        guard let error = error as? StoreError else { return false }
        return error.code == .invalidRecord || error.code == .invalidID
    }
}
