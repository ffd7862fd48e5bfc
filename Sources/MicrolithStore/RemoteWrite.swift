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
    /// attributes on different nodes both survive. A delete wins over a record whose latest stamp
    /// is older, and leaves a tombstone that older writes cannot cross. The answer is `false` when
    /// nothing changed (the write was already here, or everything it wrote is older than what is
    /// here): applying the same write twice is a no-op.
    ///
    /// The record keeps the stamps, so every node that applies the same writes ends with the
    /// same records whatever the order they arrived in. Its version is the latest stamp, except
    /// when a merge changed the record without a later stamp (an older PATCH of another
    /// attribute): then it gets a new version of this node's clock, so entity tags and caches
    /// that go by versions see the change. The change is logged with the remote origin: commit
    /// listeners (subscriptions, caches) see it as they see local writes, and a publisher of this
    /// node's own writes passes it over. The store's clock moves past the version, so later
    /// local writes win over it.
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
        let remoteStamps = remote.stamps ?? RecordStamps(base: .init(version: remote.version, origin: remote.origin))
        let remoteLatest = max(remoteStamps.latest, .init(version: remote.version, origin: remote.origin))
        let current = try Row.fetchOne(db.cachedStatement(sql: table.selectStampSQL), arguments: [key]).map { row in
            let record = try Store.decode(id: id, text: row[0], version: row[1])
            let origin: String = row[2]
            let text: String? = row[3]
            let stamps = text.flatMap(RecordStamps.init(text:)) ?? RecordStamps(base: .init(version: record.version, origin: origin))
            return (record: record, stamps: stamps)
        }
        if let current {
            if remote.operation == .delete && !(remoteLatest > current.stamps.latest) { return false }
        } else if let tombstone = try Row.fetchOne(db.cachedStatement(sql: Self.tombstoneSelect), arguments: [table.name, key]) {
            guard remoteLatest > RecordStamps.Stamp(version: tombstone[0], origin: tombstone[1]) else { return false }
        }
        store.clock.observe(remote.version)
        switch remote.operation {
        case .delete:
            if let current {
                try db.cachedStatement(sql: table.deleteSQL).execute(arguments: [key])
                try table.writeListIndexes(db, id: id, record: nil, stored: current.record.record, storedIsKnown: true)
            }
            try writeTombstone(table, key: key, version: remote.version, origin: remote.origin)
            try log(
                Change(
                    table: table.index, tableName: table.name, id: id, operation: .delete, version: remote.version, origin: remote.origin,
                    sequence: 0, transaction: self.id, record: nil, previous: current?.record),
                text: nil)
        case .put, .patch:
            guard let body = remote.record else {
                throw StoreError(
                    .invalidRecord, "a replicated \(remote.operation.rawValue) of \(table.name)/\(id) from \(remote.origin) carries no record")
            }
            if let given = body[pk.name], RecordID(json: given, type: pk.type) != id {
                throw StoreError(
                    .invalidID, "a replicated record of \(table.name) names the key \(given) but is filed under '\(id)'", attribute: pk.name)
            }
            var record = body
            var stamps = remoteStamps
            var version = remote.version
            if let current {
                (record, stamps) = RecordStamps.merge((current.record.record, current.stamps), (body, remoteStamps))
                guard stamps != current.stamps else { return false }
                // The record changed; its version must too, even when no stamp is later.
                if !(stamps.latest > current.stamps.latest) { version = store.clock.now() }
            }
            let normalised: JSONObject
            do {
                normalised = try RecordValidator.validate(record, table: table.definition, schema: store.schema)
            } catch {
                throw StoreError(
                    .invalidRecord,
                    "a record of \(table.name)/\(id) from node \(remote.origin) does not fit this node's schema: \(error.description)",
                    attribute: error.attribute, underlying: error)
            }
            try Self.requireIndexable(normalised, table)
            let plain = stamps == RecordStamps(base: .init(version: version, origin: remote.origin))
            let bytes = JSONWriter.encode(.object(normalised))
            let text = String(decoding: bytes, as: UTF8.self)
            var values: [DatabaseValue] = [
                key, text.databaseValue, version.databaseValue, remote.origin.databaseValue, plain ? .null : stamps.text.databaseValue,
            ]
            values.reserveCapacity(5 + table.scalarColumns.count)
            for (attribute, _) in table.scalarColumns { values.append(TableLayout.indexValue(normalised[attribute.name])) }
            let upsert = try db.cachedStatement(sql: table.upsertSQL)
            upsert.setUncheckedArguments(StatementArguments(databaseValues: values))
            try upsert.execute()
            try table.writeListIndexes(db, id: id, record: normalised, stored: current?.record.record, storedIsKnown: true)
            let cached = CachedRecord(id: id, record: normalised, json: ByteBuffer(bytes: bytes), version: version)
            try log(
                Change(
                    table: table.index, tableName: table.name, id: id, operation: remote.operation, version: version,
                    origin: remote.origin, sequence: 0, transaction: self.id, record: cached, previous: current?.record,
                    stamps: plain ? nil : stamps),
                text: text)
        }
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
