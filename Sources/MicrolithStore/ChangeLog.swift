package import GRDB
import MicrolithJSON
public import MicrolithSchema
import NIOCore

extension Store {
    /// The changes of `database`'s change log with a sequence greater than `sequence`, oldest first,
    /// as ``Change`` values: what commits reported, read back. Only tables the schema declares
    /// count (entries of a table since dropped are passed over), and with `tables` only those.
    /// A change read back carries the record after the write (`nil` for a delete) but never the
    /// one before it: ``Change/previous`` is `nil`.
    public func changes(
        database: String = Schema.defaultDatabase, after sequence: Int64, limit: Int = 1000, tables: [TableLayout]? = nil
    ) async throws -> [Change] {
        let candidates = (tables ?? self.tables).filter { $0.definition.database == database }
        guard !candidates.isEmpty else { return [] }
        let byName = Dictionary(candidates.map { ($0.definition.name, $0) }, uniquingKeysWith: { first, _ in first })
        let names = byName.keys.sorted()
        return try await read(database: database) { db in
            let placeholders = Array(repeating: "?", count: names.count).joined(separator: ",")
            var arguments: [any DatabaseValueConvertible] = [sequence]
            arguments.append(contentsOf: names)
            arguments.append(limit)
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT seq, txn, tbl, id, op, version, origin, record, stamps FROM _microlith_changelog
                    WHERE seq > ? AND tbl IN (\(placeholders)) ORDER BY seq LIMIT ?
                    """,
                arguments: StatementArguments(arguments))
            return try rows.map { row in
                let sequence: Int64 = row[0]
                let name: String = row[2]
                let op: String = row[4]
                guard let operation = Change.Operation(rawValue: op) else {
                    throw StoreError(.storage, "change-log entry \(sequence) has an unknown operation '\(op)'")
                }
                guard let table = byName[name], let id = TableLayout.recordID(row[3]) else {
                    throw StoreError(.storage, "change-log entry \(sequence) names a record that cannot be read back")
                }
                let version: Int64 = row[5]
                let text: String? = row[7]
                var record: CachedRecord?
                if operation != .delete, let text {
                    guard case .object(let object) = try JSONParser.parse(text) else {
                        throw StoreError(.storage, "change-log entry \(sequence) holds a record that is not a JSON object")
                    }
                    record = CachedRecord(id: id, record: object, json: ByteBuffer(string: text), version: version)
                }
                let stamps: String? = row[8]
                return Change(
                    table: table.index, tableName: name, id: id, operation: operation, version: version, origin: row[6],
                    sequence: sequence, transaction: row[1], record: record, previous: nil, stamps: stamps.flatMap(RecordStamps.init(text:)))
            }
        }
    }

    /// The `_microlith_meta` key under which a replication publisher records, per database, the
    /// change-log sequence up to which it has published.
    public static let publishedChangeKey = "replication.published"

    /// Deletes change-log entries committed here longer ago than the configured retention (with
    /// ``StoreConfiguration/keepUnpublishedChanges``, only those already published); returns how
    /// many went. Age is counted from the local commit (the entry's transaction id, which grows
    /// with the sequence), not from the write's version: an entry applied from another node
    /// today may carry an old version, and trimming by version would cut holes in the log.
    /// Tombstones older than ``StoreConfiguration/tombstoneRetentionSeconds`` go too.
    @discardableResult
    public func trimChangeLog(database: String = Schema.defaultDatabase) async throws -> Int {
        let cutoffMilliseconds = configuration.wallClock() - Int64(configuration.changeLogRetentionSeconds) * 1000
        let cutoff = cutoffMilliseconds << 16
        let keepUnpublished = configuration.keepUnpublishedChanges
        let nodeID = self.nodeID
        // Tombstones go by when they were written here (a delete applied late carries an old stamp).
        let tombstoneCutoff = configuration.wallClock() - Int64(configuration.tombstoneRetentionSeconds) * 1000
        return try await write(database: database) { txn in
            try txn.db.execute(sql: "DELETE FROM _microlith_tombstones WHERE at < ?", arguments: [tombstoneCutoff])
            if keepUnpublished {
                // No recorded position: the subquery is NULL and nothing is trimmed.
                // Other nodes' entries are never published from here: only this node's own
                // wait for the publisher.
                try txn.db.execute(
                    sql: """
                        DELETE FROM _microlith_changelog WHERE txn < ?
                        AND (origin != ? OR seq <= (SELECT CAST(value AS INTEGER) FROM _microlith_meta WHERE key = ?))
                        """, arguments: [cutoff, nodeID, Self.publishedChangeKey])
            } else {
                try txn.db.execute(sql: "DELETE FROM _microlith_changelog WHERE txn < ?", arguments: [cutoff])
            }
            return txn.db.changesCount
        }
    }
}

/// The span of a database's change log: what can still be replayed.
public struct ChangeLogBounds: Sendable, Equatable {
    /// The oldest retained entry's sequence, `nil` when the log holds no entry.
    public var oldest: Int64?
    /// The highest sequence ever assigned (0 before the first write); trimming does not lower it.
    public var latest: Int64

    public init(oldest: Int64?, latest: Int64) {
        self.oldest = oldest
        self.latest = latest
    }

    /// Whether every entry after `position` is still in the log (a position ahead of the log,
    /// as after a restore from an older backup, cannot be replayed either).
    public func canReplay(after position: Int64) -> Bool {
        if position == latest { return true }
        if position > latest || position < 0 { return false }
        guard let oldest else { return false }
        return position >= oldest - 1
    }
}

extension Store {
    /// The retained span of `database`'s change log.
    public func changeLogBounds(database: String = Schema.defaultDatabase) async throws -> ChangeLogBounds {
        try await read(database: database) { db in try Self.changeLogBounds(db) }
    }

    /// Of `sequences`, those whose entry in `database`'s change log this node wrote itself, with
    /// the transaction that wrote each.
    public func ownEntries(database: String = Schema.defaultDatabase, sequences: [Int64]) async throws -> [Int64: Int64] {
        guard !sequences.isEmpty else { return [:] }
        let node = nodeID
        return try await read(database: database) { db in
            var found: [Int64: Int64] = [:]
            for chunk in stride(from: 0, to: sequences.count, by: 500).map({ Array(sequences[$0..<min($0 + 500, sequences.count)]) }) {
                let placeholders = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                let rows = try Row.fetchAll(
                    db, sql: "SELECT seq, txn FROM _microlith_changelog WHERE origin = ? AND seq IN (\(placeholders))",
                    arguments: StatementArguments([node] + chunk.map { $0 as any DatabaseValueConvertible }))
                for row in rows { found[row[0]] = row[1] }
            }
            return found
        }
    }

    /// The sequence of the latest entry this node wrote itself (not one applied from another
    /// node) in `database`'s change log, or 0 when none is kept.
    public func latestOwnSequence(database: String = Schema.defaultDatabase) async throws -> Int64 {
        let node = nodeID
        return try await read(database: database) { db in
            try Int64.fetchOne(db, sql: "SELECT seq FROM _microlith_changelog WHERE origin = ? ORDER BY seq DESC LIMIT 1", arguments: [node]) ?? 0
        }
    }

    /// The retained span of the change log of the database `db` belongs to.
    package static func changeLogBounds(_ db: Database) throws -> ChangeLogBounds {
        let oldest = try Int64.fetchOne(db, sql: "SELECT MIN(seq) FROM _microlith_changelog")
        let latest = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = '_microlith_changelog'") ?? 0
        return ChangeLogBounds(oldest: oldest, latest: max(latest, oldest ?? 0))
    }
}
