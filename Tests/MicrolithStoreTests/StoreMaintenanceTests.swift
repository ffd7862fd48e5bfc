import Foundation
import MicrolithJSON
import MicrolithSchema
import MicrolithStore
import Testing

/// `@table(expiration:)` and change-log trimming.
@Suite struct StoreMaintenanceTests {
    static let schema = """
        type Session @table(expiration: 1) @export {
            id: ID @primaryKey
            user: String @indexed
        }
        type Keep @table {
            id: ID @primaryKey
        }
        """

    /// Waits until the wall clock has moved past `milliseconds` from now (expiration is wall-clock based).
    func waitPast(milliseconds: Int) async throws {
        try await Task.sleep(for: .milliseconds(milliseconds + 50))
    }

    @Test func expiredRecordsAreHiddenThenSweptThroughTheChangeLog() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let store = try openStore(directory, schema: Self.schema)
        defer { store.close() }
        let session = try store.layout("Session")
        let keep = try store.layout("Keep")
        _ = try await store.write { txn in
            _ = try txn.put(session, id: .string("a"), body: ["user": "ann"])
            _ = try txn.put(keep, id: .string("k"), body: [:])
        }
        #expect(try await store.get(session, .string("a")) != nil)
        try await waitPast(milliseconds: 1000)

        // Hidden from reads at once, cached or not.
        if case .present = store.cachedGet(session, .string("a")) { Issue.record("an expired record is still served from the cache") }
        #expect(try await store.get(session, .string("a")) == nil)
        #expect(try await store.get(keep, .string("k")) != nil, "tables without expiration keep their records")

        // The sweep deletes it with an ordinary, logged delete.
        let before = try await store.changes(after: 0).count
        let removed = try await store.sweepExpired()
        #expect(removed == 1)
        let log = try await store.changes(after: 0)
        #expect(log.count == before + 1)
        #expect(log.last?.operation == "delete")
        #expect(try await store.sweepExpired() == 0)
    }

    @Test func aRewriteRestartsTheClock() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let store = try openStore(directory, schema: Self.schema)
        defer { store.close() }
        let session = try store.layout("Session")
        _ = try await store.write { txn in try txn.put(session, id: .string("a"), body: ["user": "ann"]) }
        try await Task.sleep(for: .milliseconds(600))
        _ = try await store.write { txn in try txn.put(session, id: .string("a"), body: ["user": "bob"]) }
        try await Task.sleep(for: .milliseconds(600))
        // 1.2 s after the first write but 0.6 s after the second: still live.
        #expect(try await store.get(session, .string("a"))?.record["user"] == "bob")
        #expect(try await store.sweepExpired() == 0)
    }

    @Test func theBackgroundSweepRemovesExpiredRecords() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let store = try openStore(directory, schema: Self.schema)
        defer { store.close() }
        let session = try store.layout("Session")
        _ = try await store.write { txn in try txn.put(session, id: .string("a"), body: ["user": "ann"]) }
        // Expiration 1 s → sweep every second; allow a generous margin on a busy machine.
        var deleted = false
        for _ in 0..<100 where !deleted {
            try await Task.sleep(for: .milliseconds(100))
            deleted = try await store.changes(after: 0).contains { $0.operation == "delete" }
        }
        #expect(deleted, "the background sweep did not delete the expired record within 10 s")
    }
}
