import GRDB
public import MicrolithJSON
public import MicrolithSchema
import NIOCore

/// A write another node made, as replication hands it to this node's store: the record after
/// the write (none for a delete), stamped with the origin's version and name.
public struct RemoteWrite: Sendable {
    public var table: TableLayout
    public var id: RecordID
    public var operation: Change.Operation
    /// The write's version on its origin (hybrid logical clock timestamp).
    public var version: Int64
    /// The node that made the write.
    public var origin: String
    /// The record after the write; `nil` for a delete.
    public var record: JSONObject?

    public init(table: TableLayout, id: RecordID, operation: Change.Operation, version: Int64, origin: String, record: JSONObject?) {
        self.table = table
        self.id = id
        self.operation = operation
        self.version = version
        self.origin = origin
        self.record = record
    }

    /// Whether a write stamped (`version`, `origin`) wins over one stamped (`otherVersion`,
    /// `otherOrigin`): the later version, and between equal versions the greater node name.
    public static func wins(_ version: Int64, _ origin: String, over otherVersion: Int64, _ otherOrigin: String) -> Bool {
        version != otherVersion ? version > otherVersion : origin > otherOrigin
    }
}

extension WriteTransaction {
    /// Applies a write made on another node, last writer wins: it takes effect only when its
    /// (version, origin) wins over the record's, or over the tombstone a delete left; otherwise
    /// nothing changes and the answer is `false`. Applying the same write twice is a no-op.
    ///
    /// The record keeps the origin's version and name, so every node that applies the same
    /// writes ends with the same records whatever the order they arrived in. The change is logged
    /// with the remote origin: commit listeners (subscriptions, caches) see it as they see local
    /// writes, and a publisher of this node's own writes passes it over. The store's clock moves
    /// past the version, so later local writes win over it.
    ///
    /// A record that does not fit this node's schema is refused with
    /// ``StoreError/Code/invalidRecord``.
    @discardableResult
    public func apply(_ remote: RemoteWrite) throws -> Bool {
        let table = remote.table
        let id = remote.id
        try Self.requireCanonical(id, table)
        let key = TableLayout.keyValue(id)
        let current = try Row.fetchOne(db.cachedStatement(sql: table.selectStampSQL), arguments: [key]).map { row in
            (record: try Store.decode(id: id, text: row[0], version: row[1]), origin: row[2] as String)
        }
        if let current {
            guard RemoteWrite.wins(remote.version, remote.origin, over: current.record.version, current.origin) else { return false }
        } else if let tombstone = try Row.fetchOne(db.cachedStatement(sql: Self.tombstoneSelect), arguments: [table.name, key]) {
            guard RemoteWrite.wins(remote.version, remote.origin, over: tombstone[0], tombstone[1]) else { return false }
        }
        store.clock.observe(remote.version)
        let change: Change
        switch remote.operation {
        case .delete:
            if let current {
                try db.cachedStatement(sql: table.deleteSQL).execute(arguments: [key])
                try table.writeListIndexes(db, id: id, record: nil, stored: current.record.record, storedIsKnown: true)
            }
            try writeTombstone(table, key: key, version: remote.version, origin: remote.origin)
            change = Change(
                table: table.index, tableName: table.name, id: id, operation: .delete, version: remote.version, origin: remote.origin,
                sequence: 0, transaction: self.id, record: nil, previous: current?.record)
            try log(change, text: nil)
        case .put, .patch:
            guard let body = remote.record else {
                throw StoreError(
                    .invalidRecord, "a replicated \(remote.operation.rawValue) of \(table.name)/\(id) from \(remote.origin) carries no record")
            }
            let pk = table.definition.primaryKeyAttribute
            if let given = body[pk.name], RecordID(json: given, type: pk.type) != id {
                throw StoreError(
                    .invalidID, "a replicated record of \(table.name) names the key \(given) but is filed under '\(id)'", attribute: pk.name)
            }
            let normalised: JSONObject
            do {
                normalised = try RecordValidator.validate(body, table: table.definition, schema: store.schema)
            } catch {
                throw StoreError(
                    .invalidRecord,
                    "a record of \(table.name)/\(id) from node \(remote.origin) does not fit this node's schema: \(error.description)",
                    attribute: error.attribute, underlying: error)
            }
            try Self.requireIndexable(normalised, table)
            let bytes = JSONWriter.encode(.object(normalised))
            let text = String(decoding: bytes, as: UTF8.self)
            var values: [DatabaseValue] = [key, text.databaseValue, remote.version.databaseValue, remote.origin.databaseValue]
            values.reserveCapacity(4 + table.scalarColumns.count)
            for (attribute, _) in table.scalarColumns { values.append(TableLayout.indexValue(normalised[attribute.name])) }
            let upsert = try db.cachedStatement(sql: table.upsertSQL)
            upsert.setUncheckedArguments(StatementArguments(databaseValues: values))
            try upsert.execute()
            try table.writeListIndexes(db, id: id, record: normalised, stored: current?.record.record, storedIsKnown: true)
            let record = CachedRecord(id: id, record: normalised, json: ByteBuffer(bytes: bytes), version: remote.version)
            change = Change(
                table: table.index, tableName: table.name, id: id, operation: remote.operation, version: remote.version,
                origin: remote.origin, sequence: 0, transaction: self.id, record: record, previous: current?.record)
            try log(change, text: text)
        }
        return true
    }

    /// Records that every change of `origin`'s log up to `sequence` that this node will take has
    /// been applied (a position never goes back), in this transaction.
    public func recordApplied(origin: String, sequence: Int64) throws {
        try db.execute(
            sql: """
                INSERT INTO _microlith_applied(origin, seq) VALUES (?, ?)
                ON CONFLICT(origin) DO UPDATE SET seq = max(seq, excluded.seq)
                """, arguments: [origin, sequence])
    }

    private static let tombstoneSelect = "SELECT version, origin FROM _microlith_tombstones WHERE tbl = ? AND id = ?"
}

extension Store {
    /// Per origin node, the highest sequence of its change log applied to `database` here.
    public func appliedPositions(database: String = Schema.defaultDatabase) async throws -> [String: Int64] {
        try await read(database: database) { db in
            var positions: [String: Int64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT origin, seq FROM _microlith_applied") { positions[row[0]] = row[1] }
            return positions
        }
    }

    /// How many tombstones (deleted records' table, key and version) `database` holds.
    public func tombstoneCount(database: String = Schema.defaultDatabase) async throws -> Int {
        try await read(database: database) { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM _microlith_tombstones") ?? 0 }
    }
}
