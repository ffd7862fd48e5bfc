import Foundation
import GRDB
import MicrolithJSON
import MicrolithSchema
import MicrolithStore
import Testing

/// A second connection to a store's database file that holds its write lock until released.
private final class LockHolder: Sendable {
    let queue: DatabaseQueue

    init(_ store: Store) throws {
        var configuration = Configuration()
        configuration.allowsUnsafeTransactions = true  // the transaction outlives one access, on purpose
        queue = try DatabaseQueue(
            path: (store.configuration.directory as NSString).appendingPathComponent("data.sqlite"), configuration: configuration)
        try queue.writeWithoutTransaction { db in try db.execute(sql: "BEGIN IMMEDIATE") }
    }

    func release() throws {
        try queue.writeWithoutTransaction { db in try db.execute(sql: "ROLLBACK") }
    }
}

@Suite("Store: a write lock held by another connection")
struct StoreBusyTests {
    func openBusyStore(timeout: Int) throws -> Store {
        try Store.open(
            schema: try parseSchema(todoSchemaText),
            configuration: StoreConfiguration(directory: try makeTemporaryDirectory(), durability: .normal, busyTimeoutMilliseconds: timeout))
    }

    @Test func aWriteGivesUpAfterTheBusyTimeoutWithBusy() async throws {
        let store = try openBusyStore(timeout: 150)
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        let holder = try LockHolder(store)
        let started = ContinuousClock.now
        do {
            try await store.put(todo, .string("t1"), ["title": "a"])
            Issue.record("the write succeeded although another connection held the lock")
        } catch let error as StoreError {
            #expect(error.code == .busy)
            #expect(!error.message.contains("BEGIN"), "the message is for people, not SQL: \(error.message)")
            #expect(error.underlying != nil)
        }
        let waited = ContinuousClock.now - started
        // It waited for the lock, and gave up rather than waiting for it to be released (the upper
        // bound is loose: a loaded machine stretches the timeout's sleeps).
        #expect(waited >= .milliseconds(100) && waited < .seconds(30), "waited \(waited)")
        try holder.release()
        try await store.put(todo, .string("t1"), ["title": "a"])
        #expect(try await store.get(todo, .string("t1"))?.record["title"] == "a")
    }

    @Test func readinessFollowsTheLock() async throws {
        let store = try openBusyStore(timeout: 150)
        defer { store.closeAndRemoveFiles() }
        try await store.checkReady()
        let holder = try LockHolder(store)
        // No write has failed yet: the probe itself finds the lock taken.
        await #expect(throws: StoreError.self) { try await store.checkReady() }
        do {
            try await store.checkReady()
        } catch let error as StoreError {
            #expect(error.code == .busy)
            #expect(error.message.contains("database 'data'"))
        }
        try holder.release()
        try await store.checkReady()
        // The probe wrote nothing and left the busy timeout as configured: writes still wait.
        let again = try LockHolder(store)
        let started = ContinuousClock.now
        await #expect(throws: StoreError.self) { try await store.put(try store.layout("Todo"), .string("t2"), ["title": "b"]) }
        #expect(ContinuousClock.now - started >= .milliseconds(100))
        try again.release()
        try await store.checkReady()
        #expect(try await store.get(try store.layout("Todo"), .string("t2")) == nil)
    }

    @Test func classifyTurnsSQLiteErrorsIntoStoreErrors() {
        let busy = DatabaseError(resultCode: .SQLITE_BUSY, message: "database is locked", sql: "BEGIN IMMEDIATE TRANSACTION")
        #expect(StoreError.classify(busy)?.code == .busy)
        let wrapped = StoreError(.storage, "the write could not be committed: \(busy)", underlying: busy)
        let classified = StoreError.classify(wrapped)
        #expect(classified?.code == .busy)
        #expect(classified?.message.contains("BEGIN") == false)
        let full = DatabaseError(resultCode: .SQLITE_FULL, message: "database or disk is full", sql: "INSERT INTO r_Todo")
        #expect(StoreError.classify(full)?.code == .storage)
        #expect(StoreError.classify(full)?.message.contains("INSERT") == false)
        #expect(StoreError.classify(StoreError(.invalidRecord, "x"))?.code == .invalidRecord)
        struct Other: Error {}
        #expect(StoreError.classify(Other()) == nil)
    }
}
