import Foundation
import GRDB
import Logging
public import MicrolithStore
import MicrolithTables
import NIOCore
import Synchronization

extension SystemTables {
    /// The tables of the MQTT broker's persistent state, in every database (the broker uses the
    /// default one): `_microlith_mqtt_sessions` (one row per session that outlives its connection:
    /// owner, roles, protocol version, expiry, subscriptions, change-log positions, the QoS 2 packet
    /// ids its client has not released, its will),
    /// `_microlith_mqtt_messages` (the QoS 1 and 2 messages owed to those sessions, in order) and
    /// `_microlith_mqtt_retained` (the retained messages of plain topics).
    ///
    /// A store whose broker keeps sessions across restarts declares them in
    /// ``StoreConfiguration/systemTables``; the runtime's configuration does.
    public static let mqtt = SystemTables(
        owner: "mqtt",
        migrations: [
            """
            CREATE TABLE IF NOT EXISTS _microlith_mqtt_sessions(
                client_id TEXT PRIMARY KEY NOT NULL, owner TEXT, roles BLOB NOT NULL, version INTEGER NOT NULL,
                expiry INTEGER NOT NULL, disconnected_at INTEGER, subscriptions BLOB NOT NULL, positions BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS _microlith_mqtt_messages(
                id INTEGER PRIMARY KEY, client_id TEXT NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL,
                qos INTEGER NOT NULL, retain INTEGER NOT NULL, properties BLOB, expires_at INTEGER, identifiers BLOB);
            CREATE INDEX IF NOT EXISTS _microlith_mqtt_messages_client ON _microlith_mqtt_messages(client_id, id);
            CREATE TABLE IF NOT EXISTS _microlith_mqtt_retained(
                topic TEXT PRIMARY KEY NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, properties BLOB, expires_at INTEGER);
            """,
            // A QoS 2 message in flight: the packet id it was sent with, and whether the client has
            // received it (PUBREC; PUBREL is owed), so a restart resends it as the client expects.
            """
            ALTER TABLE _microlith_mqtt_messages ADD COLUMN packet_id INTEGER;
            ALTER TABLE _microlith_mqtt_messages ADD COLUMN released INTEGER NOT NULL DEFAULT 0;
            """,
            // The packet ids of QoS 2 publishes a session's client sent and has not released (PUBREL):
            // a repeat after a restart is acknowledged, not handed on again.
            """
            ALTER TABLE _microlith_mqtt_sessions ADD COLUMN received BLOB;
            """,
            // The session's will (an MQTT 5 CONNECT carrying only the will), and when one waiting for
            // its delay is due (milliseconds since 1970).
            """
            ALTER TABLE _microlith_mqtt_sessions ADD COLUMN will BLOB;
            ALTER TABLE _microlith_mqtt_sessions ADD COLUMN will_due INTEGER;
            """,
        ])
}

/// Keeps the broker's state that must survive a restart in the store: the sessions that outlive
/// their connection (subscriptions, change-log positions, wills), the QoS 1 and 2 plain messages owed to
/// them, and the retained messages of plain topics.
///
/// Changes are queued in the order the broker makes them and written by one task
/// (``run()``), many to a transaction, so the store's group commit carries them. A publisher's
/// PUBACK (PUBREC) waits for ``barrier(_:on:)``: a QoS 1 or 2 message acknowledged to its
/// publisher is in the store, for every persistent session it was queued for, and survives a
/// SIGKILL. Acknowledgements from subscribers delete rows without anyone waiting: a crash before
/// that commit sends the message again (QoS 1's at-least-once). A QoS 2 message's row also records
/// the packet id it went out with and whether the client received it (PUBREC), so after a restart
/// the client gets its PUBLISH again with DUP and the same id, or its PUBREL: exactly-once holds
/// across restarts once those updates are written (within the sweep's half second, as for every
/// queued change); a crash before that sends it again as a new message. The other way, the packet
/// ids of the QoS 2 publishes a session's client sent and has not released are in its row before
/// their PUBREC goes out, and leave it before their PUBCOMP does: a PUBLISH repeated after a
/// restart is acknowledged without being handed on again, and an id the client reuses after its
/// PUBCOMP is a new message.
final class MQTTPersistence: Sendable {
    let store: Store
    let database: String
    let logger: Logger
    private let state = Mutex(State())
    private let nextMessageID = Atomic<Int64>(1)
    private let signal: AsyncStream<Void>
    private let signalContinuation: AsyncStream<Void>.Continuation

