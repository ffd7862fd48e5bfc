import Logging
import MicrolithJSON
import MicrolithQuery
import MicrolithSchema
import MicrolithStore
import NIOCore
import OrderedCollections
import Synchronization

/// Sends one connection the retained messages and table records its new subscriptions match.
///
/// One run at a time per connection, beside the handling of its packets (acknowledgements keep
/// flowing); filters requested while a run goes on are merged into the next run. A run never holds
/// what it sends whole: table records are read a page at a time in primary key order, pages of about a
/// quarter of `mqtt.bufferBytes`, and each page (like each slice of plain retained messages) waits until
/// the client has made room: less than half of `mqtt.bufferBytes` unwritten and no QoS 1 message queued
/// behind its in-flight window. A client that makes no room within `mqtt.writeTimeoutSeconds` is dropped
/// as a slow consumer. Within a run each topic goes out once, at the highest QoS the run's matching
/// filters grant, however many of its filters repeat or overlap.
final class MQTTRetainedSender: @unchecked Sendable {
    /// Unowned: the connection owns the sender; a run holds the connection until it is done.
    unowned let connection: MQTTConnection
    /// Filters waiting for the next run. Confined to the connection's event loop, like `running`.
    private var queued: OrderedDictionary<String, MQTTSubscription> = [:]
    /// Plain retained messages the queued filters matched when they were subscribed: the snapshot is
    /// taken then, not when the run starts, so a message published after the SUBACK reaches the client
    /// once (live), not a second time as retained.
    private var queuedPlain: [MQTTSession.Outgoing] = []
    private var running = false

    init(connection: MQTTConnection) {
        self.connection = connection
    }

    private var broker: MQTTBroker { connection.broker }
    private var configuration: MQTTConfiguration { connection.broker.configuration }
    /// What one page aims at, in bytes.
    private var pageBytes: Int { max(16 * 1024, configuration.bufferBytes / 4) }

    /// Sends what `subscriptions` match, after what is being sent already; on the event loop.
    func request(_ subscriptions: [MQTTSubscription]) {
        connection.eventLoop.preconditionInEventLoop()
        guard !subscriptions.isEmpty else { return }
        var tree = MQTTTopicTree<String, MQTTSubscription>()
        for s in subscriptions { tree.insert(filter: s.topicFilter, key: s.topicFilter, value: s) }
        queuedPlain.append(contentsOf: broker.retainedMessages(matching: tree))
        for s in subscriptions {
            var merged = s
            if let earlier = queued[s.topicFilter] { merged.qos = max(earlier.qos, s.qos) }
            queued[s.topicFilter] = merged
        }
        startNext()
    }

    private func startNext() {
        guard !running, !queued.isEmpty, !connection.isClosed, let session = connection.session else { return }
        let filters = Array(queued.values)
        let plain = queuedPlain
        queued = [:]
        queuedPlain = []
        running = true
        let connection = self.connection
        // Read here, on the connection's event loop: the task below runs elsewhere.
        let clientID = connection.clientID
        broker.spawn { [self] in
            await run(filters, plain: plain, session: session, clientID: clientID)
            connection.eventLoop.execute { [self] in
                withExtendedLifetime(connection) {
                    running = false
                    startNext()
                }
            }
        }
    }

    private func run(_ filters: [MQTTSubscription], plain: [MQTTSession.Outgoing], session: MQTTSession, clientID: String) async {
        var next = 0
        while next < plain.count {
            guard await waitForRoom(session) else { return }
            var page: [MQTTSession.Outgoing] = []
            var bytes = 0
            while next < plain.count, bytes < pageBytes {
                page.append(plain[next])
                bytes += plain[next].size
                next += 1
            }
            send(page, to: session)
        }

        // Table filters by table: whole-table scans for wildcards, single reads for exact topics.
        var tree = MQTTTopicTree<String, MQTTSubscription>()
        for f in filters { tree.insert(filter: f.topicFilter, key: f.topicFilter, value: f) }
        var tables: OrderedDictionary<Int, (table: TableLayout, name: String, rests: [Substring])> = [:]
        for f in filters {
            guard let (table, name, rest) = broker.table(forFilter: f.topicFilter), !rest.isEmpty else { continue }
            tables[table.index, default: (table, name, [])].rests.append(rest)
        }
        for (table, name, rests) in tables.values {
            let complete: Bool
            if rests.contains(where: { $0.contains("+") || $0.contains("#") }) {
                complete = await scan(table, name: name, tree: tree, session: session, clientID: clientID)
            } else {
                complete = await read(table, name: name, ids: rests, tree: tree, session: session, clientID: clientID)
            }
            guard complete else { return }
        }
    }

