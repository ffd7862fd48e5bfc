import Foundation
import GRDB
import MicrolithJSON
import MicrolithSchema
import Synchronization
import Testing

@testable import MicrolithStore

/// Backups are one snapshot per database taken beside running writes, whole or absent; restores
/// check the backup, hold the folder alone, and never delete what they replace.
@Suite struct BackupTests {
    static let schema = """
        type Todo @table @export {
            id: ID @primaryKey
            title: String!
            n: Int @indexed
        }
        type Event @table(database: "events") {
            id: ID @primaryKey
            kind: String
        }
        """

    @Test func aBackupTakenDuringWritesIsOneCommitOfEachDatabase() async throws {
        let directory = try makeTemporaryDirectory()
        let store = try openStore(directory, schema: Self.schema)
        let backups = try makeTemporaryDirectory()
        defer {
            store.closeAndRemoveFiles()
            removeDirectory(backups)
        }
        let todo = try store.layout("Todo")
        let events = try #require(store.table(name: "Event", database: "events"))
        try await store.write(database: "events") { txn in _ = try txn.put(events, id: .string("e"), body: ["kind": "one"]) }
        // Each commit writes a new record and sets `count` to the number of records: a snapshot
        // taken between two commits holds exactly `count` records.
        let done = Atomic<Bool>(false)
        let committed = Atomic<Int>(0)
        let writer = Task {
            var i = 0
            while !done.load(ordering: .relaxed) {
                i += 1
                let n = i
                try await store.write { txn in
                    _ = try txn.put(todo, id: .string("t\(n)"), body: ["title": "x", "n": .int(Int64(n))])
                    _ = try txn.put(todo, id: .string("count"), body: ["title": "count", "n": .int(Int64(n))])
                }
                committed.store(n, ordering: .relaxed)
            }
            return i
        }
        while committed.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(5)) }
        let destination = (backups as NSString).appendingPathComponent("one")
        let manifest = try await store.backup(to: destination)
        // At least one more commit after the copy, however the two tasks were scheduled.
        let atBackup = committed.load(ordering: .relaxed)
        while committed.load(ordering: .relaxed) <= atBackup + 1 { try await Task.sleep(for: .milliseconds(5)) }
        done.store(true, ordering: .relaxed)
        let written = try await writer.value
        #expect(manifest.databases.map(\.name) == ["data", "events"])
        #expect(manifest.node == store.nodeID)
        #expect(!FileManager.default.fileExists(atPath: destination + ".partial"))

        let copy = try DatabaseQueue(path: (destination as NSString).appendingPathComponent("data.sqlite"))
        let (rows, count) = try await copy.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT count(*) FROM r_Todo WHERE id <> 'count'") ?? -1,
                try Int.fetchOne(db, sql: "SELECT json_extract(data, '$.n') FROM r_Todo WHERE id = 'count'") ?? -1
            )
        }
        try copy.close()
        #expect(rows == count, "the copy is one commit: \(rows) records, count says \(count)")
        #expect(rows > 0 && rows < written, "taken during the writes: \(rows) of \(written)")
        #expect(manifest.databases[0].tables["Todo"] == rows + 1)
        #expect(manifest.databases[1].tables == ["Event": 1])
        #expect(try Backup.verify(destination) == manifest)
    }

    @Test func aRestoreNeedsTheFolderAloneAndMovesReplacedDatabasesAside() async throws {
        let directory = try makeTemporaryDirectory()
        let backups = try makeTemporaryDirectory()
        defer {
            removeDirectory(directory)
            removeDirectory(backups)
        }
        var store = try openStore(directory, schema: Self.schema)
        let todo = try store.layout("Todo")
        try await store.write { txn in _ = try txn.put(todo, id: .string("before"), body: ["title": "b"]) }
        let destination = (backups as NSString).appendingPathComponent("b")
        _ = try await Backup.take(dataDirectory: directory, to: destination)
        try await store.write { txn in _ = try txn.put(todo, id: .string("after"), body: ["title": "a"]) }

        // Open: refused, and nothing moves.
        let refusal = #expect(throws: StoreError.self) { try Backup.restore(from: destination, into: directory, replace: true) }
        #expect(refusal?.message.contains("is in use") == true)
        #expect(try Backup.databaseFiles(in: directory) == ["data.sqlite", "events.sqlite"])
        store.close()

        let notReplacing = #expect(throws: StoreError.self) { try Backup.restore(from: destination, into: directory, replace: false) }
        #expect(notReplacing?.message.contains("--replace") == true)

        let restored = try Backup.restore(from: destination, into: directory, replace: true)
        let aside = try #require(restored.movedAside)
        #expect(try Backup.databaseFiles(in: aside) == ["data.sqlite", "events.sqlite"])

        store = try openStore(directory, schema: Self.schema)
        defer { store.close() }
        #expect(try await store.get(todo, .string("before")) != nil)
        #expect(try await store.get(todo, .string("after")) == nil)
        // While the store is open, nobody may restore; a shared holder may still open it.
        #expect(throws: StoreError.self) { try DataFolderLock(directory: directory, mode: .exclusive) }
        try DataFolderLock(directory: directory, mode: .shared).release()
    }

    @Test func aStoreDoesNotOpenWhileItsFolderIsHeldAlone() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let lock = try DataFolderLock(directory: directory, mode: .exclusive)
        let error = #expect(throws: StoreError.self) { try openStore(directory, schema: Self.schema) }
        #expect(error?.message.contains("being restored") == true)
        lock.release()
        let store = try openStore(directory, schema: Self.schema)
        store.close()
    }

    @Test func aDamagedBackupIsRefusedBeforeAnythingMoves() async throws {
        let directory = try makeTemporaryDirectory()
        let backups = try makeTemporaryDirectory()
        let target = try makeTemporaryDirectory()
        defer {
            removeDirectory(directory)
            removeDirectory(backups)
            removeDirectory(target)
        }
        let store = try openStore(directory, schema: Self.schema)
        let todo = try store.layout("Todo")
        try await store.write { txn in
            for i in 1...200 { _ = try txn.put(todo, id: .string("t\(i)"), body: ["title": .string(String(repeating: "x", count: 100))]) }
        }
        store.close()
        let destination = (backups as NSString).appendingPathComponent("b")
        _ = try await Backup.take(dataDirectory: directory, to: destination)
        await #expect(throws: StoreError.self) { _ = try await Backup.take(dataDirectory: target, to: destination + "2") }

        let file = (destination as NSString).appendingPathComponent("data.sqlite")
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        let original = bytes
        bytes.replaceSubrange(4096..<8192, with: Data(repeating: 0xA5, count: 4096))
        try bytes.write(to: URL(fileURLWithPath: file))
        let damaged = #expect(throws: StoreError.self) { try Backup.restore(from: destination, into: target, replace: false) }
        #expect(damaged.map { $0.message.contains("damaged") || $0.message.contains("not a readable database") } == true)
        #expect(try Backup.databaseFiles(in: target).isEmpty)

        try original.prefix(original.count - 4096).write(to: URL(fileURLWithPath: file))
        let short = #expect(throws: StoreError.self) { try Backup.restore(from: destination, into: target, replace: false) }
        #expect(short?.message.contains("cut short") == true)

        try original.write(to: URL(fileURLWithPath: file))
        let manifestFile = (destination as NSString).appendingPathComponent(Backup.manifestName)
        let manifest = try Data(contentsOf: URL(fileURLWithPath: manifestFile))
        try Data(String(decoding: manifest, as: UTF8.self).replacingOccurrences(of: "\"format\" : 1", with: "\"format\" : 99").utf8)
            .write(to: URL(fileURLWithPath: manifestFile))
        let newer = #expect(throws: StoreError.self) { try Backup.restore(from: destination, into: target, replace: false) }
        #expect(newer?.message.contains("newer") == true)

        try manifest.write(to: URL(fileURLWithPath: manifestFile))
        let restored = try Backup.restore(from: destination, into: target, replace: false)
        #expect(restored.movedAside == nil && restored.manifest.databases[0].tables["Todo"] == 200)
    }
}

/// Group-commit counters: each commit counted once, in the bucket of its size and commit time.
@Suite struct WriteStatisticsTests {
    @Test func commitsLandInTheirBuckets() async throws {
        var statistics = WriteStatistics()
        statistics.record(batch: 1, commit: .microseconds(50))
        statistics.record(batch: 3, commit: .milliseconds(3))
        statistics.record(batch: 1_000, commit: .seconds(2))
        #expect(statistics.commits == 3 && statistics.writes == 1_004)
        #expect(statistics.batchBuckets == [1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1])
        #expect(statistics.commitBuckets == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1])
        #expect(abs(statistics.commitSeconds - 2.00305) < 1e-9)

        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        try await store.write { txn in _ = try txn.put(todo, id: .string("a"), body: ["title": "a"]) }
        let counted = try #require(store.writeStatistics()["data"])
        #expect(counted.commits == 1 && counted.writes == 1 && counted.batchBuckets[0] == 1)
    }
}
