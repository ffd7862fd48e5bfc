import Foundation
package import GRDB
public import MicrolithJSON
import MicrolithSchema
import NIOCore

/// Conditions a write must meet, from `If-Match` / `If-None-Match`.
public struct WritePrecondition: Sendable, Equatable {
    /// The write happens only if the record exists with one of these entity tags (`*`: exists at all).
    public var ifMatch: [String]?
    /// The write happens only if the record does not exist with one of these tags (`*`: does not exist at all).
    public var ifNoneMatch: [String]?

    public init(ifMatch: [String]? = nil, ifNoneMatch: [String]? = nil) {
        self.ifMatch = ifMatch
        self.ifNoneMatch = ifNoneMatch
    }

    /// No condition.
    public static let none = WritePrecondition()

    package func check(_ current: CachedRecord?, table: String, id: RecordID) throws(StoreError) {
        if let tags = ifMatch {
            let ok = current.map { c in tags.contains("*") || tags.contains(c.etag) } ?? false
            if !ok {
                let state = current.map { "has entity tag \($0.etag)" } ?? "does not exist"
                throw StoreError(.versionMismatch, "If-Match failed: \(table)/\(id) \(state)")
            }
        }
        if let tags = ifNoneMatch, let c = current, tags.contains("*") || tags.contains(c.etag) {
            throw StoreError(.versionMismatch, "If-None-Match failed: \(table)/\(id) exists with entity tag \(c.etag)")
        }
    }
}

/// What one committed write did, as the change log records it: what commit listeners are told,
/// and what ``Store/changes(database:after:limit:tables:)`` reads back.
public struct Change: Sendable {
    /// The kind of write; the raw value is what the change log's `op` column holds.
    public enum Operation: String, Sendable {
        case put, patch, delete
    }

    /// The table's position in ``Store/tables``.
    public var table: Int
    public var tableName: String
    public var id: RecordID
    public var operation: Operation
    /// The write's version (hybrid logical clock timestamp).
    public var version: Int64
    /// The node where the write happened.
    public var origin: String
    /// The change-log sequence number.
    public var sequence: Int64
    /// The transaction that made the write.
    public var transaction: Int64
    /// The record after the write; `nil` for a delete.
    public var record: CachedRecord?
    /// The record before the write, as this transaction found it; `nil` when there was none, and
    /// in changes read back from the change log (it does not keep it). Caches of derived answers
    /// test it against their queries (a record leaving a result changes the result as much as one
    /// entering it).
    public var previous: CachedRecord?
    /// When each attribute of ``record`` was written, where that is not simply ``version`` on
    /// ``origin`` (after a PATCH, or a merge of writes from several nodes); `nil` otherwise.
    public var stamps: RecordStamps? = nil
}

/// A write transaction on one database: reads and writes records atomically.
///
/// Obtained from ``Store/write(database:_:)``; every write here commits together with the
/// others of the same call, or not at all when the call throws.
public final class WriteTransaction {
    /// The SQLite connection, for the query engine.
    package let db: Database
    let store: Store
    /// This transaction's id in the change log.
    public let id: Int64
    /// The changes made so far.
    public private(set) var changes: [Change] = []
    /// The channels whose listeners are told once this transaction commits (``notify(_:)``).
    package var notifications: Set<String> = []

    /// The store's wall clock, in milliseconds since 1970.
    package func wallClock() -> Int64 { store.configuration.wallClock() }

    init(db: Database, store: Store) {
        self.db = db
        self.store = store
        self.id = store.clock.now()
    }

    /// The current record, read inside this transaction (it sees this transaction's writes).
    /// A record past its table's `@table(expiration:)` counts as absent.
    public func get(_ table: TableLayout, _ id: RecordID) throws -> CachedRecord? {
        live(table, try stored(table, id))
    }

    /// The record stored under `id`, expired or not.
    func stored(_ table: TableLayout, _ id: RecordID) throws -> CachedRecord? {
        // A key outside the canonical form names no record (SQLite would cut it at a NUL).
        guard id.isCanonical else { return nil }
        guard let row = try Row.fetchOne(db.cachedStatement(sql: table.selectSQL), arguments: [TableLayout.keyValue(id)]) else {
            return nil
        }
        return try Store.decode(id: id, text: row[0], version: row[1])
    }

    /// `record` unless it is past its table's `@table(expiration:)`.
    func live(_ table: TableLayout, _ record: CachedRecord?) -> CachedRecord? {
        guard let record else { return nil }
        if let expiration = table.definition.expiration, store.isExpired(record, expiration: expiration) { return nil }
        return record
    }