    /// One change to the stored state.
    enum Operation: Sendable {
        case saveSession(SessionRow)
        case removeSession(String)
        case insertMessage(clientID: String, MessageRow)
        case deleteMessages([Int64])
        /// A QoS 2 message went out with `packetID`; `released`: the client received it (PUBREC).
        case inflight(messageID: Int64, packetID: UInt16, released: Bool)
        case retain(topic: String, MessageRow?)
        /// The QoS 2 packet ids the session's client sent and has not released (PUBREL).
        case received(clientID: String, packetIDs: [UInt16])
    }

    /// A session as stored.
    struct SessionRow: Sendable, Equatable {
        var clientID: String
        var owner: String?
        var roles: [String]
        var version: MQTTProtocolVersion
        var expiry: UInt32
        /// When the connection went (milliseconds since 1970); `nil` while connected.
        var disconnectedAt: Int64?
        var subscriptions: [MQTTSubscription]
        var positions: [String: Int64]
        /// The QoS 2 packet ids the client sent and has not released (PUBREL).
        var received: [UInt16] = []
        /// The session's will: its connection's, or the one waiting for its delay.
        var will: MQTTWill? = nil
        /// When the will waiting for its delay is due (milliseconds since 1970); `nil` while connected.
        var willDue: Int64? = nil
    }

    /// A message as stored.
    struct MessageRow: Sendable {
        var id: Int64
        var topic: String
        var payload: ByteBuffer
        var qos: MQTTQoS
        var retain: Bool
        /// The forwarded properties (a property section), without the expiry.
        var properties: ByteBuffer?
        /// When the message expires (milliseconds since 1970).
        var expiresAt: Int64?
        var identifiers: [Int]
        /// The packet id a QoS 2 message is in flight with, and whether the client received it.
        var packetID: UInt16? = nil
        var released = false
    }

    private struct State {
        var operations: [Operation] = []
        /// Operations queued so far, and written so far (committed or failed).
        var queued: UInt64 = 0
        var written: UInt64 = 0
        var waiters: [(mark: UInt64, promise: EventLoopPromise<Bool>)] = []
        /// ``run()`` has ended: nothing queued later is written.
        var finished = false
    }

