import Foundation
import GRDB
import MicrolithJSON
import Synchronization
import Testing

@testable import MicrolithStore

@Suite("Store: reads on the calling thread")
struct InlineReadersTests {
    @Test func aReaderNeverWaitsForAConnectionAndGivesItsConnectionBack() throws {
        let opened = Atomic<Int>(0)
        let readers = InlineReaders(limit: 1, keepsSnapshots: false) {
            opened.add(1, ordering: .relaxed)
            return try DatabaseQueue()
        }
        let (outer, inner) = try #require(
            try readers.read { db -> (Int, Int?) in
                let inner = try readers.read { db in try Int.fetchOne(db, sql: "SELECT 2") ?? 0 }
                return (try Int.fetchOne(db, sql: "SELECT 1") ?? 0, inner)
            })
        #expect(outer == 1)
        #expect(inner == nil, "the only connection is in use: the caller is told to read elsewhere, not made to wait")
        #expect(try readers.read { db in try Int.fetchOne(db, sql: "SELECT 3") } == 3)
        #expect(opened.load(ordering: .relaxed) == 1, "the connection was given back and used again")
        readers.close()
        #expect(try readers.read { _ in 4 } == nil, "closed readers read nothing")
    }

    @Test func aConnectionThatCannotBeOpenedIsNotCounted() throws {
        let attempts = Atomic<Int>(0)
        let readers = InlineReaders(limit: 1, keepsSnapshots: false) {
            attempts.add(1, ordering: .relaxed)
            return try DatabaseQueue(path: "/nonexistent-folder-\(UUID().uuidString)/x.sqlite")
        }
        #expect(try readers.read { _ in 1 } == nil, "the caller reads through the pool instead")
        #expect(try readers.read { _ in 1 } == nil)
        #expect(attempts.load(ordering: .relaxed) == 2, "a failed open leaves room for the next try")
    }

    @Test func aReadPastItsBudgetIsInterruptedAndTheConnectionStaysUsable() throws {
        let readers = InlineReaders(limit: 1, keepsSnapshots: false) { try DatabaseQueue() }
        let big = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) SELECT count(*) FROM c"
        #expect(try readers.read(budget: 50_000) { db in try Int.fetchOne(db, sql: big) } == nil, "interrupted: read it elsewhere")
        #expect(try readers.read(budget: 50_000) { db in try Int.fetchOne(db, sql: "SELECT 7") } == 7)
        #expect(try readers.read(budget: 100_000_000) { db in try Int.fetchOne(db, sql: big) } == 1_000_000)
        // A lock the read would have to wait for sends it elsewhere.
        #expect(try readers.read { _ in throw DatabaseError(resultCode: .SQLITE_BUSY) } as Int? == nil)
        // An error of the work itself is the caller's, not a reason to read elsewhere.
        #expect(throws: DatabaseError.self) { try readers.read { db in try Int.fetchOne(db, sql: "SELECT * FROM nowhere") } }
    }

    /// A file with one table `t` of `rows` rows, its writer (a pool, as the store's), and inline
    /// readers of it, keeping their snapshots or not.
    private func snapshotFixture(_ directory: String, rows: Int, keepsSnapshots: Bool = true) throws -> (DatabasePool, InlineReaders) {
        let path = directory + "/data.sqlite"
        let pool = try DatabasePool(path: path)
        try pool.write { db in
            try db.execute(sql: "CREATE TABLE t(x)")
            for i in 0..<rows { try db.execute(sql: "INSERT INTO t VALUES (?)", arguments: [i]) }
        }
        let readers = InlineReaders(limit: 2, keepsSnapshots: keepsSnapshots) {
            var config = Configuration()
            config.readonly = true
            config.allowsUnsafeTransactions = true
            return try DatabaseQueue(path: path, configuration: config)
        }
        return (pool, readers)
    }

    /// Reads on one connection share a read transaction until the writer reports a commit: a
    /// commit it has not reported yet is not seen, one it has reported always is.
    @Test func aSnapshotIsKeptUntilTheWriterReportsACommit() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let (pool, readers) = try snapshotFixture(directory, rows: 1)
        defer { readers.close() }
        let count = { try readers.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM t") ?? -1 } }
        #expect(try count() == 1)
        try pool.write { db in try db.execute(sql: "INSERT INTO t VALUES (1)") }
        #expect(try count() == 1, "not reported yet: the connection's transaction (and snapshot) is still the one of the first read")
        readers.writerCommitted()
        #expect(try count() == 2, "reported: the next read starts a new transaction")
        #expect(try count() == 2)
    }

    /// A commit reported while a connection is in use (so the writer cannot end its transaction)
    /// is seen by that connection's next read.
    @Test func aCommitReportedDuringAReadIsSeenByTheNextRead() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let (pool, readers) = try snapshotFixture(directory, rows: 1)
        defer { readers.close() }
        let during = try readers.read { db -> Int in
            let before = try Int.fetchOne(db, sql: "SELECT count(*) FROM t") ?? -1
            try pool.write { db in try db.execute(sql: "INSERT INTO t VALUES (1)") }
            readers.writerCommitted()
            return before
        }
        #expect(during == 1)
        #expect(try readers.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM t") } == 2)
    }

    /// Without kept snapshots (another process may write), every read sees the latest commit.
    @Test func withoutKeptSnapshotsEveryReadSeesTheLatestCommit() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let (pool, readers) = try snapshotFixture(directory, rows: 1, keepsSnapshots: false)
        defer { readers.close() }
        let count = { try readers.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM t") ?? -1 } }
        #expect(try count() == 1)
        try pool.write { db in try db.execute(sql: "INSERT INTO t VALUES (1)") }
        #expect(try count() == 2)
    }

    /// An idle connection's snapshot is let go when the writer reports a commit, so it never
    /// keeps a checkpoint from emptying the WAL while writes go on and reads do not.
    @Test func theWriterLetsGoOfIdleSnapshots() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let (pool, readers) = try snapshotFixture(directory, rows: 10)
        defer { readers.close() }
        #expect(try readers.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM t") } == 10)
        try pool.write { db in try db.execute(sql: "INSERT INTO t VALUES (10)") }
        readers.writerCommitted()
        let (busy, frames) = try pool.writeWithoutTransaction { db -> (Int, Int) in
            let row = try #require(try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)"))
            return (row[0], row[1])
        }
        #expect(busy == 0, "no reader holds an old snapshot")
        #expect(frames == 0, "the WAL was emptied")
    }

    /// Writes and inline reads interleaved through the real store: every read that starts after
    /// its write was acknowledged finds the record, whatever snapshot its connection kept.
    @Test func aReadAfterAnAcknowledgedWriteAlwaysSeesIt() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let store = try openStore(directory, cacheBytes: 0)
        defer { store.close() }
        let table = try #require(store.table(exportName: "Todo"))
        let sql = "SELECT count(*) FROM \"\(table.sqlName)\" WHERE id = ?"
        let seen = try await withThrowingTaskGroup(of: Bool.self) { group in
            // Four writers, each reading back every record it wrote before writing the next.
            for w in 0..<4 {
                group.addTask {
                    var all = true
                    for i in 0..<100 {
                        let id = "w\(w)-\(i)"
                        try await store.write { txn in _ = try txn.put(table, id: .string(id), body: ["title": .string(id)]) }
                        let found = try await store.readInline(database: "data") { db in
                            try Int.fetchOne(db, sql: sql, arguments: [TableLayout.keyValue(.string(id))]) ?? 0
                        }
                        all = all && found == 1
                    }
                    return all
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(seen == 4, "every writer found every record it wrote")
    }

    /// Point reads that miss the record cache run on the calling thread, beside reads handed to the
    /// pool's queues, far more of both than there are threads or connections. Waiting for a pool
    /// reader on a thread that runs tasks would deadlock here: the reader comes back only when the
    /// task holding it resumes on such a thread.
    @Test func manyReadsOfBothKindsAtOnceAllFinish() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        // A cache too small to keep records: every get reads SQLite.
        let store = try openStore(directory, cacheBytes: 0)
        defer { store.close() }
        let table = try #require(store.table(exportName: "Todo"))
        try await store.write { txn in
            for i in 0..<200 { _ = try txn.put(table, id: .string("t\(i)"), body: ["title": .string("todo \(i)")]) }
        }
        let finished = Atomic<Bool>(false)
        let watchdog = Thread {
            Thread.sleep(forTimeInterval: 120)
            if !finished.load(ordering: .relaxed) { fatalError("reads of both kinds deadlocked") }
        }
        watchdog.start()
        let found = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<2_000 {
                group.addTask {
                    if i % 2 == 0 {
                        return try await store.read(database: "data") { db in
                            try Int.fetchOne(db, sql: "SELECT count(*) FROM (SELECT id FROM \"\(table.sqlName)\" LIMIT 50)") ?? 0
                        } > 0 ? 1 : 0
                    }
                    return try await store.get(table, .string("t\(i % 200)")) != nil ? 1 : 0
                }
            }
            return try await group.reduce(0, +)
        }
        finished.store(true, ordering: .relaxed)
        #expect(found == 2_000)
    }

    /// Every kind of connection (the writer, the pool's readers, the inline readers) reads the file
    /// through the configured memory map, and 0 turns it off.
    @Test(arguments: [0, 64 << 20]) func everyConnectionMapsTheConfiguredBytes(bytes: Int) async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let store = try Store.open(
            schema: try parseSchema(todoSchemaText),
            configuration: StoreConfiguration(directory: directory, durability: .normal, memoryMapBytes: bytes))
        defer { store.close() }
        let sql = "PRAGMA mmap_size"
        let writer = try await store.write { txn in try Int.fetchOne(txn.db, sql: sql) }
        let pooled = try await store.read(database: "data") { db in try Int.fetchOne(db, sql: sql) }
        let inline = try await store.readInline(database: "data") { db in try Int.fetchOne(db, sql: sql) }
        #expect([writer, pooled, inline] == [bytes, bytes, bytes])
    }
}