    /// Replaces (or creates) the record `id` with `body`. The body's primary key, when present,
    /// must equal `id`. `@createdTime` survives replacement; `@updatedTime` is set.
    @discardableResult
    public func put(_ table: TableLayout, id: RecordID, body: JSONObject, precondition: WritePrecondition = .none) throws -> CachedRecord {
        try replace(table, id: id, body: body, precondition: precondition).record
    }

    /// ``put(_:id:body:precondition:)``, also returning the record it replaced (`nil` when it
    /// created one), read once.
    package func replace(
        _ table: TableLayout, id: RecordID, body: JSONObject, precondition: WritePrecondition = .none
    ) throws -> (record: CachedRecord, previous: CachedRecord?) {
        let stored = try stored(table, id)
        let current = live(table, stored)
        try precondition.check(current, table: table.name, id: id)
        let record = try write(table, id: id, body: body, current: current, stored: stored, operation: .put)
        return (record, current)
    }

    /// Merges `patch` into the record `id` (RFC 7396: `null` removes an attribute, objects merge
    /// recursively). Returns `nil` when there is no such record.
    public func patch(_ table: TableLayout, id: RecordID, patch: JSONObject, precondition: WritePrecondition = .none) throws -> CachedRecord? {
        try Self.requireCanonical(id, table)
        let stored = try stored(table, id)
        let current = live(table, stored)
        try precondition.check(current, table: table.name, id: id)
        guard let current else { return nil }
        let merged = Self.merge(current.record, patch)
        return try write(
            table, id: id, body: merged, current: current, stored: stored, operation: .patch, stamps: try stamps(table, id, of: current),
            named: patch.keys)
    }