    /// Sends every record of `table` some filter matches, page by page; `false` when the client went away.
    private func scan(
        _ table: TableLayout, name: String, tree: MQTTTopicTree<String, MQTTSubscription>, session: MQTTSession, clientID: String
    ) async -> Bool {
        let key = table.definition.primaryKey
        var after: RecordID?
        var rows = 16
        while true {
            guard await waitForRoom(session) else { return false }
            var query = Query(sort: [SortKey(path: [key])], limit: Limit(start: 0, end: rows))
            if let after { query.filter = .compare(Comparison(path: [key], op: .gt, value: .typed(after.jsonValue))) }
            let result: QueryResult
            do {
                result = try await QueryExecutor(store: broker.store, maximumResults: rows).execute(query, table: table)
            } catch {
                broker.logger.error("mqtt: reading \(name) records for \(clientID) failed: \(error)")
                return true
            }
            var page: [MQTTSession.Outgoing] = []
            var scanned = 0
            for row in result.rows {
                let stored = row.json.map { ByteBuffer(string: $0) } ?? ByteBuffer(bytes: JSONWriter.encode(.object(row.record)))
                scanned += stored.readableBytes
                guard let payload = broker.tables.shownPayload(table, row.id, record: row.record, json: stored, clientID: clientID)
                else { continue }
                if let message = Self.message(topic: "\(name)/\(row.id)", payload: payload, tree: tree) { page.append(message) }
            }
            send(page, to: session)
            guard result.rows.count == rows, let last = result.rows.last else { return true }
            after = last.id
            rows = min(1024, max(1, pageBytes / max(1, scanned / result.rows.count)))
        }
    }

    /// Sends the records named by exact topics; `false` when the client went away.
    private func read(
        _ table: TableLayout, name: String, ids: [Substring], tree: MQTTTopicTree<String, MQTTSubscription>, session: MQTTSession,
        clientID: String
    ) async -> Bool {
        let type = table.definition.primaryKeyAttribute.type
        var page: [MQTTSession.Outgoing] = []
        var bytes = 0
        for id in OrderedSet(ids.compactMap { RecordID(text: String($0), type: type) }) {
            if page.isEmpty {
                guard await waitForRoom(session) else { return false }
            }
            do {
                guard let record = try await broker.store.get(table, id),
                    let payload = broker.tables.shownPayload(table, id, record: record.record, json: record.json, clientID: clientID),
                    let message = Self.message(topic: "\(name)/\(id)", payload: payload, tree: tree)
                else { continue }
                page.append(message)
                bytes += message.size
            } catch {
                broker.logger.error("mqtt: reading \(name)/\(id) for \(clientID) failed: \(error)")
            }
            if bytes >= pageBytes {
                send(page, to: session)
                page = []
                bytes = 0
            }
        }
        send(page, to: session)
        return true
    }

    /// The retained message for a record's topic at the highest QoS a matching filter grants, if one matches.
    private static func message(topic: String, payload: ByteBuffer, tree: MQTTTopicTree<String, MQTTSubscription>) -> MQTTSession.Outgoing? {
        MQTTFanOut.Target.of(topic, in: tree).map {
            MQTTSession.Outgoing(topic: topic, payload: payload, qos: $0.qos, retain: true, subscriptionIdentifiers: $0.identifiers)
        }
    }

    /// Waits until the client has room for a page; `false` (the client dropped as a slow consumer,
    /// or gone) when it does not make room within `mqtt.writeTimeoutSeconds`.
    private func waitForRoom(_ session: MQTTSession) async -> Bool {
        let limit = configuration.bufferBytes / 2
        let deadline = ContinuousClock.now + .seconds(configuration.writeTimeoutSeconds)
        var delay = Duration.milliseconds(1)
        while !connection.closed {
            guard let queueEmpty = session.state.withLock({ s in s.connection === connection ? s.pending.isEmpty : nil }) else { return false }
            if queueEmpty && connection.outstandingBytes <= limit { return true }
            if ContinuousClock.now >= deadline {
                connection.slowConsumer(
                    "the client took more than \(configuration.writeTimeoutSeconds) s to read or acknowledge retained messages")
                return false
            }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .milliseconds(50))
        }
        return false
    }

    /// Queues a page in the session (QoS 1 messages past the in-flight window wait there) and writes what can go now.
    private func send(_ page: [MQTTSession.Outgoing], to session: MQTTSession) {
        guard !page.isEmpty else { return }
        // Handed over under the session's lock: bytes leave in the order the session's state changed.
        session.state.withLock { s in
            guard s.connection === connection else { return }
            var out = ByteBuffer()
            for m in page {
                guard var (_, bytes) = MQTTSession.enqueue(m, into: &s, keepOffline: false, limits: nil) else { continue }
                out.writeBuffer(&bytes)
            }
            if out.readableBytes > 0 { connection.deliver(out) }
        }
    }
}
