import GRDB
public import MicrolithJSON

/// One entry of a database's change log, as read back.
public struct ChangeLogEntry: Sendable, Equatable {
    public var sequence: Int64
    public var transaction: Int64
    public var table: String
    public var id: RecordID
    public var operation: String
    public var version: Int64
    public var origin: String
    /// The record after the write; `nil` for deletes.
    public var record: JSONValue?
}

extension Store {
    /// Change-log entries of `database` with a sequence greater than `sequence`, oldest first.
    public func changes(database: String = "data", after sequence: Int64, limit: Int = 1000) async throws -> [ChangeLogEntry] {
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
                return ChangeLogEntry(
                    sequence: row[0], transaction: row[1], table: row[2], id: TableLayout.recordID(row[3]) ?? .string("?"),
                    operation: row[4], version: row[5], origin: row[6], record: try text.map { try JSONParser.parse($0) })
            }
        }
    }

    /// Deletes change-log entries older than the configured retention; returns how many went.
    @discardableResult
    public func trimChangeLog(database: String = "data") async throws -> Int {
        let cutoffMilliseconds = configuration.wallClock() - Int64(configuration.changeLogRetentionSeconds) * 1000
        let cutoff = cutoffMilliseconds << 16
        return try await write(database: database) { txn in
            try txn.db.execute(sql: "DELETE FROM _microlith_changelog WHERE version < ?", arguments: [cutoff])
            return txn.db.changesCount
        }
    }
}
