import Foundation
import GRDB
import MicrolithJSON
import MicrolithSchema
import Testing

@testable import MicrolithStore

/// Digests: equal content gives equal sums whatever the order of members and writes; a
/// difference shows in the bucket of its key only.
@Suite struct TableDigestTests {
    static let schema = """
        type Todo @table @export {
            id: ID @primaryKey
            title: String!
            done: Boolean @indexed
        }
        """

    @Test func equalContentGivesEqualDigestsWhateverTheMemberOrder() async throws {
        let (one, two) = (try openTemporaryStore(schema: Self.schema), try openTemporaryStore(schema: Self.schema))
        defer {
            one.closeAndRemoveFiles()
            two.closeAndRemoveFiles()
        }
        let (t1, t2) = (try one.layout("Todo"), try two.layout("Todo"))
        try await one.write { txn in
            for i in 1...50 { _ = try txn.put(t1, id: .string("r\(i)"), body: ["title": .string("t\(i)"), "done": .bool(i % 2 == 0)]) }
        }
        // The same records, written the other way round, members in another order.
        try await two.write { txn in
            for i in (1...50).reversed() { _ = try txn.put(t2, id: .string("r\(i)"), body: ["done": .bool(i % 2 == 0), "title": .string("t\(i)")]) }
        }
        let (d1, d2) = (try await one.digest(t1, buckets: 8), try await two.digest(t2, buckets: 8))
        #expect(d1 == d2 && d1.records == 50 && d1.tombstones == 0)
        #expect(d1.buckets.filter { $0 != 0 }.count > 4, "keys spread over the buckets: \(d1.buckets)")

        try await two.write { txn in _ = try txn.patch(t2, id: .string("r7"), patch: ["title": "changed"]) }
        let changed = try await two.digest(t2, buckets: 8)
        #expect(changed.differingBuckets(from: d1) == [TableDigest.bucket(of: .string("r7"), count: 8)])

        try await two.write { txn in _ = try txn.delete(t2, id: .string("r7")) }
        let deleted = try await two.digest(t2, buckets: 8)
        #expect(deleted.records == 49)
        #expect(deleted.differingBuckets(from: d1) == [TableDigest.bucket(of: .string("r7"), count: 8)])
    }

    @Test func rowsAtOrPastTheCutoffAreLeftOut() async throws {
        let store = try openTemporaryStore(schema: Self.schema)
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        try await store.write { txn in _ = try txn.put(todo, id: .string("old"), body: ["title": "old"]) }
        let cutoff = try #require(try await store.get(todo, .string("old"))?.version) + 1
        try await store.write { txn in _ = try txn.put(todo, id: .string("new"), body: ["title": "new"]) }
        #expect(try await store.digest(todo, buckets: 4, before: cutoff).records == 1)
        #expect(try await store.digest(todo, buckets: 4).records == 2)
    }

    @Test func aSnapshotByBucketHoldsExactlyThoseKeysAcrossPages() async throws {
        let store = try openTemporaryStore(schema: Self.schema)
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        try await store.write { txn in
            for i in 1...2000 { _ = try txn.put(todo, id: .string(String(format: "r%05d", i)), body: ["title": "x"]) }
        }
        let wanted: Set<Int> = [3, 11]
        var found: [RecordID] = []
        var after: RecordID?
        while true {
            let page = try await store.snapshot(todo, after: after, limit: 50, buckets: wanted, bucketCount: 16)
            found += page.map(\.id)
            if page.count < 50 { break }
            after = page.last?.id
        }
        let expected = (1...2000).map { RecordID.string(String(format: "r%05d", $0)) }.filter {
            wanted.contains(TableDigest.bucket(of: $0, count: 16))
        }
        #expect(found == expected && found.count > 100)
    }

    @Test func aTombstoneBesideALiveRecordAndOldTombstonesAreLeftOut() async throws {
        let (one, two) = (try openTemporaryStore(schema: Self.schema), try openTemporaryStore(schema: Self.schema))
        defer {
            one.closeAndRemoveFiles()
            two.closeAndRemoveFiles()
        }
        let (t1, t2) = (try one.layout("Todo"), try two.layout("Todo"))
        for (store, table) in [(one, t1), (two, t2)] {
            try await store.write { txn in _ = try txn.put(table, id: .string("r"), body: ["title": "back"]) }
        }
        // A delete and a concurrent put: one node keeps the tombstone beside the record.
        try await one.write { txn in
            try txn.db.execute(
                sql: "INSERT INTO _microlith_tombstones(tbl, id, version, origin, at) VALUES ('Todo', 'r', 5, 'x', 0)")
            try txn.db.execute(
                sql: "INSERT INTO _microlith_tombstones(tbl, id, version, origin, at) VALUES ('Todo', 'old', 10, 'x', 0)")
            try txn.db.execute(
                sql: "INSERT INTO _microlith_tombstones(tbl, id, version, origin, at) VALUES ('Todo', 'new', 1000, 'x', 0)")
        }
        try await two.write { txn in
            try txn.db.execute(
                sql: "INSERT INTO _microlith_tombstones(tbl, id, version, origin, at) VALUES ('Todo', 'new', 1000, 'x', 0)")
        }
        // `old` is one node's only (the other trimmed it): left out from version 100 on.
        let (d1, d2) = (try await one.digest(t1, buckets: 8, tombstonesSince: 100), try await two.digest(t2, buckets: 8, tombstonesSince: 100))
        #expect(d1 == d2 && d1.tombstones == 1 && d1.records == 1)
        #expect(try await one.digest(t1, buckets: 8).tombstones == 2, "without a bound, `old` counts")
        #expect(try await one.tombstones(t1, after: nil, limit: 10, since: 100).map(\.id) == [.string("new")])
    }

    @Test func hexRoundTrips() {
        for value: UInt64 in [0, 1, 0xdead_beef, .max] {
            #expect(TableDigest.bucketSum(hex: TableDigest.hex(value)) == value)
        }
        #expect(TableDigest.bucketSum(hex: "xyz") == nil)
    }
}
