import Foundation
import GRDB
import MicrolithJSON
import MicrolithSchema
import MicrolithStore
import Testing

/// The index statistics the query planner reads (`sqlite_stat1`), refreshed after enough writes.
@Suite struct StoreStatisticsTests {
    static let schema = """
        type Item @table @export {
            id: Int @primaryKey
            group: String @indexed
        }
        """

    private func putItems(_ store: Store, _ ids: Range<Int>) async throws {
        let table = try store.layout("Item")
        try await store.write { txn in
            for i in ids { _ = try txn.put(table, id: .int(Int64(i)), body: ["group": .string("g\(i % 10)")]) }
        }
    }

    private func statistics(_ store: Store) async throws -> [String: String] {
        try await store.read(database: "data") { db in
            guard try db.tableExists("sqlite_stat1") else { return [:] }
            let rows = try Row.fetchAll(db, sql: "SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'r_Item'")
            return Dictionary(uniqueKeysWithValues: rows.map { ($0[0] as String, $0[1] as String) })
        }
    }

    /// The change-log sequence the statistics were last taken at (the housekeeping may take them
    /// too, so tests look at this rather than at who took them).
    private func analyzedAt(_ store: Store) async throws -> Int? {
        try await store.read(database: "data") { db in
            try String.fetchOne(db, sql: "SELECT value FROM _microlith_meta WHERE key = 'analyzed_seq'").flatMap { Int($0) }
        }
    }

    @Test func aBulkLoadIsMeasuredAndSmallChangesAreNot() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        var store = try openStore(directory, schema: Self.schema)
        try await putItems(store, 0..<999)
        #expect(try await !store.refreshStatisticsIfStale(), "999 writes are below the 1,000 floor")
        #expect(try await statistics(store).isEmpty)

        try await putItems(store, 999..<3000)
        _ = try await store.refreshStatisticsIfStale()
        #expect(try await analyzedAt(store) == 3000)
        let stats = try await statistics(store)
        #expect(stats["x_Item_group"]?.split(separator: " ").count == 2, "rows, then rows per value: \(stats)")
        #expect(stats["r_Item"] != nil, "the table's own row count: \(stats)")
        #expect(try await !store.refreshStatisticsIfStale(), "nothing changed since")

        // A tenth of the rows is needed now (300 at 3,000 rows, but at least 1,000).
        try await putItems(store, 3000..<3500)
        #expect(try await !store.refreshStatisticsIfStale())
        store.close()

        // Opening the folder again measures nothing new; the writes since still count.
        store = try openStore(directory, schema: Self.schema)
        defer { store.close() }
        #expect(try await statistics(store) == stats)
        try await putItems(store, 3500..<4000)
        _ = try await store.refreshStatisticsIfStale()
        #expect(try await analyzedAt(store) == 4000, "1,000 writes since the last measure")
    }

    @Test func openingAFolderThatWasNeverMeasuredMeasuresIt() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        var store = try openStore(directory, schema: Self.schema)
        try await putItems(store, 0..<1500)
        store.close()
        store = try openStore(directory, schema: Self.schema)
        defer { store.close() }
        #expect(try await !statistics(store).isEmpty, "start-up ran ANALYZE")
        #expect(try await analyzedAt(store) == 1500)
        #expect(try await !store.refreshStatisticsIfStale())
    }
}