    /// Keeps the state in `database` of `store` (which must declare ``SystemTables/mqtt``).
    init(store: Store, database: String, logger: Logger) {
        self.store = store
        self.database = database
        self.logger = logger
        (signal, signalContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// The store's wall clock: milliseconds since 1970.
    func wallClock() -> Int64 {
        store.configuration.wallClock()
    }

    /// A new message row's id.
    func newMessageID() -> Int64 {
        nextMessageID.add(1, ordering: .relaxed).oldValue
    }

    /// Queues `operation`; returns its mark for ``barrier(_:on:)``.
    @discardableResult
    func enqueue(_ operation: Operation) -> UInt64 {
        let mark = state.withLock { s -> UInt64 in
            s.operations.append(operation)
            s.queued += 1
            return s.queued
        }
        signalContinuation.yield()
        return mark
    }

    /// A future for when the operations up to `mark` are written: `true` committed, `false` failed
    /// (or the broker stopped first).
    func barrier(_ mark: UInt64, on loop: any EventLoop) -> EventLoopFuture<Bool> {
        state.withLock { s in
            if s.written >= mark { return loop.makeSucceededFuture(true) }
            if s.finished { return loop.makeSucceededFuture(false) }
            let promise = loop.makePromise(of: Bool.self)
            s.waiters.append((mark, promise))
            return promise.futureResult
        }
    }

    /// A future for when everything queued so far is written (``barrier(_:on:)`` of the last mark).
    func written(on loop: any EventLoop) -> EventLoopFuture<Bool> {
        barrier(state.withLock { $0.queued }, on: loop)
    }

    /// Writes what is queued, a batch per transaction, until ``finish()``; then writes what is left and
    /// returns. A batch whose write fails is tried again (three times in about 1.5 s); one that still
    /// fails is dropped, its waiters told so, and `lost` is called to write again what it may have
    /// held (the sessions' rows).
    func run(lost: @escaping @Sendable () -> Void = {}) async {
        for await _ in signal {
            await writeQueued(lost: lost)
        }
        await writeQueued(lost: lost)
        let (waiters, late) = state.withLock { s in
            s.finished = true
            defer {
                s.waiters = []
                s.operations = []
            }
            return (s.waiters, s.operations.count)
        }
        for waiter in waiters { waiter.promise.succeed(false) }
        if late > 0 { logger.warning("mqtt: \(late) changes to stored sessions came after the broker stopped and were not written") }
    }

    /// Ends ``run()`` once what is queued is written.
    func finish() {
        signalContinuation.finish()
    }

    private func writeQueued(lost: @Sendable () -> Void) async {
        while true {
            let (operations, mark) = state.withLock { s in
                defer { s.operations = [] }
                return (s.operations, s.queued)
            }
            guard !operations.isEmpty else { return }
            let batch = Self.coalesced(operations)
            // A batch whose rows all came and went needs no transaction.
            var committed = batch.isEmpty
            for attempt in 0..<4 where !committed {
                if attempt > 0 { try? await Task.sleep(for: .milliseconds(100 << (2 * (attempt - 1)))) }
                do {
                    try await store.write(database: database) { txn in
                        for operation in batch { try Self.apply(operation, to: txn.db) }
                    }
                    committed = true
                } catch {
                    logger.error("mqtt: storing sessions and messages failed (attempt \(attempt + 1) of 4): \(error)")
                }
            }
            if !committed {
                logger.error("mqtt: \(operations.count) changes to stored sessions and messages are lost; their publishers are told")
                lost()
            }
            let done = state.withLock { s in
                s.written = mark
                let (done, waiting) = (s.waiters.filter { $0.mark <= mark }, s.waiters.filter { $0.mark > mark })
                s.waiters = waiting
                return done
            }
            for waiter in done { waiter.promise.succeed(committed) }
        }
    }

    /// `operations` without the messages both stored and acknowledged within them: a row inserted
    /// and then deleted in one transaction leaves nothing, so neither is written. A subscriber that
    /// keeps up acknowledges most messages before the batch that stores them commits, and those
    /// then cost the store nothing. A delete that comes before an insert of its id is kept.
    static func coalesced(_ operations: [Operation]) -> [Operation] {
        var result: [Operation?] = []
        result.reserveCapacity(operations.count)
        // Where each message row inserted in this batch, and not deleted since, is in `result`.
        var pending: [Int64: Int] = [:]
        for operation in operations {
            switch operation {
            case .insertMessage(_, let m):
                pending[m.id] = result.count
                result.append(operation)
            case .deleteMessages(let ids):
                var rest: [Int64] = []
                for id in ids {
                    if let at = pending.removeValue(forKey: id) { result[at] = nil } else { rest.append(id) }
                }
                if !rest.isEmpty { result.append(.deleteMessages(rest)) }
            default:
                result.append(operation)
            }
        }
        return result.compactMap { $0 }
    }

    /// Runs `sql` through the connection's statement cache: the same few statements run for every
    /// message, so each is compiled once per connection.
    private static func execute(_ db: Database, sql: String, arguments: StatementArguments) throws {
        try db.cachedStatement(sql: sql).execute(arguments: arguments)
    }

    private static func apply(_ operation: Operation, to db: Database) throws {
        switch operation {
        case .saveSession(let row):
            try execute(
                db,
                sql: """
                    INSERT OR REPLACE INTO _microlith_mqtt_sessions(client_id, owner, roles, version, expiry, disconnected_at, subscriptions, positions, received, will, will_due)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    row.clientID, row.owner, Data(Coding.strings(row.roles).readableBytesView), Int(row.version.rawValue), Int64(row.expiry),
                    row.disconnectedAt, Data(Coding.subscriptions(row.subscriptions).readableBytesView),
                    Data(Coding.positions(row.positions).readableBytesView), Coding.packetIDs(row.received), row.will.map(Coding.will),
                    row.will == nil ? nil : row.willDue,
                ])
        case .received(let clientID, let packetIDs):
            try execute(
                db, sql: "UPDATE _microlith_mqtt_sessions SET received = ? WHERE client_id = ?",
                arguments: [Coding.packetIDs(packetIDs), clientID])
        case .removeSession(let clientID):
            try execute(db, sql: "DELETE FROM _microlith_mqtt_sessions WHERE client_id = ?", arguments: [clientID])
            try execute(db, sql: "DELETE FROM _microlith_mqtt_messages WHERE client_id = ?", arguments: [clientID])
        case .insertMessage(let clientID, let m):
            try execute(
                db,
                sql: """
                    INSERT INTO _microlith_mqtt_messages(id, client_id, topic, payload, qos, retain, properties, expires_at, identifiers)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    m.id, clientID, m.topic, Data(m.payload.readableBytesView), Int(m.qos.rawValue), m.retain,
                    m.properties.map { Data($0.readableBytesView) }, m.expiresAt,
                    m.identifiers.isEmpty ? nil : Data(Coding.integers(m.identifiers).readableBytesView),
                ])
        case .deleteMessages(let ids):
            let statement = try db.cachedStatement(sql: "DELETE FROM _microlith_mqtt_messages WHERE id = ?")
            for id in ids { try statement.execute(arguments: [id]) }
        case .inflight(let id, let packetID, let released):
            try execute(
                db, sql: "UPDATE _microlith_mqtt_messages SET packet_id = ?, released = ? WHERE id = ?",
                arguments: [Int(packetID), released, id])
        case .retain(let topic, let m):
            guard let m else {
                try execute(db, sql: "DELETE FROM _microlith_mqtt_retained WHERE topic = ?", arguments: [topic])
                return
            }
            try execute(
                db,
                sql: "INSERT OR REPLACE INTO _microlith_mqtt_retained(topic, payload, qos, properties, expires_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [
                    topic, Data(m.payload.readableBytesView), Int(m.qos.rawValue), m.properties.map { Data($0.readableBytesView) }, m.expiresAt,
                ])
        }
    }

