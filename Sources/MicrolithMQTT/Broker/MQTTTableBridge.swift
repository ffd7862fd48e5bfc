import DequeModule
import Logging
import Metrics
import MicrolithJSON
import MicrolithRealtime
import MicrolithSchema
import MicrolithStore
import MicrolithTables
import NIOCore

/// Records as topics: topic `Table/id` is record `id` of the exported table `Table`.
///
/// The bridge maps topics to records and records to topics, writes what a retained publish to a record's
/// topic carries (a PUT; an empty payload a DELETE) and hands a publish without retain to the record's
/// subscribers through the ``EventHub``; it turns the hub's committed changes and messages into messages
/// for the records' topics, and replays from the change log the changes a persistent session missed while
/// away. (The records a new subscription matches are read by ``MQTTRetainedSender``, which finds the
/// table through ``table(forFilter:)``.)
struct MQTTTableBridge: Sendable {
    let hub: EventHub
    let store: Store
    let logger: Logger
    /// Writes through the application's table hooks, and the grammar of table topics.
    let access: TableAccess
    /// Topic names by table position.
    private let topicNames: [Int: String]

    /// What a topic names.
    enum Resolution {
        /// No record of an exported table: a plain topic.
        case plain
        /// Record `id` of `table`.
        case record(TableLayout, RecordID)
        /// A record of an exported table, with a key its primary key does not accept; the message says why.
        case invalidKey(String)
    }

    init(hub: EventHub, access: TableAccess, logger: Logger) {
        self.hub = hub
        self.store = hub.store
        self.access = access
        self.logger = logger
        var names: [Int: String] = [:]
        for table in hub.store.tables {
            guard let name = table.definition.exportName else { continue }
            names[table.index] = name
        }
        self.topicNames = names
    }

    // MARK: Topics

    /// The topic of record `id` of the table at `index`, if the table is exported.
    func topic(_ index: Int, _ id: RecordID) -> String? {
        topicNames[index].map { "\($0)/\(id)" }
    }

    /// What `topic` names, read by the table directory (``TableDirectory/target(topic:)``): a record
    /// when its first level is an exported table's name and a non-empty key follows.
    func resolve(_ topic: String) -> Resolution {
        do {
            guard let target = try access.directory.target(topic: topic), let id = target.recordID else { return .plain }
            return .record(target.table, id)
        } catch {
            return .invalidKey(error.detail)
        }
    }

    /// The exported table a topic filter's first level names, and the rest of the filter after it.
    func table(forFilter filter: String) -> (table: TableLayout, name: String, rest: Substring)? {
        let parts = filter.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let name = parts.first, let table = access.directory.table(named: String(name)) else { return nil }
        return (table, String(name), parts.count > 1 ? parts[1] : "")
    }

    /// Whether `principal` may receive the changes of `table`: it may subscribe to it and sees every
    /// attribute (MQTT messages are shared by all subscribers, so attributes cannot be hidden per client).
    func admits(_ principal: Principal, _ table: TableLayout) -> Bool {
        access.allows(.subscribe, table, for: principal) && access.hidden(table, for: principal, verb: .subscribe).isEmpty
    }

    /// Whether a subscription to `filter` by `principal` is refused: a filter over an exported table's
    /// records needs the `subscribe` permission on the table, and a wildcard (`+`, `#`) there is a
    /// standing query, which the table's `search` hook may refuse (asked as a `GET` of the table's URL
    /// over `mqtt`, the filter in the `mqtt-topic-filter` header). Plain topics are never refused here.
    func refusesSubscription(filter: String, clientID: String, principal: Principal) -> Bool {
        guard let (table, name, rest) = table(forFilter: filter) else { return false }
        guard admits(principal, table) else { return true }
        guard rest.contains("+") || rest.contains("#"), access.hooks(table)?.search != nil else { return false }
        let request = ResourceRequest(
            method: "GET", path: "/\(name)/", headers: ["mqtt-client-id": clientID, "mqtt-topic-filter": filter], transport: "mqtt")
        do {
            try access.checkSearch(table, .subscribe, for: principal, request: request)
            return false
        } catch {
            if !TableAccess.isRefusal(error) { logger.error("mqtt: the search hook of \(name) failed for \(clientID): \(error)") }
            return true
        }
    }

    // MARK: Publishing to records

