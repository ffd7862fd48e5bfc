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
    /// When each attribute of ``record`` was written, where that is not simply ``version`` on
    /// ``origin`` (``Change/stamps``).
    public var stamps: RecordStamps?

    public init(
        table: TableLayout, id: RecordID, operation: Change.Operation, version: Int64, origin: String, record: JSONObject?,
        stamps: RecordStamps? = nil
    ) {
        self.table = table
        self.id = id
        self.operation = operation
        self.version = version
        self.origin = origin
        self.record = record
        self.stamps = stamps
    }

}

extension WriteTransaction {
    /// Applies a write made on another node. Writes merge attribute by attribute, the later
    /// stamp (version, then node name) winning each (``RecordStamps``): a put stamps every
    /// attribute, a PATCH the attributes it changed, so concurrent PATCHes of different
    /// attributes on different nodes both survive. A delete counts as an empty copy stamped at
    /// the delete: attributes written at or before it go, and one written after it (a PATCH made
    /// elsewhere meanwhile) stays; a record left without an attribute its schema requires counts
    /// as deleted. A delete leaves a tombstone that older writes cannot cross. The answer is
    /// `false` when nothing changed (the write was already here, or everything it wrote is older
    /// than what is here): applying the same write twice is a no-op.
    ///
    /// The record keeps the stamps, so every node that applies the same writes ends with the
    /// same records whatever the order they arrived in. Its version is the latest stamp when that
    /// is later than the version it had; otherwise (a merge changed the record under an older
    /// stamp) it gets a new version of this node's clock, so entity tags and caches that go by
    /// versions see the change. The change is logged with the remote origin: commit listeners
    /// (subscriptions, caches) see it as they see local writes, and a publisher of this node's
    /// own writes passes it over. The store's clock moves past the version, so later local
    /// writes win over it.
    ///
    /// A record that does not fit this node's schema is refused with
    /// ``StoreError/Code/invalidRecord``.
    @discardableResult
    public func apply(_ remote: RemoteWrite) throws -> Bool {
        let table = remote.table
        let id = remote.id
        try Self.requireCanonical(id, table)
        let pk = table.definition.primaryKeyAttribute
        guard RecordID(json: id.jsonValue, type: pk.type) == id else {
            throw StoreError(.invalidID, "a replicated key of \(table.name), \(id), is not a valid \(pk.type) key here", attribute: pk.name)
        }
        let key = TableLayout.keyValue(id)
        let remoteStamp = RecordStamps.Stamp(version: remote.version, origin: remote.origin)
        // A delete is a copy with nothing in it, stamped at the delete: every attribute written
        // at or before it goes; one written after it (elsewhere, concurrently) stays.
        let incoming: (record: JSONObject, stamps: RecordStamps)
        switch remote.operation {
        case .delete:
            incoming = (JSONObject(), RecordStamps(base: remoteStamp))
        case .put, .patch:
            guard let body = remote.record else {
                throw StoreError(
                    .invalidRecord, "a replicated \(remote.operation.rawValue) of \(table.name)/\(id) from \(remote.origin) carries no record")
            }
            if let given = body[pk.name], RecordID(json: given, type: pk.type) != id {
                throw StoreError(
                    .invalidID, "a replicated record of \(table.name) names the key \(given) but is filed under '\(id)'", attribute: pk.name)
            }
            incoming = (body, remote.stamps ?? RecordStamps(base: remoteStamp))
        }
        let current = try Row.fetchOne(db.cachedStatement(sql: table.selectStampSQL), arguments: [key]).map { row in
            let record = try Store.decode(id: id, text: row[0], version: row[1])
            let origin: String = row[2]
            let text: String? = row[3]
            let stamps = text.flatMap(RecordStamps.init(text:)) ?? RecordStamps(base: .init(version: record.version, origin: origin))
            return (record: record, stamps: stamps)
        }
        // What this node holds: the record, or the tombstone a delete left (an empty copy).
        var held: (record: JSONObject, stamps: RecordStamps)?
        var tombstone: RecordStamps.Stamp?
        if let current {
            held = (current.record.record, current.stamps)
        } else if let row = try Row.fetchOne(db.cachedStatement(sql: Self.tombstoneSelect), arguments: [table.name, key]) {
            tombstone = RecordStamps.Stamp(version: row[0], origin: row[1])
            held = (JSONObject(), RecordStamps(base: tombstone!))
        }
        var merged = incoming
        if let held {
            merged = RecordStamps.merge(held, incoming)
            guard merged.stamps != held.stamps else { return false }
        }
        store.clock.observe(remote.version)
        // The record that results, if any: what is left besides its key, and fits the schema. A
        // merge with a delete can leave part of a record; one that does not fit (a required
        // attribute went with the delete) counts as deleted, the same on every node.
        var survivor: JSONObject?
        var rest = merged.record
        rest[pk.name] = nil
        if !rest.isEmpty {
            var record = JSONObject()
            record[pk.name] = id.jsonValue
            for (k, v) in rest.members { record[k] = v }
            do {
                survivor = try RecordValidator.validate(record, table: table.definition, schema: store.schema)
            } catch {
                let involvesDelete = remote.operation == .delete || tombstone != nil
                guard involvesDelete else {
                    throw StoreError(
                        .invalidRecord,
                        "a record of \(table.name)/\(id) from node \(remote.origin) does not fit this node's schema: \(error.description)",
                        attribute: error.attribute, underlying: error)
                }
            }
        }
        guard let normalised = survivor else {
            // Deleted (or left deleted): the tombstone keeps the latest delete's stamp.
            let stamp = max(merged.stamps.base, tombstone ?? merged.stamps.base)
            if let current {
                try db.cachedStatement(sql: table.deleteSQL).execute(arguments: [key])
                try table.writeListIndexes(db, id: id, record: nil, stored: current.record.record, storedIsKnown: true)
            } else if tombstone == stamp {
                return false
            }
            try writeTombstone(table, key: key, version: stamp.version, origin: stamp.origin)
            try log(
                Change(
                    table: table.index, tableName: table.name, id: id, operation: .delete, version: stamp.version, origin: remote.origin,
                    sequence: 0, transaction: self.id, record: nil, previous: current?.record),
                text: nil)
            return true
        }
        try Self.requireIndexable(normalised, table)
        let stamps = merged.stamps
        // The version follows the latest stamp when that moves the record's version on; otherwise
        // (the record changed under an older stamp, or its version was already a local one) a new
        // one of this node's clock, so entity tags and caches that go by versions see the change.
        let latest = stamps.latest
        var version = latest.version
        var origin = latest.origin
        if let current, latest.version <= current.record.version {
            version = store.clock.now()
            origin = remote.origin
        }
        let plain = stamps == RecordStamps(base: .init(version: version, origin: origin))
        let bytes = JSONWriter.encode(.object(normalised))
        let text = String(decoding: bytes, as: UTF8.self)
        var values: [DatabaseValue] = [
            key, text.databaseValue, version.databaseValue, origin.databaseValue, plain ? .null : stamps.text.databaseValue,
        ]
        values.reserveCapacity(5 + table.scalarColumns.count)
        for (attribute, _) in table.scalarColumns { values.append(TableLayout.indexValue(normalised[attribute.name])) }
        let upsert = try db.cachedStatement(sql: table.upsertSQL)
        upsert.setUncheckedArguments(StatementArguments(databaseValues: values))
        try upsert.execute()
        try table.writeListIndexes(db, id: id, record: normalised, stored: current?.record.record, storedIsKnown: true)
        let cached = CachedRecord(id: id, record: normalised, json: ByteBuffer(bytes: bytes), version: version)
        let operation: Change.Operation = current == nil ? .put : remote.operation == .delete ? .patch : remote.operation
        try log(
            Change(
                table: table.index, tableName: table.name, id: id, operation: operation, version: version, origin: remote.origin, sequence: 0,
                transaction: self.id, record: cached, previous: current?.record, stamps: plain ? nil : stamps),
            text: text)
        return true
    }