    // MARK: Loading

    /// What the store holds, read when the broker starts.
    struct Loaded: Sendable {
        var sessions: [SessionRow] = []
        /// Messages per client id, in the order they were queued.
        var messages: [String: [MessageRow]] = [:]
        var retained: [MessageRow] = []
    }

    /// Reads the stored state; the next message id continues after the highest stored one. A row that
    /// cannot be read is logged and skipped (and removed, so it is not read again).
    func load() async throws -> Loaded {
        let (loaded, highest, unreadable) = try await store.read(database: database) { db -> (Loaded, Int64, [String]) in
            var loaded = Loaded()
            var unreadable: [String] = []
            for row in try Row.fetchAll(db, sql: "SELECT * FROM _microlith_mqtt_sessions ORDER BY client_id") {
                let clientID: String = row["client_id"]
                guard let version = MQTTProtocolVersion(rawValue: UInt8(clamping: row["version"] as Int)),
                    let roles = Coding.readStrings(row["roles"]), let subscriptions = Coding.readSubscriptions(row["subscriptions"]),
                    let positions = Coding.readPositions(row["positions"])
                else {
                    unreadable.append(clientID)
                    continue
                }
                loaded.sessions.append(
                    SessionRow(
                        clientID: clientID, owner: row["owner"], roles: roles, version: version, expiry: UInt32(clamping: row["expiry"] as Int64),
                        disconnectedAt: row["disconnected_at"], subscriptions: subscriptions, positions: positions,
                        received: row.hasColumn("received") ? Coding.readPacketIDs(row["received"]) : [],
                        will: row.hasColumn("will") ? Coding.readWill(row["will"]) : nil, willDue: row.hasColumn("will_due") ? row["will_due"] : nil))
            }
            for row in try Row.fetchAll(db, sql: "SELECT * FROM _microlith_mqtt_messages ORDER BY id") {
                guard let m = Self.message(row, id: row["id"]) else { continue }
                loaded.messages[row["client_id"], default: []].append(m)
            }
            for row in try Row.fetchAll(db, sql: "SELECT * FROM _microlith_mqtt_retained ORDER BY topic") {
                guard let m = Self.message(row, id: 0) else { continue }
                loaded.retained.append(m)
            }
            let highest = try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM _microlith_mqtt_messages") ?? 0
            return (loaded, highest, unreadable)
        }
        nextMessageID.store(highest + 1, ordering: .relaxed)
        for clientID in unreadable {
            logger.error("mqtt: the stored session of \(clientID) cannot be read; it is removed")
            enqueue(.removeSession(clientID))
        }
        return loaded
    }