    /// A publish to record `id` of `table`: a retained one writes the record (an empty payload deletes it)
    /// through the table's hooks, as a `PUT` (or `DELETE`) of `/T/id` would, and returns the write's outcome;
    /// one without retain is a message to the record's subscribers (`nil`: done).
    /// The write runs as work `spawn` accepts (the broker's ``MQTTBroker/run()``); one it refuses fails
    /// with 0x8B, server shutting down.
    func publish(
        _ publish: MQTTPublish, to table: TableLayout, id: RecordID, clientID: String?, principal: Principal, on loop: any EventLoop,
        spawn: (@escaping @Sendable () async -> Void) -> Bool
    ) -> EventLoopFuture<MQTTBroker.PublishOutcome>? {
        guard publish.retain else {
            guard access.allows(.publish, table, for: principal) else {
                return loop.makeSucceededFuture(.failed(0x87, AccessDenied(verb: .publish, table: table, principal: principal).message))
            }
            hub.publish(table: table, id: id, payload: publish.payload)
            return nil
        }
        let body: JSONObject?
        if publish.payload.readableBytes == 0 {
            body = nil
        } else {
            guard case .object(let object)? = try? JSONParser.parse(publish.payload.readableBytesView) else {
                return loop.makeSucceededFuture(
                    .failed(0x99, "a retained publish to \(publish.topic) writes the record: its payload must be a JSON object"))
            }
            body = object
        }
        let access = self.access
        let request = ResourceRequest(
            method: body == nil ? "DELETE" : "PUT", path: TableDirectory.path(table, id),
            headers: clientID.map { ["mqtt-client-id": $0] } ?? [:], transport: "mqtt")
        let promise = loop.makePromise(of: MQTTBroker.PublishOutcome.self)
        let accepted = spawn {
            do {
                if let body {
                    _ = try await access.put(table, id, body: body, for: principal, request: request)
                } else {
                    _ = try await access.delete(table, id, for: principal, request: request)
                }
                promise.succeed(.done)
            } catch let error as StoreError {
                promise.succeed(.failed(error.code == .invalidRecord || error.code == .invalidID ? 0x99 : 0x80, error.message))
            } catch let error as any StatusCodedError where error.status < 500 {
                // A hook refused the write: not authorized (0x87) for 401/403, implementation specific (0x83) otherwise.
                promise.succeed(.failed(error.status == 401 || error.status == 403 ? 0x87 : 0x83, error.message))
            } catch {
                // A failure of the hook or the server: the cause goes to the log, not to the client.
                logger.error("mqtt: writing \(publish.topic) failed: \(error)")
                promise.succeed(.failed(0x80, "the write failed on the server"))
            }
        }
        if !accepted { promise.succeed(.failed(0x8B, "the server is shutting down")) }
        return promise.futureResult
    }

    /// What an MQTT subscriber is shown of record `id` of `table` (stored as `record`, read only when a
    /// hook needs it; encoded as `json`): the stored JSON, or the table's `get` hook's view of it (asked as a `GET` of the
    /// record's URL over `mqtt`); `nil` when the hook refuses the record, which is then not sent.
    func shownPayload(
        _ table: TableLayout, _ id: RecordID, record: @autoclosure () -> JSONObject?, json: ByteBuffer, clientID: String? = nil
    ) -> ByteBuffer? {
        guard !access.showsStoredRecords(table), let record = record() else { return json }
        let request = ResourceRequest(
            method: "GET", path: TableDirectory.path(table, id), headers: clientID.map { ["mqtt-client-id": $0] } ?? [:], transport: "mqtt")
        do {
            return ByteBuffer(bytes: JSONWriter.encode(.object(try access.shown(record, table: table, request: request))))
        } catch {
            if !TableAccess.isRefusal(error) { logger.error("mqtt: the get hook of \(table.name) failed on \(id): \(error)") }
            return nil
        }
    }

    // MARK: Changes

