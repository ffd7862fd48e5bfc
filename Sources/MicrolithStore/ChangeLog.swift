package import GRDB
public import MicrolithJSON
public import MicrolithSchema

/// One entry of a database's change log, as read back: a ``Change`` as the log keeps it (the
/// table by name, the record after the write as JSON, no record before it).
public struct ChangeLogEntry: Sendable, Equatable {
    public var sequence: Int64
    public var transaction: Int64
    public var table: String
    public var id: RecordID
    /// The kind of write; the log's `op` column holds its raw value.
    public var operation: Change.Operation
    public var version: Int64
    public var origin: String
    /// The record after the write; `nil` for deletes.
    public var record: JSONValue?
}

extension Store {
    /// Change-log entries of `database` with a sequence greater than `sequence`, oldest first.
    public func changes(database: String = Schema.defaultDatabase, after sequence: Int64, limit: Int = 1000) async throws -> [ChangeLogEntry] {
        try await read(database: database) { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT seq, txn, tbl, id, op, version, origin, record FROM _microlith_changelog
                    WHERE seq > ? ORDER BY seq LIMIT ?
                    """,
                arguments: [sequence, limit])
            return try rows.map { row in
                let text: String? = row[7]
                let sequence: Int64 = row[0]
                let op: String = row[4]
                guard let operation = Change.Operation(rawValue: op) else {
                    throw StoreError(.storage, "change-log entry \(sequence) has an unknown operation '\(op)'")
                }
                return ChangeLogEntry(
                    sequence: sequence, transaction: row[1], table: row[2], id: TableLayout.recordID(row[3]) ?? .string("?"),
                    operation: operation, version: row[5], origin: row[6], record: try text.map { try JSONParser.parse($0) })
            }
        }
    }

    /// Deletes change-log entries older than the configured retention; returns how many went.
    @discardableResult
    public func trimChangeLog(database: String = Schema.defaultDatabase) async throws -> Int {
        let cutoffMilliseconds = configuration.wallClock() - Int64(configuration.changeLogRetentionSeconds) * 1000
        let cutoff = cutoffMilliseconds << 16
        return try await write(database: database) { txn in
            try txn.db.execute(sql: "DELETE FROM _microlith_changelog WHERE version < ?", arguments: [cutoff])
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

    /// The retained span of the change log of the database `db` belongs to.
    package static func changeLogBounds(_ db: Database) throws -> ChangeLogBounds {
        let oldest = try Int64.fetchOne(db, sql: "SELECT MIN(seq) FROM _microlith_changelog")
        let latest = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = '_microlith_changelog'") ?? 0
        return ChangeLogBounds(oldest: oldest, latest: max(latest, oldest ?? 0))
    }
}