    private static func message(_ row: Row, id: Int64) -> MessageRow? {
        guard let qos = MQTTQoS(rawValue: UInt8(clamping: row["qos"] as Int)), let payload = row["payload"] as Data? else { return nil }
        let identifiers = row.hasColumn("identifiers") ? (row["identifiers"] as Data?).map { Coding.readIntegers($0) ?? [] } ?? [] : []
        var message = MessageRow(
            id: id, topic: row["topic"], payload: ByteBuffer(bytes: payload), qos: qos, retain: row.hasColumn("retain") ? row["retain"] : true,
            properties: (row["properties"] as Data?).map { ByteBuffer(bytes: $0) }, expiresAt: row["expires_at"], identifiers: identifiers)
        if row.hasColumn("packet_id"), let packetID = row["packet_id"] as Int?, (1...Int(UInt16.max)).contains(packetID) {
            message.packetID = UInt16(packetID)
            message.released = row["released"] ?? false
        }
        return message
    }

    // MARK: Coding

    /// The binary forms of the stored lists: lengths and integers big-endian, strings as UTF-8 with a
    /// 16-bit length (32-bit for roles' list count).
    enum Coding {
        /// A count, then each of `values` as `element` writes it.
        static func list<T>(_ values: [T], _ element: (T, inout ByteBuffer) -> Void) -> ByteBuffer {
            var out = ByteBuffer()
            out.writeInteger(UInt32(values.count))
            for value in values { element(value, &out) }
            return out
        }

        /// What ``list(_:_:)`` wrote, each element read by `element`; `nil` when the bytes are missing,
        /// cut short, or hold an element `element` cannot read.
        static func readList<T>(_ data: Data?, _ element: (inout ByteBuffer) -> T?) -> [T]? {
            guard let data else { return nil }
            var buffer = ByteBuffer(bytes: data)
            guard let count = buffer.readInteger(as: UInt32.self) else { return nil }
            var values: [T] = []
            for _ in 0..<count {
                guard let value = element(&buffer) else { return nil }
                values.append(value)
            }
            return values
        }

        static func strings(_ values: [String]) -> ByteBuffer {
            list(values) { value, out in write(value, into: &out) }
        }

        static func readStrings(_ data: Data?) -> [String]? {
            readList(data) { read(&$0) }
        }

        static func subscriptions(_ values: [MQTTSubscription]) -> ByteBuffer {
            list(values) { s, out in
                write(s.topicFilter, into: &out)
                out.writeInteger(s.optionsByte(version: .v5))
                out.writeInteger(Int32(clamping: s.identifier ?? -1))
            }
        }

        static func readSubscriptions(_ data: Data?) -> [MQTTSubscription]? {
            readList(data) { buffer in
                guard let filter = read(&buffer), let options = buffer.readInteger(as: UInt8.self),
                    let identifier = buffer.readInteger(as: Int32.self), let qos = MQTTQoS(rawValue: options & 0x03)
                else { return nil }
                return MQTTSubscription(
                    topicFilter: filter, qos: qos, noLocal: options & 0x04 != 0, retainAsPublished: options & 0x08 != 0,
                    retainHandling: (options >> 4) & 0x03, identifier: identifier < 0 ? nil : Int(identifier))
            }
        }