    /// The message an event of the hub carries to the MQTT subscribers of its record's topic, and whether
    /// offline sessions keep it: a committed change goes out retained at QoS 1 with its change-log position,
    /// not kept (a returning session gets it from the change log); a message goes out at QoS 1 and is kept.
    /// `nil` for events of tables that are not exported and events of no record.
    func message(for event: RealtimeEvent) -> (message: MQTTSession.Outgoing, keepOffline: Bool)? {
        guard let index = event.tableIndex, let name = topicNames[index], let id = event.id else { return nil }
        switch event.kind {
        case .put, .patch, .delete:
            let table = store.tables[index]
            guard let payload = shownPayload(table, id, record: event.value?.objectValue, json: event.payload) else { return nil }
            return (
                MQTTSession.Outgoing(
                    topic: "\(name)/\(id)", payload: payload, qos: .atLeastOnce, retain: true,
                    change: (table.definition.database, event.sequence ?? 0)),
                false
            )
        case .message:
            return (MQTTSession.Outgoing(topic: "\(name)/\(id)", payload: event.payload, qos: .atLeastOnce, retain: false), true)
        default:
            return nil
        }
    }

    /// The change-log position of every database the hub has delivered so far.
    func positions() -> [String: Int64] {
        Dictionary(uniqueKeysWithValues: store.databaseNames.map { ($0, hub.position(database: $0)) })
    }

    /// The change-log position of every database, read between two deliveries of the hub: every change up to
    /// it has been handed to the listeners, none after it.
    func currentPositions() async -> [String: Int64] {
        let hub = self.hub
        let databases = store.databaseNames
        return await hub.perform { Dictionary(uniqueKeysWithValues: databases.map { ($0, hub.position(database: $0)) }) }
    }

    /// The table changes a returning client missed: those after `from` up to `end`, per database, whose topics
    /// `filters` match, in change-log order, each at the highest QoS the matching filters grant. Held at once, so
    /// bounded like any queue of the session by `limits`: past them the rest are left out, counted (the changes
    /// after the cut whose topics the filters match, read without their payloads; `limits.replayCut`) and
    /// logged. Returns the messages and that count. A failed read of the change log is logged and ends the
    /// replay with what was read.
    func replay(
        from: [String: Int64], to end: [String: Int64], filters: [String: MQTTSubscription], limits: MQTTSession.Limits, clientID: String,
        principal: Principal
    ) async -> (messages: Deque<MQTTSession.Outgoing>, cut: Int) {
        var replay: Deque<MQTTSession.Outgoing> = []
        var replayBytes = 0
        var truncated = false
        var cut = 0
        do {
            for database in store.databaseNames {
                guard var position = from[database], let end = end[database], position < end else { continue }
                while position < end {
                    let changes = try await store.changes(database: database, after: position, limit: 1000)
                    guard let last = changes.last else { break }
                    for change in changes where change.sequence <= end {
                        guard admits(principal, store.tables[change.table]), let topic = topic(change.table, change.id),
                            let target = Self.target(filters, topic: topic)
                        else { continue }
                        if truncated {
                            cut += 1
                            continue
                        }
                        guard
                            let payload = shownPayload(
                                store.tables[change.table], change.id, record: change.record?.record, json: change.record?.json ?? ByteBuffer(),
                                clientID: clientID)
                        else { continue }
                        let message = MQTTSession.Outgoing(
                            topic: topic, payload: payload, qos: target.qos, retain: false,
                            change: (database, change.sequence), subscriptionIdentifiers: target.identifiers)
                        guard replay.count < limits.messages, replayBytes + message.size <= limits.bytes else {
                            truncated = true
                            cut += 1
                            continue
                        }
                        replayBytes += message.size
                        replay.append(message)
                    }
                    position = last.sequence
                }
            }
        } catch {
            logger.error("mqtt: replaying the change log for \(clientID) failed: \(error)")
        }
        if cut > 0 {
            limits.replayCut?.increment(by: cut)
            logger.warning(
                "mqtt: \(clientID) missed more table changes than mqtt.maxQueuedMessages (\(limits.messages)) or mqtt.bufferBytes (\(limits.bytes)) hold; it gets the first \(replay.count), \(cut) are left out"
            )
        }
        return (replay, cut)
    }

    /// What the filters matching `topic` grant together (the highest QoS, their subscription identifiers);
    /// `nil` when none matches.
    static func target(_ filters: [String: MQTTSubscription], topic: String) -> MQTTFanOut.Target? {
        var target: MQTTFanOut.Target?
        for (filter, subscription) in filters where MQTTTopic.matches(filter: filter, topic: topic) {
            target = MQTTFanOut.Target(adding: subscription, to: target)
        }
        return target
    }
}
