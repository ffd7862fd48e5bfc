import GRDB
import MicrolithJSON
import MicrolithSchema
import MicrolithStore
import NIOCore
import Testing

/// Adds a change-log entry written `ageMilliseconds` ago, as an old write would have left it.
private func addOldEntry(_ store: Store, id: String, ageMilliseconds: Int64, origin: String = "old") async throws {
    let version = (HybridLogicalClock.systemMilliseconds() - ageMilliseconds) << 16
    try await store.write { txn in
        try txn.db.execute(
            sql: "INSERT INTO _microlith_changelog(txn, tbl, id, op, version, origin, record) VALUES (?, 'Todo', ?, 'put', ?, ?, NULL)",
            arguments: [version, id, version, origin])
    }
}

@Suite("Store: change log")
struct ChangeLogTests {
    @Test func oneEntryPerWriteInCommitOrder() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        let counter = try store.layout("Counter")

        let put = try await store.put(todo, .string("t1"), ["title": "a"])
        let patched = try #require(try await store.write { txn in try txn.patch(todo, id: .string("t1"), patch: ["notes": "n"]) })
        try await store.write { txn in _ = try txn.delete(todo, id: .string("t1")) }
        let other = try await store.put(counter, .int(7), ["value": 1])

        let log = try await store.changes(after: 0)
        #expect(log.map(\.operation) == [.put, .patch, .delete, .put])
        #expect(log.map(\.tableName) == ["Todo", "Todo", "Todo", "Counter"])
        #expect(log.map(\.id) == [.string("t1"), .string("t1"), .string("t1"), .int(7)])
        #expect(log.allSatisfy { $0.origin == store.nodeID })
        #expect(zip(log, log.dropFirst()).allSatisfy { $0.sequence < $1.sequence && $0.version < $1.version })
        #expect(log[0].record?.record == put.record)
        #expect(log[0].version == put.version)
        #expect(log[1].record?.record == patched.record)
        #expect(log[2].record == nil)
        #expect(log.allSatisfy { $0.previous == nil }, "the log keeps no record before a write")
        #expect(log[3].record?.record == other.record)
        #expect(log.map(\.table) == [todo.index, todo.index, todo.index, counter.index])
        #expect(log[3].version == other.version)
        #expect(Set(log.map(\.transaction)).count == 4, "separate writes are separate transactions")
    }

    @Test func theStoredOperationTextIsTheOperationsRawValue() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        try await store.put(todo, .string("t1"), ["title": "a"])
        _ = try await store.write { txn in try txn.patch(todo, id: .string("t1"), patch: ["notes": "n"]) }
        try await store.write { txn in _ = try txn.delete(todo, id: .string("t1")) }
        let stored = try await store.read(database: "data") { db in try String.fetchAll(db, sql: "SELECT op FROM _microlith_changelog ORDER BY seq") }
        #expect(stored == ["put", "patch", "delete"])
        #expect(try await store.changes(after: 0).map(\.operation) == [.put, .patch, .delete])
    }

    @Test func changesReadBackAreTheChangesCommitReported() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        let reported = try await store.write { txn in
            try txn.put(todo, id: .string("a"), body: ["title": "a"])
            _ = try txn.patch(todo, id: .string("a"), patch: ["notes": "n"])
            try txn.put(todo, id: .string("b"), body: ["title": "b"])
            _ = try txn.delete(todo, id: .string("b"))
            return txn.changes
        }
        let read = try await store.changes(after: 0)
        #expect(read.count == reported.count)
        for (r, c) in zip(read, reported) {
            #expect(r.table == c.table && r.tableName == c.tableName && r.id == c.id && r.operation == c.operation)
            #expect(r.version == c.version && r.origin == c.origin && r.sequence == c.sequence && r.transaction == c.transaction)
            #expect(r.record?.record == c.record?.record && r.record?.version == c.record?.version)
            #expect(r.record.map { String(buffer: $0.json) } == c.record.map { String(buffer: $0.json) }, "the logged JSON text is the cached one")
        }
    }

    @Test func entriesOfTablesNotInTheSchemaArePassedOverWithoutEndingAPage() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        let counter = try store.layout("Counter")
        try await store.write { txn in
            for i in 0..<5 {
                try txn.db.execute(
                    sql: "INSERT INTO _microlith_changelog(txn, tbl, id, op, version, origin, record) VALUES (1, 'Dropped', ?, 'put', 1, 'n', '{}')",
                    arguments: ["d\(i)"])
            }
        }
        try await store.put(todo, .string("t1"), ["title": "a"])
        try await store.put(counter, .int(1), ["value": 1])
        let page = try await store.changes(after: 0, limit: 1)
        #expect(page.map(\.tableName) == ["Todo"], "a page of one is the first entry of a declared table")
        #expect(try await store.changes(after: page[0].sequence).map(\.tableName) == ["Counter"])
        #expect(try await store.changes(after: 0, tables: [counter]).map(\.id) == [.int(1)])
    }

    @Test func anEntryWithAnUnknownOperationIsAnErrorNotAPut() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        try await store.write { txn in
            try txn.db.execute(
                sql: "INSERT INTO _microlith_changelog(txn, tbl, id, op, version, origin, record) VALUES (1, 'Todo', 'x', 'upsert', 1, 'n', NULL)")
        }
        await #expect {
            try await store.changes(after: 0)
        } throws: { error in
            (error as? StoreError)?.code == .storage && "\(error)".contains("'upsert'")
        }
    }

    @Test func writesOfOneTransactionShareItsID() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")

        let (transaction, changeCount) = try await store.write { (txn: WriteTransaction) -> (Int64, Int) in
            try txn.put(todo, id: .string("a"), body: ["title": "a"])
            try txn.put(todo, id: .string("b"), body: ["title": "b"])
            return (txn.id, txn.changes.count)
        }
        #expect(changeCount == 2)
        try await store.put(todo, .string("c"), ["title": "c"])
        let log = try await store.changes(after: 0)
        #expect(log.map(\.transaction) == [transaction, transaction, log[2].transaction])
        #expect(log[2].transaction != transaction)
    }

    @Test func changesAfterASequenceAndLimit() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        for i in 0..<5 { try await store.put(todo, .string("t\(i)"), ["title": "x"]) }

        let all = try await store.changes(after: 0)
        #expect(all.count == 5)
        let later = try await store.changes(after: all[1].sequence)
        #expect(later.map(\.id) == [.string("t2"), .string("t3"), .string("t4")])
        #expect(try await store.changes(after: 0, limit: 2).map(\.id) == [.string("t0"), .string("t1")])
        #expect(try await store.changes(after: all[4].sequence).isEmpty)
    }

    @Test func failedWritesLeaveNoEntry() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        _ = await storeError { try await store.put(todo, .string("t1"), ["title": 1]) }
        _ = await storeError { try await store.put(todo, .string("t1"), ["title": "x"], precondition: WritePrecondition(ifMatch: ["*"])) }
        #expect(try await store.write { txn in try txn.delete(todo, id: .string("none")) } == false)
        #expect(try await store.changes(after: 0).isEmpty)
    }

    @Test func sequencesContinueAfterReopen() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let first = try openStore(directory)
        try await first.put(try first.layout("Todo"), .string("t1"), ["title": "a"])
        let before = try await first.changes(after: 0)
        first.close()

        let store = try openStore(directory)
        defer { store.close() }
        try await store.put(try store.layout("Todo"), .string("t2"), ["title": "b"])
        let log = try await store.changes(after: 0)
        #expect(log.count == 2)
        #expect(log[0].sequence == before[0].sequence && log[0].version == before[0].version && log[0].id == before[0].id)
        #expect(log[0].record?.record == before[0].record?.record)
        #expect(log[1].sequence > log[0].sequence)
        #expect(log[1].version > log[0].version)
    }

    @Test func trimmingDropsOnlyEntriesOlderThanTheRetention() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let store = try Store.open(
            schema: try parseSchema(todoSchemaText),
            configuration: StoreConfiguration(directory: directory, durability: .normal, changeLogRetentionSeconds: 3600))
        defer { store.close() }
        let todo = try store.layout("Todo")

        try await addOldEntry(store, id: "two-hours", ageMilliseconds: 2 * 3_600_000)
        try await addOldEntry(store, id: "half-an-hour", ageMilliseconds: 1_800_000)
        try await store.put(todo, .string("now"), ["title": "fresh"])

        #expect(try await store.trimChangeLog() == 1)
        #expect(try await store.changes(after: 0).map(\.id) == [.string("half-an-hour"), .string("now")])
        #expect(try await store.trimChangeLog() == 0)
    }

    @Test func aPublisherKeepsItsUnpublishedEntriesFromTheTrim() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        var configuration = StoreConfiguration(directory: directory, durability: .normal, changeLogRetentionSeconds: 3600)
        configuration.keepUnpublishedChanges = true
        let store = try Store.open(schema: try parseSchema(todoSchemaText), configuration: configuration)
        defer { store.close() }
        try await addOldEntry(store, id: "three-hours", ageMilliseconds: 3 * 3_600_000, origin: store.nodeID)
        try await addOldEntry(store, id: "two-hours", ageMilliseconds: 2 * 3_600_000, origin: store.nodeID)
        try await addOldEntry(store, id: "from-elsewhere", ageMilliseconds: 2 * 3_600_000, origin: "node-x")
        #expect(try await store.trimChangeLog() == 1, "nothing of this node's is published yet: only another node's entry goes")
        let first = try #require(try await store.changes(after: 0).first?.sequence)
        try await store.write { txn in
            try txn.db.execute(
                sql: "INSERT OR REPLACE INTO _microlith_meta(key, value) VALUES (?, ?)", arguments: [Store.publishedChangeKey, String(first)])
        }
        #expect(try await store.trimChangeLog() == 1, "the published old entry goes; the unpublished one stays")
        #expect(try await store.changes(after: 0).map(\.id) == [.string("two-hours")])
    }

    @Test func defaultRetentionKeepsADay() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        #expect(store.configuration.changeLogRetentionSeconds == 86_400)
        try await addOldEntry(store, id: "two-days", ageMilliseconds: 2 * 86_400_000)
        try await addOldEntry(store, id: "twenty-hours", ageMilliseconds: 20 * 3_600_000)
        #expect(try await store.trimChangeLog() == 1)
        #expect(try await store.changes(after: 0).map(\.id) == [.string("twenty-hours")])
    }
}