    /// Creates a record with a new primary key (a UUID for string keys, the next integer for
    /// integer keys) unless the body names one that is free.
    public func insert(_ table: TableLayout, body: JSONObject) throws -> CachedRecord {
        let pk = table.definition.primaryKeyAttribute
        let id: RecordID
        if let given = body[pk.name], !given.isNull {
            guard let parsed = RecordID(json: given, type: pk.type) else {
                throw StoreError(
                    .invalidID, "attribute '\(pk.name)' must be a valid \(pk.type) primary key (\(RecordID.keyKind(pk.type))), got \(given)",
                    attribute: pk.name)
            }
            id = parsed
        } else {
            switch pk.type {
            case .int, .long:
                let next = try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0) + 1 FROM \"\(table.sqlName)\"") ?? 1
                id = .int(next)
            default:
                id = .string(RecordKey.uuidText())
            }
        }
        let stored = try stored(table, id)
        if live(table, stored) != nil {
            throw StoreError(
                .alreadyExists, "\(table.name)/\(id) already exists; PUT /\(table.definition.exportName ?? table.name)/\(id) replaces it",
                attribute: pk.name)
        }
        return try write(table, id: id, body: body, current: nil, stored: stored, operation: .put)
    }

    /// Deletes the record `id` if its version is still below `cutoff` (it has not been written
    /// since it expired); returns whether it was deleted.
    ///
    /// The delete carries the expired record's own stamp, not a new version: it removes exactly
    /// that version, and a later write of the record (made on another node before this one heard
    /// of it) wins over it wherever the two meet. Every node expires the same records by the same
    /// replicated versions, so the delete needs no new stamp of its own.
    func deleteIfExpired(_ table: TableLayout, id: RecordID, cutoff: Int64) throws -> Bool {
        guard let current = try stored(table, id), current.version < cutoff else { return false }
        try remove(table, id: id, current: current, stamp: try stamps(table, id, of: current).latest)
        return true
    }

    /// Deletes the record `id`; returns whether it existed.
    @discardableResult
    public func delete(_ table: TableLayout, id: RecordID, precondition: WritePrecondition = .none) throws -> Bool {
        try Self.requireCanonical(id, table)
        let stored = try stored(table, id)
        let current = live(table, stored)
        try precondition.check(current, table: table.name, id: id)
        guard let current else { return false }
        try remove(table, id: id, current: current)
        return true
    }

    /// Deletes `current`, stamped `stamp` (a new version of this node when `nil`).
    private func remove(_ table: TableLayout, id: RecordID, current: CachedRecord, stamp: RecordStamps.Stamp? = nil) throws {
        try Self.requireCanonical(id, table)
        let key = TableLayout.keyValue(id)
        try db.cachedStatement(sql: table.deleteSQL).execute(arguments: [key])
        try table.writeListIndexes(db, id: id, record: nil, stored: current.record, storedIsKnown: true)
        let stamp = stamp ?? .init(version: nextVersion(after: current), origin: store.nodeID)
        if store.configuration.replicating { try writeTombstone(table, key: key, version: stamp.version, origin: stamp.origin) }
        try log(
            Change(
                table: table.index, tableName: table.name, id: id, operation: .delete, version: stamp.version,
                origin: stamp.origin, sequence: 0, transaction: self.id, record: nil, previous: current),
            text: nil)
    }

    /// A new version of this node's clock, later than `stored`'s (the clock is past every
    /// version the store holds, but a version written by another node is checked once more).
    func nextVersion(after stored: CachedRecord?) -> Int64 {
        let version = store.clock.now()
        guard let stored, stored.version >= version else { return version }
        store.clock.observe(stored.version)
        return store.clock.now()
    }

    /// Remembers that the record `key` of `table` was deleted at `version` on `origin`, so a
    /// replicated write older than the delete does not bring it back.
    func writeTombstone(_ table: TableLayout, key: DatabaseValue, version: Int64, origin: String) throws {
        let statement = try db.cachedStatement(sql: Self.tombstoneInsert)
        statement.setUncheckedArguments([table.name, key, version, origin, wallClock()])
        try statement.execute()
    }

    private static let tombstoneInsert = "INSERT OR REPLACE INTO _microlith_tombstones(tbl, id, version, origin, at) VALUES (?, ?, ?, ?, ?)"

    /// The attribute stamps of the stored record `current` (its base stamp alone when the row
    /// keeps none).
    func stamps(_ table: TableLayout, _ id: RecordID, of current: CachedRecord) throws -> RecordStamps {
        let row = try Row.fetchOne(db.cachedStatement(sql: table.selectOriginSQL), arguments: [TableLayout.keyValue(id)])
        let origin: String = row?[0] ?? store.nodeID
        if let text: String = row?[1], let stamps = RecordStamps(text: text) { return stamps }
        return RecordStamps(base: .init(version: current.version, origin: origin))
    }

    /// - Parameters:
    ///   - stamps: for a patch (or an addition), the stamps of the record it changes.
    ///   - counter: for an addition, the attribute and its counter after it.
    ///   - named: for a patch, the attributes it named.
    func write(
        _ table: TableLayout, id: RecordID, body: JSONObject, current: CachedRecord?, stored: CachedRecord?, operation: Change.Operation,
        stamps: RecordStamps? = nil, counter: (name: String, counter: RecordStamps.Counter)? = nil, named: [String] = []
    ) throws
        -> CachedRecord
    {
        try Self.requireCanonical(id, table)
        let definition = table.definition
        let pk = definition.primaryKeyAttribute
        if let given = body[pk.name], !given.isNull {
            guard let parsed = RecordID(json: given, type: pk.type) else {
                throw StoreError(
                    .invalidID, "attribute '\(pk.name)' must be a valid \(pk.type) primary key (\(RecordID.keyKind(pk.type))), got \(given)",
                    attribute: pk.name)
            }
            guard parsed == id else {
                throw StoreError(
                    .invalidID, "attribute '\(pk.name)' in the body (\(given)) does not match the record's id '\(id)'", attribute: pk.name)
            }
        }
        var record = JSONObject()
        record[pk.name] = id.jsonValue
        for (k, v) in body.members where k != pk.name { record[k] = v }
        let now = store.configuration.wallClock()
        for a in definition.attributes {
            if a.isCreatedTime {
                record[a.name] = current?.record[a.name] ?? Self.timestamp(now, type: a.type)
            } else if a.isUpdatedTime {
                record[a.name] = Self.timestamp(now, type: a.type)
            }
        }
        let normalised: JSONObject
        do {
            normalised = try RecordValidator.validate(record, table: definition, schema: store.schema)
        } catch {
            throw StoreError(.invalidRecord, error.description, attribute: error.attribute, underlying: error)
        }
        try Self.requireIndexable(normalised, table)
        let version = nextVersion(after: stored)
        let bytes = JSONWriter.encode(.object(normalised))
        let text = String(decoding: bytes, as: UTF8.self)
        let key = TableLayout.keyValue(id)
        // A patch stamps the attributes it changed; the others keep the stamps they had. A put
        // stamps the whole record with its version (no column value).
        var newStamps: RecordStamps?
        if let stamps, let current {
            // What the PATCH named (a value written again is written: it starts a counter anew),
            // and whatever else changed (`@updatedTime`).
            var changed = named
            for (name, value) in normalised.members where current.record[name] != value && name != counter?.name { changed.append(name) }
            for (name, _) in current.record.members where normalised[name] == nil { changed.append(name) }
            newStamps = stamps.patched(changed, at: .init(version: version, origin: store.nodeID))
            if let counter { newStamps?.counters[counter.name] = counter.counter }
        }
        var values: [DatabaseValue] = [
            key, text.databaseValue, version.databaseValue, store.nodeID.databaseValue, newStamps?.text.databaseValue ?? .null,
        ]
        values.reserveCapacity(5 + table.scalarColumns.count)
        for (attribute, _) in table.scalarColumns {
            values.append(TableLayout.indexValue(normalised[attribute.name]))
        }
        let upsert = try db.cachedStatement(sql: table.upsertSQL)
        upsert.setUncheckedArguments(StatementArguments(databaseValues: values))
        try upsert.execute()
        try table.writeListIndexes(db, id: id, record: normalised, stored: stored?.record, storedIsKnown: true)
        let cached = CachedRecord(id: id, record: normalised, json: ByteBuffer(bytes: bytes), version: version)
        try log(
            Change(
                table: table.index, tableName: table.name, id: id, operation: operation, version: version,
                origin: store.nodeID, sequence: 0, transaction: self.id, record: cached, previous: current, stamps: newStamps),
            text: text)
        return cached
    }

    /// Refuses a key outside ``RecordID/keyTextProblem(_:)``'s rule, whichever door it came through.
    static func requireCanonical(_ id: RecordID, _ table: TableLayout) throws(StoreError) {
        guard case .string(let s) = id, let problem = RecordID.keyTextProblem(s) else { return }
        throw StoreError(.invalidID, "invalid key for \(table.name): \(problem)", attribute: table.definition.primaryKeyAttribute.name)
    }

    /// Refuses a NUL in a string an index would hold: SQLite binds text up to its first NUL, so
    /// the index would disagree with the record (and a query for `a` would find `a\u{0}b`).
    static func requireIndexable(_ record: JSONObject, _ table: TableLayout) throws(StoreError) {
        func check(_ value: JSONValue?, _ name: String) throws(StoreError) {
            guard case .string(let s) = value, s.utf8.contains(0) else { return }
            throw StoreError(.invalidRecord, "attribute '\(name)' is indexed and cannot hold a NUL character (U+0000)", attribute: name)
        }
        for (attribute, _) in table.scalarColumns { try check(record[attribute.name], attribute.name) }
        for (attribute, _) in table.listTables {
            guard case .array(let elements) = record[attribute.name] else { continue }
            for e in elements { try check(e, attribute.name) }
        }
    }

    /// Appends `change` to the change log; `text` is the record's JSON text (`nil` for a delete).
    func log(_ change: Change, text: String?) throws {
        var change = change
        let statement = try db.cachedStatement(sql: Self.changeLogInsert)
        statement.setUncheckedArguments([
            id, change.tableName, TableLayout.keyValue(change.id), change.operation.rawValue, change.version, change.origin, text,
            change.stamps?.text,
        ])
        try statement.execute()
        change.sequence = db.lastInsertedRowID
        changes.append(change)
    }

    private static let changeLogInsert = """
        INSERT INTO _microlith_changelog(txn, tbl, id, op, version, origin, record, stamps)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        """

    static func timestamp(_ milliseconds: Int64, type: AttributeType) -> JSONValue {
        switch type {
        case .date: return .string(DateValue.format(milliseconds))
        case .int: return .int(milliseconds / 1000)
        case .float: return .double(Double(milliseconds))
        default: return .int(milliseconds)
        }
    }

    /// RFC 7396 JSON merge patch of objects.
    package static func merge(_ target: JSONObject, _ patch: JSONObject) -> JSONObject {
        var result = target
        for (k, v) in patch.members {
            switch v {
            case .null: result[k] = nil
            case .object(let p):
                if case .object(let t) = result[k] {
                    result[k] = .object(merge(t, p))
                } else {
                    result[k] = .object(merge(JSONObject(), p))
                }
            default: result[k] = v
            }
        }
        return result
    }
}
