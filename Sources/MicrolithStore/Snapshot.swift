import GRDB
import MicrolithJSON
import MicrolithSchema
import NIOCore

extension Store {
    /// A page of `table`'s records with keys after `after` (from the first without), in key
    /// order, each as a put stamped with its version, origin and attribute stamps: what another
    /// node merges, row by row, to catch up with this one (``WriteTransaction/apply(_:)``). Expired
    /// records are included (the receiver expires them as this node does).
    public func snapshot(_ table: TableLayout, after: RecordID?, limit: Int) async throws -> [Change] {
        let sql = """
            SELECT id, data, version, origin, stamps FROM "\(table.sqlName)"
            \(after == nil ? "" : "WHERE id > ?") ORDER BY id LIMIT ?
            """
        let key = after.map(TableLayout.keyValue)
        let limit = max(1, limit)
        return try await read(database: table.definition.database) { db in
            var arguments: [any DatabaseValueConvertible] = []
            if let key { arguments.append(key) }
            arguments.append(limit)
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments)).map { row in
                guard let id = TableLayout.recordID(row[0]) else {
                    throw StoreError(.storage, "a key of \(table.name) cannot be read back")
                }
                let version: Int64 = row[2]
                let stamps: String? = row[4]
                return Change(
                    table: table.index, tableName: table.name, id: id, operation: .put, version: version, origin: row[3], sequence: 0,
                    transaction: 0, record: try Store.decode(id: id, text: row[1], version: version), previous: nil,
                    stamps: stamps.flatMap(RecordStamps.init(text:)))
            }
        }
    }

    /// A page of `table`'s tombstones (records deleted here, kept so older writes cannot bring
    /// them back) with keys after `after`, in key order, each as a delete stamped with its
    /// version and origin.
    public func tombstones(_ table: TableLayout, after: RecordID?, limit: Int) async throws -> [Change] {
        let sql = """
            SELECT id, version, origin FROM _microlith_tombstones WHERE tbl = ? \(after == nil ? "" : "AND id > ?") ORDER BY id LIMIT ?
            """
        let key = after.map(TableLayout.keyValue)
        let limit = max(1, limit)
        let name = table.name
        return try await read(database: table.definition.database) { db in
            var arguments: [any DatabaseValueConvertible] = [name]
            if let key { arguments.append(key) }
            arguments.append(limit)
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments)).map { row in
                guard let id = TableLayout.recordID(row[0]) else {
                    throw StoreError(.storage, "a tombstone key of \(table.name) cannot be read back")
                }
                return Change(
                    table: table.index, tableName: table.name, id: id, operation: .delete, version: row[1], origin: row[2], sequence: 0,
                    transaction: 0, record: nil, previous: nil)
            }
        }
    }
}