        static func positions(_ values: [String: Int64]) -> ByteBuffer {
            list(values.sorted { $0.key < $1.key }) { entry, out in
                write(entry.key, into: &out)
                out.writeInteger(entry.value)
            }
        }

        static func readPositions(_ data: Data?) -> [String: Int64]? {
            let entries = readList(data) { buffer -> (String, Int64)? in
                guard let database = read(&buffer), let position = buffer.readInteger(as: Int64.self) else { return nil }
                return (database, position)
            }
            return entries.map { Dictionary($0, uniquingKeysWith: { _, last in last }) }
        }

        static func integers(_ values: [Int]) -> ByteBuffer {
            var out = ByteBuffer()
            for value in values { out.writeInteger(Int64(value)) }
            return out
        }

        static func readIntegers(_ data: Data) -> [Int]? {
            var buffer = ByteBuffer(bytes: data)
            var values: [Int] = []
            while buffer.readableBytes > 0 {
                guard let value = buffer.readInteger(as: Int64.self) else { return nil }
                values.append(Int(value))
            }
            return values
        }

        /// Packet ids as stored: two bytes each, in order; `nil` (NULL) for none.
        static func packetIDs(_ values: [UInt16]) -> Data? {
            guard !values.isEmpty else { return nil }
            var out = ByteBuffer()
            for value in values { out.writeInteger(value) }
            return Data(out.readableBytesView)
        }

        /// The packet ids ``packetIDs(_:)`` stored; none for NULL, or for bytes it did not write.
        static func readPacketIDs(_ data: Data?) -> [UInt16] {
            guard let data, data.count % 2 == 0 else { return [] }
            var buffer = ByteBuffer(bytes: data)
            var values: [UInt16] = []
            while let value = buffer.readInteger(as: UInt16.self) { values.append(value) }
            return values.filter { $0 != 0 }
        }

        /// A will as stored: an MQTT 5 CONNECT packet that carries it and nothing else, so that the
        /// packet codec writes and checks it.
        static func will(_ will: MQTTWill) -> Data {
            var out = ByteBuffer()
            MQTTPacket.connect(
                MQTTConnect(
                    version: .v5, clientID: "", cleanStart: true, keepAlive: 0, username: nil, password: nil, will: will,
                    properties: MQTTProperties())
            ).encode(version: .v5, into: &out)
            return Data(out.readableBytesView)
        }

        /// The will ``will(_:)`` stored; `nil` for NULL, or for bytes that are not such a packet.
        static func readWill(_ data: Data?) -> MQTTWill? {
            guard let data else { return nil }
            var buffer = ByteBuffer(bytes: data)
            var decoder = MQTTPacketDecoder(maximumPacketSize: Int.max)
            guard case .connect(let connect)? = try? decoder.decode(&buffer) else { return nil }
            return connect.will
        }

        private static func write(_ value: String, into out: inout ByteBuffer) {
            out.writeInteger(UInt16(clamping: value.utf8.count))
            out.writeString(value)
        }

        private static func read(_ buffer: inout ByteBuffer) -> String? {
            guard let length = buffer.readInteger(as: UInt16.self) else { return nil }
            return buffer.readString(length: Int(length))
        }
    }
}

extension MQTTPersistence.MessageRow {
    /// A message to store: its forwarded `properties` as a property section and its expiry as wall-clock
    /// time (`wallNow` is the wall clock's reading at `now`).
    init(
        id: Int64, topic: String, payload: ByteBuffer, qos: MQTTQoS, retain: Bool, properties: MQTTMessageProperties?,
        identifiers: [Int] = [], wallNow: Int64, now: NIODeadline
    ) {
        self.init(
            id: id, topic: topic, payload: payload, qos: qos, retain: retain, properties: properties?.storedProperties,
            expiresAt: properties?.storedExpiry(wallNow: wallNow, now: now), identifiers: identifiers)
    }
}
