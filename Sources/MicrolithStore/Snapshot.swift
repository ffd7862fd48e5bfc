import GRDB
import MicrolithJSON
import MicrolithSchema
import NIOCore

extension Store {
    /// A page of `table`'s records with keys after `after` (from the first without), in key
    /// order, each as a put stamped with its version, origin and attribute stamps: what another
    /// node merges, row by row, to catch up with this one (``WriteTransaction/apply(_:)``). Expired
    /// records are included (the receiver expires them as this node does).
    ///
    /// With `buckets`, only records whose key falls in one of those buckets (of `bucketCount`,
    /// ``TableDigest/bucket(of:count:)``) are taken: a page then ends at its last record, and
    /// fewer than `limit` means the table is done.
    public func snapshot(
        _ table: TableLayout, after: RecordID?, limit: Int, buckets: Set<Int>? = nil, bucketCount: Int = 1
    ) async throws -> [Change] {
        try await page(table, after: after, limit: limit, buckets: buckets, bucketCount: bucketCount, tombstones: false)
    }

    /// A page of `table`'s tombstones (records deleted here, kept so older writes cannot bring
    /// them back) with keys after `after`, in key order, each as a delete stamped with its
    /// version and origin; `buckets` as for ``snapshot(_:after:limit:buckets:bucketCount:)``, and
    /// only those whose version is `since` or later when given.
    public func tombstones(
        _ table: TableLayout, after: RecordID?, limit: Int, buckets: Set<Int>? = nil, bucketCount: Int = 1, since: Int64? = nil
    ) async throws -> [Change] {
        try await page(table, after: after, limit: limit, buckets: buckets, bucketCount: bucketCount, tombstones: true, since: since)
    }

    private func page(
        _ table: TableLayout, after: RecordID?, limit: Int, buckets: Set<Int>?, bucketCount: Int, tombstones: Bool, since: Int64? = nil
    ) async throws -> [Change] {
        let limit = max(1, limit)
        let scan = buckets == nil ? limit : max(limit, 512)
        // Without a key to start after, the first page starts at the table's first key.
        let (first, next) =
            tombstones
            ? (
                "SELECT id, version, origin FROM _microlith_tombstones WHERE tbl = ? ORDER BY id LIMIT ?",
                "SELECT id, version, origin FROM _microlith_tombstones WHERE tbl = ? AND id > ? ORDER BY id LIMIT ?"
            )
            : (
                "SELECT id, data, version, origin, stamps FROM \"\(table.sqlName)\" ORDER BY id LIMIT ?",
                "SELECT id, data, version, origin, stamps FROM \"\(table.sqlName)\" WHERE id > ? ORDER BY id LIMIT ?"
            )
        let name = table.name
        return try await read(database: table.definition.database) { db in
            var found: [Change] = []
            var key = after.map(TableLayout.keyValue) ?? .null
            while found.count < limit {
                var arguments: [any DatabaseValueConvertible] = tombstones ? [name] : []
                if !key.isNull { arguments.append(key) }
                arguments.append(scan)
                let rows = try Row.fetchAll(db, sql: key.isNull ? first : next, arguments: StatementArguments(arguments))
                for row in rows where found.count < limit {
                    guard let id = TableLayout.recordID(row[0]) else {
                        throw StoreError(.storage, "a key of \(table.name) cannot be read back")
                    }
                    key = row[0]
                    if let buckets, !buckets.contains(TableDigest.bucket(of: id, count: bucketCount)) { continue }
                    if let since, tombstones, (row[1] as Int64) < since { continue }
                    if tombstones {
                        found.append(
                            Change(
                                table: table.index, tableName: table.name, id: id, operation: .delete, version: row[1], origin: row[2],
                                sequence: 0, transaction: 0, record: nil, previous: nil))
                    } else {
                        let version: Int64 = row[2]
                        let stamps: String? = row[4]
                        found.append(
                            Change(
                                table: table.index, tableName: table.name, id: id, operation: .put, version: version, origin: row[3],
                                sequence: 0, transaction: 0, record: try Store.decode(id: id, text: row[1], version: version), previous: nil,
                                stamps: stamps.flatMap(RecordStamps.init(text:))))
                    }
                }
                if rows.count < scan { break }
            }
            return found
        }
    }
}