    /// Records, in this transaction, that the change `sequence` of `origin`'s log, versioned
    /// `version`, is done here (applied, or superseded by what this node holds), and when. Per
    /// origin the highest such sequence is kept (a position never goes back); it does not say
    /// that every lower one is done: a change set aside for later (parked) can lie below it.
    public func recordApplied(origin: String, sequence: Int64, version: Int64 = 0) throws {
        try recordApplied(origin: origin, entries: [(sequence, nil)], version: version)
    }

    /// Records, in this transaction, the changes of `origin` done here, in the order they came
    /// (each with the sequence of the origin's entry before it, when the origin said), and
    /// returns the gaps found: the spans `(after, upto]` of the origin's log whose entries never
    /// arrived, also kept in `_microlith_gaps` until they are filled (``gaps(database:)``).
    ///
    /// Per origin the store keeps how far the entries arrived without a hole; an entry whose
    /// predecessor is past that point opens a gap from there to its predecessor.
    @discardableResult
    public func recordApplied(
        origin: String, entries: [(sequence: Int64, previous: Int64?)], version: Int64
    ) throws -> [(after: Int64, upto: Int64)] {
        guard let highest = entries.map(\.sequence).max() else { return [] }
        let known = try Row.fetchOne(db, sql: "SELECT through FROM _microlith_applied WHERE origin = ?", arguments: [origin])
        var through: Int64 = known?[0] ?? 0
        var gaps: [(after: Int64, upto: Int64)] = []
        for (sequence, previous) in entries where sequence > through {
            if let previous, previous > through { gaps.append((through, previous)) }
            through = sequence
        }
        let now = wallClock()
        try db.execute(
            sql: """
                INSERT INTO _microlith_applied(origin, seq, version, applied_at, through) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(origin) DO UPDATE SET seq = max(seq, excluded.seq), version = max(version, excluded.version),
                applied_at = excluded.applied_at, through = max(through, excluded.through)
                """, arguments: [origin, highest, version, now, through])
        for gap in gaps {
            try db.execute(
                sql: "INSERT OR REPLACE INTO _microlith_gaps(origin, after, upto, found_at) VALUES (?, ?, ?, ?)",
                arguments: [origin, gap.after, gap.upto, now])
        }
        return gaps
    }

    private static let tombstoneSelect = "SELECT version, origin FROM _microlith_tombstones WHERE tbl = ? AND id = ?"
}

extension Store {
    /// Per origin node, what of its change log `database` has applied: the highest sequence, the
    /// latest version among what was applied, and when (milliseconds since 1970) the last batch was.
    public func appliedProgress(
        database: String = Schema.defaultDatabase
    ) async throws -> [String: (sequence: Int64, version: Int64, appliedAt: Int64)] {
        try await read(database: database) { db in
            var progress: [String: (sequence: Int64, version: Int64, appliedAt: Int64)] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT origin, seq, version, applied_at FROM _microlith_applied") {
                progress[row[0]] = (row[1], row[2], row[3])
            }
            return progress
        }
    }

    /// The gaps `database` knows of: spans `(after, upto]` of an origin's log whose entries never
    /// arrived, oldest first, with why they could not be filled when a repair found out.
    public func gaps(database: String = Schema.defaultDatabase) async throws -> [ReplicationGap] {
        try await read(database: database) { db in
            try Row.fetchAll(db, sql: "SELECT origin, after, upto, found_at, problem FROM _microlith_gaps ORDER BY found_at, origin, after").map {
                ReplicationGap(origin: $0[0], after: $0[1], upto: $0[2], foundAt: $0[3], problem: $0[4])
            }
        }
    }

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

/// A span of an origin's change log whose entries never arrived here: sequences after ``after``
/// up to ``upto``.
public struct ReplicationGap: Sendable, Equatable {
    public var origin: String
    public var after: Int64
    public var upto: Int64
    /// When it was found (milliseconds since 1970).
    public var foundAt: Int64
    /// Why it could not be filled, once a repair found out (the origin's log no longer holds it).
    public var problem: String?

    public init(origin: String, after: Int64, upto: Int64, foundAt: Int64, problem: String?) {
        self.origin = origin
        self.after = after
        self.upto = upto
        self.foundAt = foundAt
        self.problem = problem
    }
}
